/**
 * Keeps host writes out of a range of one LUN while a resynchronisation copies it
 * (docs/link-supervision.md, "Resynchronisation"). A copy must read the range only after every
 * host write to it already issued has reached the local disk, and must go into the mirror stream
 * before any host write issued after the read: otherwise the target could end with the copy's
 * older data on top of a newer write. So while a range is fenced, new host writes to it wait here
 * (in order), and the fence tells its owner once no host write to the range is on the disk.
 *
 * Cost when no resync runs: one counter up and down per host write. Writes are tracked by range
 * only while a fence exists; the first fence waits until every untracked write has finished.
 */
export class WriteFence {
  private untracked = 0;
  private tracking = false;
  private readonly tracked: { lba: number; end: number }[] = [];
  private readonly fences: { lba: number; end: number; quiet: (() => void) | null }[] = [];
  private readonly held: { lba: number; end: number; run: () => void }[] = [];

  /** Fences up, or host writes waiting behind them. */
  get active(): boolean {
    return this.fences.length > 0 || this.held.length > 0;
  }

  /**
   * A host write to [lba, lba + count) wants to start: `run` it now (true) or once the fences over
   * its range are gone (false). Writes that overlap a held one wait behind it, keeping their order.
   */
  admit(lba: number, count: number, run: () => void): boolean {
    const end = lba + count;
    if (this.fences.length === 0 && this.held.length === 0) return true;
    if (!this.mustWait(lba, end)) return true;
    this.held.push({ lba, end, run });
    return false;
  }

  /** A host write's local disk write was issued (call right after `admit` let it through). Returns its token. */
  started(lba: number, count: number): { lba: number; end: number } | null {
    if (!this.tracking) {
      this.untracked++;
      return null;
    }
    const span = { lba, end: lba + count };
    this.tracked.push(span);
    return span;
  }

  /** The local disk write with this token finished. */
  finished(span: { lba: number; end: number } | null): void {
    if (span === null) this.untracked--;
    else this.tracked.splice(this.tracked.indexOf(span), 1);
    if (this.fences.length > 0) this.wakeQuiet();
  }

  /** Fence [lba, lba + count): `quiet` runs once no host write to it is on the disk. */
  close(lba: number, count: number, quiet: () => void): void {
    this.tracking = true;
    this.fences.push({ lba, end: lba + count, quiet });
    this.wakeQuiet();
  }

  /** Lift the fence on [lba, lba + count); host writes it held go on, in order. */
  open(lba: number, count: number): void {
    const i = this.fences.findIndex((f) => f.lba === lba && f.end === lba + count);
    if (i >= 0) this.fences.splice(i, 1);
    if (this.fences.length === 0 && this.untracked === 0 && this.tracked.length === 0) this.tracking = false;
    const waiting = this.held.splice(0);
    for (const h of waiting) {
      if (this.mustWait(h.lba, h.end)) this.held.push(h);
      else h.run();
    }
  }

  /** Under a fence, or behind a held write it overlaps (overlapping writes keep their order). */
  private mustWait(lba: number, end: number): boolean {
    for (const f of this.fences) if (f.lba < end && lba < f.end) return true;
    for (const h of this.held) if (h.lba < end && lba < h.end) return true;
    return false;
  }

  private wakeQuiet(): void {
    if (this.untracked > 0) return;
    for (const f of this.fences) {
      if (f.quiet === null) continue;
      if (this.tracked.some((s) => s.lba < f.end && f.lba < s.end)) continue;
      const run = f.quiet;
      f.quiet = null;
      run();
    }
  }
}
