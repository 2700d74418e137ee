/**
 * The writes a host issued to one LUN, in issue order, as telemetry reported them, with for every
 * sector the (ascending) indices of the writes that covered it. This is what "the source after
 * some prefix of its writes" means, sector by sector.
 */
export class WriteHistory {
  readonly tags: number[] = [];
  readonly lbas: number[] = [];
  readonly counts: number[] = [];
  private readonly indexOfTag = new Map<number, number>();
  private readonly coverers = new Map<number, number[]>();
  /** Writes the host saw fail: their sectors may hold either version. */
  readonly failed = new Set<number>();
  /** Written sectors, ascending, as of the last {@link writtenSectors} call... */
  private sorted: number[] = [];
  /** ...and those first written since, in arrival order. */
  private fresh: number[] = [];

  get length(): number {
    return this.tags.length;
  }

  add(tag: number, lba: number, count: number): void {
    const index = this.tags.length;
    this.tags.push(tag);
    this.lbas.push(lba);
    this.counts.push(count);
    this.indexOfTag.set(tag, index);
    for (let s = lba; s < lba + count; s++) {
      const list = this.coverers.get(s);
      if (list) list.push(index);
      else {
        this.coverers.set(s, [index]);
        this.fresh.push(s);
      }
    }
  }

  indexOf(tag: number): number | undefined {
    return this.indexOfTag.get(tag);
  }

  /**
   * Sectors some write covered, ascending (do not modify the array). Kept between calls: only the
   * sectors first written since the last call are sorted, then merged in, so checkpoints taken
   * through a long run cost O(sectors) each, not a sort of the whole history.
   */
  writtenSectors(): readonly number[] {
    if (this.fresh.length === 0) return this.sorted;
    const fresh = Float64Array.from(this.fresh).sort();
    this.fresh = [];
    const old = this.sorted;
    const merged: number[] = new Array<number>(old.length + fresh.length);
    let i = 0;
    let j = 0;
    for (let k = 0; k < merged.length; k++) merged[k] = j >= fresh.length || (i < old.length && old[i]! < fresh[j]!) ? old[i++]! : fresh[j++]!;
    this.sorted = merged;
    return merged;
  }

  /** Indices of the writes that covered sector `lba`, ascending. */
  coverersOf(lba: number): readonly number[] {
    return this.coverers.get(lba) ?? [];
  }

  /** Was this sector touched by a write the host saw fail? */
  touchedByFailure(lba: number): boolean {
    if (this.failed.size === 0) return false;
    for (const i of this.coverersOf(lba)) if (this.failed.has(this.tags[i]!)) return true;
    return false;
  }
}
