import { TableState, type ResyncDataFrame } from '../protocol/frame.ts';
import type { TagEntry } from '../tags/tag-table.ts';

/** What fetching the target's table came to. */
export type FetchOutcome =
  /** The whole table, trusted by the target. */
  | { kind: 'table'; entries: TagEntry[] }
  /** The target's table cannot name what differs (overflowed, lost, none kept): a full copy. */
  | { kind: 'untrusted' }
  /** The target said something no honest table says (a lie about its size, a duplicate tag, a block past the volume): a full copy. */
  | { kind: 'refused'; reason: string };

export interface TableFetchConfig {
  lun: number;
  /** Sectors of the LUN: an entry past them names no block of it. */
  sectorCount: number;
  /** Most entries a target's table may hold for this side to take it (`resyncEntriesMax`). */
  entriesMax: number;
}

/**
 * The source's side of reading the target's table of one mirror in one exchange
 * (docs/tag-tables.md, "Resync"): the chunks must arrive in order, each carrying the entries from
 * where the last one ended, all of one table (the same `total`), each entry a block of the LUN,
 * no tag twice. A chunk that repeats one already taken (a retransmission, a duplicate) is
 * ignored; anything else that breaks those rules ends the fetch with `refused`, and the resync
 * falls back to a full copy, which is right whatever the target's table holds.
 *
 * Memory: the table taken so far, at most `entriesMax` entries (a larger `total` is refused at the
 * first chunk, before anything is kept).
 */
export class TableFetch {
  private cursor = 0;
  private total = -1;
  private readonly entries: TagEntry[] = [];
  private readonly tags = new Set<number>();

  constructor(private readonly cfg: TableFetchConfig) {}

  /** The entry the next request asks for first. */
  get next(): number {
    return this.cursor;
  }

  /** Takes a chunk of this exchange: `more` (ask from {@link next}), `ignored` (a repeat), or how the fetch ended. */
  take(f: ResyncDataFrame): FetchOutcome | 'more' | 'ignored' {
    if (f.state === TableState.Untrusted) return { kind: 'untrusted' };
    if (this.total < 0) {
      if (f.total > this.cfg.entriesMax) {
        return { kind: 'refused', reason: `the target's table holds ${f.total} entries, more than resyncEntriesMax (${this.cfg.entriesMax})` };
      }
      this.total = f.total;
    } else if (f.total !== this.total) {
      return { kind: 'refused', reason: `the target said its table holds ${this.total} entries, then ${f.total}` };
    }
    if (f.first !== this.cursor) return 'ignored';
    if (f.entries.length === 0 && this.cursor < this.total) {
      return { kind: 'refused', reason: `the target sent no entries from ${this.cursor} of the ${this.total} it counts` };
    }
    for (const e of f.entries) {
      const bad = this.problem(e);
      if (bad !== null) return { kind: 'refused', reason: bad };
      this.tags.add(e.tag);
      this.entries.push({ tag: e.tag, lun: this.cfg.lun, lba: e.lba, count: e.count });
    }
    this.cursor += f.entries.length;
    return this.cursor < this.total ? 'more' : { kind: 'table', entries: this.entries };
  }

  private problem(e: { tag: number; lba: number; count: number }): string | null {
    if (this.tags.has(e.tag)) return `the target's table names tag ${e.tag} twice`;
    if (e.lba + e.count > this.cfg.sectorCount) {
      return `the target's entry for tag ${e.tag} names sectors [${e.lba}, +${e.count}), past the LUN's ${this.cfg.sectorCount}`;
    }
    return null;
  }
}
