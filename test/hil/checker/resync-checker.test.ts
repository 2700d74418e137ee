import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SectorRange, TelemetryEvent } from '../../../firmware/telemetry/events.ts';
import { ResyncChecker, type ResyncMirror } from '../../../hil/checker/resync-checker.ts';
import { SectorSet } from '../../../hil/checker/sector-set.ts';
import type { Violation } from '../../../hil/checker/violation.ts';

describe('SectorSet', () => {
  it('agrees with a plain set of sectors under merging and deleting', () => {
    const range = fc.tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 30 }));
    fc.assert(fc.property(fc.array(range, { maxLength: 12 }), fc.array(range, { maxLength: 8 }), (adds, dels) => {
      const set = SectorSet.of(adds as SectorRange[]);
      const plain = new Set<number>();
      for (const [l, c] of adds) for (let s = l; s < l + c; s++) plain.add(s);
      for (const [l, c] of dels) {
        set.delete(l, c);
        for (let s = l; s < l + c; s++) plain.delete(s);
      }
      expect(set.size).toBe(plain.size);
      const flat = set.ranges().flatMap(([l, c]) => Array.from({ length: c }, (_, i) => l + i));
      expect(flat).toEqual([...plain].sort((a, b) => a - b));
      for (const [l, c] of dels) {
        const missing = set.firstMissing(l, c + 1);
        const want = Array.from({ length: c + 1 }, (_, i) => l + i).find((s) => !plain.has(s)) ?? -1;
        expect(missing).toBe(want);
      }
    }));
  });
});

/** A mirror A -> B of LUN 0 whose copies differ where `diff` says (changed by the test as it goes). */
function rig(diff: SectorRange[] | null) {
  const state = { diff };
  const mirror: ResyncMirror = { source: 'A', target: 'B', lun: 0, sectorSize: 512, differing: () => state.diff };
  const inStream: [number, number][] = [];
  const violations: Violation[] = [];
  const checker = new ResyncChecker([mirror], { streamWrites: () => inStream }, (v) => violations.push(v));
  const start = (ranges: SectorRange[], o: { full?: boolean; resync?: number } = {}): void => checker.emit({
    kind: 'resync.start', t: 10, node: 'A', peer: 'B', lun: 0, resync: o.resync ?? 1, full: o.full === true, entriesCompared: 9, entriesMatched: 4,
    ranges, sectors: ranges.reduce((n, r) => n + r[1], 0),
  });
  const chunk = (lba: number, count: number, resync = 1): void => checker.emit({ kind: 'resync.chunk', t: 11, node: 'A', peer: 'B', lun: 0, resync, lba, count });
  const done = (resync = 1): void => checker.emit({ kind: 'resync.done', t: 12, node: 'A', peer: 'B', lun: 0, resync, sectorsCopied: 0, virtualMs: 2 });
  const emit = (e: TelemetryEvent): void => checker.emit(e);
  return { state, inStream, violations, checker, start, chunk, done, emit };
}

describe('resync-exact (docs/tag-tables.md, "What the checker checks")', () => {
  it('holds for a resync that names and copies exactly what differs, and adds up the figures', () => {
    const r = rig([[8, 8], [40, 4]]);
    r.start([[8, 8], [40, 8]]);
    r.chunk(8, 8);
    r.chunk(40, 8);
    r.done();
    expect(r.violations).toEqual([]);
    expect(r.checker.totals).toEqual({
      runs: 1, fullRuns: 0, aborted: 0, bytesCopied: 16 * 512, bytesDivergent: 12 * 512, entriesCompared: 9, entriesMatched: 4, virtualMs: 2, unmeasured: 0,
    });
  });

  it('fails when a block that differs is named by no unmatched entry (a broken comparison)', () => {
    const r = rig([[8, 8], [40, 4]]);
    r.start([[8, 8]]);
    expect(r.violations).toHaveLength(1);
    expect(r.violations[0]).toMatchObject({ invariant: 'resync-exact', node: 'A', lun: 0, lba: 40 });
    expect(r.violations[0]!.message).toMatch(/LBA 40 differs between the copies and no write of the stream is changing it, but the resync does not name it \(it names 8 sectors in 1 ranges; 12 sectors differ\)/);
  });

  it('fails when a chunk copies blocks outside the ranges announced (more than the tables named), once per resync', () => {
    const r = rig([[8, 8]]);
    r.start([[8, 8]]);
    r.chunk(8, 16);
    r.chunk(30, 2);
    expect(r.violations.map((v) => [v.invariant, v.lba])).toEqual([['resync-exact', 16]]);
    expect(r.violations[0]!.message).toMatch(/copied \[8, \+16\), but LBA 16 lies outside the ranges it announced/);
  });

  it('fails when a resync finishes without having copied everything that differed', () => {
    const r = rig([[8, 8], [40, 4]]);
    r.start([[8, 8], [40, 4]]);
    r.chunk(8, 8);
    r.done();
    expect(r.violations.map((v) => [v.invariant, v.lba])).toEqual([['resync-exact', 40]]);
    expect(r.violations[0]!.message).toMatch(/finished without copying LBA 40 \(4 sectors in all\)/);
  });

  it('leaves out what a write of the stream is changing, and what a host write covered during the resync', () => {
    const r = rig([[8, 8], [40, 4], [64, 8]]);
    r.inStream.push([40, 4]);
    r.start([[8, 8]]);
    expect(r.violations.map((v) => v.lba)).toEqual([64]);
    expect(r.checker.totals.bytesDivergent).toBe(16 * 512);
    const s = rig([[8, 8], [64, 8]]);
    s.start([[8, 8], [64, 8]]);
    s.chunk(8, 8);
    s.emit({ kind: 'host.write', t: 11, node: 'A', tag: 7, lun: 0, lba: 64, count: 8 });
    s.done();
    expect(s.violations).toEqual([]);
    // A host write on the other controller, or another LUN, does not count.
    const t = rig([[64, 8]]);
    t.start([[64, 8]]);
    t.emit({ kind: 'host.write', t: 11, node: 'B', tag: 7, lun: 0, lba: 64, count: 8 });
    t.emit({ kind: 'host.write', t: 11, node: 'A', tag: 7, lun: 1, lba: 64, count: 8 });
    t.done();
    expect(t.violations.map((v) => v.lba)).toEqual([64]);
  });

  it('a full resync names the whole volume and is counted; an aborted one, or one a crash ended, owes nothing', () => {
    const r = rig([[8, 8]]);
    r.start([[0, 4096]], { full: true });
    r.emit({ kind: 'resync.abort', t: 11, node: 'A', peer: 'B', lun: 0, resync: 1, reason: 'link down' });
    r.done();
    r.start([[0, 4096]], { full: true, resync: 2 });
    r.emit({ kind: 'controller.crash', t: 11, node: 'A', power: false, downForMs: 5 });
    expect(r.violations).toEqual([]);
    expect(r.checker.totals).toMatchObject({ runs: 2, fullRuns: 2, aborted: 2 });
  });

  it('counts a resync whose copies cannot be read at an instant as unmeasured, and still checks its chunks against its ranges', () => {
    const r = rig(null);
    r.start([[8, 8]]);
    r.chunk(8, 9);
    r.done();
    expect(r.checker.totals).toMatchObject({ unmeasured: 1, bytesDivergent: 0, bytesCopied: 9 * 512 });
    expect(r.violations.map((v) => v.lba)).toEqual([16]);
  });
});
