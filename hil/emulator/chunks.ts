import { setImmediate as nextMacrotask } from 'node:timers/promises';
import type { BlockDevice } from '../../firmware/ports/block-device.ts';
import type { VirtualClock } from '../../host/clock/virtual.ts';

/**
 * Largest piece of a volume the initial synchronisation and the final comparison read at a time
 * (bytes): 4 MiB. They hold at most two such pieces (one per side) at once, so their memory stays
 * bounded however large the volumes are.
 */
export const CONTENT_CHUNK_BYTES_MAX = 4 * 1024 * 1024;

/** Sectors in one content chunk. */
export function chunkSectors(sectorSize: number): number {
  return Math.max(1, Math.floor(CONTENT_CHUNK_BYTES_MAX / sectorSize));
}

/**
 * Run `clock` until `p` settles, and return what it settled with. Meant for a quiet system (before
 * the run, or after it quiesced): other timers fire meanwhile as usual. If the clock runs dry and
 * `p` still has not settled, it never will: that is an error, not a hang.
 */
export async function drive<T>(clock: VirtualClock, p: Promise<T>): Promise<T> {
  let settled = false;
  const watched = p.finally(() => (settled = true));
  watched.catch(() => undefined);
  while (!settled) {
    const outcome = await clock.run({ until: () => settled });
    if (outcome !== 'idle' || settled) continue;
    await nextMacrotask();
    if (!settled && clock.pendingTimers === 0) throw new Error('a disk request never completed (nothing left on the clock)');
  }
  return watched;
}

/** Read the same sectors of two devices together; each side comes back as its bytes or its error. */
export async function readBoth(clock: VirtualClock, devs: readonly [BlockDevice, BlockDevice], lba: number, count: number): Promise<[Uint8Array | Error, Uint8Array | Error]> {
  const asError = (dev: BlockDevice) => (e: unknown): Error => (e instanceof Error ? e : new Error(`reading ${dev.name}: ${String(e)}`));
  const both = Promise.all(devs.map((dev) => dev.read(lba, count).catch(asError(dev))));
  const [a, b] = await drive(clock, both);
  return [a!, b!];
}
