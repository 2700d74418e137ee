import type { MirrorRole } from '../tags/tag-table.ts';
import { MirrorTables, mirrorKeyString, newTableCounters, type MirrorKey, type MirrorMeta, type TableCounters, type TableJournal } from '../tags/mirror-tables.ts';
import type { SourceTokensDeps } from '../tags/source-tokens.ts';
import type { TargetTokensDeps } from '../tags/target-tokens.ts';
import type { LunConfig } from './config.ts';

/** A table's entry in a controller's status: its mirror, size and whether it can be trusted. */
export interface TableStatus {
  lun: number;
  role: MirrorRole;
  entries: number;
  trusted: boolean;
  overflowed: boolean;
}

/**
 * Every tag table of one controller (docs/tag-tables.md, "Tag tables"): per peer, a source-role
 * table for each LUN this controller mirrors to it and a target-role table for each LUN the peer
 * may mirror here, each bounded by `tagEntriesMax`, with counters per peer. Changes go through to
 * the metadata store (`journal`) when the controller has one.
 */
export class ControllerTables {
  private readonly byKey = new Map<string, MirrorTables>();
  private readonly counters = new Map<string, TableCounters>();

  constructor(
    private readonly entriesMax: number,
    private readonly journal: TableJournal | null,
    /** The persisted state of a mirror (its resync state on the source; in sync on the target). */
    private readonly meta: (key: MirrorKey) => Omit<MirrorMeta, 'overflowed'>,
  ) {}

  /** Make the tables for `peer`: source role for the LUNs mirrored to it, target role for the others. */
  addPeer(peer: string, luns: readonly LunConfig[]): void {
    const counters = newTableCounters();
    this.counters.set(peer, counters);
    for (const l of luns) {
      const key: MirrorKey = { peer, lun: l.lun, role: l.mirror?.peer === peer ? 'source' : 'target' };
      this.byKey.set(mirrorKeyString(key), new MirrorTables(key, this.entriesMax, this.journal, counters, () => this.meta(key)));
    }
  }

  get(peer: string, lun: number, role: MirrorRole): MirrorTables | undefined {
    return this.byKey.get(mirrorKeyString({ peer, lun, role }));
  }

  countersOf(peer: string): TableCounters {
    return this.counters.get(peer)!;
  }

  /** The tables of `peer`, in LUN order. */
  ofPeer(peer: string): MirrorTables[] {
    return [...this.byKey.values()].filter((t) => t.key.peer === peer).sort((a, b) => a.key.lun - b.key.lun);
  }

  all(): IterableIterator<MirrorTables> {
    return this.byKey.values();
  }

  statusOf(peer: string): TableStatus[] {
    return this.ofPeer(peer).map((t) => ({ lun: t.key.lun, role: t.key.role, entries: t.table.size, trusted: t.trusted, overflowed: t.table.overflowed }));
  }

  /** What a source channel to `peer` needs for tokens. */
  sourceDeps(peer: string): SourceTokensDeps {
    return { table: (lun) => this.get(peer, lun, 'source'), counters: this.countersOf(peer), waitingMax: this.entriesMax };
  }

  /** What the target side for `peer` needs for tokens. */
  targetDeps(peer: string, makeDurable: TargetTokensDeps['makeDurable']): TargetTokensDeps {
    return { table: (lun) => this.get(peer, lun, 'target'), counters: this.countersOf(peer), waitingMax: this.entriesMax, makeDurable };
  }
}
