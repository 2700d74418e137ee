import { assert } from '../errors.ts';
import type { SectorRange } from '../telemetry/events.ts';

/**
 * One mirrored write as a tag table holds it (docs/tag-tables.md, "Tag tables"): the source's tag
 * for the write and the sectors it covers on `lun`.
 */
export interface TagEntry {
  readonly tag: number;
  readonly lun: number;
  readonly lba: number;
  readonly count: number;
}

/** Which end of a mirror a table belongs to: the controller that mirrors the LUN, or the one that holds its copy. */
export type MirrorRole = 'source' | 'target';

/**
 * The tag table of one mirror on one side (docs/tag-tables.md, "Tag tables"): the writes this side
 * holds that the other side may not, by tag. Bounded by `entriesMax`: an entry that does not fit
 * is not kept, and the table is marked overflowed instead; an overflowed table no longer names
 * every block that may differ, so the next resync of its mirror copies everything (and `clear`
 * after it starts the table afresh).
 */
export class TagTable {
  private readonly byTag = new Map<number, TagEntry>();
  private overflow = false;
  private overflowCount = 0;

  constructor(readonly entriesMax: number) {
    assert(Number.isSafeInteger(entriesMax) && entriesMax >= 1, `tag table bound ${entriesMax}: allowed 1 or more entries`);
  }

  get size(): number {
    return this.byTag.size;
  }

  /** Some entry did not fit: the table does not name every write since it was last cleared. */
  get overflowed(): boolean {
    return this.overflow;
  }

  /**
   * How many times the table overflowed since it was made (an entry that did not fit, or a
   * {@link markOverflowed}): a resync reads it when it begins, to know at its end whether an
   * overflow came after that (docs/tag-tables.md, "Resync").
   */
  get overflows(): number {
    return this.overflowCount;
  }

  /** Records a write; false (and the table overflowed) when it is full. A tag already held is replaced. */
  add(e: TagEntry): boolean {
    if (!this.byTag.has(e.tag) && this.byTag.size >= this.entriesMax) {
      this.overflow = true;
      this.overflowCount++;
      return false;
    }
    this.byTag.set(e.tag, e);
    return true;
  }

  has(tag: number): boolean {
    return this.byTag.has(tag);
  }

  get(tag: number): TagEntry | undefined {
    return this.byTag.get(tag);
  }

  /** Deletes an entry; false when the table did not hold it. */
  delete(tag: number): boolean {
    return this.byTag.delete(tag);
  }

  /** Marks the table overflowed without an entry (e.g. recovered metadata said so). */
  markOverflowed(): void {
    this.overflow = true;
    this.overflowCount++;
  }

  /**
   * A full resync that began when {@link overflows} was `since` has finished: the writes whose
   * entries an overflow before then lost are on both sides now, so the table names every block
   * that may differ again, unless it overflowed once more since (then it stays overflowed). Its
   * entries stay: they name writes the resync did not settle.
   */
  forgetOverflowBefore(since: number): void {
    if (this.overflowCount === since) this.overflow = false;
  }

  /** Empties the table and forgets an overflow: both sides are known equal (a full resync finished). */
  clear(): void {
    this.byTag.clear();
    this.overflow = false;
  }

  entries(): IterableIterator<TagEntry> {
    return this.byTag.values();
  }
}

/** What comparing two sides' tables of one mirror found (docs/tag-tables.md, "Resync"). */
export interface TableComparison {
  /** Entries in both tables together. */
  compared: number;
  /** Tags both sides hold: each side deletes its entry, nothing is copied for them. */
  matched: number[];
  /** Entries only one side holds: their blocks may differ and are copied. */
  unmatched: TagEntry[];
}

/** Compares this side's entries with the other side's, by tag. */
export function compareTables(mine: Iterable<TagEntry>, theirs: Iterable<TagEntry>): TableComparison {
  const other = new Map<number, TagEntry>();
  let compared = 0;
  for (const e of theirs) {
    other.set(e.tag, e);
    compared++;
  }
  const matched: number[] = [];
  const unmatched: TagEntry[] = [];
  for (const e of mine) {
    compared++;
    if (other.delete(e.tag)) matched.push(e.tag);
    else unmatched.push(e);
  }
  for (const e of other.values()) unmatched.push(e);
  return { compared, matched, unmatched };
}

/** The sectors named by `entries`, as sorted, merged (non-overlapping, non-adjacent) ranges. */
export function mergeRanges(entries: Iterable<{ readonly lba: number; readonly count: number }>): SectorRange[] {
  const spans = [...entries].filter((e) => e.count > 0).map((e) => [e.lba, e.lba + e.count] as [number, number]);
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: [number, number][] = [];
  for (const [from, to] of spans) {
    const last = out[out.length - 1];
    if (last !== undefined && from <= last[0] + last[1]) last[1] = Math.max(last[1], to - last[0]);
    else out.push([from, to - from]);
  }
  return out;
}

/** Total sectors in `ranges`. */
export function rangeSectors(ranges: readonly SectorRange[]): number {
  let n = 0;
  for (const [, count] of ranges) n += count;
  return n;
}
