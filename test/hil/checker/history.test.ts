import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkLatest, checkPrefix } from '../../../hil/checker/content-checks.ts';
import { WriteHistory } from '../../../hil/checker/history.ts';
import { writeData } from '../../../hil/workload/data.ts';

const SECTOR = 512;
const SECTORS = 32;
const ctx = { node: 'B', lun: 0, writer: 1, tMs: 0 };

/** The image after the writes with tags <= p (writes[i] has tag i + 1). */
function image(writes: readonly [number, number][], p: number): Uint8Array {
  const img = new Uint8Array(SECTORS * SECTOR);
  writes.slice(0, p).forEach(([lba, count], i) => img.set(writeData(1, 0, i + 1, lba, count, SECTOR), lba * SECTOR));
  return img;
}

describe('WriteHistory keeps memory to the sectors written and the writes in flight', () => {
  it('200,000 writes over a few sectors, each settled 32 writes later, leave a handful of remembered coverers', () => {
    const h = new WriteHistory();
    const window = 32;
    for (let tag = 1; tag <= 200_000; tag++) {
      h.add(tag, (tag * 7919) % 4096, 8);
      if (tag > window) h.completed(tag - window, { applied: true });
    }
    expect(h.length).toBe(200_000);
    expect(h.unsettledWrites).toBe(window);
    expect(h.sectorCount).toBe(4096 + 7);
    // Only sectors overwritten while a write to them was in flight keep more than one coverer.
    expect(h.sectorsWithHistory).toBeLessThanOrEqual(window * 8);
    for (let tag = 200_000 - window + 1; tag <= 200_000; tag++) h.completed(tag, { applied: true });
    expect([h.unsettledWrites, h.sectorsWithHistory]).toEqual([0, 0]);
  });

  it('an async write settles only once acknowledged and applied, in either order', () => {
    const h = new WriteHistory();
    h.add(1, 0, 4);
    h.add(2, 0, 4);
    h.completed(1, { applied: false });
    expect(h.coverersOf(0)).toEqual([1, 2]);
    expect(h.applied(1)).toBe(true);
    h.applied(2);
    h.completed(2, { applied: false });
    expect([h.unsettledWrites, h.coverersOf(0)]).toEqual([0, [2]]);
    expect([h.firstTag(0), h.lastTag(0), h.applied(3)]).toEqual([1, 2, false]);
  });

  it('a write that fails marks its sectors and settles', () => {
    const h = new WriteHistory();
    h.add(1, 10, 2);
    h.markFailed(1);
    expect([h.touchedByFailure(10), h.touchedByFailure(11), h.touchedByFailure(12), h.unsettledWrites]).toEqual([true, true, false, 0]);
  });

  it('refuses tags that do not increase (the history leans on issue order)', () => {
    const h = new WriteHistory();
    h.add(5, 0, 1);
    expect(() => h.add(5, 1, 1)).toThrow(/tags must increase/);
  });

  it('forgetting settled coverers never turns an honest prefix into a violation, nor hides a lost write at the end', () => {
    const write = fc.tuple(fc.integer({ min: 0, max: SECTORS - 4 }), fc.integer({ min: 1, max: 4 }));
    fc.assert(fc.property(fc.array(write, { minLength: 1, maxLength: 40 }), fc.nat(), (writes, settleSeed) => {
      const full = new WriteHistory();
      const lean = new WriteHistory();
      writes.forEach(([lba, count], i) => {
        full.add(i + 1, lba, count);
        lean.add(i + 1, lba, count);
      });
      // Settle a prefix of the writes (as a target that applied them would) in the lean history.
      const settled = settleSeed % (writes.length + 1);
      for (let tag = 1; tag <= settled; tag++) lean.completed(tag, { applied: true });
      for (let p = settled; p <= writes.length; p++) {
        const img = { bytes: image(writes, p), sectorSize: SECTOR };
        expect(checkPrefix(full, img, ctx)).toBeNull();
        expect(checkPrefix(lean, img, ctx)).toBeNull();
      }
      const end = { bytes: image(writes, writes.length), sectorSize: SECTOR };
      expect(checkLatest(lean, end, ctx)).toBeNull();
      if (writes.length >= 2) {
        // The last write lost at the end is found, exactly as the full history finds it.
        const lost = { bytes: image(writes, writes.length - 1), sectorSize: SECTOR };
        const a = checkLatest(full, lost, ctx);
        const b = checkLatest(lean, lost, ctx);
        expect(b?.lba).toBe(a?.lba);
        expect(b?.seq).toBe(a?.seq);
      }
    }), { numRuns: 300 });
  });

  it('a copy holding an older write than one already applied everywhere is still no prefix where other sectors pin the prefix', () => {
    const h = new WriteHistory();
    const writes: [number, number][] = [[0, 2], [0, 2], [8, 2]];
    writes.forEach(([lba, count], i) => h.add(i + 1, lba, count));
    for (let tag = 1; tag <= 3; tag++) h.completed(tag, { applied: true });
    // Sectors 0-1 hold write 1 (write 2 lost), sectors 8-9 hold write 3: no prefix explains both.
    const img = image(writes, 3);
    img.set(writeData(1, 0, 1, 0, 2, SECTOR), 0);
    expect(checkPrefix(h, { bytes: img, sectorSize: SECTOR }, ctx)).toMatchObject({ invariant: 'write-order', lba: 8 });
  });
});
