import { describe, expect, it } from 'vitest';
import { DeviceFailedError } from '../../../firmware/ports/block-device.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { ArrayFailedError, ArrayStoppedError } from '../../../host/disks/raid/errors.ts';
import { Raid1 } from '../../../host/disks/raid/raid1.ts';
import type { RebuildProgress } from '../../../host/disks/raid/types.ts';
import { pattern, rejectionOf, runUntilSettled } from './helpers.ts';
import { makeDisks } from './raid-fixtures.ts';

const SS = 512;

function setup(n = 2, sectors = 256) {
  const clock = new VirtualClock();
  const disks = makeDisks(clock, n, SS, sectors, { service: { fixedMs: 0.1 } });
  const array = new Raid1({ name: 'r1', members: disks.faulty, clock });
  const run = <T>(p: Promise<T>) => runUntilSettled(clock, p);
  return { clock, disks, array, run };
}

describe('Raid1', () => {
  it('goes degraded when a member fails and serves everything from the other', async () => {
    const { disks, array, run } = setup();
    await run(array.write(0, pattern(1, 64 * SS)));
    disks.faulty[0]!.fail();
    expect(await run(array.read(0, 64))).toEqual(pattern(1, 64 * SS));
    expect(array.state).toBe('degraded');
    expect(array.memberState(0)).toBe('failed');
    await run(array.write(64, pattern(2, SS)));
    expect(disks.inner[1]!.peek(64, 1)).toEqual(pattern(2, SS));
  });

  it('fails once the last member is gone, with ML_ERR_RAID_FAILED, a DeviceFailedError', async () => {
    const { clock, disks, array, run } = setup();
    await run(array.write(0, pattern(1, SS)));
    disks.faulty.forEach((d) => d.fail());
    const error = await rejectionOf(clock, array.read(0, 1));
    expect(error).toBeInstanceOf(ArrayFailedError);
    expect(error).toBeInstanceOf(DeviceFailedError);
    expect((error as ArrayFailedError).code).toBe('ML_ERR_RAID_FAILED');
    expect(array.state).toBe('failed');
  });

  it('repairs a member\'s bad sector from the mirror on read, as md does', async () => {
    const { disks, array, run } = setup();
    await run(array.write(0, pattern(3, 16 * SS)));
    disks.faulty[0]!.apply({ badSectors: [5] });
    expect(await run(array.read(0, 16))).toEqual(pattern(3, 16 * SS));
    expect(disks.faulty[0]!.plan()).toEqual({}); // the rewrite remapped it
    expect(array.state).toBe('optimal');
  });

  it('serves a range from both mirrors when each has a different bad sector', async () => {
    const { disks, array, run } = setup();
    await run(array.write(0, pattern(4, 16 * SS)));
    disks.faulty[0]!.apply({ badSectors: [3] });
    disks.faulty[1]!.apply({ badSectors: [9] });
    expect(await run(array.read(0, 16))).toEqual(pattern(4, 16 * SS));
    expect(disks.faulty[0]!.plan()).toEqual({});
    // Sector 9 came from member 0, so member 1's bad sector is latent: a check finds it and, like
    // md's check, rewrites it from the good copy.
    expect(disks.faulty[1]!.plan()).toEqual({ badSectors: [9] });
    expect(await run(array.check({ stepSectors: 8 }))).toMatchObject({ readErrors: 1, readErrorsRepaired: 1, readErrorsUnrepaired: 0, mismatches: 0 });
    expect(disks.faulty[1]!.plan()).toEqual({});
    expect(disks.inner[1]!.peek(0, 16)).toEqual(pattern(4, 16 * SS));
    expect(await run(array.check({ stepSectors: 8 }))).toMatchObject({ readErrors: 0 });
  });

  it('counts mismatches without changing anything, and repair makes the mirrors agree', async () => {
    const { disks, array, run } = setup(3);
    await run(array.write(0, pattern(5, 256 * SS)));
    expect(await run(array.check({ stepSectors: 64 }))).toMatchObject({ mismatches: 0, readErrors: 0, readErrorsRepaired: 0, readErrorsUnrepaired: 0, sectorsChecked: 256 });
    // A deliberately broken mirror: change two sectors of member 2 behind the array's back.
    await run(disks.inner[2]!.write(10, pattern(6, 2 * SS)));
    const before = disks.inner[2]!.peek(0, 256);
    const found = await run(array.check({ stepSectors: 64 }));
    expect(found.mismatches).toBe(2);
    // Where: member LBAs 10 and 11, all three copies compared there.
    expect(found.mismatchPlaces).toEqual([{ lba: 10, members: [0, 1, 2] }, { lba: 11, members: [0, 1, 2] }]);
    expect(disks.inner[2]!.peek(0, 256)).toEqual(before);
    expect((await run(array.check({ repair: true }))).mismatches).toBe(2);
    expect((await run(array.check())).mismatches).toBe(0);
    expect(disks.inner[2]!.peek(10, 2)).toEqual(pattern(5, 256 * SS).subarray(10 * SS, 12 * SS));
  });

  it('rebuilds onto a spare with progress while writes go on, then checks clean', async () => {
    const { clock, disks, array, run } = setup();
    await run(array.write(0, pattern(7, 256 * SS)));
    disks.faulty[1]!.fail();
    await run(array.read(0, 1)).catch(() => undefined);
    await run(array.write(0, pattern(8, SS))); // discovers the failure
    expect(array.state).toBe('degraded');
    const spare = makeDisks(clock, 1, SS, 256, {}, 'spare').inner[0]!;
    const progress: RebuildProgress[] = [];
    const rebuild = array.rebuild(1, spare, { stepSectors: 32, onProgress: (p) => progress.push(p) });
    expect(array.state).toBe('rebuilding');
    const writes = [array.write(100, pattern(9, 8 * SS)), array.write(250, pattern(10, 6 * SS))];
    await run(Promise.all([rebuild, ...writes]));
    expect(array.state).toBe('optimal');
    expect(progress.map((p) => p.doneSectors)).toEqual([32, 64, 96, 128, 160, 192, 224, 256]);
    expect(progress.every((p) => p.totalSectors === 256 && p.member === 1)).toBe(true);
    expect((await run(array.check())).mismatches).toBe(0);
    expect(spare.peek(100, 8)).toEqual(pattern(9, 8 * SS));
    expect(spare.peek(250, 6)).toEqual(pattern(10, 6 * SS));
  });

  it('resumes a rebuild from its checkpoint after a power cut', async () => {
    const { clock, disks, array, run } = setup();
    await run(array.write(0, pattern(11, 256 * SS)));
    await run(array.flush());
    array.failMember(1);
    const spare = makeDisks(clock, 1, SS, 256, { writeCacheBytesMax: 256 * SS }, 'spare').inner[0]!;
    const done: number[] = [];
    const rebuild = array.rebuild(1, spare, { stepSectors: 64, onProgress: (p) => done.push(p.doneSectors) });
    rebuild.catch(() => undefined);
    await clock.run({ until: () => done.length >= 2 });
    array.powerCut();
    expect(await rejectionOf(clock, rebuild)).toBeInstanceOf(ArrayStoppedError);
    const superblock = array.superblock();
    expect(superblock.members[1]).toEqual({ state: 'rebuilding', rebuiltSectors: 128 });
    const again = new Raid1({ name: 'r1', members: [disks.faulty[0]!, spare], clock, superblock });
    expect(again.state).toBe('rebuilding');
    // In sync below the checkpoint already: readable there, rebuilt from there on.
    const resumed: number[] = [];
    await run(again.rebuild(1, null, { stepSectors: 64, onProgress: (p) => resumed.push(p.doneSectors) }));
    expect(resumed).toEqual([192, 256]);
    expect(again.state).toBe('optimal');
    expect(spare.peek(0, 256)).toEqual(pattern(11, 256 * SS));
  });

  it('refuses to replace an active member or rebuild twice at once', async () => {
    const { clock, array, run } = setup();
    const spare = makeDisks(clock, 2, SS, 256, {}, 'spare').inner;
    await expect(array.rebuild(0, spare[0]!)).rejects.toMatchObject({ code: 'ML_ERR_RAID_CONFIG' });
    array.failMember(0);
    array.failMember(1);
    expect(array.state).toBe('failed');
    await expect(run(array.rebuild(0, spare[0]!))).rejects.toMatchObject({ code: 'ML_ERR_RAID_FAILED' });
  });
});
