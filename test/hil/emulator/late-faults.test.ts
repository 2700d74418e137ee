import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { FaultyDisk } from '../../../host/disks/faulty.ts';
import { parseVolumeSpec } from '../../../host/disks/volume-spec.ts';
import { SeededRandom } from '../../../host/random.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { DEFAULT_TOPOLOGY } from '../../../hil/emulator/topology.ts';
import { HOT_SPARES_PER_VOLUME, VolumeSet } from '../../../hil/emulator/volumes.ts';
import { parseDiskFaults, type DiskFaultItem } from '../../../hil/faults/disk-fault-plan.ts';

const mem = parseVolumeSpec('mem:4MiB');
/** A short workload: the hosts are done within a few ms, long before the late failures below. */
const short: EmulateOptions = { ...DEFAULT_EMULATE, writes: 60, sourceVolume: mem, targetVolume: mem };
const run = (o: Partial<EmulateOptions>) => runEmulation({ ...short, ...o });

describe('a member failure after the workload ended is still rebuilt (no false liveness, no degraded end)', () => {
  it.each([
    ['source raid5, soon after the workload', { sourceVolume: parseVolumeSpec('raid5:4x1MiB:chunk=16KiB'), diskFaults: parseDiskFaults('fail=source:1@50ms') }, 'A/lun0', 50],
    ['source raid5, long after', { sourceVolume: parseVolumeSpec('raid5:4x1MiB:chunk=16KiB'), diskFaults: parseDiskFaults('fail=source:1@1000ms') }, 'A/lun0', 1000],
    ['target raid1, long after', { targetVolume: parseVolumeSpec('raid1:2x4MiB'), diskFaults: parseDiskFaults('fail=target:1@400ms') }, 'B/lun0', 400],
    ['target raid5, long after', { targetVolume: parseVolumeSpec('raid5:3x2MiB:chunk=16KiB'), diskFaults: parseDiskFaults('fail=target:0@700ms') }, 'B/lun0', 700],
  ] as const)('%s', async (_title, o, volume, atMs) => {
    const r = await run(o);
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.workloadMs).toBeLessThan(atMs);
    const v = r.volumes.find((x) => x.name === volume)!;
    expect(v).toMatchObject({ state: 'optimal', mismatches: 0, rebuilds: 1, checked: true });
    // The fault phase lasted until the failure happened and the rebuild onto the spare finished.
    expect(r.faultPhaseMs).toBeGreaterThan(atMs);
  });

  it('both sides fail late, in a bidirectional run', async () => {
    const r = await run({
      bidirectional: true, sourceVolume: parseVolumeSpec('raid1:2x4MiB'), targetVolume: parseVolumeSpec('raid5:3x2MiB:chunk=16KiB'),
      diskFaults: parseDiskFaults('fail=source:0@300ms,fail=target:2@600ms'),
    });
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.volumes.filter((v) => v.name.endsWith('lun0')).map((v) => [v.name, v.state, v.rebuilds])).toEqual([['A/lun0', 'optimal', 1], ['B/lun0', 'optimal', 1]]);
  });
});

describe('disk faults address member slots; hot spares are disks like the members they replace', () => {
  // Built as data: the --disk-faults parser may refuse one slot failing twice (a plan-syntax
  // matter); the volume set gives it a meaning: the second failure strikes the replacement.
  const fail = (member: number, atMs: number): DiskFaultItem => ({ kind: 'fail', side: 'source', member, atMs });

  /** A raid1 source volume set with the given fault plan, struck and supervised until nothing is pending. */
  async function settle(plan: DiskFaultItem[], untilMs: number) {
    const clock = new VirtualClock();
    const spec = parseVolumeSpec('raid1:2x256KiB');
    const volumes = await VolumeSet.build({ source: spec, target: parseVolumeSpec('mem:256KiB') }, false, plan, {
      clock, random: new SeededRandom(1).fork('volumes'), service: DEFAULT_TOPOLOGY.diskService,
    });
    volumes.strike();
    while (clock.now() < untilMs || volumes.pending) {
      volumes.supervise();
      await clock.run({ untilMs: clock.now() + 1 });
    }
    return { clock, volumes, array: (volumes.device('A/lun0').inner as unknown as { member(i: number): unknown; memberState(i: number): string; state: string }) };
  }

  it('a second fail of one slot fails the spare that replaced the first disk, and it is rebuilt again', async () => {
    const { volumes, array } = await settle([fail(0, 5), fail(0, 200)], 250);
    const [report] = await volumes.report(<T>(p: Promise<T>) => p, false);
    expect(report).toMatchObject({ name: 'A/lun0', state: 'optimal', rebuilds: 2 });
    const slot0 = array.member(0) as FaultyDisk;
    expect(slot0).toBeInstanceOf(FaultyDisk);
    expect(slot0.name).toBe('A/lun0.spare1');
    expect(slot0.failed).toBe(false);
    await volumes.close();
  });

  it('a spare has the service time of the member it replaces (a rebuild and a write take time)', async () => {
    // Both original members fail in turn: afterwards the array consists of spares only.
    const { clock, volumes } = await settle(parseDiskFaults('fail=source:0@5ms,fail=source:1@200ms'), 250);
    const dev = volumes.device('A/lun0');
    const start = clock.now();
    let doneAt = -1;
    void dev.write(0, new Uint8Array(4096).fill(7)).then(() => (doneAt = clock.now()));
    await clock.run({ until: () => doneAt >= 0 });
    const service = DEFAULT_TOPOLOGY.diskService;
    expect(doneAt - start).toBeCloseTo(service.fixedMs! + service.perByteMs! * 4096, 9);
    await volumes.close();
  });

  it(`spares run out after ${HOT_SPARES_PER_VOLUME} rebuilds: the array then stays degraded and the run flags it`, async () => {
    const fails = Array.from({ length: HOT_SPARES_PER_VOLUME + 1 }, (_, i) => fail(1, 10 + i * 150));
    const r = await run({ sourceVolume: parseVolumeSpec('raid1:2x256KiB'), targetVolume: parseVolumeSpec('mem:256KiB'), diskFaults: fails });
    const v = r.volumes.find((x) => x.name === 'A/lun0')!;
    expect(v).toMatchObject({ state: 'degraded', rebuilds: HOT_SPARES_PER_VOLUME });
    expect(r.violations.map((x) => x.invariant)).toEqual(['volume-redundancy']);
  });
});
