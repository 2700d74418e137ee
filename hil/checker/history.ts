import { assert } from '../../firmware/errors.ts';

/** Sectors per page of the per-sector tables: 4096 x 8 bytes = 32 KiB a page, allocated on first write. */
const PAGE_SECTORS = 4096;
/**
 * Writes a history keeps unsettled at once (docs/simulator.md 6). A correct firmware never has
 * more in flight than its logs hold (tens of thousands); a broken one that never applies a write
 * would otherwise hold every later write's coverers for ever. Past it the oldest is taken as
 * settled: the checks stay sound (they only lose precision about that write's sectors).
 */
export const UNSETTLED_WRITES_MAX = 1 << 20;

/** A write issued and not yet settled (see {@link WriteHistory}). */
interface Unsettled {
  lba: number;
  count: number;
  completed: boolean;
  applied: boolean;
  /** False between an async write's `local.applied` (on the disk, not flushed) and its `local.durable`. */
  durable: boolean;
}

/** Where `tag` stands among a sector's writes. */
export type Coverage = 'covered' | 'never' | 'unknown';

/**
 * The writes a host issued to one LUN, as telemetry reported them, kept in memory proportional
 * to the sectors written plus the writes still in flight, not to every write ever issued
 * (docs/simulator.md 6). Tags increase in issue order (the host workload and the controller both
 * number writes that way), so a tag doubles as the write's position in the history: "the source
 * after some prefix of its writes" is "every write with a tag up to P".
 *
 * Per sector it keeps the first and the last write that covered it, and the writes in between
 * that may still matter: a write matters while it, or a write older than it, is *unsettled*
 * (issued, and not yet both completed at the host and applied at the target). Once every write
 * up to some tag has settled, a copy can no longer legitimately hold an older version of those
 * sectors than the last settled one, so older coverers are dropped. The per-sector tables are
 * pages of typed arrays; the sectors with more than one coverer kept, and the unsettled writes,
 * are small maps.
 */
export class WriteHistory {
  private readonly lastTags = new Map<number, Float64Array>();
  private readonly firstTags = new Map<number, Float64Array>();
  /** Sectors whose kept coverers are more than the last one (ascending tags, the last included). */
  private readonly kept = new Map<number, number[]>();
  /** Unsettled writes by tag, in issue (ascending) order. */
  private readonly unsettled = new Map<number, Unsettled>();
  /** Sectors a write the host saw fail touched: they may hold either version. */
  private readonly failedSectors = new Set<number>();
  /** Writes in flight when their controller crashed: they never completed, and may or may not have landed. */
  private readonly interruptedTags = new Set<number>();
  /**
   * Per sector an interrupted write covered: its coverers when the crash struck (ascending), kept
   * whatever settles later, so that the write's predecessor there stays known (see {@link crashed}).
   */
  private readonly crashCoverers = new Map<number, number[]>();
  private crashCount = 0;
  private acksAfterApply = 0;
  private newest = 0;
  private writes = 0;
  private sectorsWritten = 0;
  private forgotten = 0;
  private sorted: number[] = [];
  private sortedFor = -1;

  /** Writes added. */
  get length(): number {
    return this.writes;
  }

  /** Writes taken as settled early because {@link UNSETTLED_WRITES_MAX} was reached. */
  get forcedSettled(): number {
    return this.forgotten;
  }

  /** Writes issued and not yet settled. */
  get unsettledWrites(): number {
    return this.unsettled.size;
  }

  /** Sectors holding more than one remembered coverer (what in-flight overlap costs). */
  get sectorsWithHistory(): number {
    return this.kept.size;
  }

  /** Distinct sectors written. */
  get sectorCount(): number {
    return this.sectorsWritten;
  }

  /** Writes a crash interrupted (never completed at the host). */
  get interruptedWrites(): number {
    return this.interruptedTags.size;
  }

  /** Crashes or power cuts of either controller of this mirror seen so far ({@link crashed}, {@link peerCrashed}). */
  get crashes(): number {
    return this.crashCount;
  }

  /**
   * Whether a write missing at the end breaks `acked-durable` rather than `data-intact`
   * (docs/tag-tables.md, "What the checker checks"): a crash or power cut struck this mirror, and
   * its host was acknowledged in sync or speculative mode (only after the target applied).
   */
  get durabilityOwed(): boolean {
    return this.crashCount > 0 && this.acksAfterApply > 0;
  }

