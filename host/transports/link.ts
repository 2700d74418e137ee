/**
 * What a link is, for every transport in this folder (docs/conventions.md 3): the firmware's
 * LinkEndpoint port, plus the hook where link faults plug in.
 *
 * The simulated link (`sim.ts`) and, later, the real-link proxy apply the same fault vocabulary
 * (docs/design.md 2.6) through a {@link LinkFaultHook}: for every frame handed to the link it says what
 * actually reaches the other end.
 */
export type { LinkEndpoint, LinkHandler } from '../../firmware/ports/link.ts';

/** Which way a frame travels on a two-ended link. */
export type LinkDirection = 'ab' | 'ba';

/**
 * Which channel of a link a frame travels on: data connection `k` (a number), or the heartbeat
 * channel (`'datagram'`: what `sendDatagram` sends, on an inline link too, where it shares
 * connection 0's byte stream).
 */
export type LinkChannel = number | 'datagram';

/** One copy of a sent frame that reaches the far end: the bytes (possibly altered) and any extra delay. */
export interface Transmission {
  bytes: Uint8Array;
  extraDelayMs: number;
}

export interface LinkFaultHook {
  /**
   * Decide the fate of `bytes`, sent now in direction `dir` on `channel`: return the copies that
   * arrive (none: dropped; two: duplicated; altered bytes: corrupted; extra delay: delayed or
   * reordered), or null to deliver it untouched. The hook must not change `bytes` in place: the
   * sender keeps them for retransmission. It may reset the connection carrying them (the link's
   * notifications are deferred, so nothing re-enters the sender).
   */
  onSend(dir: LinkDirection, bytes: Uint8Array, channel: LinkChannel): readonly Transmission[] | null;
}
