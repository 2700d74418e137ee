import { PACER_BURST_MS } from './limits.ts';

/**
 * Paces one direction of the proxied link to a bandwidth (`bandwidth=MBPS@AT`), shared by every
 * channel of that direction as a link's bandwidth is (docs/fault-proxy.md 3). Each admitted piece
 * books the wire for its serialisation time; the next may leave once the wire is free, up to
 * {@link PACER_BURST_MS} early so that timer resolution does not cap fast rates. With no rate set
 * (before the plan's first change) everything leaves at once.
 */
export class Pacer {
  private msPerByte: number | null = null;
  private freeAtMs = 0;

  /** The rate in Mbit/s, or null for unpaced. */
  get mbps(): number | null {
    return this.msPerByte === null ? null : 8 / (this.msPerByte * 1000);
  }

  set(mbps: number | null): void {
    this.msPerByte = mbps === null ? null : 8 / (mbps * 1000);
  }

  /** 0 if `bytes` may leave at `nowMs` (and they are booked); otherwise how long to wait before asking again. */
  admit(bytes: number, nowMs: number): number {
    if (this.msPerByte === null) return 0;
    if (this.freeAtMs > nowMs + PACER_BURST_MS) return this.freeAtMs - PACER_BURST_MS - nowMs;
    this.freeAtMs = Math.max(this.freeAtMs, nowMs) + bytes * this.msPerByte;
    return 0;
  }
}
