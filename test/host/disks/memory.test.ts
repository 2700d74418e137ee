import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { PowerLossError } from '../../../host/disks/errors.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { SeededRandom } from '../../../host/random.ts';
import { blockDeviceContract } from './contract.ts';
import { pattern, rejectionOf, runUntilSettled } from './helpers.ts';

const POWER = { can: { powerCycle: true } };

blockDeviceContract('MemoryDisk', async ({ sectorSize, sectorCountMin }) => {
  const clock = new VirtualClock();
  const device = new MemoryDisk({ name: 'mem', sectorSize, sectorCount: sectorCountMin * 4, clock });
  return { clock, device, powerCycle: () => (device.powerCut(), device) };
}, POWER);

blockDeviceContract('MemoryDisk with service times and a write cache', async ({ sectorSize, sectorCountMin }) => {
  const clock = new VirtualClock();
  const device = new MemoryDisk({
    name: 'mem-cached', sectorSize, sectorCount: sectorCountMin * 4, clock,
    service: { fixedMs: 0.1, perByteMs: 0.0001, seek: { trackToTrackMs: 0.5, fullStrokeMs: 12, rpm: 7200 } },
    writeCacheBytesMax: 8 * sectorSize,
  });
  return { clock, device, powerCycle: () => (device.powerCut(), device) };
}, POWER);

blockDeviceContract('MemoryDisk with torn writes', async ({ sectorSize, sectorCountMin }) => {
  const clock = new VirtualClock();
  const device = new MemoryDisk({
    name: 'mem-torn', sectorSize, sectorCount: sectorCountMin * 4, clock, tornWrites: true, random: new SeededRandom(1),
    service: { fixedMs: 1 },
  });
  return { clock, device, powerCycle: () => (device.powerCut(), device) };
}, POWER);

blockDeviceContract('MemoryDisk that reorders completions', async ({ sectorSize, sectorCountMin }) => {
  const clock = new VirtualClock();
  const device = new MemoryDisk({ name: 'mem-reorder', sectorSize, sectorCount: sectorCountMin * 4, clock, reorder: true, random: new SeededRandom(3), service: { fixedMs: 0.1 } });
  return { clock, device, powerCycle: () => (device.powerCut(), device) };
}, POWER);

describe('MemoryDisk that reorders completions (docs/simulator.md 2)', () => {
  /** Two overlapping writes issued together; which one the sector holds at the end, and the order they completed in. */
  async function race(seed: number, reorder: boolean) {
    const clock = new VirtualClock();
    const disk = new MemoryDisk({ name: 'r', sectorCount: 64, clock, service: { fixedMs: 0.1 }, reorder, random: new SeededRandom(seed) });
    const done: string[] = [];
    const a = disk.write(0, pattern(0xa, 512)).then(() => done.push('a'));
    const b = disk.write(0, pattern(0xb, 512)).then(() => done.push('b'));
    await runUntilSettled(clock, Promise.all([a, b]));
    return { held: Buffer.from(disk.peek(0, 1)).equals(pattern(0xa, 512)) ? 'a' : 'b', done: done.join('') };
  }

  it('overlapping writes in flight together land and complete in either order, per seed; the last to complete wins', async () => {
    const outcomes = new Set<string>();
    for (let seed = 1; seed <= 16; seed++) {
      const r = await race(seed, true);
      expect(r.held).toBe(r.done[1]);
      outcomes.add(r.done);
    }
    expect([...outcomes].sort()).toEqual(['ab', 'ba']);
    expect(await race(5, true)).toEqual(await race(5, true)); // a pure function of the seed
  });

  it('without reorder they complete and land in issue order, whatever the seed', async () => {
    for (let seed = 1; seed <= 8; seed++) expect(await race(seed, false)).toEqual({ held: 'b', done: 'ab' });
  });

  it('a write still in flight at a power cut is lost whole and rejects', async () => {
    const clock = new VirtualClock();
    const disk = new MemoryDisk({ name: 'r', sectorCount: 64, clock, service: { fixedMs: 1 }, reorder: true, random: new SeededRandom(1) });
    const w = disk.write(8, pattern(7, 1024));
    await clock.advance(0.5);
    disk.powerCut();
    expect(await rejectionOf(clock, w)).toBeInstanceOf(PowerLossError);
    expect(disk.peek(8, 2)).toEqual(new Uint8Array(1024));
  });

  it('needs a random source and does not combine with torn writes', () => {
    const clock = new VirtualClock();
    expect(() => new MemoryDisk({ name: 'x', sectorCount: 8, clock, reorder: true })).toThrow(/reorder needs a random source/);
    expect(() => new MemoryDisk({ name: 'x', sectorCount: 8, clock, reorder: true, tornWrites: true, random: new SeededRandom(1) })).toThrow(/reorder/);
  });
});

