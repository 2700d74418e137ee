import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { Raid1 } from '../../../host/disks/raid/raid1.ts';
import { Raid10 } from '../../../host/disks/raid/raid10.ts';
import { Raid5 } from '../../../host/disks/raid/raid5.ts';
import { pattern, runUntilSettled } from './helpers.ts';
import { makeDisks } from './raid-fixtures.ts';

/**
 * A check (scrub) repairs member read errors from redundancy, as md does in `check` too, counts
 * them, and reports those it could not repair; mismatches it only counts (repair fixes them).
 */
const SS = 512;
const CHUNK = 8;

function setup(n: number) {
  const clock = new VirtualClock();
  const disks = makeDisks(clock, n, SS, 64, { service: { fixedMs: 0.1 } });
  return { clock, disks, run: <T>(p: Promise<T>) => runUntilSettled(clock, p) };
}

describe('check repairs member read errors: RAID-1', () => {
  it('rewrites a latent bad sector from the good copy and counts it; a mismatch it only counts', async () => {
    const { clock, disks, run } = setup(2);
    const array = new Raid1({ name: 'r1', members: disks.faulty, clock });
    await run(array.write(0, pattern(1, 64 * SS)));
    disks.faulty[1]!.apply({ badSectors: [5] });
    await run(disks.inner[1]!.write(40, pattern(2, SS))); // and a mismatch behind the array's back
    const result = await run(array.check({ stepSectors: 16 }));
    expect(result).toMatchObject({ mismatches: 1, readErrors: 1, readErrorsRepaired: 1, readErrorsUnrepaired: 0, sectorsChecked: 48 });
    expect(disks.faulty[1]!.plan()).toEqual({});
    expect(disks.inner[1]!.peek(0, 16)).toEqual(pattern(1, 64 * SS).subarray(0, 16 * SS));
    expect(disks.inner[1]!.peek(40, 1)).toEqual(pattern(2, SS)); // check never picks a side of a mismatch
    expect(array.status()).toMatchObject({ state: 'optimal', readErrorsRepaired: 1, readErrorsUnrepaired: 0, lastCheck: result });
  });

  it('goes sector by sector where every copy has a bad sector somewhere in the region', async () => {
    const { clock, disks, run } = setup(2);
    const array = new Raid1({ name: 'r1', members: disks.faulty, clock });
    await run(array.write(0, pattern(3, 64 * SS)));
    disks.faulty[0]!.apply({ badSectors: [3] });
    disks.faulty[1]!.apply({ badSectors: [9] });
    expect(await run(array.check({ stepSectors: 16 }))).toMatchObject({ readErrorsRepaired: 2, readErrorsUnrepaired: 0, mismatches: 0 });
    expect(disks.faulty.map((d) => d.plan())).toEqual([{}, {}]);
    expect(disks.inner.map((d) => d.peek(0, 16))).toEqual([0, 1].map(() => pattern(3, 64 * SS).subarray(0, 16 * SS)));
  });

  it('reports a sector bad on every copy as unrepaired', async () => {
    const { clock, disks, run } = setup(2);
    const array = new Raid1({ name: 'r1', members: disks.faulty, clock });
    await run(array.write(0, pattern(4, 64 * SS)));
    for (const d of disks.faulty) d.apply({ badSectors: [7] });
    expect(await run(array.check({ stepSectors: 16 }))).toMatchObject({ readErrors: 2, readErrorsRepaired: 0, readErrorsUnrepaired: 2 });
    expect(disks.faulty.map((d) => d.plan())).toEqual([{ badSectors: [7] }, { badSectors: [7] }]);
    expect(array.status().readErrorsUnrepaired).toBe(2);
  });
});

