/**
 * How much a source may have in flight, adapted to what the link delivers: additive increase,
 * multiplicative decrease, after TCP (RFC 5681, Jacobson 1988).
 *
 * Why a mirror needs it: go-back-N re-sends everything after a lost frame. On a slow or lossy link
 * with a window far above the bandwidth-delay product, every rollback adds a window's worth of
 * copies to the link's queue, the queue grows faster than it drains, and the copies the target
 * needs wait behind stale ones (congestion collapse: a 10 Mbit/s link with a 16 MiB window took
 * minutes to converge in a campaign). Keeping the window near what the link carries keeps
 * retransmissions cheap and recovery fast; on a clean link the window opens to its maximum within
 * a few round trips and costs nothing.
 */
/** Queueing delay always tolerated before the window stops growing (ms). */
export const QUEUE_SLACK_MS = 1;

export interface CongestionConfig {
  /** Window at start and after a timeout. */
  initialBytes: number;
  /** Never below this (at least one largest frame, so a single entry can always be sent). */
  minBytes: number;
  /** Never above this (the configured send window). */
  maxBytes: number;
  /** Growth step in congestion avoidance: about one typical frame per round trip. */
  segmentBytes: number;
}

export class CongestionWindow {
  private cwnd: number;
  private ssthresh: number;
  /** Losses of entries sent before this sequence number belong to a reduction already made. */
  private recoverSeq = 0;
  reductions = 0;

  constructor(private readonly cfg: CongestionConfig) {
    this.cwnd = Math.min(cfg.maxBytes, Math.max(cfg.minBytes, cfg.initialBytes));
    this.ssthresh = cfg.maxBytes;
  }

  get bytes(): number {
    return this.cwnd;
  }

  /**
   * `bytes` were confirmed: grow (doubling per round trip below ssthresh, then linearly), unless
   * the round trip just measured shows a queue building up on the link (more than the path's own
   * round trip, or {@link QUEUE_SLACK_MS}, above the smallest seen). A simulated link never drops
   * for lack of buffer, so loss alone would let the window fill its queue: delay has to say stop,
   * as in TCP Vegas.
   */
  acked(bytes: number, rttMs: number, minRttMs: number): void {
    if (rttMs >= 0 && rttMs - minRttMs > Math.max(minRttMs, QUEUE_SLACK_MS)) return;
    const grow = this.cwnd < this.ssthresh ? bytes : (this.cfg.segmentBytes * bytes) / this.cwnd;
    this.cwnd = Math.min(this.cfg.maxBytes, this.cwnd + grow);
  }

  /**
   * The entry `seq` was lost (NAK, or an ack timeout when `timeout`). `nextSeq` is the first entry
   * not yet sent. Halve once per round trip of losses; after a timeout, start again from the initial window.
   */
  lost(seq: number, nextSeq: number, timeout: boolean): void {
    if (seq < this.recoverSeq && !timeout) return;
    this.recoverSeq = nextSeq;
    this.reductions++;
    this.ssthresh = Math.max(this.cfg.minBytes, this.cwnd / 2);
    this.cwnd = timeout ? Math.max(this.cfg.minBytes, Math.min(this.cfg.initialBytes, this.ssthresh)) : this.ssthresh;
  }
}
