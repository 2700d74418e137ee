import { describe, expect, it } from 'vitest';
import { parseVolumeSpec } from '../../../host/disks/volume-spec.ts';
import { SeededRandom } from '../../../host/random.ts';
import { CheckpointSchedule, WRITE_ORDER_CHECKPOINTS_MAX } from '../../../hil/emulator/checkpoints.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { withPlantedBugs } from '../../support/planted-bugs.ts';

const mem = parseVolumeSpec('mem:8MiB');
const run = (o: Partial<EmulateOptions>) => runEmulation({ ...DEFAULT_EMULATE, mode: 'async', sourceVolume: mem, targetVolume: mem, ...o });

/** The checkpoints a schedule takes over `phaseMs`, polled every millisecond, with the link healing at `healsMs`. */
function simulate(phaseMs: number, healsMs: number[] = [], seed = 1): number[] {
  const s = new CheckpointSchedule(20, new SeededRandom(seed).fork('checkpoints'));
  for (let t = 1; t <= phaseMs; t++) if (s.due(t, healsMs.includes(t))) s.taken(t);
  return s.takenMs;
}

describe('write-order checkpoints are spread over the whole fault phase, bounded in number', () => {
  it('a long fault phase: checkpoints early and late, never more than the limit', () => {
    const taken = simulate(600_000);
    expect(taken.length).toBeLessThanOrEqual(WRITE_ORDER_CHECKPOINTS_MAX);
    expect(taken.length).toBeGreaterThan(20);
    expect(taken[0]).toBeLessThan(40);
    expect(taken[taken.length - 1]).toBeGreaterThan(300_000);
    // Each gap is about a quarter longer than the one before (drawn between half and 1.5 times its mean).
    const gaps = taken.slice(1).map((t, i) => t - taken[i]!);
    expect(gaps[gaps.length - 1]! > gaps[0]! * 50).toBe(true);
  });

  it('a checkpoint is taken right after each partition heals, and seeded times differ by seed', () => {
    const taken = simulate(2_000, [333, 1_234]);
    expect(taken).toContain(333);
    expect(taken).toContain(1_234);
    expect(simulate(2_000, [], 2)).not.toEqual(simulate(2_000, [], 1));
  });

  it('the budget holds even with a partition heal every millisecond', () => {
    const taken = simulate(1_000, Array.from({ length: 1_000 }, (_, i) => i + 1));
    expect(taken).toHaveLength(WRITE_ORDER_CHECKPOINTS_MAX);
  });

  it('end to end: in an async run lasting over a second, checkpoints occur late, and right after the partition heals', async () => {
    const r = await run({ writes: 3_000, faults: parseLinkFaults('partition=900ms+100ms,drop=0.01') });
    expect(r.violations, r.reproduce).toEqual([]);
    const cp = r.writeOrderCheckpointsMs;
    expect(r.faultPhaseMs).toBeGreaterThanOrEqual(1_000);
    expect(cp.length).toBeLessThanOrEqual(WRITE_ORDER_CHECKPOINTS_MAX);
    expect(cp.some((t) => t >= 1_000 && t < 1_000.5)).toBe(true); // the heal at 1000 ms
    expect(cp.filter((t) => t > 500).length).toBeGreaterThan(1);
  });

  it('the late checkpoints catch a reordering target the early ones would not see', async () => {
    // Nothing reaches the target before the partition heals at 500 ms: the reordering only shows
    // after that (eight checkpoints 20 ms apart would all have come and gone).
    const o: Partial<EmulateOptions> = { writes: 3_000, faults: parseLinkFaults('partition=0ms+500ms') };
    const healthy = await run(o);
    expect(healthy.violations, healthy.reproduce).toEqual([]);
    const broken = await withPlantedBugs(['target-reorders-writes'], () => run(o));
    const v = broken.violations.find((x) => x.invariant === 'write-order');
    expect(v, broken.reproduce).toBeDefined();
    expect(v!.tMs).toBeGreaterThan(500);
  });
});
