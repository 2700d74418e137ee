import { describe, expect, it } from 'vitest';
import { checkLatest, checkPrefix, firstDifference } from '../../../hil/checker/content-checks.ts';
import { WriteHistory } from '../../../hil/checker/history.ts';
import { writeData } from '../../../hil/workload/data.ts';

const SECTOR = 512;
const SECTORS = 64;
const ctx = { node: 'B', lun: 0, writer: 1, tMs: 5 };

/** Writes as (tag, lba, count); `apply(n)` builds the image after the first n of them. */
function scenario(writes: [number, number, number][]) {
  const history = new WriteHistory();
  for (const [tag, lba, count] of writes) history.add(tag, lba, count);
  const apply = (n: number, skip: number[] = []): Uint8Array => {
    const img = new Uint8Array(SECTORS * SECTOR);
    writes.slice(0, n).forEach(([tag, lba, count], i) => {
      if (!skip.includes(i)) img.set(writeData(1, 0, tag, lba, count, SECTOR), lba * SECTOR);
    });
    return img;
  };
  return { history, apply };
}

const writes: [number, number, number][] = [[1, 0, 8], [2, 8, 8], [3, 4, 8], [4, 0, 4], [5, 16, 8]];

describe('content checks', () => {
  it('accepts every prefix of the source history (write-order fidelity)', () => {
    const { history, apply } = scenario(writes);
    for (let n = 0; n <= writes.length; n++) expect(checkPrefix(history, { bytes: apply(n), sectorSize: SECTOR }, ctx)).toBeNull();
  });

  it('rejects an image that is no prefix: a later write applied while an earlier one is missing', () => {
    const { history, apply } = scenario(writes);
    // Writes 0..3 applied except #2 (tag 3), which overlaps #3's neighbours: no prefix explains it.
    const v = checkPrefix(history, { bytes: apply(4, [2]), sectorSize: SECTOR }, ctx);
    expect(v?.invariant).toBe('write-order');
    expect(v?.lun).toBe(0);
    expect(v?.tMs).toBe(5);
  });

  it('rejects torn or foreign data as data-intact', () => {
    const { history, apply } = scenario(writes);
    const torn = apply(5);
    torn[10 * SECTOR + 100]! ^= 1;
    expect(checkPrefix(history, { bytes: torn, sectorSize: SECTOR }, ctx)).toMatchObject({ invariant: 'data-intact', lba: 10 });
    const foreign = apply(5);
    foreign.set(writeData(2, 0, 1, 30, 1, SECTOR), 30 * SECTOR);
    expect(checkLatest(history, { bytes: foreign, sectorSize: SECTOR }, ctx)).toBeNull(); // sector 30 was never written by this host
    foreign.set(writeData(2, 0, 1, 2, 1, SECTOR), 2 * SECTOR);
    expect(checkLatest(history, { bytes: foreign, sectorSize: SECTOR }, ctx)).toMatchObject({ invariant: 'data-intact', lba: 2 });
  });

  it('at the end, requires the last write to every sector (a lost write is reported)', () => {
    const { history, apply } = scenario(writes);
    expect(checkLatest(history, { bytes: apply(5), sectorSize: SECTOR }, ctx)).toBeNull();
    const v = checkLatest(history, { bytes: apply(5, [4]), sectorSize: SECTOR }, ctx);
    expect(v).toMatchObject({ invariant: 'data-intact', lba: 16, seq: 5 });
    expect(checkLatest(history, { bytes: apply(4), sectorSize: SECTOR }, ctx)?.message).toMatch(/last write to it was #4/);
  });

  it('ignores sectors a failed write touched (they may hold either version)', () => {
    const { history, apply } = scenario(writes);
    history.failed.add(5);
    expect(checkLatest(history, { bytes: apply(4), sectorSize: SECTOR }, ctx)).toBeNull();
  });

  it('finds the first differing sector between two images', () => {
    const a = new Uint8Array(8 * SECTOR);
    const b = a.slice();
    expect(firstDifference({ bytes: a, sectorSize: SECTOR }, { bytes: b, sectorSize: SECTOR })).toBe(-1);
    b[5 * SECTOR + 7] = 1;
    expect(firstDifference({ bytes: a, sectorSize: SECTOR }, { bytes: b, sectorSize: SECTOR })).toBe(5);
  });
});
