import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { Raid5 } from '../../../host/disks/raid/raid5.ts';
import { pattern, rejectionOf, runUntilSettled } from './helpers.ts';
import { CountingDisk, makeDisks } from './raid-fixtures.ts';

const SS = 512;
const CHUNK = 8; // sectors

function setup(n = 4, sectors = 64) {
  const clock = new VirtualClock();
  const disks = makeDisks(clock, n, SS, sectors, { service: { fixedMs: 0.1 } });
  const counting = disks.faulty.map((d) => new CountingDisk(d));
  const array = new Raid5({ name: 'r5', members: counting, clock, chunkBytes: CHUNK * SS });
  const run = <T>(p: Promise<T>) => runUntilSettled(clock, p);
  const resetCounts = () => counting.forEach((c) => ((c.reads = 0), (c.writes = 0)));
  const reads = () => counting.reduce((sum, c) => sum + c.reads, 0);
  return { clock, disks, counting, array, run, resetCounts, reads };
}

describe('Raid5', () => {
  it('lays out stripes left-symmetric, like md', () => {
    const { array } = setup();
    expect(array.sectorCount).toBe(3 * 64);
    // Stripe s: parity on member 3 - s mod 4, data on the members after it.
    const table = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((chunk) => array.locate(chunk * CHUNK).member);
    expect(table).toEqual([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
    expect([0, 1, 2, 3, 4].map((s) => array.parityMember(s))).toEqual([3, 2, 1, 0, 3]);
    expect(array.locate(3 * CHUNK + 5)).toEqual({ stripe: 1, row: 5, member: 3, memberLba: CHUNK + 5, parityMember: 2 });
  });

  it('writes a full stripe without reading, and a partial one by read-modify-write', async () => {
    const { array, run, resetCounts, reads, counting } = setup();
    resetCounts();
    await run(array.write(0, pattern(1, 3 * CHUNK * SS)));
    expect(reads()).toBe(0);
    expect(counting.map((c) => c.writes)).toEqual([1, 1, 1, 1]);
    resetCounts();
    await run(array.write(CHUNK + 2, pattern(2, 2 * SS))); // inside one data chunk
    expect(reads()).toBe(2); // old data + old parity
    expect(counting.reduce((s, c) => s + c.writes, 0)).toBe(2);
    expect((await run(array.check())).mismatches).toBe(0);
  });

  it('reconstructs a failed member\'s data from parity, and writes degraded keep parity right', async () => {
    const { disks, array, run } = setup();
    const data = pattern(3, array.sectorCount * SS);
    await run(array.write(0, data));
    disks.faulty[1]!.fail();
    expect(await run(array.read(0, array.sectorCount))).toEqual(data);
    expect(array.state).toBe('degraded');
    // Degraded partial writes, one onto the missing member's chunk (reconstruct-write), one elsewhere.
    await run(array.write(CHUNK + 1, pattern(4, 3 * SS))); // chunk 1 -> member 1 (failed)
    await run(array.write(3, pattern(5, 2 * SS)));
    data.set(pattern(4, 3 * SS), (CHUNK + 1) * SS);
    data.set(pattern(5, 2 * SS), 3 * SS);
    expect(await run(array.read(0, array.sectorCount))).toEqual(data);
  });

  it('repairs a media error by rewriting the sector rebuilt from parity', async () => {
    const { disks, array, run } = setup();
    await run(array.write(0, pattern(6, 3 * CHUNK * SS)));
    const { member, memberLba } = array.locate(CHUNK + 3);
    disks.faulty[member]!.apply({ badSectors: [memberLba] });
    expect(await run(array.read(CHUNK, CHUNK))).toEqual(pattern(6, 3 * CHUNK * SS).subarray(CHUNK * SS, 2 * CHUNK * SS));
    expect(disks.faulty[member]!.plan()).toEqual({});
    expect(array.state).toBe('optimal');
  });

  it('fails when a second member goes', async () => {
    const { clock, disks, array, run } = setup();
    await run(array.write(0, pattern(7, SS)));
    disks.faulty[0]!.fail();
    disks.faulty[3]!.fail();
    expect(await rejectionOf(clock, array.read(0, 1))).toMatchObject({ code: 'ML_ERR_RAID_FAILED' });
    expect(array.state).toBe('failed');
  });

  it('keeps parity right under concurrent overlapping partial writes to one stripe', async () => {
    const { array, run } = setup();
    const writes = Array.from({ length: 24 }, (_, i) => array.write((i * 5) % 20, pattern(100 + i, 3 * SS)));
    await run(Promise.all(writes));
    expect((await run(array.check())).mismatches).toBe(0);
  });

  it('check counts parity mismatches without changing anything; repair recomputes parity', async () => {
    const { disks, array, run } = setup();
    await run(array.write(0, pattern(8, array.sectorCount * SS)));
    expect(await run(array.check())).toMatchObject({ mismatches: 0, readErrors: 0, readErrorsRepaired: 0, readErrorsUnrepaired: 0, sectorsChecked: 64 });
    // Deliberately broken: three sectors of one member changed behind the array's back.
    await run(disks.inner[2]!.write(CHUNK + 1, pattern(9, 3 * SS)));
    const snapshot = disks.inner.map((d) => d.peek(0, 64));
    const found = await run(array.check());
    expect(found.mismatches).toBe(3);
    expect(found.mismatchPlaces.map((p) => p.lba)).toEqual([CHUNK + 1, CHUNK + 2, CHUNK + 3]);
    expect(found.mismatchPlaces[0]!.members).toEqual(disks.inner.map((_, i) => i));
    expect(disks.inner.map((d) => d.peek(0, 64))).toEqual(snapshot);
    expect((await run(array.check({ repair: true }))).mismatches).toBe(3);
    expect((await run(array.check())).mismatches).toBe(0);
  });

  it('rebuilds onto a spare while I/O goes on; the result checks clean', async () => {
    const { clock, array, run } = setup();
    const data = pattern(10, array.sectorCount * SS);
    await run(array.write(0, data));
    array.failMember(2);
    const spare = new MemoryDisk({ name: 'spare', sectorCount: 64, clock, service: { fixedMs: 0.1 } });
    const rebuild = array.rebuild(2, spare, { stepSectors: 4 });
    const io = [array.write(40, pattern(11, 30 * SS)), array.read(0, array.sectorCount)];
    data.set(pattern(11, 30 * SS), 40 * SS);
    await run(Promise.all([rebuild, ...io]));
    expect(array.state).toBe('optimal');
    expect(await run(array.check())).toMatchObject({ mismatches: 0, sectorsChecked: 64 });
    expect(await run(array.read(0, array.sectorCount))).toEqual(data);
  });
});

describe('Raid5 write hole', () => {
  /**
   * Members with torn writes, the parity member slow: a partial-stripe write lands its data, and
   * the power goes before its parity does.
   */
  async function interruptedStripe() {
    const clock = new VirtualClock();
    const members = [0, 1, 2, 3].map((i) => new MemoryDisk({
      name: `m${i}`, sectorCount: 64, clock, tornWrites: true, service: { fixedMs: i === 3 ? 10 : 1 },
    }));
    const run = <T>(p: Promise<T>) => runUntilSettled(clock, p);
    const array = new Raid5({ name: 'r5', members, clock, chunkBytes: CHUNK * SS });
    const old = pattern(1, 3 * CHUNK * SS);
    await run(array.write(0, old)); // stripe 0, parity on member 3
    await run(array.flush());
    const write = array.write(2, pattern(2, 2 * SS)); // RMW: reads (10 ms), then data (1 ms) and parity (10 ms)
    write.catch(() => undefined);
    await clock.run({ untilMs: clock.now() + 10 + 1 }); // reads done at 10 ms; 1 ms into the parity write
    expect(members[0]!.peek(2, 2)).toEqual(pattern(2, 2 * SS)); // data landed
    array.powerCut();
    const again = new Raid5({ name: 'r5', members, clock, chunkBytes: CHUNK * SS, superblock: array.superblock() });
    return { clock, run, members, again, old };
  }

  it('leaves the stripe\'s parity stale, and check finds exactly those rows', async () => {
    const { run, again } = await interruptedStripe();
    // Every sector reads old or new while all members are there...
    expect(await run(again.read(2, 2))).toEqual(pattern(2, 2 * SS));
    // ...but the parity of rows 2 (torn) and 3 (not reached) no longer matches.
    expect((await run(again.check())).mismatches).toBe(2);
  });

  it('rebuilds garbage for a lost member in those rows unless repaired first', async () => {
    const { clock, run, again, old } = await interruptedStripe();
    again.failMember(1); // before any repair: member 1's rows 2..3 come from stale parity
    const got = await run(again.read(CHUNK + 2, 2));
    const expected = old.subarray((CHUNK + 2) * SS, (CHUNK + 4) * SS);
    expect(Buffer.compare(got, expected)).not.toBe(0);
    // Had the resync run first, the same loss is harmless.
    const second = await interruptedStripe();
    await second.run(second.again.check({ repair: true }));
    second.again.failMember(1);
    expect(await second.run(second.again.read(CHUNK + 2, 2))).toEqual(expected);
    expect(clock.now()).toBeGreaterThan(0);
  });
});
