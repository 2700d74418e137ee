import { assert, MirrorlabError } from '../errors.ts';

/**
 * Region locks on LBA ranges of a LUN, at the target (docs/design.md 1.1).
 *
 * Modes follow the source text, which reads oddly at first:
 * - a **write** lock lets others *read* the region, but not write it: the holder is changing
 *   the blocks and a reader sees either version of each block;
 * - a **read** lock admits neither reads nor writes by others: the holder needs the region to
 *   stand still while it reads it (a resync copy, a verification).
 * Two locks never overlap, whatever their modes: a write lock excludes other writers and other
 * read-lock holders (who would see it change); a read lock excludes everyone. The modes differ only
 * in what they allow *unlocked* I/O by others to do: see {@link mayRead} and {@link mayWrite}.
 *
 * Owners are mirror locks (a peer's LOCK, by lock id) or the target's own local locks (its
 * server workload). When a mirror lock is refused, the caller records a *rejection*: until that
 * mirror lock is granted, no new local lock is granted on the region, so a steady stream of local
 * locks cannot starve the mirror (docs/design.md 1.1, "no starvation"). Local lock requests that cannot be
 * granted wait in FIFO order. Mirror locks do not wait here: the target's commit log retries them
 * (see `onRelease`), so the retry order stays the log's order.
 */
export type LockModeName = 'read' | 'write';

export type LockOwner =
  | { readonly kind: 'mirror'; readonly peer: string; readonly lockId: number }
  | { readonly kind: 'local'; readonly id: number };

export interface RegionLock {
  readonly lun: number;
  readonly lba: number;
  readonly count: number;
  readonly mode: LockModeName;
  readonly owner: LockOwner;
}

/**
 * What {@link RegionLockTable.tryAcquire} decided. Refused with `blocker` null: nothing overlaps,
 * but the table already holds `locksMax` locks. A full table is an operating condition, never a
 * throw: the request is refused like any other and retried once some lock is released.
 */
export type AcquireResult =
  | { readonly granted: true }
  | { readonly granted: false; readonly blocker: RegionLock | Rejection | null };

/** A mirror lock that was refused and is being retried; it holds back new local locks. */
export interface Rejection {
  readonly lun: number;
  readonly lba: number;
  readonly count: number;
  readonly owner: LockOwner;
}

export function ownerKey(owner: LockOwner): string {
  return owner.kind === 'mirror' ? `m:${owner.peer}:${owner.lockId}` : `l:${owner.id}`;
}

/**
 * Values by lock owner. Mirror owners are looked up by peer, then lock id; local owners by id.
 * The target asks "does this owner hold a lock" for every mirrored write, so this avoids building
 * an {@link ownerKey} string (and hashing it) on every question.
 */
class OwnerIndex<T> {
  private readonly mirror = new Map<string, Map<number, T>>();
  private readonly local = new Map<number, T>();

  get(owner: LockOwner): T | undefined {
    return owner.kind === 'mirror' ? this.mirror.get(owner.peer)?.get(owner.lockId) : this.local.get(owner.id);
  }

  set(owner: LockOwner, value: T): void {
    if (owner.kind === 'local') {
      this.local.set(owner.id, value);
      return;
    }
    let byLockId = this.mirror.get(owner.peer);
    if (!byLockId) this.mirror.set(owner.peer, (byLockId = new Map()));
    byLockId.set(owner.lockId, value);
  }

  delete(owner: LockOwner): boolean {
    return owner.kind === 'mirror' ? this.mirror.get(owner.peer)?.delete(owner.lockId) === true : this.local.delete(owner.id);
  }
}

const GRANTED: AcquireResult = Object.freeze({ granted: true });
const TABLE_FULL: AcquireResult = Object.freeze({ granted: false, blocker: null });

interface LocalWaiter {
  lock: RegionLock;
  granted: () => void;
}

export interface LockTableLimits {
  /** Most locks held at once over all LUNs. */
  locksMax: number;
  /** Most local lock requests waiting at once. */
  localWaitersMax: number;
}

export class LockTableFullError extends MirrorlabError {
  constructor(message: string) {
    super('ML_ERR_LOCKS_FULL', message);
  }
}

