import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LockSessionTable, lockRegion } from '../../../firmware/mirror/lock-sessions.ts';
import type { LockSession } from '../../../firmware/mirror/types.ts';

describe('lockRegion', () => {
  it('covers the request with whole regions', () => {
    expect(lockRegion(0, 8, 8)).toEqual({ lba: 0, count: 8 });
    expect(lockRegion(13, 1, 8)).toEqual({ lba: 8, count: 8 });
    expect(lockRegion(6, 4, 8)).toEqual({ lba: 0, count: 16 });
  });
});

describe('LockSessionTable', () => {
  it('finds an open write session by its exact region, and only while it is open', () => {
    const t = new LockSessionTable();
    const s = t.open(0, 16, 8, 'write', false, 0);
    expect(t.get(0, 16, 8)).toBe(s);
    expect(t.get(0, 16, 16)).toBeUndefined(); // another region that starts there
    expect(t.get(1, 16, 8)).toBeUndefined(); // another LUN
    expect(t.get(0, 8, 8)).toBeUndefined();
    t.close(s);
    expect(t.get(0, 16, 8)).toBeUndefined();
    expect(t.size).toBe(0);
    expect(t.byLockId(s.lockId)).toBe(s); // until its UNLOCK is confirmed
    t.retire(s.lockId);
    expect(t.byLockId(s.lockId)).toBeUndefined();
  });

  it('never returns a read-lock session as a write region', () => {
    const t = new LockSessionTable();
    t.open(0, 16, 8, 'read', true, 0);
    expect(t.get(0, 16, 8)).toBeUndefined();
    expect(t.overlapping(0, 20, 1).map((s) => s.mode)).toEqual(['read']);
  });

  it('lists overlapping sessions least recently used first', () => {
    const t = new LockSessionTable();
    const a = t.open(0, 0, 8, 'write', false, 0);
    const b = t.open(0, 8, 8, 'write', false, 0);
    const c = t.open(0, 16, 8, 'write', false, 0);
    t.touch(a, 1);
    expect(t.overlapping(0, 4, 16)).toEqual([b, c, a]);
    expect([...t.values()]).toEqual([b, c, a]);
    expect(t.overlapping(0, 24, 8)).toEqual([]);
  });

  it('refuses to open a session over an open one', () => {
    const t = new LockSessionTable();
    t.open(0, 8, 8, 'write', false, 0);
    expect(() => t.open(0, 12, 8, 'write', false, 0)).toThrow(/overlaps an open one/);
  });

  it('agrees with a plain list of sessions (model test)', () => {
    const op = fc.record({ lun: fc.integer({ min: 0, max: 1 }), lba: fc.integer({ min: 0, max: 64 }), count: fc.integer({ min: 1, max: 16 }), touch: fc.boolean() });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const t = new LockSessionTable();
        let model: LockSession[] = []; // least recently used first
        const overlaps = (s: LockSession, lun: number, lba: number, count: number): boolean => s.lun === lun && s.lba < lba + count && lba < s.lba + s.count;
        for (const { lun, lba, count, touch } of ops) {
          const expected = model.filter((s) => overlaps(s, lun, lba, count));
          expect(t.overlapping(lun, lba, count)).toEqual(expected);
          const same = model.find((s) => s.lun === lun && s.lba === lba && s.count === count);
          expect(t.get(lun, lba, count)).toBe(same);
          if (same && touch) {
            t.touch(same, 0);
            model = [...model.filter((s) => s !== same), same];
          } else {
            for (const s of expected) t.close(s);
            model = model.filter((s) => !expected.includes(s));
            model.push(t.open(lun, lba, count, 'write', false, 0));
          }
          expect([...t.values()]).toEqual(model);
        }
      }),
      { numRuns: 200 },
    );
  });
});