  add(tag: number, lba: number, count: number): void {
    assert(Number.isSafeInteger(tag) && tag > this.newest, `write history: tags must increase in issue order (got ${tag} after ${this.newest})`);
    this.newest = tag;
    this.writes++;
    this.unsettled.set(tag, { lba, count, completed: false, applied: false, durable: true });
    const oldest = this.oldestUnsettled();
    for (let s = lba; s < lba + count; s++) {
      const last = this.page(this.lastTags, s, true)!;
      const i = s % PAGE_SECTORS;
      const prev = last[i]!;
      last[i] = tag;
      if (prev === 0) {
        this.page(this.firstTags, s, true)![i] = tag;
        this.sectorsWritten++;
        continue;
      }
      const list = this.kept.get(s) ?? [prev];
      list.push(tag);
      this.trim(s, list, oldest);
    }
    if (this.unsettled.size > UNSETTLED_WRITES_MAX) {
      this.forgotten++;
      this.settle(this.unsettled.keys().next().value!, true);
    }
  }

  /** The host saw write `tag` complete (acknowledged or failed); `applied`: its completion implies the target applied it. */
  completed(tag: number, o: { applied: boolean }): void {
    const w = this.unsettled.get(tag);
    if (!w) return;
    w.completed = true;
    if (o.applied) {
      w.applied = true;
      this.acksAfterApply++;
    }
    if (w.applied) this.settle(tag, false);
  }

  /** The target applied write `tag`. Returns whether the history knew it as in flight. */
  applied(tag: number): boolean {
    const w = this.unsettled.get(tag);
    if (!w) return false;
    w.applied = true;
    if (w.completed) this.settle(tag, false);
    return true;
  }

  /** Whether write `tag` is in flight and the target has applied it (null: not in flight here). */
  appliedInFlight(tag: number): boolean | null {
    return this.unsettled.get(tag)?.applied ?? null;
  }

  /** The host saw write `tag` fail; its sectors (given, or known while it is in flight) may hold either version. */
  markFailed(tag: number, lba?: number, count?: number): void {
    const w = this.unsettled.get(tag);
    const from = lba ?? w?.lba;
    const n = count ?? w?.count ?? 0;
    if (from !== undefined) for (let s = from; s < from + n; s++) this.failedSectors.add(s);
    if (w) {
      w.completed = w.applied = true;
      this.settle(tag, false);
    }
  }

  /**
   * The controller this host writes through crashed (docs/tag-tables.md, "What the checker
   * checks"): every write issued and not completed will never complete, and each may or may not
   * have landed on either copy, so at the end a sector may hold the last write to it or, while
   * that write is interrupted, any older one back to the newest write that was not interrupted
   * ("either old or new"). Each interrupted write's sectors keep their coverers as they are now
   * (the predecessor of every interrupted write among them), beyond later trimming; then every
   * write in flight settles, interrupted or (async) acknowledged and not yet applied, since its
   * apply may never come in its stream: settling only loses precision, never soundness
   * (docs/simulator.md 6). Returns the writes interrupted.
   */
  crashed(power = false): number {
    this.crashCount++;
    let n = 0;
    for (const [tag, w] of [...this.unsettled]) {
      // A power cut also takes what was on the disk but not yet flushed: such a write may be there or not.
      if (!w.completed || (power && !w.durable)) {
        n++;
        this.interruptedTags.add(tag);
        for (let s = w.lba; s < w.lba + w.count; s++) {
          const merged = new Set([...(this.crashCoverers.get(s) ?? []), ...this.coverersOf(s)]);
          this.crashCoverers.set(s, [...merged].sort((a, b) => a - b));
        }
      }
      this.settle(tag, true);
    }
    return n;
  }

  /**
   * Write `tag` is on the local disk, flushed (`durable`) or not: until {@link localDurable}, a
   * power cut may take it, so its older coverers stay known (docs/tag-tables.md, "What the checker
   * checks").
   */
  localApplied(tag: number, durable: boolean): void {
    const w = this.unsettled.get(tag);
    if (w !== undefined && !durable) w.durable = false;
  }

  /** Write `tag`, on the local disk before, is flushed. */
  localDurable(tag: number): void {
    const w = this.unsettled.get(tag);
    if (w === undefined) return;
    w.durable = true;
    this.settle(tag, false);
  }

  /** The controller holding this mirror's copy crashed: nothing of this host's is interrupted, but durability is owed from now on. */
  peerCrashed(): void {
    this.crashCount++;
  }

  /** Whether write `tag` was in flight when its controller crashed. */
  isInterrupted(tag: number): boolean {
    return this.interruptedTags.size > 0 && this.interruptedTags.has(tag);
  }

