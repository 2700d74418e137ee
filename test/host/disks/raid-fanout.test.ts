import { describe, expect, it } from 'vitest';
import { DeviceFailedError, MediaError, type BlockDevice } from '../../../firmware/ports/block-device.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { FaultyDisk } from '../../../host/disks/faulty.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { Raid1 } from '../../../host/disks/raid/raid1.ts';
import { Raid10 } from '../../../host/disks/raid/raid10.ts';
import { Raid5 } from '../../../host/disks/raid/raid5.ts';
import { pattern, rejectionOf, runUntilSettled, turns } from './helpers.ts';
import { CountingDisk, makeDisks } from './raid-fixtures.ts';

const SS = 512;
const CHUNK = 8;

/** Holds every write until `open()`: member I/O that is still in flight, for as long as a test likes. */
class GatedDisk implements BlockDevice {
  inFlight = 0;
  private gate: Promise<void> | null = null;
  private openGate: () => void = () => {};
  constructor(readonly inner: BlockDevice) {}
  get name(): string { return this.inner.name; }
  get sectorSize(): number { return this.inner.sectorSize; }
  get sectorCount(): number { return this.inner.sectorCount; }
  shut(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }
  open(): void {
    this.openGate();
    this.gate = null;
  }
  read(lba: number, count: number): Promise<Uint8Array> { return this.inner.read(lba, count); }
  async write(lba: number, data: Uint8Array): Promise<void> {
    this.inFlight++;
    try {
      if (this.gate !== null) await this.gate;
      await this.inner.write(lba, data);
    } finally {
      this.inFlight--;
    }
  }
  flush(): Promise<void> { return this.inner.flush(); }
}

/** Runs the clock until nothing is left to do now (gated I/O stays gated). */
async function quiesce(clock: VirtualClock): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await clock.run();
    await turns();
  }
}

describe('RAID-5 keeps a write\'s stripe locks until all its member I/O has settled', () => {
  it('a multi-stripe write whose first stripe fails waits for the other stripe\'s writes before releasing', async () => {
    const clock = new VirtualClock();
    const disks = makeDisks(clock, 4, SS, 64, { service: { fixedMs: 0.1 } });
    const gated = new GatedDisk(disks.faulty[2]!);
    const counted = new CountingDisk(disks.faulty[3]!);
    const array = new Raid5({ name: 'r5', members: [disks.faulty[0]!, disks.faulty[1]!, gated, counted], clock, chunkBytes: CHUNK * SS });
    await runUntilSettled(clock, array.write(0, pattern(1, 6 * CHUNK * SS)));
    // Stripe 0 (parity on 3) cannot be written: member 1 is failed and member 0 has a bad sector in the rows touched.
    array.failMember(1);
    disks.faulty[0]!.apply({ badSectors: [7] });
    gated.shut(); // stripe 1 (parity on member 2): its parity write hangs
    const readsBefore = counted.reads;
    let firstSettled = false;
    const first = array.write(7, pattern(2, 19 * SS)).finally(() => (firstSettled = true)); // LBAs 7..25: stripes 0 and 1
    first.catch(() => undefined);
    const second = array.write(30, pattern(3, SS)); // stripe 1 again: must wait for the first write's lock
    await quiesce(clock);
    expect(gated.inFlight).toBe(1);
    expect(firstSettled).toBe(false); // Promise.all would have rejected (and unlocked) at stripe 0's failure
    expect(counted.reads - readsBefore).toBe(2); // stripe 0's reconstruct read + stripe 1's RMW read; none of the second write yet
    gated.open();
    expect(await rejectionOf(clock, first)).toBeInstanceOf(MediaError);
    await runUntilSettled(clock, second);
    expect(counted.reads - readsBefore).toBe(3);
  });
});

describe('failMember acts on whatever device sits in the slot now', () => {
  it('RAID-1: failing a slot during its rebuild stops the rebuild; the spare gets no more I/O; a new spare works', async () => {
    const clock = new VirtualClock();
    const disks = makeDisks(clock, 2, SS, 256, { service: { fixedMs: 0.1 } });
    const array = new Raid1({ name: 'r1', members: disks.faulty, clock });
    await runUntilSettled(clock, array.write(0, pattern(1, 256 * SS)));
    expect(array.failMember(1)).toBe(disks.faulty[1]);
    const spare = new CountingDisk(new MemoryDisk({ name: 'spare', sectorCount: 256, clock, service: { fixedMs: 0.1 } }));
    const steps: number[] = [];
    const rebuild = array.rebuild(1, spare, { stepSectors: 32, onProgress: (p) => steps.push(p.doneSectors) });
    rebuild.catch(() => undefined);
    await clock.run({ until: () => steps.length >= 2 });
    expect(array.failMember(1)).toBe(spare); // the spare sits in slot 1 now
    const error = await rejectionOf(clock, rebuild);
    expect(error).toBeInstanceOf(DeviceFailedError);
    expect((error as Error).message).toMatch(/spare: failed while being rebuilt as member 1 of r1/);
    expect(array.state).toBe('degraded');
    expect(array.memberState(1)).toBe('failed');
    const writes = spare.writes;
    await runUntilSettled(clock, array.write(0, pattern(2, 8 * SS)));
    expect(spare.writes).toBe(writes);
    const second = new MemoryDisk({ name: 'spare2', sectorCount: 256, clock });
    await runUntilSettled(clock, array.rebuild(1, second, { stepSectors: 64 }));
    expect(array.state).toBe('optimal');
    expect(second.peek(0, 8)).toEqual(pattern(2, 8 * SS));
  });

  it('a spare under a fault overlay fails through it too, whatever slot it sits in', async () => {
    const clock = new VirtualClock();
    const disks = makeDisks(clock, 4, SS, 64, { service: { fixedMs: 0.1 } });
    const array = new Raid5({ name: 'r5', members: disks.faulty, clock, chunkBytes: CHUNK * SS });
    array.failMember(2);
    const spare = new FaultyDisk({ inner: new MemoryDisk({ name: 'spare', sectorCount: 64, clock, service: { fixedMs: 0.1 } }), clock });
    const rebuild = array.rebuild(2, spare, { stepSectors: 4 });
    rebuild.catch(() => undefined);
    await clock.run({ until: () => (array.rebuildProgress()?.doneSectors ?? 0) >= 8 });
    (array.member(2) as FaultyDisk).fail();
    expect(await rejectionOf(clock, rebuild)).toBeInstanceOf(DeviceFailedError);
    expect(array.status()).toMatchObject({ state: 'degraded', members: ['active', 'active', 'failed', 'active'], rebuild: null });
  });

  it('RAID-10: the array\'s member index reaches the right pair, and returns the device it failed', async () => {
    const clock = new VirtualClock();
    const disks = makeDisks(clock, 4, SS, 64);
    const array = new Raid10({ name: 'r10', members: disks.faulty, clock, chunkBytes: 4 * SS });
    expect(array.failMember(3)).toBe(disks.faulty[3]);
    expect(array.status().members).toEqual(['active', 'active', 'active', 'failed']);
    expect(() => array.failMember(4)).toThrow(/no member 4/);
  });
});