export class RegionLockTable {
  private readonly byLun = new Map<number, RegionLock[]>();
  /** Every lock held, in the order taken. */
  private readonly taken = new Set<RegionLock>();
  private readonly byOwner = new OwnerIndex<RegionLock>();
  private readonly rejections = new Map<string, Rejection>();
  private readonly localWaiters: LocalWaiter[] = [];
  private readonly releaseListeners: ((lock: RegionLock) => void)[] = [];
  readonly limits: LockTableLimits;

  constructor(limits: LockTableLimits = { locksMax: 65_536, localWaitersMax: 4_096 }) {
    this.limits = limits;
  }

  get size(): number {
    return this.taken.size;
  }

  get waitingLocal(): number {
    return this.localWaiters.length;
  }

  /** Called after any lock is released, before waiting local locks are retried: mirrors go first. */
  onRelease(listener: (lock: RegionLock) => void): void {
    this.releaseListeners.push(listener);
  }

  /**
   * Try to take a lock now. Local locks are also refused while a rejection covers the region.
   * Refused with `blocker` null when the table is full (see {@link AcquireResult}).
   */
  tryAcquire(lock: RegionLock): AcquireResult {
    if (this.byOwner.get(lock.owner) !== undefined) assert(false, `lock owner ${ownerKey(lock.owner)} already holds a lock`);
    assert(lock.count >= 1 && lock.lba >= 0, 'lock range must be non-empty');
    const blocker = this.conflict(lock.lun, lock.lba, lock.count) ?? this.rejectionBlocking(lock);
    if (blocker) return { granted: false, blocker };
    if (this.taken.size >= this.limits.locksMax) return TABLE_FULL;
    this.insert(lock);
    return GRANTED;
  }

  /**
   * Take a local lock, waiting (FIFO) while the region is held, a rejection covers it, or the
   * table is full. `granted` is called when the lock is held: synchronously if it is free now.
   * Throws {@link LockTableFullError} only when `localWaitersMax` requests already wait: that is
   * the local caller's own overload, reported to it (never reached from frame handling).
   */
  acquireLocal(lock: RegionLock, granted: () => void): 'granted' | 'queued' {
    assert(lock.owner.kind === 'local', 'acquireLocal takes local owners');
    if (!this.waiterAhead(lock, this.localWaiters.length) && this.tryAcquire(lock).granted) {
      granted();
      return 'granted';
    }
    if (this.localWaiters.length >= this.limits.localWaitersMax) {
      throw new LockTableFullError(`too many local lock requests waiting (${this.limits.localWaitersMax})`);
    }
    this.localWaiters.push({ lock, granted });
    return 'queued';
  }

  /** Release the lock `owner` holds. Returns it, or undefined if it held none. */
  release(owner: LockOwner): RegionLock | undefined {
    const lock = this.byOwner.get(owner);
    if (!lock) return undefined;
    this.byOwner.delete(owner);
    this.taken.delete(lock);
    const list = this.byLun.get(lock.lun)!;
    list.splice(firstEndingAfter(list, lock.lba), 1);
    for (const listener of this.releaseListeners) listener(lock);
    this.retryLocal();
    return lock;
  }

  /** Remember that a mirror lock was refused, so new local locks stay off its region. */
  recordRejection(rejection: Rejection): void {
    this.rejections.set(ownerKey(rejection.owner), rejection);
  }

  /** The mirror lock was granted (or abandoned): local locks may be granted on its region again. */
  clearRejection(owner: LockOwner): void {
    if (this.rejections.delete(ownerKey(owner))) this.retryLocal();
  }

  get rejectionCount(): number {
    return this.rejections.size;
  }

  /** The lock `owner` holds, if any. */
  held(owner: LockOwner): RegionLock | undefined {
    return this.byOwner.get(owner);
  }

  /** Does `owner` hold a lock covering all of [lba, lba + count) on `lun`? */
  covers(owner: LockOwner, lun: number, lba: number, count: number): boolean {
    const lock = this.byOwner.get(owner);
    return lock !== undefined && lock.lun === lun && lock.lba <= lba && lba + count <= lock.lba + lock.count;
  }

