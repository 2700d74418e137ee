import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { Raid0 } from '../../../host/disks/raid/raid0.ts';
import { Raid10 } from '../../../host/disks/raid/raid10.ts';
import type { RebuildProgress } from '../../../host/disks/raid/types.ts';
import { pattern, rejectionOf, runUntilSettled } from './helpers.ts';
import { makeDisks } from './raid-fixtures.ts';

const SS = 512;

describe('Raid0', () => {
  it('stripes chunks across members in turn', async () => {
    const clock = new VirtualClock();
    const disks = makeDisks(clock, 3, SS, 64);
    const array = new Raid0({ name: 'r0', members: disks.faulty, clock, chunkBytes: 4 * SS });
    expect(array.sectorCount).toBe(192);
    await runUntilSettled(clock, array.write(0, pattern(1, 24 * SS)));
    // Chunk k on member k mod 3, at member chunk k div 3.
    const data = pattern(1, 24 * SS);
    for (let k = 0; k < 6; k++) {
      expect(disks.inner[k % 3]!.peek(Math.floor(k / 3) * 4, 4)).toEqual(data.subarray(k * 4 * SS, (k + 1) * 4 * SS));
    }
  });

  it('fails with its first failed member, and has nothing to rebuild', async () => {
    const clock = new VirtualClock();
    const disks = makeDisks(clock, 2, SS, 64);
    const array = new Raid0({ name: 'r0', members: disks.faulty, clock, chunkBytes: 4 * SS });
    disks.faulty[1]!.fail();
    expect(await rejectionOf(clock, array.read(4, 1))).toMatchObject({ code: 'ML_ERR_RAID_FAILED' });
    expect(array.state).toBe('failed');
    const fresh = new Raid0({ name: 'r0b', members: makeDisks(clock, 2, SS, 64).faulty, clock, chunkBytes: 4 * SS });
    await expect(fresh.rebuild(0, new MemoryDisk({ name: 's', sectorCount: 64, clock }))).rejects.toMatchObject({ code: 'ML_ERR_RAID_NO_REDUNDANCY' });
  });

  it('refuses members of different sector sizes and bad chunk sizes', () => {
    const clock = new VirtualClock();
    const a = new MemoryDisk({ name: 'a', sectorCount: 64, clock });
    const b = new MemoryDisk({ name: 'b', sectorSize: 4096, sectorCount: 64, clock });
    expect(() => new Raid0({ name: 'x', members: [a, b], clock })).toThrow(/different sector sizes/);
    expect(() => new Raid0({ name: 'x', members: [a, a], clock, chunkBytes: 3000 })).toThrow(/power of two/);
    expect(() => new Raid0({ name: 'x', members: [a], clock })).toThrow(/needs 2 to 32 members/);
  });
});

describe('Raid10', () => {
  function setup() {
    const clock = new VirtualClock();
    const disks = makeDisks(clock, 4, SS, 64, { service: { fixedMs: 0.1 } });
    const array = new Raid10({ name: 'r10', members: disks.faulty, clock, chunkBytes: 4 * SS });
    return { clock, disks, array, run: <T>(p: Promise<T>) => runUntilSettled(clock, p) };
  }

  it('mirrors each chunk on a pair of adjacent members, striped over the pairs', async () => {
    const { disks, array, run } = setup();
    expect(array.sectorCount).toBe(128);
    await run(array.write(0, pattern(1, 8 * SS)));
    expect(disks.inner[0]!.peek(0, 4)).toEqual(pattern(1, 8 * SS).subarray(0, 4 * SS));
    expect(disks.inner[1]!.peek(0, 4)).toEqual(pattern(1, 8 * SS).subarray(0, 4 * SS));
    expect(disks.inner[2]!.peek(0, 4)).toEqual(pattern(1, 8 * SS).subarray(4 * SS));
    expect(disks.inner[3]!.peek(0, 4)).toEqual(pattern(1, 8 * SS).subarray(4 * SS));
    expect(array.locate(5)).toEqual({ set: 1, members: [2, 3], memberLba: 1 });
  });

  it('survives one failure per pair, and fails when a pair is gone', async () => {
    const { clock, disks, array, run } = setup();
    const data = pattern(2, 128 * SS);
    await run(array.write(0, data));
    disks.faulty[0]!.fail();
    disks.faulty[3]!.fail();
    expect(await run(array.read(0, 128))).toEqual(data);
    expect(array.state).toBe('degraded');
    disks.faulty[1]!.fail();
    expect(await rejectionOf(clock, array.read(0, 4))).toMatchObject({ code: 'ML_ERR_RAID_FAILED' });
    expect(array.state).toBe('failed');
  });

  it('rebuilds a member of a pair, reporting the array\'s member index, and checks each pair', async () => {
    const { clock, disks, array, run } = setup();
    const data = pattern(3, 128 * SS);
    await run(array.write(0, data));
    array.failMember(3);
    const progress: RebuildProgress[] = [];
    const spare = new MemoryDisk({ name: 'spare', sectorCount: 64, clock });
    await run(array.rebuild(3, spare, { stepSectors: 32, onProgress: (p) => progress.push(p) }));
    expect(progress.map((p) => [p.member, p.doneSectors])).toEqual([[3, 32], [3, 64]]);
    expect(array.state).toBe('optimal');
    expect(array.member(3)).toBe(spare);
    expect((await run(array.check())).mismatches).toBe(0);
    await run(disks.inner[0]!.write(1, pattern(4, SS))); // deliberately broken copy
    expect((await run(array.check())).mismatches).toBe(1);
    expect(array.superblock().members.map((m) => m.state)).toEqual(['active', 'active', 'active', 'active']);
  });
});
