import { describe, expect, it } from 'vitest';
import { DeviceFailedError, MediaError } from '../../../firmware/ports/block-device.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { drawDiskFaultPlan, DiskFaultPlanError, validateDiskFaultPlan, type DiskFaultPlan } from '../../../host/disks/fault-plan.ts';
import { FaultyDisk } from '../../../host/disks/faulty.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { SeededRandom } from '../../../host/random.ts';
import { blockDeviceContract } from './contract.ts';
import { pattern, rejectionOf, runUntilSettled } from './helpers.ts';

blockDeviceContract('FaultyDisk over a MemoryDisk', async ({ sectorSize, sectorCountMin }) => {
  const clock = new VirtualClock();
  const inner = new MemoryDisk({ name: 'inner', sectorSize, sectorCount: sectorCountMin * 2, clock, service: { fixedMs: 0.5 }, writeCacheBytesMax: 16 * sectorSize });
  const device = new FaultyDisk({ inner, clock, name: 'faulty', plan: { slowFactor: 3 } });
  return {
    clock, device, injectMediaError: (lba) => device.apply({ badSectors: [lba] }), failDevice: () => device.fail(),
    powerCycle: () => (device.powerCut(), device),
  };
}, { can: { mediaErrors: true, deviceFailure: true, powerCycle: true } });

function setup(plan = {}) {
  const clock = new VirtualClock();
  const inner = new MemoryDisk({ name: 'd0', sectorCount: 1024, clock, service: { fixedMs: 1 } });
  const disk = new FaultyDisk({ inner, clock, plan });
  return { clock, inner, disk };
}

/** A scrub-like checker: which sectors read back differently from the pristine copy underneath. */
async function divergentSectors(clock: VirtualClock, disk: FaultyDisk, inner: MemoryDisk, lba: number, count: number): Promise<number[]> {
  const seen = await runUntilSettled(clock, disk.read(lba, count));
  const truth = inner.peek(lba, count);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    if (Buffer.compare(seen.subarray(i * 512, (i + 1) * 512), truth.subarray(i * 512, (i + 1) * 512)) !== 0) out.push(lba + i);
  }
  return out;
}

describe('FaultyDisk', () => {
  it('rots bits on read without touching the pristine copy, and a checker catches it', async () => {
    const { clock, inner, disk } = setup();
    await runUntilSettled(clock, disk.write(0, pattern(1, 16 * 512)));
    expect(await divergentSectors(clock, disk, inner, 0, 16)).toEqual([]);
    disk.apply({ corruptSectors: [{ lba: 5, byte: 17, mask: 0x40 }] });
    expect(await divergentSectors(clock, disk, inner, 0, 16)).toEqual([5]);
    const got = await runUntilSettled(clock, disk.read(5, 1));
    expect(got[17]).toBe(pattern(1, 16 * 512)[5 * 512 + 17]! ^ 0x40);
    expect(inner.peek(5, 1)).toEqual(pattern(1, 16 * 512).subarray(5 * 512, 6 * 512));
    await runUntilSettled(clock, disk.write(5, pattern(2, 512))); // rewriting heals it
    expect(await divergentSectors(clock, disk, inner, 0, 16)).toEqual([]);
  });

  it('fails reads of a bad sector with its LBA until a write remaps it (dm-dust)', async () => {
    const { clock, disk } = setup({ badSectors: [10, 12] });
    const error = await rejectionOf(clock, disk.read(8, 8));
    expect(error).toBeInstanceOf(MediaError);
    expect((error as MediaError).lba).toBe(10);
    await runUntilSettled(clock, disk.write(10, pattern(3, 512)));
    expect(((await rejectionOf(clock, disk.read(8, 8))) as MediaError).lba).toBe(12);
    expect(disk.plan()).toEqual({ badSectors: [12] });
    expect(await runUntilSettled(clock, disk.read(10, 1))).toEqual(pattern(3, 512));
  });

  it('fails at its virtual time, and requests in flight then fail too', async () => {
    const { clock, disk } = setup({ failAtMs: 2.5 });
    await runUntilSettled(clock, disk.write(0, pattern(1, 512))); // 0 -> 1 ms
    const inFlight = disk.read(0, 1); // 1 -> 2 ms: fine
    expect(await runUntilSettled(clock, inFlight)).toEqual(pattern(1, 512));
    const straddling = disk.read(0, 1); // 2 -> 3 ms: the disk dies under it
    expect(await rejectionOf(clock, straddling)).toBeInstanceOf(DeviceFailedError);
    expect(disk.failed).toBe(true);
    expect(await rejectionOf(clock, disk.flush())).toBeInstanceOf(DeviceFailedError);
  });

  it('stretches service times by its slow factor', async () => {
    const { clock, disk } = setup({ slowFactor: 4 });
    await runUntilSettled(clock, disk.read(0, 1));
    expect(clock.now()).toBeCloseTo(4, 9);
  });

  it('draws the same plan from the same seed, a different one from another', () => {
    const draw = { badSectors: 5, corruptSectors: 3, fail: { chance: { numerator: 1, denominator: 2 }, withinMs: 1000 }, slow: { chance: { numerator: 1, denominator: 1 }, factorMax: 10 } };
    const geometry = { sectorCount: 1 << 20, sectorSize: 512 };
    const a = drawDiskFaultPlan(new SeededRandom(42).fork('disk:m0'), geometry, draw);
    const b = drawDiskFaultPlan(new SeededRandom(42).fork('disk:m0'), geometry, draw);
    const c = drawDiskFaultPlan(new SeededRandom(43).fork('disk:m0'), geometry, draw);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a.badSectors).toHaveLength(5);
    expect(a.corruptSectors).toHaveLength(3);
    expect(a.slowFactor).toBeGreaterThanOrEqual(2);
    expect(a.slowFactor).toBeLessThanOrEqual(10);
    expect(() => validateDiskFaultPlan(a, geometry)).not.toThrow();
    expect(JSON.parse(JSON.stringify(a))).toEqual(a); // plain data
  });

  it('rejects a plan that does not fit the disk, saying what is allowed', () => {
    const geometry = { sectorCount: 100, sectorSize: 512 };
    const bad: [DiskFaultPlan, RegExp][] = [
      [{ badSectors: [100] }, /sectors 0\.\.99/],
      [{ corruptSectors: [{ lba: 1, byte: 512, mask: 1 }] }, /0\.\.511/],
      [{ corruptSectors: [{ lba: 1, byte: 0, mask: 0 }] }, /1\.\.255/],
      [{ failAtMs: -1 }, />= 0/],
      [{ slowFactor: 0.5 }, />= 1/],
    ];
    for (const [plan, message] of bad) {
      expect(() => validateDiskFaultPlan(plan, geometry)).toThrow(DiskFaultPlanError);
      expect(() => validateDiskFaultPlan(plan, geometry)).toThrow(message);
    }
  });
});
