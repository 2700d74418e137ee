/**
 * The order of a LUN's host writes on the source (docs/link-supervision.md, "Resynchronisation",
 * and docs/design.md 1.1). Two rules, one mechanism:
 *
 * - **Overlapping host writes never overlap on the disk.** A host may issue a write while an
 *   earlier one to the same sectors is still in flight. The mirror stream carries them in issue
 *   order, so the source's own disk must finish them in that order too: a disk that completes
 *   concurrent writes in its own order (as drives with command queues do) would otherwise leave
 *   the source holding the earlier data and the target the later. So a write that overlaps one
 *   still in flight waits until it has finished, and only then goes to the disk and the stream.
 * - **A resync's copy is never older than a host write that reaches the target before it.** A
 *   copy must read its range only after every host write to it already issued has reached the
 *   disk, and must go into the stream before any host write issued after the read. So while a
 *   range is fenced, new host writes to it wait here, and the fence's owner is told once no host
 *   write to the range is on the disk.
 *
 * Writes leave in the order they came: once one waits, every later one waits behind it (the
 * stream must carry a LUN's writes in the order the host issued them, which is what an async
 * mirror's copy must be a prefix of). Cost on the hot path: a scan of the writes in flight on the
 * LUN (the host's queue depth at most).
 */
export class WriteFence {
  private readonly inflight: Span[] = [];
  private readonly fences: { lba: number; end: number; quiet: (() => void) | null }[] = [];
  private readonly held: { lba: number; end: number; run: () => void }[] = [];

  /** A fence is up, or host writes wait. */
  get active(): boolean {
    return this.fences.length > 0 || this.held.length > 0;
  }

  /** Whether a host write to [lba, lba + count) must wait (then {@link hold} it) or may start now. */
  blocks(lba: number, count: number): boolean {
    return this.mustWait(lba, lba + count);
  }

  /** Hold a host write that must wait: `run` starts it (and calls {@link started}) once nothing is in its way. */
  hold(lba: number, count: number, run: () => void): void {
    this.held.push({ lba, end: lba + count, run });
  }

  /** A host write's local disk write is being issued now. Returns its token for {@link finished}. */
  started(lba: number, count: number): Span {
    const span = { lba, end: lba + count };
    this.inflight.push(span);
    return span;
  }

  /** The local disk write with this token finished: whatever waited for it may go. */
  finished(span: Span): void {
    this.inflight.splice(this.inflight.indexOf(span), 1);
    if (this.fences.length > 0) this.wakeQuiet();
    if (this.held.length > 0) this.release();
  }

  /**
   * The host writes on the disk now, as [lba, end) spans (a copy): a resync that flushes the disk
   * sets aside what was still on its way, which the flush does not cover (docs/tag-tables.md, "Resync").
   */
  inflightSpans(): { lba: number; end: number }[] {
    return this.inflight.map((s) => ({ lba: s.lba, end: s.end }));
  }

  /** Fence [lba, lba + count): `quiet` runs once no host write to it is on the disk. */
  close(lba: number, count: number, quiet: () => void): void {
    this.fences.push({ lba, end: lba + count, quiet });
    this.wakeQuiet();
  }

  /** Lift the fence on [lba, lba + count); host writes it held go on, in order. */
  open(lba: number, count: number): void {
    const i = this.fences.findIndex((f) => f.lba === lba && f.end === lba + count);
    if (i >= 0) this.fences.splice(i, 1);
    this.release();
  }

  /** Start held writes from the front, in order, until one must still wait. */
  private release(): void {
    while (this.held.length > 0) {
      const h = this.held[0]!;
      if (this.overlapsWork(h.lba, h.end)) return;
      this.held.shift();
      h.run();
    }
  }

  private overlapsWork(lba: number, end: number): boolean {
    for (const s of this.inflight) if (s.lba < end && lba < s.end) return true;
    for (const f of this.fences) if (f.lba < end && lba < f.end) return true;
    return false;
  }

  /**
   * Behind any held write (writes leave here in the order they came: the stream, the source's disk
   * and the history all see one order), or overlapping a write in flight or a fence.
   */
  private mustWait(lba: number, end: number): boolean {
    if (this.held.length > 0) return true;
    for (const s of this.inflight) if (s.lba < end && lba < s.end) return true;
    for (const f of this.fences) if (f.lba < end && lba < f.end) return true;
    return false;
  }

  private wakeQuiet(): void {
    for (const f of this.fences) {
      if (f.quiet === null) continue;
      if (this.inflight.some((s) => s.lba < f.end && f.lba < s.end)) continue;
      const run = f.quiet;
      f.quiet = null;
      run();
    }
  }
}

interface Span {
  lba: number;
  end: number;
}