describe('check repairs member read errors: RAID-5', () => {
  function raid5() {
    const s = setup(4);
    const array = new Raid5({ name: 'r5', members: s.disks.faulty, clock: s.clock, chunkBytes: CHUNK * SS });
    return { ...s, array };
  }

  it('rebuilds a latent bad sector from the rest of its row and rewrites it', async () => {
    const { disks, array, run } = raid5();
    await run(array.write(0, pattern(5, array.sectorCount * SS)));
    const before = disks.inner.map((d) => d.peek(0, 64));
    disks.faulty[2]!.apply({ badSectors: [11] });
    expect(await run(array.check())).toMatchObject({ readErrors: 1, readErrorsRepaired: 1, readErrorsUnrepaired: 0, mismatches: 0 });
    expect(disks.faulty[2]!.plan()).toEqual({});
    expect(disks.inner.map((d) => d.peek(0, 64))).toEqual(before);
    expect(array.status()).toMatchObject({ readErrorsRepaired: 1, readErrorsUnrepaired: 0 });
    expect(await run(array.check())).toMatchObject({ readErrors: 0, mismatches: 0, sectorsChecked: 64 });
  });

  it('goes row by row when two members have bad sectors in one region, in different rows', async () => {
    const { disks, array, run } = raid5();
    await run(array.write(0, pattern(6, array.sectorCount * SS)));
    const before = disks.inner.map((d) => d.peek(0, 64));
    disks.faulty[0]!.apply({ badSectors: [3] });
    disks.faulty[3]!.apply({ badSectors: [12] });
    expect(await run(array.check({ stepSectors: 16 }))).toMatchObject({ readErrorsRepaired: 2, readErrorsUnrepaired: 0, mismatches: 0 });
    expect(disks.faulty.map((d) => d.plan())).toEqual([{}, {}, {}, {}]);
    expect(disks.inner.map((d) => d.peek(0, 64))).toEqual(before);
  });

  it('reports a row bad on two members as unrepaired', async () => {
    const { disks, array, run } = raid5();
    await run(array.write(0, pattern(7, array.sectorCount * SS)));
    disks.faulty[0]!.apply({ badSectors: [20] });
    disks.faulty[1]!.apply({ badSectors: [20] });
    expect(await run(array.check({ stepSectors: 16 }))).toMatchObject({ readErrorsRepaired: 0, readErrorsUnrepaired: 2 });
    expect(array.status().readErrorsUnrepaired).toBe(2);
  });
});

describe('check repairs member read errors: RAID-10', () => {
  it('repairs within each mirror pair and adds the counts up', async () => {
    const { clock, disks, run } = setup(4);
    const array = new Raid10({ name: 'r10', members: disks.faulty, clock, chunkBytes: 4 * SS });
    await run(array.write(0, pattern(8, array.sectorCount * SS)));
    disks.faulty[1]!.apply({ badSectors: [2] });
    disks.faulty[2]!.apply({ badSectors: [30] });
    disks.faulty[3]!.apply({ badSectors: [30] }); // both copies of one sector of pair 1: lost
    const result = await run(array.check());
    expect(result).toMatchObject({ readErrorsRepaired: 1, readErrorsUnrepaired: 2 });
    expect(disks.faulty[1]!.plan()).toEqual({});
    expect(array.status()).toMatchObject({ level: 'raid10', readErrorsRepaired: 1, readErrorsUnrepaired: 2, lastCheck: result });
  });
});

describe('array status counts read errors met by ordinary reads too', () => {
  it('RAID-1: a read repaired from the mirror, and one no copy can serve', async () => {
    const { clock, disks, run } = setup(2);
    const array = new Raid1({ name: 'r1', members: disks.faulty, clock });
    await run(array.write(0, pattern(9, 16 * SS)));
    disks.faulty[0]!.apply({ badSectors: [4] });
    await run(array.read(0, 8));
    expect(array.status()).toMatchObject({ readErrorsRepaired: 1, readErrorsUnrepaired: 0 });
    for (const d of disks.faulty) d.apply({ badSectors: [6] });
    await expect(run(array.read(6, 1))).rejects.toMatchObject({ code: 'ML_ERR_DISK_MEDIA', lba: 6 });
    expect(array.status()).toMatchObject({ readErrorsRepaired: 1, readErrorsUnrepaired: 2 });
  });

  it('RAID-5: a read rebuilt from parity and rewritten', async () => {
    const { clock, disks, run } = setup(4);
    const array = new Raid5({ name: 'r5', members: disks.faulty, clock, chunkBytes: CHUNK * SS });
    await run(array.write(0, pattern(10, 3 * CHUNK * SS)));
    const { member, memberLba } = array.locate(3);
    disks.faulty[member]!.apply({ badSectors: [memberLba] });
    expect(await run(array.read(0, 8))).toEqual(pattern(10, 3 * CHUNK * SS).subarray(0, 8 * SS));
    expect(array.status()).toMatchObject({ readErrorsRepaired: 1, readErrorsUnrepaired: 0, members: ['active', 'active', 'active', 'active'] });
  });
});
