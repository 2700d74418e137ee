import type { MirrorKey, MirrorMeta } from '../metadata/format.ts';
import { TagTable, type TagEntry } from './tag-table.ts';

/** Which table (the mirror of `lun` with `peer`, on this controller's side `role` of it), and a mirror's persisted state. */
export type { MirrorKey, MirrorMeta };

/**
 * What the tables write through to, when the controller has a metadata device (the metadata
 * store's mutations: applied to its image at once, durable at its next commit). Without one the
 * tables live in memory only.
 */
export interface TableJournal {
  /** False: the store is full (it marked the mirror overflowed itself). */
  addEntry(key: MirrorKey, e: TagEntry): boolean | void;
  dropEntries(key: MirrorKey, tags: Iterable<number>): void;
  setMirror(key: MirrorKey, meta: MirrorMeta): void;
}

/** Counters of one controller's tables, over every mirror and role (its `status()` shows them). */
export function newTableCounters() {
  return { entriesAdded: 0, entriesDeleted: 0, overflows: 0, tokensSent: 0, tokensReceived: 0, tokensTaken: 0, flushes: 0, commits: 0 };
}
export type TableCounters = ReturnType<typeof newTableCounters>;

/**
 * The tag table of one mirror on one side (docs/tag-tables.md, "Tag tables"), and whether it can be
 * trusted to name every block of the mirror that may differ: `trusted` is false once entries may
 * have been lost since the table was last known complete (a restart without recovered metadata,
 * or an overflow). Every change goes through here so that it reaches the metadata store as well;
 * whoever compares tables (the resync) reads `table` and deletes through {@link drop}.
 */
export class MirrorTables {
  readonly table: TagTable;
  private lost = false;

  constructor(
    readonly key: MirrorKey,
    entriesMax: number,
    private readonly journal: TableJournal | null,
    private readonly counters: TableCounters,
    /** The mirror's state as last persisted (overflow is persisted with it). */
    private readonly meta: () => Omit<MirrorMeta, 'overflowed'>,
  ) {
    this.table = new TagTable(entriesMax);
  }

  /** Never lost since it was last known complete: no restart without metadata, no overflow. */
  get trusted(): boolean {
    return !this.lost && !this.table.overflowed;
  }

  /**
   * Enter a write. False if it did not fit: the table is overflowed from then on (persisted), and
   * the next resync of the mirror copies everything. A tag already held for other sectors would
   * be silently replaced; it can only come from a host that named two writes alike, and then the
   * table no longer names every block either, so it is treated as an overflow.
   */
  add(e: TagEntry): boolean {
    const held = this.table.get(e.tag);
    if (held !== undefined && (held.lun !== e.lun || held.lba !== e.lba || held.count !== e.count)) {
      this.overflowNow();
      return false;
    }
    const wasOverflowed = this.table.overflowed;
    if (!this.table.add(e)) {
      if (!wasOverflowed) this.overflowNow();
      return false;
    }
    if (held === undefined) {
      this.counters.entriesAdded++;
      if (this.journal?.addEntry(this.key, e) === false) {
        // The metadata store is full: what it holds no longer names every write (it persisted the overflow).
        this.table.markOverflowed();
        this.counters.overflows++;
      }
    }
    return true;
  }

  /** Delete the entries of `tags` (those not held are ignored); how many went. */
  drop(tags: Iterable<number>): number {
    const gone: number[] = [];
    for (const tag of tags) if (this.table.delete(tag)) gone.push(tag);
    if (gone.length === 0) return 0;
    this.counters.entriesDeleted += gone.length;
    this.journal?.dropEntries(this.key, gone);
    return gone.length;
  }

  /** Entries may have been lost (we restarted and recovered no metadata): the next resync copies everything. */
  markLost(): void {
    this.lost = true;
  }

  /** Both copies are known equal (a full resync finished): the table starts afresh, trusted again. */
  restart(): void {
    const tags = [...this.table.entries()].map((e) => e.tag);
    this.table.clear();
    this.lost = false;
    if (tags.length > 0) this.journal?.dropEntries(this.key, tags);
    this.persistMeta();
  }

  /** Persist the mirror's state (with the overflow flag) to the metadata store, if there is one. */
  persistMeta(): void {
    this.journal?.setMirror(this.key, { ...this.meta(), overflowed: this.table.overflowed });
  }

  /**
   * A resync of the mirror finished (docs/tag-tables.md, "Resync"): the entries of `tags` are
   * settled (their blocks are equal on both sides now), and an overflow that came before the
   * resync began (`overflowsBefore`, the table's {@link TagTable.overflows} then) is forgotten. A
   * full resync also ends a loss: every block was copied after it. Entries not named stay: they
   * are writes the resync did not settle (still on their way through the mirror, or newer).
   */
  resynced(opts: { tags: Iterable<number>; overflowsBefore: number; full: boolean }): void {
    this.drop(opts.tags);
    const trusted = this.trusted;
    this.table.forgetOverflowBefore(opts.overflowsBefore);
    if (opts.full) this.lost = false;
    if (this.trusted !== trusted) this.persistMeta();
  }

  /** The table is not kept (a peer without tokens): empty, and never trusted. */
  forget(): void {
    this.restart();
    this.lost = true;
  }

  /** Recovered entries and overflow flag (at start, from the metadata store): not journalled again. */
  recover(entries: Iterable<TagEntry>, overflowed: boolean): void {
    for (const e of entries) this.table.add(e);
    if (overflowed) this.table.markOverflowed();
  }

  private overflowNow(): void {
    this.table.markOverflowed();
    this.counters.overflows++;
    this.persistMeta();
  }
}

/** Key of a mirror's tables in a map: `peer|lun|role`. */
export function mirrorKeyString(k: MirrorKey): string {
  return `${k.peer}|${k.lun}|${k.role}`;
}

/** Whether a table names every block of its mirror that may differ: held, and trusted. */
export function trustworthy(t: MirrorTables | undefined): t is MirrorTables {
  return t !== undefined && t.trusted;
}
