import type { TagEntry } from '../tags/tag-table.ts';
import type { MirrorKey, MirrorMeta, TableJournal } from '../tags/mirror-tables.ts';

/** What a controller persists about its stream with one peer (docs/tag-tables.md, "Metadata format"). */
export interface StreamMeta {
  sourceSession: number;
  targetSession: number;
  confirmedSeq: number;
}

/**
 * The metadata store as a controller uses it (firmware/metadata/metadata-store.ts implements it,
 * docs/tag-tables.md, "Metadata"): mutations apply at once and become durable together at the
 * next `commit()`, which batches every caller waiting on the device (group commit).
 */
export interface ControllerMetadata extends TableJournal {
  setSession(session: number): void;
  setStream(peer: string, s: StreamMeta): void;
  /** Tags below `upTo` may be used by this start: a later start's tag base is above them. */
  reserveTags(upTo: number): void;
  commit(): Promise<void>;
}

/** What the store recovered at open (the previous start's state). */
export interface RecoveredMetadata {
  /** The area held no metadata (a new device). */
  blank: boolean;
  session: number;
  /** Every tag at or above this was never used by a previous start. */
  tagBase: number;
  streams: ReadonlyMap<string, StreamMeta>;
  mirrors: ReadonlyArray<{ key: MirrorKey; meta: MirrorMeta; entries: readonly TagEntry[] }>;
  records: number;
  discarded: number;
}

/** An opened metadata store and what it recovered: what a controller with a metadata device is built from. */
export interface OpenedMetadata {
  store: ControllerMetadata;
  recovered: RecoveredMetadata;
}

/**
 * Tags a controller reserves at a time in its metadata (docs/tag-tables.md, "Tag tables"): a
 * reservation is one more record in the next commit, so this many writes share one.
 */
export const TAG_RESERVATION = 65_536;

/**
 * The first tag of a start without a metadata device (docs/tag-tables.md, "Tag tables"): from the
 * session id's random high bits, so each start numbers from its own block of 2^32 tags. Two starts
 * share a block only if they drew the same 21 bits (one chance in two million).
 */
export function sessionTagBase(session: number): number {
  return Math.floor(session / 2 ** 32) * 2 ** 32 + 1;
}
