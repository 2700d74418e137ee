import type { MirrorRole, TagTable } from './tag-table.ts';

/**
 * One side's tag table of one mirror, as the resync reads it (docs/tag-tables.md, "Resync"):
 * `trusted` is false when the table cannot name every block that may differ (it was lost in a
 * restart without metadata); an overflowed table is not trusted either, whatever this says.
 */
export interface MirrorTable {
  readonly table: TagTable;
  readonly trusted: boolean;
}

/**
 * Where a controller keeps its tag tables: per mirror (the peer at its other end, its LUN) and per
 * role (this controller the mirror's source, or its target). Undefined: no table is kept for it,
 * so a resync of that mirror is a full copy.
 */
export type MirrorTables = (peer: string, lun: number, role: MirrorRole) => MirrorTable | undefined;

/** Whether a table names every block that may differ: held, trusted, and not overflowed. */
export function trustworthy(t: MirrorTable | undefined): t is MirrorTable {
  return t !== undefined && t.trusted && !t.table.overflowed;
}
