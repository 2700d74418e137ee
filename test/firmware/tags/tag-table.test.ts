import { describe, expect, it } from 'vitest';
import { compareTables, mergeRanges, rangeSectors, TagTable, type TagEntry } from '../../../firmware/tags/tag-table.ts';

const e = (tag: number, lba: number, count = 8): TagEntry => ({ tag, lun: 0, lba, count });

describe('TagTable', () => {
  it('holds entries by tag up to its bound, then marks itself overflowed and keeps what it had', () => {
    const t = new TagTable(2);
    expect(t.add(e(1, 0))).toBe(true);
    expect(t.add(e(2, 8))).toBe(true);
    expect(t.add(e(1, 16))).toBe(true); // replacing a held tag needs no room
    expect(t.get(1)?.lba).toBe(16);
    expect(t.overflowed).toBe(false);
    expect(t.add(e(3, 24))).toBe(false);
    expect(t.overflowed).toBe(true);
    expect([...t.entries()].map((x) => x.tag)).toEqual([1, 2]);
    expect(t.delete(2)).toBe(true);
    expect(t.delete(2)).toBe(false);
    t.clear();
    expect(t.size).toBe(0);
    expect(t.overflowed).toBe(false);
  });

  it('counts its overflows, and forgets one only if none came after the resync that settles it began', () => {
    const t = new TagTable(1);
    t.add(e(1, 0));
    expect(t.add(e(2, 8))).toBe(false);
    const atStart = t.overflows;
    expect(atStart).toBe(1);
    t.add(e(3, 16)); // full again while the resync runs
    t.forgetOverflowBefore(atStart);
    expect(t.overflowed).toBe(true);
    const second = t.overflows;
    t.delete(1);
    t.forgetOverflowBefore(second);
    expect(t.overflowed).toBe(false);
    t.markOverflowed();
    expect(t.overflows).toBe(3);
  });

  it('refuses a bound that is not a positive integer', () => {
    expect(() => new TagTable(0)).toThrow(/allowed 1 or more/);
  });
});

describe('compareTables', () => {
  it('matches tags held by both sides and returns the entries only one side holds, from either side', () => {
    const c = compareTables([e(1, 0), e(2, 8), e(3, 16)], [e(2, 8), e(4, 32)]);
    expect(c.compared).toBe(5);
    expect(c.matched).toEqual([2]);
    expect(c.unmatched.map((x) => x.tag).sort()).toEqual([1, 3, 4]);
  });
});

describe('mergeRanges', () => {
  it('sorts, merges overlapping and adjacent ranges, and counts sectors once', () => {
    const r = mergeRanges([e(1, 16, 8), e(2, 0, 8), e(3, 4, 8), e(4, 40, 8), e(5, 24, 8)]);
    expect(r).toEqual([[0, 12], [16, 16], [40, 8]]);
    expect(rangeSectors(r)).toBe(36);
    expect(mergeRanges([])).toEqual([]);
  });
});
