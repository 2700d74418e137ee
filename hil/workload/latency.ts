/** Latencies in virtual ms, summarised as the usual percentiles. */
export interface LatencySummary {
  count: number;
  minMs: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export class LatencyRecorder {
  private values = new Float64Array(1024);
  private n = 0;

  record(ms: number): void {
    if (this.n === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.n++] = ms;
  }

  get count(): number {
    return this.n;
  }

  /** The values recorded so far (a view: do not keep it past the next `record`). */
  recorded(): Float64Array {
    return this.values.subarray(0, this.n);
  }

  /** The summary of several recorders' values taken together (both hosts of a bidirectional run). */
  static merged(recorders: readonly LatencyRecorder[]): LatencySummary {
    const all = new LatencyRecorder();
    for (const r of recorders) for (const v of r.recorded()) all.record(v);
    return all.summary();
  }

  summary(): LatencySummary {
    if (this.n === 0) return { count: 0, minMs: 0, meanMs: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 };
    const sorted = this.values.slice(0, this.n).sort();
    let sum = 0;
    for (const v of sorted) sum += v;
    const at = (q: number): number => round(sorted[Math.min(this.n - 1, Math.floor(q * this.n))]!);
    return { count: this.n, minMs: round(sorted[0]!), meanMs: round(sum / this.n), p50Ms: at(0.5), p99Ms: at(0.99), maxMs: round(sorted[this.n - 1]!) };
  }
}

/** Virtual-time figures are exact; rounding to the nanosecond only tidies float noise. */
const round = (ms: number): number => Math.round(ms * 1e6) / 1e6;
