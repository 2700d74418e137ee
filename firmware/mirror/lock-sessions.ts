import { assert } from '../errors.ts';
import { firstEndingAfter, type LockModeName } from '../locks/region-lock-table.ts';
import type { LockSession } from './types.ts';

/** Largest lock id: the field is a u32. */
export const LOCK_ID_MAX = 0xffffffff;

/** The lock region a request falls in: whole regions of `regionSectors`, covering the request. */
export function lockRegion(lba: number, count: number, regionSectors: number): { lba: number; count: number } {
  const first = Math.floor(lba / regionSectors);
  const last = Math.floor((lba + count - 1) / regionSectors);
  return { lba: first * regionSectors, count: (last - first + 1) * regionSectors };
}

/**
 * The source's open lock sessions, least recently used first.
 *
 * Sessions of a LUN never overlap: a session opens only once every overlapping one has ended. So
 * each LUN's sessions are kept sorted by start, and both questions asked on the data path, "which
 * session is on this region" (every write) and "which sessions are in its way" (every new
 * session), are a binary search, with no key string built per write. The LRU order is an
 * insertion-ordered set of the session objects.
 */
export class LockSessionTable {
  /** Open sessions, least recently used first. */
  private readonly lru = new Set<LockSession>();
  /** Open sessions of each LUN, sorted by start. */
  private readonly byLun = new Map<number, LockSession[]>();
  private readonly byId = new Map<number, LockSession>();
  private nextLockId: number;
  /** Sessions whose LOCK waits for its grant. */
  awaitingGrant = 0;

  /** `firstLockId`: lock ids go on from an earlier table's (a new stream keeps ids unique within a session). */
  constructor(firstLockId = 1) {
    this.nextLockId = firstLockId;
  }

  /** The lock id the next session will get. */
  get nextId(): number {
    return this.nextLockId;
  }

  /** A lock id for a lock that is no session (an implied lock): unique in the stream like every other. */
  takeLockId(): number {
    return this.allocateId();
  }

  /**
   * The next lock id. Ids are u32 on the wire and 0 means "no lock", so after 2^32-1 they start
   * again at 1 (a stream of a billion writes a day gets there in days), skipping any still known
   * here. An implied lock's id is in use only until its write is confirmed, and at most the peer's
   * locksWindow of those are outstanding: billions of ids later, none of them is.
   */
  private allocateId(): number {
    for (;;) {
      const id = this.nextLockId;
      this.nextLockId = id >= LOCK_ID_MAX ? 1 : id + 1;
      if (!this.byId.has(id)) return id;
    }
  }

  get size(): number {
    return this.lru.size;
  }

  /** The open write session on exactly the region [lba, lba + count) of `lun`, if any. */
  get(lun: number, lba: number, count: number): LockSession | undefined {
    const list = this.byLun.get(lun);
    if (list === undefined) return undefined;
    const s = list[firstEndingAfter(list, lba)];
    return s !== undefined && s.lba === lba && s.count === count && s.mode === 'write' ? s : undefined;
  }

  byLockId(lockId: number): LockSession | undefined {
    return this.byId.get(lockId);
  }

  /** Open a session on a range no open session of `lun` overlaps (the caller ended those first). */
  open(lun: number, lba: number, count: number, mode: LockModeName, grantWanted: boolean, now: number): LockSession {
    let list = this.byLun.get(lun);
    if (list === undefined) this.byLun.set(lun, (list = []));
    const at = firstEndingAfter(list, lba);
    const next = list[at];
    if (next !== undefined && next.lba < lba + count) assert(false, `LUN ${lun}: a lock session on [${lba}, +${count}) overlaps an open one`);
    const session: LockSession = {
      lockId: this.allocateId(), lun, lba, count, mode, lockSeq: 0, grantWanted, granted: false,
      held: [], blocked: [], lastUse: now, closed: false, onGranted: null,
    };
    list.splice(at, 0, session);
    this.lru.add(session);
    this.byId.set(session.lockId, session);
    if (grantWanted) this.awaitingGrant++;
    return session;
  }

  /** Mark a session as just used: it moves to the back of the LRU order. */
  touch(session: LockSession, now: number): void {
    session.lastUse = now;
    this.lru.delete(session);
    this.lru.add(session);
  }

  markGranted(session: LockSession): void {
    if (session.granted) return;
    session.granted = true;
    if (session.grantWanted) this.awaitingGrant--;
  }

  /** Forget a session (its UNLOCK has been appended). Its lock id stays known until `retire`. */
  close(session: LockSession): void {
    assert(!session.closed, 'lock session closed twice');
    session.closed = true;
    this.lru.delete(session);
    const list = this.byLun.get(session.lun)!;
    list.splice(firstEndingAfter(list, session.lba), 1);
    if (session.grantWanted && !session.granted) this.awaitingGrant--;
  }

  /** The session's UNLOCK was confirmed: its lock id is finished. */
  retire(lockId: number): void {
    this.byId.delete(lockId);
  }

  /** Open sessions overlapping [lba, lba + count) on `lun`, least recently used first. */
  overlapping(lun: number, lba: number, count: number): LockSession[] {
    const found: LockSession[] = [];
    const list = this.byLun.get(lun);
    if (list === undefined) return found;
    for (let i = firstEndingAfter(list, lba); i < list.length && list[i]!.lba < lba + count; i++) found.push(list[i]!);
    // Callers end them in this order, which decides the order of their UNLOCKs in the stream.
    if (found.length > 1) return [...this.lru].filter((s) => found.includes(s));
    return found;
  }

  /** Open sessions, least recently used first. */
  values(): IterableIterator<LockSession> {
    return this.lru.values();
  }
}