  /**
   * The first write after `tag` to sector `lba` that was not interrupted (Infinity: none): the
   * sector may hold `tag` only in prefixes before it, and at the end only if there is none. With
   * `tag` 0, the first such write of all. Coverers forgotten here were never interrupted and
   * come before the newest remembered one, so the answer is never earlier than the truth: a
   * window it bounds is never narrower (docs/simulator.md 6).
   */
  nextSolidCoverer(lba: number, tag: number): number {
    const first = this.firstTag(lba);
    if (first === 0) return Infinity;
    const coverers = this.coverersOf(lba);
    if (tag === 0 && coverers[0] !== first) return first;
    for (const c of coverers) if (c > tag && !this.isInterrupted(c)) return c;
    return Infinity;
  }

  /** Was this sector touched by a write the host saw fail? */
  touchedByFailure(lba: number): boolean {
    return this.failedSectors.size > 0 && this.failedSectors.has(lba);
  }

  /** Whether any write covered sector `lba`. */
  written(lba: number): boolean {
    return this.lastTag(lba) !== 0;
  }

  /** The last write to sector `lba` (0: none). */
  lastTag(lba: number): number {
    return this.page(this.lastTags, lba, false)?.[lba % PAGE_SECTORS] ?? 0;
  }

  /** The first write to sector `lba` (0: none). */
  firstTag(lba: number): number {
    return this.page(this.firstTags, lba, false)?.[lba % PAGE_SECTORS] ?? 0;
  }

  /**
   * The writes to sector `lba` still remembered, ascending: the last always, and every one that
   * may still matter (see the class doc). Empty if none covered it.
   */
  coverersOf(lba: number): readonly number[] {
    const list = this.kept.get(lba);
    const last = this.lastTag(lba);
    const own = list ?? (last === 0 ? [] : [last]);
    const crashed = this.crashCoverers.size > 0 ? this.crashCoverers.get(lba) : undefined;
    if (crashed === undefined) return own;
    return [...new Set([...crashed, ...own])].sort((a, b) => a - b);
  }

  /** Did write `tag` cover sector `lba`? `unknown` when it is older than what is remembered there. */
  coverage(lba: number, tag: number): Coverage {
    const coverers = this.coverersOf(lba);
    if (coverers.length === 0 || tag < this.firstTag(lba) || tag > coverers[coverers.length - 1]!) return 'never';
    if (tag === this.firstTag(lba) || coverers.includes(tag)) return 'covered';
    return tag < coverers[0]! ? 'unknown' : 'never';
  }

  /**
   * Sectors some write covered, ascending (do not modify the array). Rebuilt from the pages only
   * when sectors were first written since the last call: O(sectors written) per call.
   */
  writtenSectors(): readonly number[] {
    if (this.sortedFor === this.sectorsWritten) return this.sorted;
    const out: number[] = [];
    for (const p of [...this.lastTags.keys()].sort((a, b) => a - b)) {
      const page = this.lastTags.get(p)!;
      for (let i = 0; i < PAGE_SECTORS; i++) if (page[i] !== 0) out.push(p * PAGE_SECTORS + i);
    }
    this.sorted = out;
    this.sortedFor = this.sectorsWritten;
    return out;
  }

  private oldestUnsettled(): number {
    const first = this.unsettled.keys().next();
    return first.done === true ? Infinity : first.value;
  }

  /**
   * Write `tag` has settled. Writes settle in any order, but only a run of settled writes at the
   * oldest end lets coverers go: those writes leave the table, and their sectors are trimmed.
   */
  private settle(tag: number, force: boolean): void {
    const w = this.unsettled.get(tag);
    if (!w) return;
    if (force) w.completed = w.applied = w.durable = true;
    for (;;) {
      const first = this.unsettled.entries().next();
      if (first.done === true) break;
      const [oldestTag, oldest] = first.value;
      if (!(oldest.completed && oldest.applied && oldest.durable)) break;
      this.unsettled.delete(oldestTag);
      const bound = this.oldestUnsettled();
      for (let s = oldest.lba; s < oldest.lba + oldest.count; s++) {
        const list = this.kept.get(s);
        if (list) this.trim(s, list, bound);
      }
    }
  }

  /** Keeps of `list` (sector `s`'s coverers) the last one older than `oldest` and all from it on. */
  private trim(s: number, list: number[], oldest: number): void {
    let k = 0;
    while (k + 1 < list.length && list[k + 1]! < oldest) k++;
    if (k > 0) list.splice(0, k);
    if (list.length > 1) this.kept.set(s, list);
    else this.kept.delete(s);
  }

  private page(pages: Map<number, Float64Array>, lba: number, create: boolean): Float64Array | undefined {
    const key = Math.floor(lba / PAGE_SECTORS);
    let p = pages.get(key);
    if (!p && create) pages.set(key, (p = new Float64Array(PAGE_SECTORS)));
    return p;
  }
}
