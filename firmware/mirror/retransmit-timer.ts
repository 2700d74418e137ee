/**
 * The source's retransmission timeout (RTO), estimated the way TCP does it (RFC 6298, after
 * Jacobson and Karels): a smoothed round-trip time and its variance, clamped to [minMs, maxMs], doubled on every timeout until a fresh sample arrives. Samples come
 * only from entries sent once (Karn's rule: an ack for a retransmitted entry is ambiguous).
 *
 * The round trip measured here includes the target's processing (lock, disk write), which is what
 * the source actually waits for. RTO = SRTT + max(4 * RTTVAR, 1 ms + SRTT / 4), see `rtoMs`.
 */
const RTO_MARGIN_MS = 1;

export interface RetransmitTimerConfig {
  /** RTO before the first sample. */
  initialMs: number;
  minMs: number;
  maxMs: number;
}

export class RetransmitTimer {
  private srtt = -1;
  private rttvar = 0;
  private backoff = 1;
  private smallest = Infinity;
  readonly config: RetransmitTimerConfig;

  constructor(config: RetransmitTimerConfig) {
    this.config = config;
  }

  /** Current timeout, ms. */
  get rtoMs(): number {
    // The margin over SRTT is at least a quarter of it plus a millisecond: on a steady link RTTVAR
    // decays towards zero, and an entry whose ACK waits for company (the target's delayed ACK for a
    // trailing UNLOCK) or for a burst ahead of it would otherwise time out spuriously.
    const base = this.srtt < 0 ? this.config.initialMs : this.srtt + Math.max(4 * this.rttvar, RTO_MARGIN_MS + this.srtt / 4);
    return Math.min(this.config.maxMs, Math.max(this.config.minMs, base) * this.backoff);
  }

  /** Smallest round trip seen (0 before any): no response can come back faster than this. */
  get minRttMs(): number {
    return this.smallest === Infinity ? 0 : this.smallest;
  }

  sample(rttMs: number): void {
    if (this.srtt < 0) {
      this.srtt = rttMs;
      this.rttvar = rttMs / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rttMs);
      this.srtt = 0.875 * this.srtt + 0.125 * rttMs;
    }
    if (rttMs < this.smallest) this.smallest = rttMs;
    this.backoff = 1;
  }

  /** A timeout happened: wait twice as long next time (bounded by maxMs). */
  timedOut(): void {
    if (this.rtoMs < this.config.maxMs) this.backoff *= 2;
  }
}
