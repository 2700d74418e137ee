import { describe, expect, it } from 'vitest';
import { RegionLockTable, type LockOwner, type RegionLock } from '../../../firmware/locks/region-lock-table.ts';

const mirror = (lockId: number, peer = 'A'): LockOwner => ({ kind: 'mirror', peer, lockId });
const local = (id: number): LockOwner => ({ kind: 'local', id });
const lock = (owner: LockOwner, lba: number, count: number, mode: 'read' | 'write' = 'write', lun = 0): RegionLock => ({ lun, lba, count, mode, owner });

describe('RegionLockTable', () => {
  it('grants non-overlapping locks and refuses overlapping ones whatever the mode', () => {
    const t = new RegionLockTable();
    expect(t.tryAcquire(lock(mirror(1), 0, 8)).granted).toBe(true);
    expect(t.tryAcquire(lock(mirror(2), 8, 8)).granted).toBe(true);
    const r = t.tryAcquire(lock(mirror(3), 7, 2, 'read'));
    expect(r.granted).toBe(false);
    if (!r.granted) expect((r.blocker as RegionLock).owner).toEqual(mirror(1));
    expect(t.tryAcquire(lock(mirror(4), 0, 8, 'write', 1)).granted).toBe(true); // another LUN
    expect(t.size).toBe(3);
  });

  it('write lock: others may read but not write; read lock: others may do neither', () => {
    const t = new RegionLockTable();
    t.tryAcquire(lock(mirror(1), 0, 8, 'write'));
    t.tryAcquire(lock(mirror(2), 100, 8, 'read'));
    expect(t.mayRead(0, 2, 2)).toBe(true);
    expect(t.mayWrite(0, 2, 2)).toBe(false);
    expect(t.mayWrite(0, 2, 2, mirror(1))).toBe(true);
    expect(t.mayRead(0, 104, 1)).toBe(false);
    expect(t.mayWrite(0, 104, 1)).toBe(false);
    expect(t.mayRead(0, 104, 1, mirror(2))).toBe(true);
    expect(t.mayWrite(0, 104, 1, mirror(2))).toBe(false); // a read lock is for reading
    expect(t.mayWrite(0, 50, 10)).toBe(true);
  });

  it('covers() says whether an owner holds the whole range', () => {
    const t = new RegionLockTable();
    t.tryAcquire(lock(mirror(1), 16, 16));
    expect(t.covers(mirror(1), 0, 16, 16)).toBe(true);
    expect(t.covers(mirror(1), 0, 20, 4)).toBe(true);
    expect(t.covers(mirror(1), 0, 30, 4)).toBe(false);
    expect(t.covers(mirror(2), 0, 20, 4)).toBe(false);
    expect(t.covers(mirror(1), 1, 20, 4)).toBe(false);
  });

  it('a mirror lock refused by a local lock is granted once the local lock goes, and no new local lock sneaks in meanwhile', () => {
    const t = new RegionLockTable();
    const events: string[] = [];
    let mirrorWaits = true;
    t.onRelease((l) => {
      events.push(`released ${l.owner.kind}`);
      if (!mirrorWaits) return;
      const r = t.tryAcquire(lock(mirror(1), 0, 8));
      if (r.granted) {
        mirrorWaits = false;
        t.clearRejection(mirror(1));
        events.push('mirror granted');
      }
    });
    expect(t.acquireLocal(lock(local(1), 0, 8), () => events.push('local 1'))).toBe('granted');
    expect(t.tryAcquire(lock(mirror(1), 0, 8)).granted).toBe(false);
    t.recordRejection({ lun: 0, lba: 0, count: 8, owner: mirror(1) });
    // A new local lock on the region waits behind the rejected mirror lock (no starvation)...
    expect(t.acquireLocal(lock(local(2), 4, 4), () => events.push('local 2'))).toBe('queued');
    // ...while one elsewhere is granted at once.
    expect(t.acquireLocal(lock(local(3), 64, 4), () => events.push('local 3'))).toBe('granted');
    t.release(local(1));
    expect(events).toEqual(['local 1', 'local 3', 'released local', 'mirror granted']);
    t.release(mirror(1));
    expect(events.slice(-2)).toEqual(['released mirror', 'local 2']);
    expect(t.held(local(2))).toBeDefined();
  });

  it('grants waiting local locks in order per region, passing only over other regions', () => {
    const t = new RegionLockTable();
    const order: number[] = [];
    t.acquireLocal(lock(local(1), 0, 8), () => order.push(1));
    t.acquireLocal(lock(local(2), 0, 8), () => order.push(2));
    t.acquireLocal(lock(local(3), 4, 8), () => order.push(3));
    t.acquireLocal(lock(local(4), 32, 8), () => order.push(4));
    expect(order).toEqual([1, 4]);
    t.release(local(1));
    expect(order).toEqual([1, 4, 2]);
    t.release(local(2));
    expect(order).toEqual([1, 4, 2, 3]);
  });

  it('a full table refuses (blocker null) instead of throwing; a local lock waits for room', () => {
    const t = new RegionLockTable({ locksMax: 2, localWaitersMax: 1 });
    t.tryAcquire(lock(mirror(1), 0, 1));
    t.tryAcquire(lock(mirror(2), 1, 1));
    expect(t.tryAcquire(lock(mirror(3), 2, 1))).toEqual({ granted: false, blocker: null });
    const granted: number[] = [];
    expect(t.acquireLocal(lock(local(1), 5, 1), () => granted.push(1))).toBe('queued');
    // The local waiters' own limit is the local caller's overload: a typed error, to that caller.
    expect(() => t.acquireLocal(lock(local(2), 6, 1), () => granted.push(2))).toThrow(expect.objectContaining({ code: 'ML_ERR_LOCKS_FULL' }));
    t.release(mirror(1));
    expect(granted).toEqual([1]);
    expect(t.size).toBe(2);
  });

  it('finds conflicts among many locks (binary search agrees with a linear scan)', () => {
    const t = new RegionLockTable();
    const held: [number, number][] = [];
    for (let i = 0; i < 200; i++) {
      const lba = (i * 7919) % 4000;
      const count = 1 + (i % 5);
      const clash = held.some(([l, c]) => l < lba + count && lba < l + c);
      expect(t.tryAcquire(lock(mirror(i), lba, count)).granted).toBe(!clash);
      if (!clash) held.push([lba, count]);
    }
    // Release every other lock, then ask again: every answer must match the linear scan over what is left.
    for (const [i, [lba]] of held.entries()) if (i % 2 === 0) expect(t.release(t.locks().find((l) => l.lba === lba)!.owner)).toBeDefined();
    const left = held.filter((_, i) => i % 2 === 1).sort((x, y) => x[0] - y[0]);
    expect(t.size).toBe(left.length);
    let refused = 0;
    for (let lba = 0; lba < 4005; lba += 3) {
      const count = 1 + (lba % 4);
      const clash = left.find(([l, c]) => l < lba + count && lba < l + c); // the lowest one: what the table reports
      const owner = mirror(10_000 + lba);
      const r = t.tryAcquire(lock(owner, lba, count));
      expect(r.granted, `[${lba}, +${count})`).toBe(clash === undefined);
      if (!r.granted) {
        refused++;
        expect((r.blocker as RegionLock).lba).toBe(clash![0]);
      } else {
        t.release(owner);
      }
    }
    expect(refused).toBeGreaterThan(50);
  });
});
