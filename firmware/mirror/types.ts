import type { MirrorlabError } from '../errors.ts';
import type { LockModeName } from '../locks/region-lock-table.ts';

/**
 * How a LUN is mirrored (docs/design.md 1.1):
 * - `sync`: send LOCK, wait for LOCK_GRANTED, then send the data; the classic two round trips.
 * - `speculative`: LOCK and data back to back; the host is acknowledged once the target confirms.
 * - `async`: the host is acknowledged after the local write (once the rollback log has taken the
 *   write); the rollback log is the bounded backlog, and the target always holds a prefix of the
 *   source's writes.
 */
export type MirrorMode = 'sync' | 'speculative' | 'async';
export const MIRROR_MODES: readonly MirrorMode[] = ['sync', 'speculative', 'async'];

/**
 * How a mirrored write's lock travels (docs/implied-locks.md): `explicit`, a LOCK and an UNLOCK
 * around a session of writes to a region; `implied`, each write carries its own lock (speculative
 * and async only: a sync write waits for a grant, which only an explicit LOCK asks for).
 */
export type LockStyle = 'explicit' | 'implied';
export const LOCK_STYLES: readonly LockStyle[] = ['explicit', 'implied'];

/** What the target does when a mirror lock is refused (docs/design.md 1.1). */
export type LockRejectPolicyName = 'halt-resume' | 'retransmit';
export const LOCK_REJECT_POLICIES: readonly LockRejectPolicyName[] = ['halt-resume', 'retransmit'];

/** One host write as a source channel sees it. */
export interface ChannelWrite {
  readonly tag: number;
  readonly lun: number;
  readonly lba: number;
  readonly count: number;
  readonly data: Uint8Array;
  readonly mode: MirrorMode;
  /** The rollback log has taken the write (room is claimed); async mode acknowledges the host here. */
  admitted(): void;
  /** Optional: the write's WRITE entry is in the stream (its place in the order is fixed). */
  placed?(): void;
  /** The target confirmed the write, or refused it (`error`). Called at most once, and never after {@link suspended}. */
  confirmed(error?: MirrorlabError): void;
  /**
   * The mirror was suspended before the target confirmed the write (docs/tag-tables.md,
   * "Suspension"): it left the stream, its sectors stay named by the source's tag table, and
   * what it waited for is over (a host write is acknowledged locally). Called at most once,
   * instead of {@link confirmed}.
   */
  suspended(): void;
  /**
   * Whether the write's local copy is durable (flushed): a source deletes its tag-table entry only
   * once it holds the target's token and this is true (docs/tag-tables.md, "Tokens"). Undefined:
   * the write has no entry (a resync's copy).
   */
  readonly durable?: boolean;
  /**
   * Optional: how to learn {@link durable} later without holding this write (and its data): what
   * a spill keeps of a write it takes (docs/tag-tables.md, "Rollback-log spill").
   */
  durability?(): () => boolean;
  /**
   * Optional: how to report a refusal once this write object is gone, without holding its data
   * (an async write the rollback log spilled, docs/tag-tables.md, "Rollback-log spill").
   */
  refusalReporter?(): (error: MirrorlabError) => void;
}

/**
 * A lock session: a run of writes to one lock region of a LUN that shares one LOCK, ended by an
 * UNLOCK (when it has been idle for a while, when the session table needs room, or when an
 * overlapping lock needs the region). Read-lock sessions are not speculative: they are granted
 * before their holder proceeds, and writes to their region wait until they are released.
 */
export interface LockSession {
  readonly lockId: number;
  readonly lun: number;
  readonly lba: number;
  readonly count: number;
  readonly mode: LockModeName;
  /** Sequence number of the session's LOCK entry (0 until it is appended). */
  lockSeq: number;
  /** The source waits for LOCK_GRANTED before data may follow (sync mode, read locks). */
  readonly grantWanted: boolean;
  granted: boolean;
  /** Writes that wait for this session's grant (sync mode). Each holds its reservation. */
  readonly held: ChannelWrite[];
  /** Admissions blocked until this session lets go of its region. */
  readonly blocked: (() => void)[];
  /** When the session last took a write (ms). */
  lastUse: number;
  /** The UNLOCK has been appended; the session takes no more writes. */
  closed: boolean;
  /** Read locks: called once granted. */
  onGranted: (() => void) | null;
}
