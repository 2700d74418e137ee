import type { SequencedLog } from '../logs/sequenced-log.ts';
import type { Clock } from '../ports/clock.ts';
import { FRAME_OVERHEAD_BYTES, FrameFlag, FrameType, LockMode, type StreamFrame } from '../protocol/frame.ts';
import type { StreamEntryKind } from '../telemetry/events.ts';
import { LockSessionTable, lockRegion } from './lock-sessions.ts';
import type { RollbackEntry } from './rollback-entry.ts';
import type { ChannelWrite, LockSession } from './types.ts';

const OH = FRAME_OVERHEAD_BYTES;

/** A read lock asked for: its range, and who to tell once it is granted. */
export interface ReadLockRequest {
  readonly lun: number;
  readonly lba: number;
  readonly count: number;
  readonly granted: (release: () => void) => void;
}
const EPSILON_MS = 1e-6;

export interface LockSessionConfig {
  lockSessionsMax: number;
  lockSessionIdleMs: number;
  /** Size of a lock region of `lun`, in its sectors. */
  regionSectors(lun: number): number;
}

export interface LockSessionDeps {
  clock: Clock;
  log: SequencedLog<RollbackEntry>;
  /**
   * Whether this write carries its own lock (docs/implied-locks.md): its LUN asks for implied locks
   * and the peer's HELLO offered them. Never for sync writes, whose data waits for a grant.
   */
  implied(w: ChannelWrite): boolean;
  /** Append a stream frame to the rollback log (room already reserved). */
  append(kind: StreamEntryKind, write: ChannelWrite | null, frame: StreamFrame, count: number, lba: number): void;
  /** Something was appended or may now be sent: send, and look at the channel's edges. */
  changed(): void;
}

/**
 * The source's lock sessions (docs/design.md 1.1, 2.2): a run of writes to one lock region shares
 * one LOCK, ended by an UNLOCK when the session has been idle for `lockSessionIdleMs`, when the
 * table needs room, or when an overlapping lock needs the region. Here every admitted write finds
 * or opens its session and goes into the stream behind the session's LOCK; in sync mode (and for
 * read locks) the data waits for the grant.
 *
 * Implied locks (docs/implied-locks.md): a write whose LUN asks for them, once the peer offered
 * them, opens no session. It goes into the stream alone, as a WRITE flagged ImpliedLock with a
 * lock id of its own: the target locks exactly its sectors before applying it and unlocks them
 * after. Sessions still exist for read locks, for sync mode, and for explicit sessions opened before
 * the peer's HELLO was heard; an implied write ends those it overlaps first, or waits for them.
 *
 * At most min(lockSessionsMax, the peer's locksWindow) sessions are open at once, strictly:
 * sessions open here are exactly the locks the target holds for us at this point of the stream,
 * and a target whose lock table we filled with our own locks could never grant the next LOCK (the
 * UNLOCKs that would make room are behind it). Implied locks count against the peer's locksWindow
 * too, from their WRITE's append until its confirmation (the target holds each for less: from
 * processing the write to its landing on the disk).
 */
export class LockSessionManager {
  private sessions = new LockSessionTable();
  /** Admissions waiting until one of the open sessions can end (see `openSession`). */
  private readonly sessionWaiters: (() => void)[] = [];
  private readonly confirmWaiters: { seq: number; run: () => void }[] = [];
  /** Admitted writes that wait for a session to end before theirs can open, in admission order. */
  private readonly blockedWrites = new Set<ChannelWrite>();
  /** Read locks asked for and not granted yet. */
  private readonly readRequests = new Set<ReadLockRequest>();
  /**
   * Most locks our stream may hold at the peer at once, from its HELLO. Until the first HELLO it is
   * 1, the one number every lock table can give: sessions opened before the link comes up are
   * already in the stream when the peer's real window becomes known.
   */
  private locksWindow = 1;
  /** Implied-lock WRITEs in the stream and not yet confirmed: locks the peer may hold for them. */
  private impliedOpen = 0;
  private idleTimer: unknown = null;
  private readonly idleTimerFired = (): void => this.onIdleTimer();

  constructor(private readonly cfg: LockSessionConfig, private readonly deps: LockSessionDeps) {}

  get open(): number {
    return this.sessions.size;
  }

  /** Sessions whose LOCK waits for its grant. */
  get awaitingGrant(): number {
    return this.sessions.awaitingGrant;
  }