describe('MemoryDisk', () => {
  it('holds terabytes without allocating them, and allocates only what is written', async () => {
    const clock = new VirtualClock();
    const disk = new MemoryDisk({ name: 'big', sectorSize: 4096, sectorCount: 2 ** 30, clock }); // 4 TiB
    expect(disk.allocatedBytes).toBe(0);
    const lba = 2 ** 30 - 1;
    await runUntilSettled(clock, disk.write(lba, pattern(1, 4096)));
    expect(await runUntilSettled(clock, disk.read(lba, 1))).toEqual(pattern(1, 4096));
    expect(disk.allocatedBytes).toBe(65_536);
  });

  it('takes its service time in virtual time: fixed + per byte, and a seek only when not sequential', async () => {
    const clock = new VirtualClock();
    const disk = new MemoryDisk({
      name: 'hdd', sectorCount: 1 << 20, clock,
      service: { fixedMs: 1, perByteMs: 0.001, seek: { trackToTrackMs: 1, fullStrokeMs: 9, rpm: 6000 } },
    });
    await runUntilSettled(clock, disk.write(0, new Uint8Array(512)));
    // Head at 0 before: no seek; 512 bytes -> 1 + 0.512 ms.
    expect(clock.now()).toBeCloseTo(1.512, 9);
    const t0 = clock.now();
    await runUntilSettled(clock, disk.read(1, 1)); // sequential: no seek
    expect(clock.now() - t0).toBeCloseTo(1.512, 9);
    const t1 = clock.now();
    await runUntilSettled(clock, disk.read((1 << 20) / 4 + 2, 1)); // a quarter stroke away
    // seek = 1 + 8 * sqrt(1/4) = 5, rotation = 30000/6000 = 5.
    expect(clock.now() - t1).toBeCloseTo(1.512 + 10, 3);
  });

  it('loses unflushed cached writes at a power cut and keeps flushed ones', async () => {
    const clock = new VirtualClock();
    const disk = new MemoryDisk({ name: 'cache', sectorCount: 128, clock, writeCacheBytesMax: 64 * 512 });
    await runUntilSettled(clock, disk.write(0, pattern(1, 512 * 4)));
    await runUntilSettled(clock, disk.flush());
    await runUntilSettled(clock, disk.write(0, pattern(2, 512 * 2)));
    await runUntilSettled(clock, disk.write(10, pattern(3, 512)));
    expect(disk.unflushedBytes).toBe(3 * 512);
    expect(await runUntilSettled(clock, disk.read(0, 2))).toEqual(pattern(2, 1024));
    disk.powerCut();
    expect(await runUntilSettled(clock, disk.read(0, 4))).toEqual(pattern(1, 2048));
    expect(await runUntilSettled(clock, disk.read(10, 1))).toEqual(new Uint8Array(512));
  });

  it('caches its own copy of a write, small or large: the caller may reuse its buffer, and a rewrite replaces only its sectors', async () => {
    const clock = new VirtualClock();
    const disk = new MemoryDisk({ name: 'copy', sectorCount: 256, clock, writeCacheBytesMax: 128 * 512 });
    for (const [lba, sectors] of [[0, 8], [64, 40]] as const) {
      const buffer = pattern(lba + 1, sectors * 512);
      await runUntilSettled(clock, disk.write(lba, buffer));
      buffer.fill(0xee);
      await runUntilSettled(clock, disk.write(lba + 2, pattern(9, 512)));
      const expected = pattern(lba + 1, sectors * 512);
      expected.set(pattern(9, 512), 2 * 512);
      expect(disk.peek(lba, sectors)).toEqual(expected);
      await runUntilSettled(clock, disk.flush());
      expect(disk.peekDurable(lba, sectors)).toEqual(expected);
    }
  });

  it('destages the oldest sectors when the cache overflows, so they survive a power cut', async () => {
    const clock = new VirtualClock();
    const disk = new MemoryDisk({ name: 'small-cache', sectorCount: 128, clock, writeCacheBytesMax: 2 * 512 });
    for (let lba = 0; lba < 5; lba++) await runUntilSettled(clock, disk.write(lba, pattern(lba + 1, 512)));
    expect(disk.unflushedBytes).toBe(1024);
    disk.powerCut();
    for (let lba = 0; lba < 3; lba++) expect(disk.peek(lba, 1)).toEqual(pattern(lba + 1, 512));
    expect(disk.peek(3, 2)).toEqual(new Uint8Array(1024));
  });

  it('keeps a seeded share of unflushed sectors at a power cut, each whole, old or new', async () => {
    const clock = new VirtualClock();
    const disk = new MemoryDisk({
      name: 'half', sectorCount: 256, clock, writeCacheBytesMax: 256 * 512,
      unflushedLoss: { numerator: 1, denominator: 2 }, random: new SeededRandom(7),
    });
    await runUntilSettled(clock, disk.write(0, pattern(1, 256 * 512)));
    disk.powerCut();
    let kept = 0;
    for (let lba = 0; lba < 256; lba++) {
      const got = disk.peek(lba, 1);
      const isNew = Buffer.compare(got, pattern(1, 256 * 512).subarray(lba * 512, (lba + 1) * 512)) === 0;
      expect(isNew || got.every((b) => b === 0)).toBe(true);
      if (isNew) kept++;
    }
    expect(kept).toBeGreaterThan(64);
    expect(kept).toBeLessThan(192);
  });

  it('tears the write in flight at a power cut: landed sectors new, one torn, the rest old', async () => {
    const clock = new VirtualClock();
    const disk = new MemoryDisk({ name: 'torn', sectorCount: 64, clock, tornWrites: true, service: { fixedMs: 8 } });
    await runUntilSettled(clock, disk.write(0, pattern(1, 8 * 512)));
    const cut = disk.write(0, pattern(2, 8 * 512));
    await clock.advance(3.5); // 3.5 of 8 ms: sectors 0..2 landed, sector 3 under the head (torn)
    disk.powerCut();
    expect(await rejectionOf(clock, cut)).toBeInstanceOf(PowerLossError);
    const after = disk.peek(0, 8);
    const older = pattern(1, 8 * 512);
    const newer = pattern(2, 8 * 512);
    expect(after.subarray(0, 3 * 512)).toEqual(newer.subarray(0, 3 * 512));
    expect(after.subarray(3 * 512, 3 * 512 + 256)).toEqual(newer.subarray(3 * 512, 3 * 512 + 256));
    expect(after.subarray(3 * 512 + 256, 8 * 512)).toEqual(older.subarray(3 * 512 + 256, 8 * 512));
  });

  it('lets a newer write decide a sector that two in-flight writes cover', async () => {
    const clock = new VirtualClock();
    const disk = new MemoryDisk({ name: 'torn2', sectorCount: 64, clock, tornWrites: true, service: { fixedMs: 8 } });
    const slow = disk.write(0, pattern(1, 4 * 512)); // 0 ms in: nothing landed
    const done = disk.write(2, pattern(2, 512)); // also in flight
    await clock.advance(1);
    disk.powerCut();
    await rejectionOf(clock, slow);
    await rejectionOf(clock, done);
    // Sector 2 is decided by the newer write, which tore it over what it replaced: the older
    // write's data (which is thereby taken as landed), not the zeros from before both.
    const sector2 = disk.peek(2, 1);
    expect(sector2.subarray(0, 256)).toEqual(pattern(2, 256));
    expect(sector2.subarray(256)).toEqual(pattern(1, 4 * 512).subarray(2 * 512 + 256, 3 * 512));
    expect(disk.peek(3, 1)).toEqual(new Uint8Array(512));
  });
});
