import { assert } from '../errors.ts';
import type { LockModeName } from '../locks/region-lock-table.ts';
import type { LockSession } from './types.ts';

/** The lock region a request falls in: whole regions of `regionSectors`, covering the request. */
export function lockRegion(lun: number, lba: number, count: number, regionSectors: number): { key: string; lba: number; count: number } {
  const first = Math.floor(lba / regionSectors);
  const last = Math.floor((lba + count - 1) / regionSectors);
  return { key: `${lun}:${first}:${last}`, lba: first * regionSectors, count: (last - first + 1) * regionSectors };
}

/**
 * The source's open lock sessions, least recently used first. Lookups by region key are O(1);
 * the overlap scan runs only when a session opens, so the per-write cost stays a map lookup.
 */
export class LockSessionTable {
  private readonly byKey = new Map<string, LockSession>();
  private readonly byId = new Map<number, LockSession>();
  private nextLockId = 1;
  /** Sessions whose LOCK waits for its grant. */
  awaitingGrant = 0;

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): LockSession | undefined {
    return this.byKey.get(key);
  }

  byLockId(lockId: number): LockSession | undefined {
    return this.byId.get(lockId);
  }

  open(key: string, lun: number, lba: number, count: number, mode: LockModeName, grantWanted: boolean, now: number): LockSession {
    assert(!this.byKey.has(key), `lock session ${key} is already open`);
    const session: LockSession = {
      key, lockId: this.nextLockId++, lun, lba, count, mode, lockSeq: 0, grantWanted, granted: false,
      held: [], blocked: [], lastUse: now, closed: false, onGranted: null,
    };
    this.byKey.set(key, session);
    this.byId.set(session.lockId, session);
    if (grantWanted) this.awaitingGrant++;
    return session;
  }

  /** Mark a session as just used: it moves to the back of the LRU order. */
  touch(session: LockSession, now: number): void {
    session.lastUse = now;
    this.byKey.delete(session.key);
    this.byKey.set(session.key, session);
  }

  markGranted(session: LockSession): void {
    if (session.granted) return;
    session.granted = true;
    if (session.grantWanted) this.awaitingGrant--;
  }

  /** Forget a session (its UNLOCK has been appended). Its lock id stays known until `retire`. */
  close(session: LockSession): void {
    session.closed = true;
    this.byKey.delete(session.key);
    if (session.grantWanted && !session.granted) this.awaitingGrant--;
  }

  /** The session's UNLOCK was confirmed: its lock id is finished. */
  retire(lockId: number): void {
    this.byId.delete(lockId);
  }

  /** Open sessions overlapping [lba, lba + count) on `lun`. */
  overlapping(lun: number, lba: number, count: number): LockSession[] {
    const found: LockSession[] = [];
    for (const s of this.byKey.values()) {
      if (s.lun === lun && s.lba < lba + count && lba < s.lba + s.count) found.push(s);
    }
    return found;
  }

  /** Open sessions, least recently used first. */
  values(): IterableIterator<LockSession> {
    return this.byKey.values();
  }
}