  setLocksWindow(locks: number): void {
    this.locksWindow = Math.max(1, locks);
    runAll(this.sessionWaiters);
  }

  /** Implied-lock WRITEs in the stream, not yet confirmed. */
  get impliedOutstanding(): number {
    return this.impliedOpen;
  }

  /** Put an admitted write into its lock session, or give it its own implied lock (it holds a reservation of 3 entries). */
  place(w: ChannelWrite): void {
    if (this.deps.implied(w)) {
      this.placeImplied(w);
      return;
    }
    const region = lockRegion(w.lba, w.count, this.cfg.regionSectors(w.lun));
    let session: LockSession | null | undefined = this.sessions.get(w.lun, region.lba, region.count);
    const reused = session !== undefined;
    if (session) {
      this.blockedWrites.delete(w);
      this.sessions.touch(session, this.deps.clock.now());
    } else {
      // A session just opened is already the most recently used, as of now.
      session = this.openSession(region, w.lun, 'write', w.mode === 'sync', () => this.place(w));
      if (!session) {
        this.blockedWrites.add(w);
        return;
      }
      this.blockedWrites.delete(w);
      this.appendLock(session);
    }
    if (session.grantWanted && !session.granted) session.held.push(w);
    else this.appendWrite(session, w);
    // The LOCK and UNLOCK a reused session did not need go back last: giving room back places
    // waiting writes, which may end this very session, and this write must be in it first.
    if (reused) this.deps.log.unreserve(2, 2 * OH);
    this.armIdleTimer();
    this.deps.changed();
  }

  /**
   * A write that carries its own lock. An explicit session still open on its region (opened before
   * the peer's HELLO) takes it as any write; otherwise sessions overlapping its sectors end first
   * (their UNLOCKs go ahead of it in the stream), one that cannot end yet holds it back, and so does
   * a peer whose locksWindow our locks fill (sessions and unconfirmed implied locks). Needs 1 of
   * the 3 entries reserved: no LOCK, no UNLOCK.
   */
  private placeImplied(w: ChannelWrite): void {
    const region = lockRegion(w.lba, w.count, this.cfg.regionSectors(w.lun));
    const session = this.sessions.get(w.lun, region.lba, region.count);
    if (session && !(session.grantWanted && !session.granted)) {
      this.blockedWrites.delete(w);
      this.deps.log.unreserve(2, 2 * OH);
      this.sessions.touch(session, this.deps.clock.now());
      this.appendWrite(session, w);
      this.deps.changed();
      return;
    }
    const retry = (): void => this.place(w);
    const overlapping = this.sessions.overlapping(w.lun, w.lba, w.count);
    const busy = overlapping.find((s) => !this.closable(s));
    if (busy) {
      busy.blocked.push(retry);
      this.blockedWrites.add(w);
      return;
    }
    for (const s of overlapping) this.closeSession(s);
    while (this.sessions.size + this.impliedOpen >= this.locksWindow) {
      const oldest = this.oldestClosable();
      if (oldest === undefined) break;
      this.closeSession(oldest);
    }
    if (this.sessions.size + this.impliedOpen >= this.locksWindow) {
      this.sessionWaiters.push(retry);
      this.blockedWrites.add(w);
      return;
    }
    this.blockedWrites.delete(w);
    this.deps.log.unreserve(2, 2 * OH);
    this.impliedOpen++;
    this.appendImpliedWrite(w);
    this.deps.changed();
  }

  /** An implied-lock WRITE was confirmed: the peer holds its lock no more; room for another. */
  impliedConfirmed(): void {
    this.impliedOpen--;
    runAll(this.sessionWaiters);
  }

  /**
   * A read lock on the peer's copy of a region. Not speculative: the LOCK goes out once every
   * earlier entry is confirmed, and `granted` runs once the target granted it.
   */
  placeReadLock(lun: number, lba: number, count: number, granted: (release: () => void) => void): void {
    this.placeRead({ lun, lba, count, granted });
  }

  private placeRead(request: ReadLockRequest): void {
    const { lun, lba, count } = request;
    this.readRequests.add(request);
    const session = this.openSession({ lba, count }, lun, 'read', true, () => this.placeRead(request));
    if (!session) return;
    session.onGranted = () => {
      this.readRequests.delete(request);
      request.granted(() => this.releaseReadLock(session));
    };
    this.whenConfirmed(this.deps.log.nextSeq - 1, () => {
      this.appendLock(session);
      this.deps.changed();
    });
    this.deps.changed();
  }

