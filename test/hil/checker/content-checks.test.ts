import { describe, expect, it } from 'vitest';
import { BLANK_BASELINE, PrefixCheck, checkLatest, checkPrefix, firstDifference, sectorFingerprint } from '../../../hil/checker/content-checks.ts';
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
    expect(checkLatest(history, { bytes: apply(4), sectorSize: SECTOR }, ctx)?.message).toMatch(/last write to it was tag 5/);
  });

  it('ignores sectors a failed write touched (they may hold either version)', () => {
    const { history, apply } = scenario(writes);
    history.markFailed(5);
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

describe('content checks in pieces, and against what the volume held before the run', () => {
  const img = (bytes: Uint8Array, firstLba = 0) => ({ bytes, sectorSize: SECTOR, firstLba });

  it('PrefixCheck fed piece by piece decides as the whole-image check does, at the same LBA', () => {
    const { history, apply } = scenario(writes);
    for (let n = 0; n <= writes.length; n++) {
      for (const skip of [[], [2], [0]]) {
        const whole = apply(n, skip);
        const expected = checkPrefix(history, img(whole), ctx);
        const check = new PrefixCheck(history, ctx);
        let got = null;
        for (let lba = 0; lba < SECTORS && !got; lba += 5) got = check.feed(img(whole.slice(lba * SECTOR, Math.min(SECTORS, lba + 5) * SECTOR), lba));
        expect(got?.lba, `n=${n} skip=${skip}`).toBe(expected?.lba);
        expect(got?.invariant).toBe(expected?.invariant);
      }
    }
  });

  it('checkLatest on a piece looks only at its sectors, at their own LBAs', () => {
    const { history, apply } = scenario(writes);
    const bytes = apply(5, [4]); // write #4 (sectors 16..23) missing
    expect(checkLatest(history, img(bytes.slice(0, 16 * SECTOR)), ctx)).toBeNull();
    expect(checkLatest(history, img(bytes.slice(16 * SECTOR, 32 * SECTOR), 16), ctx)).toMatchObject({ lba: 16, seq: 5 });
  });

  it('with a baseline, an untouched sector must hold what it held before: zeros on a blank volume', () => {
    const { history, apply } = scenario(writes);
    const bytes = apply(5);
    expect(checkLatest(history, img(bytes), ctx, BLANK_BASELINE)).toBeNull();
    // A write that landed where no write went (sector 40): the data is valid, the place is not.
    bytes.set(writeData(1, 0, 2, 40, 1, SECTOR), 40 * SECTOR);
    const v = checkLatest(history, img(bytes), ctx, BLANK_BASELINE);
    expect(v).toMatchObject({ invariant: 'data-intact', lba: 40, seq: 2 });
    expect(v?.message).toMatch(/no write of this run covered this sector, so it should hold zeros, but it holds a sector of write tag 2/);
    expect(checkLatest(history, img(bytes), ctx)).toBeNull(); // without a baseline only written sectors are looked at
  });

  it('with a baseline of pre-existing data (an image reused from an earlier run), old data that stayed is fine, changed data is not', () => {
    const { history, apply } = scenario(writes);
    const before = new Uint8Array(SECTORS * SECTOR);
    before.set(writeData(1, 0, 3, 50, 4, SECTOR), 50 * SECTOR); // an earlier run's tag 3, where this run's tag 3 never went
    const fingerprints = Array.from({ length: SECTORS }, (_, lba) => sectorFingerprint(before, lba * SECTOR, SECTOR));
    const baseline = { expected: (lba: number) => (lba >= 48 ? fingerprints[lba] : null) };
    const now = apply(5);
    now.set(before.subarray(48 * SECTOR), 48 * SECTOR);
    expect(checkLatest(history, img(now), ctx, baseline)).toBeNull();
    now[51 * SECTOR + 30]! ^= 4;
    expect(checkLatest(history, img(now), ctx, baseline)).toMatchObject({ invariant: 'data-intact', lba: 51 });
    expect(checkLatest(history, img(now), ctx, { expected: () => undefined })).toBeNull(); // unknown: not checked
  });

  it('firstDifference reports the LBA within the volume for a piece', () => {
    const a = new Uint8Array(4 * SECTOR);
    const b = a.slice();
    b[2 * SECTOR] = 9;
    expect(firstDifference(img(a, 1000), img(b, 1000))).toBe(1002);
    expect(firstDifference(img(a, 1000), img(a.slice(), 1000))).toBe(-1);
  });

  it('WriteHistory.writtenSectors stays sorted as writes keep coming (merged incrementally)', () => {
    const h = new WriteHistory();
    const model = new Set<number>();
    let seed = 7;
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 50; i++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        const lba = seed % 5000;
        h.add(round * 50 + i + 1, lba, 3);
        for (let s = lba; s < lba + 3; s++) model.add(s);
      }
      expect(h.writtenSectors()).toEqual([...model].sort((x, y) => x - y));
    }
  });
});
