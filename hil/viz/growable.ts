/**
 * Append-only typed arrays that grow by doubling: a million-event trace index is a few flat
 * arrays of numbers rather than a million objects (docs/viz.md, "Indexing a trace").
 */
abstract class Growable<A extends Int32Array | Float64Array> {
  length = 0;

  protected constructor(protected data: A, private readonly make: (n: number) => A) {}

  push(v: number): void {
    if (this.length === this.data.length) {
      const next = this.make(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }

  at(i: number): number {
    return this.data[i]!;
  }

  /** The last value, or `fallback` when empty. */
  last(fallback: number): number {
    return this.length === 0 ? fallback : this.data[this.length - 1]!;
  }

  /** Position of the last element <= `v` (the array must be sorted ascending), or -1. */
  lastAtMost(v: number): number {
    let lo = 0;
    let hi = this.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.data[mid]! <= v) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** Position of the first element >= `v` (sorted ascending), or `length`. */
  firstAtLeast(v: number): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.data[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** 32-bit integers (event indices, interned ids). */
export class GrowableInts extends Growable<Int32Array> {
  constructor(capacity = 1024) {
    super(new Int32Array(capacity), (n) => new Int32Array(n));
  }
}

/** Doubles (times, byte offsets past 2^31, series values). */
export class GrowableFloats extends Growable<Float64Array> {
  constructor(capacity = 1024) {
    super(new Float64Array(capacity), (n) => new Float64Array(n));
  }
}
