import { describe, expect, it } from 'vitest';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { withPlantedBugs, type PlantedBug } from '../../support/planted-bugs.ts';

/**
 * The checker must be able to fail (docs/design.md 2.7, docs/conventions.md 10): each deliberately broken firmware
 * below runs end to end, and the checker must name the invariant it breaks. The same runs with
 * correct firmware are consistent, so it is the bug that is caught, not the setting.
 */
const base: EmulateOptions = {
  ...DEFAULT_EMULATE, writes: 400, queueDepth: 8,
  sourceVolume: { kind: 'mem', bytes: 8 << 20, sectorSize: 512 }, targetVolume: { kind: 'mem', bytes: 8 << 20, sectorSize: 512 },
};

const cases: { mutation: PlantedBug; invariant: string; options: Partial<EmulateOptions> }[] = [
  { mutation: 'target-applies-without-lock', invariant: 'lock-held', options: { lockContentionPerMillion: 200_000, lockRegionSectors: 8 } },
  { mutation: 'source-drops-entry-before-ack', invariant: 'rollback-after-confirm', options: { faults: parseLinkFaults('drop=0.02:WRITE') } },
  // The bug only shows when the target's disk is slower than the way back to the source.
  { mutation: 'target-acks-before-write', invariant: 'ack-after-apply', options: { diskFaults: [{ kind: 'slow', side: 'target', member: 0, factor: 100 }] } },
  { mutation: 'target-reorders-writes', invariant: 'write-order', options: { mode: 'async', writes: 3000, checkpointEveryMs: 2 } },
  { mutation: 'source-ignores-naks-and-timeouts', invariant: 'liveness', options: { faults: parseLinkFaults('drop=0.05:WRITE'), healMs: 500 } },
  // A cut long enough to be declared down (1 s interruption timeout), then heartbeats come back.
  { mutation: 'supervisor-never-declares-down', invariant: 'link-detect', options: { faults: parseLinkFaults('silent=10ms+2000ms') } },
  { mutation: 'supervisor-skips-probation', invariant: 'probation', options: { faults: parseLinkFaults('silent=10ms+2000ms') } },
];

describe('the checker catches broken firmware', () => {
  it.each(cases)('$mutation breaks $invariant', async ({ mutation, invariant, options }) => {
    const healthy = await runEmulation({ ...base, ...options });
    expect(healthy.violations, `correct firmware under the same setting: ${healthy.reproduce}`).toEqual([]);
    const broken = await withPlantedBugs([mutation], () => runEmulation({ ...base, ...options }));
    expect(broken.verdict).toBe('inconsistent');
    expect(broken.violations.map((v) => v.invariant)).toContain(invariant);
    const v = broken.violations.find((x) => x.invariant === invariant)!;
    expect(v.tMs).toBeGreaterThanOrEqual(0);
    expect(v.message.length).toBeGreaterThan(10);
  });
});
