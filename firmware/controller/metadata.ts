import type { RecoveredMetadata, StreamMeta } from '../metadata/metadata-store.ts';
import type { TableJournal } from '../tags/mirror-tables.ts';

export type { RecoveredMetadata, StreamMeta };

/**
 * The metadata store as a controller uses it (firmware/metadata/metadata-store.ts,
 * docs/tag-tables.md, "Metadata"): mutations apply at once and become durable together at the
 * next `commit()`, which batches every caller waiting on the device (group commit). Narrowed to
 * what the controller calls, so that a test may hand it any store of the same shape.
 */
export interface ControllerMetadata extends TableJournal {
  setSession(session: number): void;
  setStream(peer: string, s: StreamMeta): void;
  /** Tags below `upTo` may be used by this start: a later start's tag base is above them. */
  reserveTags(upTo: number): void;
  commit(): Promise<void>;
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