  /** The target granted the session of `lockId` (LOCK_GRANTED, or an ACK that covers its LOCK). */
  granted(lockId: number): void {
    const session = this.sessions.byLockId(lockId);
    if (session) this.grant(session);
  }

  byLockId(lockId: number): LockSession | undefined {
    return this.sessions.byLockId(lockId);
  }

  /** The session's UNLOCK was confirmed: its lock id is finished. */
  retired(lockId: number): void {
    this.sessions.retire(lockId);
  }

  /** Everything up to `confirmed` is confirmed: run whoever waited for it. */
  confirmedThrough(confirmed: number): void {
    if (this.confirmWaiters.length === 0) return;
    const ready = this.confirmWaiters.filter((w) => w.seq <= confirmed);
    if (ready.length === 0) return;
    this.confirmWaiters.splice(0, this.confirmWaiters.length, ...this.confirmWaiters.filter((w) => w.seq > confirmed));
    for (const w of ready) w.run();
  }

  /**
   * A new stream (the target restarted and forgot every lock): forget every session and give back,
   * in stream order, every write that waited for a grant or for a session to end, and every read
   * lock not granted yet, for the caller to place again with fresh reservations. Read locks already
   * granted are lost with the target that granted them (their release does nothing).
   */
  restart(): { writes: ChannelWrite[]; readLocks: ReadLockRequest[] } {
    const writes: ChannelWrite[] = [];
    for (const s of this.sessions.values()) {
      writes.push(...s.held.splice(0));
      s.blocked.length = 0;
      s.closed = true;
    }
    writes.push(...this.blockedWrites);
    this.blockedWrites.clear();
    const readLocks = [...this.readRequests];
    this.readRequests.clear();
    this.sessionWaiters.length = 0;
    this.confirmWaiters.length = 0;
    this.impliedOpen = 0;
    this.sessions = new LockSessionTable(this.sessions.nextId);
    this.stopIdleTimer();
    return { writes, readLocks };
  }

  stop(): void {
    this.stopIdleTimer();
  }

  // ---- sessions ----------------------------------------------------------------------------

  /**
   * Open a session on `region`, first ending every open session that overlaps it (their UNLOCKs
   * go into the stream ahead of the new LOCK, so the target never sees two locks of ours on one
   * block). If an overlapping session cannot end yet (its grant is pending, or it is a read lock
   * still held), `retry` runs once it can, and this returns null. At the session limit the least
   * recently used session that can end ends first; if none can, `retry` runs once one has.
   */
  private openSession(
    region: { lba: number; count: number }, lun: number, mode: 'read' | 'write', grantWanted: boolean, retry: () => void,
  ): LockSession | null {
    const overlapping = this.sessions.overlapping(lun, region.lba, region.count);
    const busy = overlapping.find((s) => !this.closable(s));
    if (busy) {
      busy.blocked.push(retry);
      return null;
    }
    for (const s of overlapping) this.closeSession(s);
    const sessionsMax = Math.min(this.cfg.lockSessionsMax, this.locksWindow);
    while (this.sessions.size >= sessionsMax) {
      const oldest = this.oldestClosable();
      if (oldest === undefined) {
        this.sessionWaiters.push(retry);
        return null;
      }
      this.closeSession(oldest);
    }
    return this.sessions.open(lun, region.lba, region.count, mode, grantWanted, this.deps.clock.now());
  }

  private oldestClosable(): LockSession | undefined {
    for (const s of this.sessions.values()) if (this.closable(s)) return s;
    return undefined;
  }

  private closable(s: LockSession): boolean {
    return s.mode === 'write' && s.held.length === 0 && (s.granted || !s.grantWanted);
  }

  private closeSession(s: LockSession): void {
    this.sessions.close(s);
    this.appendUnlock(s);
    runAll(s.blocked);
    runAll(this.sessionWaiters);
  }

  private grant(session: LockSession): void {
    if (session.granted) return;
    this.sessions.markGranted(session);
    // Every held write goes in before any is told it was placed: telling one may place another
    // write, which may end this very session, and its UNLOCK must follow all of its writes.
    const held = session.held.splice(0);
    for (const w of held) this.appendWrite(session, w, { tell: false });
    for (const w of held) w.placed?.();
    const onGranted = session.onGranted;
    session.onGranted = null;
    onGranted?.();
    runAll(session.blocked);
    runAll(this.sessionWaiters); // the session may end now, making room
  }

