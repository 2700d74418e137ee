import type { SectorRange } from '../../firmware/telemetry/events.ts';

/**
 * A set of sectors as sorted, disjoint, non-adjacent runs `[lba, count]`: what a resync names,
 * copies or still owes (docs/tag-tables.md, "What the checker checks"). Memory grows with the runs,
 * not the sectors.
 */
export class SectorSet {
  private starts: number[] = [];
  private ends: number[] = [];

  /** The runs of `ranges` (any order, overlapping or not), merged. */
  static of(ranges: readonly SectorRange[]): SectorSet {
    const set = new SectorSet();
    const sorted = ranges.filter((r) => r[1] > 0).map((r) => [r[0], r[0] + r[1]] as const).sort((a, b) => a[0] - b[0]);
    for (const [s, e] of sorted) {
      const n = set.ends.length;
      if (n > 0 && s <= set.ends[n - 1]!) set.ends[n - 1] = Math.max(set.ends[n - 1]!, e);
      else {
        set.starts.push(s);
        set.ends.push(e);
      }
    }
    return set;
  }

  get runs(): number {
    return this.starts.length;
  }

  /** Sectors in the set. */
  get size(): number {
    let n = 0;
    for (let i = 0; i < this.starts.length; i++) n += this.ends[i]! - this.starts[i]!;
    return n;
  }

  /** The first sector of `[lba, lba + count)` not in the set, or -1 when all are. */
  firstMissing(lba: number, count: number): number {
    let at = lba;
    const end = lba + count;
    for (let i = this.runAtOrAfter(at); i < this.starts.length && at < end; i++) {
      if (this.starts[i]! > at) return at;
      at = Math.max(at, this.ends[i]!);
    }
    return at < end ? at : -1;
  }

  /** The first sector of the set that `other` lacks, or -1. */
  firstNotIn(other: SectorSet): number {
    for (let i = 0; i < this.starts.length; i++) {
      const missing = other.firstMissing(this.starts[i]!, this.ends[i]! - this.starts[i]!);
      if (missing >= 0) return missing;
    }
    return -1;
  }

  /** Removes `[lba, lba + count)`. */
  delete(lba: number, count: number): void {
    const end = lba + count;
    let i = this.runAtOrAfter(lba);
    while (i < this.starts.length && this.starts[i]! < end) {
      const [s, e] = [this.starts[i]!, this.ends[i]!];
      if (s < lba && e > end) {
        this.starts.splice(i + 1, 0, end);
        this.ends.splice(i, 0, lba);
        return;
      }
      if (s < lba) {
        this.ends[i] = lba;
        i++;
      } else if (e > end) {
        this.starts[i] = end;
        return;
      } else {
        this.starts.splice(i, 1);
        this.ends.splice(i, 1);
      }
    }
  }

  /** The runs, ascending. */
  ranges(): SectorRange[] {
    return this.starts.map((s, i) => [s, this.ends[i]! - s] as const);
  }

  /** The index of the first run ending after `lba`. */
  private runAtOrAfter(lba: number): number {
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ends[mid]! <= lba) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
