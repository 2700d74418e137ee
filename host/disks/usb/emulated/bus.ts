import type { HostClock } from '../../../clock/clock.ts';

/**
 * What the emulated USB devices (the mass-storage device and the mirror link's board) share:
 * the high-speed bus they sit on, and how they fail when they are not on it.
 */

/** Bulk packets on a high-speed bus. */
export const HIGH_SPEED_PACKET_BYTES = 512;
/** Bulk packets per 125 us microframe that a high-speed bus carries at most. */
const PACKETS_PER_MICROFRAME = 13;
const MICROFRAME_MS = 0.125;

/** The bus time of a transfer of `bytes`, slept on `clock`. */
export function busTime(clock: HostClock, bytes: number): Promise<void> {
  const packets = Math.max(1, Math.ceil(bytes / HIGH_SPEED_PACKET_BYTES));
  return clock.sleep(Math.ceil(packets / PACKETS_PER_MICROFRAME) * MICROFRAME_MS);
}

/** What WebUSB throws for a device that has left the bus (a `NetworkError` DOMException). */
export class UsbGone extends Error {
  override readonly name = 'NetworkError';
}
