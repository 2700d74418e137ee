import { describe, expect, it } from 'vitest';
import { faultCount, shrinkFailure, steps } from '../../../hil/campaign/shrink.ts';
import type { Violation } from '../../../hil/checker/violation.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import type { EmulationReport } from '../../../hil/emulator/run.ts';
import { parseDiskFaults } from '../../../hil/faults/disk-fault-plan.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';

const v = (invariant: Violation['invariant']): Violation => ({ invariant, node: 'B', lun: 0, lba: 0, seq: 0, tMs: 0, message: '' });
const report = (violations: Violation[]) => ({ violations }) as unknown as EmulationReport;
const original: EmulateOptions = {
  ...DEFAULT_EMULATE, writes: 1000, queueDepth: 16, bidirectional: true, lockContentionPerMillion: 50_000,
  faults: parseLinkFaults('drop=0.02,corrupt=0.01:WRITE,partition=3'), diskFaults: parseDiskFaults('slow=target:0:8'),
};

describe('shrinking (fake runs: which candidates fail is given)', () => {
  it('keeps only what the failure needs: here, writes above 100 and the corrupt fault', async () => {
    const needs = (o: EmulateOptions) => o.writes > 100 && o.faults.corrupt.length > 0;
    const r = (await shrinkFailure(original, [v('data-intact')], { run: async (o) => report(needs(o) ? [v('data-intact')] : []), runsMax: 200 }))!;
    expect(r.options.faults.corrupt).toHaveLength(1);
    expect(faultCount(r.options)).toBe(1);
    expect(r.options.writes).toBeGreaterThan(100);
    expect(r.options.writes).toBeLessThan(130);
    expect([r.options.bidirectional, r.options.lockContentionPerMillion, r.options.queueDepth]).toEqual([false, 0, 1]);
    expect(r.options.faults.corrupt[0]!.perMillion).toBe(1); // weakened as far as it goes
    expect(r.reproduce).toMatch(/^npx mirrorlab emulate --seed 1 .*--faults corrupt=0\.000001:WRITE/);
  });

  it('a candidate that fails differently (another invariant) or cannot run is not taken', async () => {
    const r = (await shrinkFailure(original, [v('write-order')], {
      run: async (o) => {
        if (o.writes < 1000) throw new Error('cannot run');
        return report(faultCount(o) < faultCount(original) ? [v('liveness')] : [v('write-order')]);
      },
      runsMax: 200,
    }))!;
    // Fewer writes could not run, fewer faults failed another way: both stay; the rest was cut or weakened.
    expect([r.options.writes, faultCount(r.options)]).toEqual([original.writes, faultCount(original)]);
    expect(r.options.faults.drop[0]!.perMillion).toBeLessThan(original.faults.drop[0]!.perMillion);
    expect([r.options.bidirectional, r.options.queueDepth]).toEqual([false, 1]);
    expect(r.reproduce).toMatch(/--writes 1000/);
  });

  it('is bounded by its run budget, never by time', async () => {
    let calls = 0;
    const r = (await shrinkFailure(original, [v('data-intact')], { run: async () => (calls++, report([v('data-intact')])), runsMax: 7 }))!;
    expect([calls, r.runs]).toEqual([7, 7]);
    expect(await shrinkFailure(original, [], { run: async () => report([]) })).toBeNull();
  });

  it('proposes the biggest cuts first, and only candidates that differ', () => {
    const first = [...steps(original)].slice(0, 4);
    expect(first[0]!.writes).toBe(500);
    expect(faultCount(first[1]!)).toBe(0);
    expect(faultCount(first[2]!) + faultCount(first[3]!)).toBe(faultCount(original));
    const minimal = { ...DEFAULT_EMULATE, writes: 1, queueDepth: 1 };
    expect([...steps(minimal)]).toEqual([]);
  });
});