  private releaseReadLock(session: LockSession): void {
    if (session.closed) return;
    this.sessions.close(session);
    this.appendUnlock(session);
    runAll(session.blocked);
    runAll(this.sessionWaiters);
    this.deps.changed();
  }

  private whenConfirmed(seq: number, run: () => void): void {
    if (seq <= this.deps.log.firstSeq - 1) run();
    else this.confirmWaiters.push({ seq, run });
  }

  private armIdleTimer(): void {
    if (this.idleTimer !== null || this.sessions.size === 0) return;
    const oldest = this.sessions.values().next().value!;
    const delay = oldest.lastUse + this.cfg.lockSessionIdleMs - this.deps.clock.now();
    this.idleTimer = this.deps.clock.setTimeout(this.idleTimerFired, Math.max(0, delay));
  }

  private stopIdleTimer(): void {
    if (this.idleTimer !== null) this.deps.clock.clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private onIdleTimer(): void {
    this.idleTimer = null;
    const deadline = this.deps.clock.now() - this.cfg.lockSessionIdleMs + EPSILON_MS;
    const idle: LockSession[] = [];
    for (const s of this.sessions.values()) {
      if (s.lastUse > deadline) break;
      if (this.closable(s)) idle.push(s);
    }
    // Closing one runs whoever waited for room, which may close another of these first (when the
    // peer's lock window shrank below the sessions open): skip those.
    for (const s of idle) if (!s.closed) this.closeSession(s);
    if (idle.length === 0 && this.sessions.size > 0) {
      // The oldest sessions cannot close yet (grant pending, read lock held): look again later.
      const s = this.sessions.values().next().value!;
      this.sessions.touch(s, this.deps.clock.now());
    }
    this.armIdleTimer();
    this.deps.changed();
  }

  // ---- stream frames -----------------------------------------------------------------------

  private appendLock(s: LockSession): void {
    const flags = s.grantWanted ? FrameFlag.GrantWanted : 0;
    const mode = s.mode === 'read' ? LockMode.Read : LockMode.Write;
    s.lockSeq = this.deps.log.nextSeq;
    this.deps.append('lock', null, { type: FrameType.Lock, lun: s.lun, seq: s.lockSeq, flags, lockId: s.lockId, lba: s.lba, count: s.count, mode }, s.count, s.lba);
  }

  private appendWrite(s: LockSession, w: ChannelWrite, opts = { tell: true }): void {
    // An async mirror's copy must be a prefix of the source's writes at every instant.
    const flags = w.mode === 'async' ? FrameFlag.Ordered : 0;
    const frame = { type: FrameType.Write, lun: w.lun, seq: this.deps.log.nextSeq, flags, lockId: s.lockId, lba: w.lba, tag: w.tag, data: w.data } as const;
    this.deps.append('write', w, frame, w.count, w.lba);
    if (opts.tell) w.placed?.();
  }

  /** A WRITE with its own lock id, flagged ImpliedLock: the target locks its sectors for it. */
  private appendImpliedWrite(w: ChannelWrite): void {
    // An async mirror's copy must be a prefix of the source's writes at every instant.
    const flags = FrameFlag.ImpliedLock | (w.mode === 'async' ? FrameFlag.Ordered : 0);
    const lockId = this.sessions.takeLockId();
    const frame = { type: FrameType.Write, lun: w.lun, seq: this.deps.log.nextSeq, flags, lockId, lba: w.lba, tag: w.tag, data: w.data } as const;
    this.deps.append('write', w, frame, w.count, w.lba);
    w.placed?.();
  }

  private appendUnlock(s: LockSession): void {
    this.deps.append('unlock', null, { type: FrameType.Unlock, lun: s.lun, seq: this.deps.log.nextSeq, flags: 0, lockId: s.lockId }, 0, 0);
  }
}

/**
 * Run every callback waiting in `list`, emptying it first (a callback may queue itself again).
 * Checks for none first: sessions end about once per write, and usually nobody waits on them.
 */
export function runAll(list: (() => void)[]): void {
  if (list.length === 0) return;
  for (const run of list.splice(0)) run();
}
