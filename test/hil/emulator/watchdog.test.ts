import { describe, expect, it } from 'vitest';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import type { Topology } from '../../../hil/emulator/topology.ts';
import { describeControllerStatus, ProgressWatchdog, schedulerEventsBudget } from '../../../hil/emulator/watchdog.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { deadlockTarget, livelockTarget, runawayTarget } from '../../support/broken-firmware.ts';

const small: EmulateOptions = {
  ...DEFAULT_EMULATE, writes: 200, sourceVolume: { kind: 'mem', bytes: 8 << 20, sectorSize: 512 }, targetVolume: { kind: 'mem', bytes: 8 << 20, sectorSize: 512 },
};

/** Runs with a broken firmware; returns the report and how many scheduler events the run fired. */
async function runBroken(o: Partial<EmulateOptions>, brk: (t: Topology) => void) {
  let topo: Topology | null = null;
  const report = await runEmulation({ ...small, ...o }, { beforeStart: (t) => { topo = t; brk(t); } });
  return { report, events: (topo as Topology | null)!.clock.eventsRun };
}

describe('the progress watchdog ends runs that cannot finish', () => {
  it('a livelocking firmware (every WRITE NAKed) ends in liveness after --stall-ms of virtual time, naming states, logs and the last frames', async () => {
    const { report, events } = await runBroken({ stallMs: 2_000 }, livelockTarget);
    expect(report.verdict).toBe('inconsistent');
    const v = report.violations.find((x) => x.invariant === 'liveness');
    expect(v, JSON.stringify(report.violations)).toBeDefined();
    expect(v!.message).toMatch(/no host write completed and no log entry was confirmed for \d+ virtual ms/);
    expect(v!.message).toMatch(/A->B\.source\.state=[\w.]+/);
    expect(v!.message).toMatch(/source\.rollbackLog\.entries=\d+/);
    expect(v!.message).toMatch(/target\.commitLog\.entries=\d+/);
    expect(v!.message).toMatch(/last frames sent: t=[\d.]+ A->B \w+ seq \d+ \(retransmit\)/);
    expect(v!.message).toMatch(/A->B WRITE seq \d+ \(retransmit\)/);
    // Ended soon after the stall bound, far before the fault phase's 600 s cap.
    expect(report.virtualTimeMs).toBeLessThan(2_000 + 1_000);
    expect(events).toBeLessThan(2_000_000);
    expect(report.reproduce).toContain('--stall-ms 2000');
  });

  it('a deadlocking firmware (a target write that never completes) ends in liveness too', async () => {
    const { report, events } = await runBroken({ stallMs: 3_000 }, deadlockTarget);
    const v = report.violations.find((x) => x.invariant === 'liveness');
    expect(v, JSON.stringify(report.violations)).toBeDefined();
    expect(v!.message).toContain('--stall-ms');
    expect(report.virtualTimeMs).toBeLessThan(3_000 + 1_000);
    expect(events).toBeLessThan(1_000_000);
  });

  it('a runaway that never moves virtual time is ended by the scheduler-event budget', async () => {
    const { report, events } = await runBroken({ schedulerEventsMax: 100_000 }, runawayTarget);
    const v = report.violations.find((x) => x.invariant === 'liveness');
    expect(v, JSON.stringify(report.violations)).toBeDefined();
    expect(v!.message).toContain('budget of 100000 scheduler events');
    expect(events).toBeGreaterThanOrEqual(100_000);
    expect(events).toBeLessThan(100_000 + 10);
  });

  it('a long partition is no stall: stall time counts only while no fault is active', async () => {
    const r = await runEmulation({ ...small, stallMs: 500, healMs: 60_000, faults: parseLinkFaults('partition=5ms+3000ms') });
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.virtualTimeMs).toBeGreaterThan(3_000);
  });

  it('an array rebuild is the disks\' own work, not a stall of the firmware', async () => {
    const r = await runEmulation({
      ...small, writes: 50, stallMs: 20, targetVolume: { kind: 'raid1', members: 2, memberBytes: 64 << 20, sectorSize: 512, chunkBytes: 65_536 },
      diskFaults: [{ kind: 'fail', side: 'target', member: 1, atMs: 1 }],
    });
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.volumes.find((v) => v.name === 'B/lun0')!.rebuilds).toBe(1);
    expect(r.virtualTimeMs).toBeGreaterThan(40);
  });

  it('the same stall without the fault being reported active is a liveness violation (the adapter matters)', () => {
    const faults = { faultActive: false };
    const dog = new ProgressWatchdog({ stallMs: 100, eventsBudget: 1e9, faults });
    expect(dog.sample({ nowMs: 0, progress: 1, pending: true, eventsRun: 0 })).toBeNull();
    faults.faultActive = true;
    expect(dog.sample({ nowMs: 60, progress: 1, pending: true, eventsRun: 10 })).toBeNull();
    expect(dog.sample({ nowMs: 200, progress: 1, pending: true, eventsRun: 20 })).toBeNull();
    faults.faultActive = false;
    // The slice that ended the fault does not count; the next two do.
    expect(dog.sample({ nowMs: 260, progress: 1, pending: true, eventsRun: 30 })).toBeNull();
    expect(dog.sample({ nowMs: 320, progress: 1, pending: true, eventsRun: 40 })).toBeNull();
    expect(dog.sample({ nowMs: 380, progress: 1, pending: true, eventsRun: 50 })).toMatchObject({ kind: 'stall', stalledMs: 120 });
  });

  it('progress or nothing pending resets the stall; the event budget is checked first', () => {
    const dog = new ProgressWatchdog({ stallMs: 100, eventsBudget: 1_000, faults: { faultActive: false } });
    expect(dog.sample({ nowMs: 0, progress: 0, pending: true, eventsRun: 0 })).toBeNull();
    expect(dog.sample({ nowMs: 90, progress: 0, pending: true, eventsRun: 1 })).toBeNull();
    expect(dog.sample({ nowMs: 180, progress: 1, pending: true, eventsRun: 2 })).toBeNull();
    expect(dog.sample({ nowMs: 270, progress: 1, pending: false, eventsRun: 3 })).toBeNull();
    expect(dog.sample({ nowMs: 360, progress: 1, pending: true, eventsRun: 4 })).toBeNull();
    expect(dog.sample({ nowMs: 460, progress: 1, pending: true, eventsRun: 1_000 })).toMatchObject({ kind: 'events', budget: 1_000 });
  });

  it('the budget scales with the workload and the planned faults', () => {
    expect(schedulerEventsBudget({ operations: 0, timedFaultsMs: 0 })).toBe(5_000_000);
    expect(schedulerEventsBudget({ operations: 1_000, timedFaultsMs: 10 })).toBe(5_000_000 + 2_000_000 + 10_000);
  });

  it('chart states and log depths are read from any status shape', () => {
    const fake = { name: 'X', status: () => [{ peer: 'Y', supervisor: { state: 'probation', link: { connState: 'open' } }, queue: { entries: 4, counters: { state: 'hidden' } } }] };
    expect(describeControllerStatus(fake as never)).toBe('X->Y.supervisor.state=probation X->Y.supervisor.link.connState=open X->Y.queue.entries=4');
  });
});
