import { describe, expect, it } from 'vitest';
import { parseVolumeSpec } from '../../../host/disks/volume-spec.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { parseDiskFaults } from '../../../hil/faults/disk-fault-plan.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { UsageError } from '../../../hil/plan-error.ts';
import { withPlantedBugs } from '../../support/planted-bugs.ts';

const mem = parseVolumeSpec('mem:8MiB');
const base: EmulateOptions = { ...DEFAULT_EMULATE, sourceVolume: mem, targetVolume: mem };
const run = (o: Partial<EmulateOptions>) => runEmulation({ ...base, ...o });

describe('the fault phase has a maximum (--fault-phase-max-ms); reaching it stops the hosts, it is no violation', () => {
  it('a workload longer than the fault phase: the hosts stop issuing, healing drains what was issued, the report says so', async () => {
    const r = await run({ mode: 'sync', queueDepth: 1, writes: 100_000, faultPhaseMsMax: 200 });
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.writes.requested).toBe(100_000);
    expect(r.writes.issued).toBeGreaterThan(10);
    expect(r.writes.issued).toBeLessThan(1_000);
    expect(r.writes.acknowledged).toBe(r.writes.issued);
    expect(r.faultPhaseMs).toBe(200);
    expect(r.notes.join('\n')).toMatch(/fault phase reached its maximum of 200 ms \(--fault-phase-max-ms\): the hosts stopped issuing after \d+ of 100000 writes/);
    expect(r.reproduce).toContain('--fault-phase-max-ms 200');
  });

  it('a long round trip: each write takes a second, the cap ends the phase, the run is still consistent', async () => {
    const r = await run({ rttMs: 1000, queueDepth: 1, writes: 100, faultPhaseMsMax: 5_000 });
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.writes.issued).toBeLessThan(100);
    expect(r.notes).toHaveLength(1);
  });

  it('firmware that livelocks still fails liveness in the heal phase, and the content checks are skipped, not misreported', async () => {
    const r = await withPlantedBugs(['source-ignores-naks-and-timeouts'], () => run({
      writes: 400, faultPhaseMsMax: 100, healMs: 300, faults: parseLinkFaults('drop=0.05:WRITE'),
    }));
    const invariants = r.violations.map((v) => v.invariant);
    expect(invariants).toEqual(['liveness']);
    expect(r.violations[0]!.message).toMatch(/content checks \(mirror-identical, data-intact\) and the arrays' final check were skipped/);
    expect(r.volumes.every((v) => !v.checked)).toBe(true);
  });

  it.each([
    ['a member failure', { diskFaults: parseDiskFaults('fail=source:0@700ms') }, /fail=source:0@700ms is at 700 ms, after the fault phase's maximum of 500 ms/],
    ['a partition that ends late', { faults: parseLinkFaults('partition=450ms+100ms') }, /partition=450ms\+100ms ends at 550 ms, after the fault phase's maximum of 500 ms/],
    ['a bandwidth change', { faults: parseLinkFaults('bandwidth=10@600ms') }, /bandwidth=10@600ms is at 600 ms/],
    ['drawn partitions that may end late', { faults: parseLinkFaults('partition=8') }, /partition=8 \(drawn from the seed\) may end as late as \d+ ms/],
  ] as const)('a timed fault after the maximum is a usage error: %s', async (_title, o, message) => {
    const err = await run({ ...o, faultPhaseMsMax: 500 }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toMatch(/raise --fault-phase-max-ms or move the fault earlier/);
  });
});