  /**
   * May `by` (a holder, or nobody in particular) read the range? Everywhere but under someone
   * else's read lock. The controller asks this for every unlocked local read.
   */
  mayRead(lun: number, lba: number, count: number, by?: LockOwner): boolean {
    return this.everyOverlap(lun, lba, count, false, by);
  }

  /**
   * May `by` write the range? Only where no one else holds a lock (or `by` holds a write lock).
   * The controller asks this for every local write, so it makes nothing when no lock is held.
   */
  mayWrite(lun: number, lba: number, count: number, by?: LockOwner): boolean {
    return this.everyOverlap(lun, lba, count, true, by);
  }

  /** Every lock held, for reports and tests. */
  locks(): RegionLock[] {
    return [...this.taken];
  }

  private conflict(lun: number, lba: number, count: number): RegionLock | undefined {
    const list = this.byLun.get(lun);
    if (!list) return undefined;
    const i = firstEndingAfter(list, lba);
    const candidate = list[i];
    return candidate !== undefined && candidate.lba < lba + count ? candidate : undefined;
  }

  private rejectionBlocking(lock: RegionLock): Rejection | undefined {
    if (lock.owner.kind !== 'local') return undefined;
    for (const r of this.rejections.values()) {
      if (r.lun === lock.lun && r.lba < lock.lba + lock.count && lock.lba < r.lba + r.count) return r;
    }
    return undefined;
  }

  /**
   * Does every lock overlapping the range allow the access? A write is allowed only under `by`'s
   * own write lock; a read under any write lock and under `by`'s own read lock. A plain loop, not a
   * predicate argument: this runs per host I/O, and a closure per call costs.
   */
  private everyOverlap(lun: number, lba: number, count: number, write: boolean, by: LockOwner | undefined): boolean {
    const list = this.byLun.get(lun);
    if (list === undefined || list.length === 0) return true;
    for (let i = firstEndingAfter(list, lba); i < list.length && list[i]!.lba < lba + count; i++) {
      const l = list[i]!;
      const own = sameOwner(l.owner, by);
      if (write ? l.mode !== 'write' || !own : l.mode === 'read' && !own) return false;
    }
    return true;
  }

  private insert(lock: RegionLock): void {
    let list = this.byLun.get(lock.lun);
    if (!list) this.byLun.set(lock.lun, (list = []));
    list.splice(firstEndingAfter(list, lock.lba), 0, lock);
    this.taken.add(lock);
    this.byOwner.set(lock.owner, lock);
  }

  /**
   * Grant waiting local locks in FIFO order. A waiter is passed over only by waiters on other
   * regions: none is granted while an earlier waiter on an overlapping range still waits.
   */
  private retryLocal(): void {
    if (this.localWaiters.length === 0) return; // the usual case, on every mirror unlock
    const granted: LocalWaiter[] = [];
    for (let i = 0; i < this.localWaiters.length; i++) {
      const w = this.localWaiters[i]!;
      if (this.waiterAhead(w.lock, i) || !this.tryAcquire(w.lock).granted) continue;
      this.localWaiters.splice(i--, 1);
      granted.push(w);
    }
    for (const w of granted) w.granted();
  }

  private waiterAhead(lock: RegionLock, before: number): boolean {
    for (let i = 0; i < before; i++) {
      const w = this.localWaiters[i]!.lock;
      if (w.lun === lock.lun && w.lba < lock.lba + lock.count && lock.lba < w.lba + w.count) return true;
    }
    return false;
  }
}

/**
 * Index of the first range in `list` that ends after `lba`. The ranges must not overlap (locks in a
 * LUN never do), so sorted by start they are sorted by end too: binary search.
 */
export function firstEndingAfter(list: readonly { readonly lba: number; readonly count: number }[], lba: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const l = list[mid]!;
    if (l.lba + l.count <= lba) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function sameOwner(a: LockOwner, b: LockOwner | undefined): boolean {
  if (!b || a.kind !== b.kind) return false;
  return a.kind === 'mirror' ? a.lockId === (b as typeof a).lockId && a.peer === (b as typeof a).peer : a.id === (b as typeof a).id;
}
