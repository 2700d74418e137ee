import { describe, expect, it } from 'vitest';
import { DeviceFailedError, MediaError } from '../../../../firmware/ports/block-device.ts';
import { AttachedDeviceError } from '../../../../host/disks/attached-errors.ts';
import { CswStatus, encodeCbw, judgeCsw, type DataDirection } from '../../../../host/disks/usb/bot.ts';
import { BulkOnlyTransport } from '../../../../host/disks/usb/bot-transport.ts';
import { EmulatedUsbMassStorage } from '../../../../host/disks/usb/emulated/emulated-usb-device.ts';
import { Op, parseSense, readWrite, requestSense, testUnitReady } from '../../../../host/disks/usb/scsi.ts';
import { bytesOf } from '../../../../host/disks/usb/usb-device.ts';
import { UsbMassStorageDisk } from '../../../../host/disks/usb/usb-disk.ts';
import { claimBulkOnly } from '../../../../host/disks/usb/usb-session.ts';
import { MemoryDisk } from '../../../../host/disks/memory.ts';
import { SeededRandom } from '../../../../host/random.ts';
import { pattern, rejectionOf, runUntilSettled } from '../helpers.ts';
import { Tap, emulatedRig, openDriver, type EmulatedRig } from './usb-fixtures.ts';

const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(a, b) === 0;

describe('the USB mass-storage driver', () => {
  it('selects the LUN it is asked for, and refuses one the device lacks', async () => {
    const rig = emulatedRig({ luns: 2 });
    await runUntilSettled(rig.clock, rig.media[1]!.write(0, pattern(11, 512)));
    const tap = new Tap(rig.device);
    const disk = await openDriver(rig, { lun: 1 }, tap);
    expect(disk.identity.maxLun).toBe(1);
    expect(same(await runUntilSettled(rig.clock, disk.read(0, 1)), pattern(11, 512))).toBe(true);
    expect(tap.cbws.every((c) => c.lun === 1)).toBe(true);
    await disk.close();
    const other = emulatedRig({ luns: 2 });
    const error = await openDriver(other, { lun: 2 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AttachedDeviceError);
    expect((error as AttachedDeviceError).code).toBe('ML_ERR_USB_LUN');
    expect((error as Error).message).toMatch(/the device has LUNs 0..1, not 2/);
  });

  it('never sends a READ or WRITE longer than the device\'s Block Limits, nor the host\'s own ceiling', async () => {
    const rig = emulatedRig({ transferBytesMax: 16 * 1024, sectorCount: 4096 });
    const tap = new Tap(rig.device);
    const disk = await openDriver(rig, {}, tap);
    expect(disk.identity.deviceTransferBlocksMax).toBe(32);
    expect(disk.transferBlocksMax).toBe(32);
    const data = pattern(3, 200 * 512);
    await runUntilSettled(rig.clock, disk.write(7, data));
    expect(same(await runUntilSettled(rig.clock, disk.read(7, 200)), data)).toBe(true);
    const rw = tap.cbws.filter((c) => c.cb[0] === Op.Read10 || c.cb[0] === Op.Write10);
    expect(rw.length).toBe(2 * Math.ceil(200 / 32));
    expect(Math.max(...rw.map((c) => c.dataTransferLength))).toBe(16 * 1024);
    const small = await openDriver(emulatedRig({ transferBytesMax: 64 * 1024 }), { transferBytesMax: 4096 });
    expect(small.transferBlocksMax).toBe(8);
  });

  it('reads the capacity with READ CAPACITY(16), and uses READ/WRITE(16), beyond 2^32 blocks', async () => {
    const rig = emulatedRig({ sectorCount: 2 ** 33 });
    const tap = new Tap(rig.device);
    const disk = await openDriver(rig, {}, tap);
    expect(disk.sectorCount).toBe(2 ** 33);
    expect(tap.opcodes).toContain(Op.ServiceActionIn16);
    const last = disk.sectorCount - 4;
    await runUntilSettled(rig.clock, disk.write(last, pattern(5, 4 * 512)));
    expect(same(await runUntilSettled(rig.clock, disk.read(last, 4)), pattern(5, 4 * 512))).toBe(true);
    expect(tap.opcodes).toEqual(expect.arrayContaining([Op.Read16, Op.Write16]));
    rig.overlays[0]!.apply({ badSectors: [last + 2] });
    const error = await rejectionOf(rig.clock, disk.read(last, 4));
    expect(error).toBeInstanceOf(MediaError);
    expect((error as MediaError).lba).toBe(last + 2); // through descriptor-format sense: the LBA needs 64 bits
  });

  it('flushes with SYNCHRONIZE CACHE, which empties the device\'s volatile cache', async () => {
    const rig = emulatedRig({ writeCacheSectors: 64 });
    const tap = new Tap(rig.device);
    const disk = await openDriver(rig, {}, tap);
    await runUntilSettled(rig.clock, disk.write(0, pattern(1, 8 * 512)));
    expect(rig.media[0]!.unflushedBytes).toBeGreaterThan(0);
    await runUntilSettled(rig.clock, disk.flush());
    expect(rig.media[0]!.unflushedBytes).toBe(0);
    expect(tap.opcodes.at(-1)).toBe(Op.SynchronizeCache10);
  });

  it('refuses a unit that is not a direct-access block device', async () => {
    const rig = emulatedRig();
    const tap = new Tap(rig.device);
    tap.rewriteIn = (cb, data) => (cb[0] === Op.Inquiry && (cb[1]! & 1) === 0 ? Uint8Array.of(0x05, ...data.subarray(1)) : data);
    const error = await openDriver(rig, {}, tap).catch((e: unknown) => e);
    expect((error as AttachedDeviceError).code).toBe('ML_ERR_USB_NOT_MASS_STORAGE');
    expect((error as Error).message).toMatch(/a CD\/DVD device .* expected a direct-access block device/);
  });

  it('finds the device again after it drops off the bus in the middle of a write, and the data is whole', async () => {
    const rig = emulatedRig({ sectorCount: 4096 });
    const disk = await openDriver(rig);
    const data = pattern(8, 1000 * 512);
    const write = disk.write(100, data);
    await rig.clock.run({ maxEvents: 20 });
    rig.device.unplug();
    await runUntilSettled(rig.clock, write);
    expect(same(await runUntilSettled(rig.clock, disk.read(100, 1000)), data)).toBe(true);
    expect(disk.counters.reattaches).toBe(1);
    expect(rig.device.stats.reattaches).toBe(1);
  });

  it('fails every request once a different medium turns up in its place, rather than serve another disk', async () => {
    const rig = emulatedRig({ sectorCount: 2048 });
    const smaller = new MemoryDisk({ name: 'another stick', sectorCount: 1024, clock: rig.clock });
    let current: EmulatedUsbMassStorage = rig.device;
    const disk = await runUntilSettled(rig.clock, UsbMassStorageDisk.open(rig.device, { name: 'usb', clock: rig.clock, locate: async () => current }));
    current = new EmulatedUsbMassStorage({ clock: rig.clock, luns: [smaller], random: new SeededRandom(2) });
    rig.device.unplug({ forever: true });
    const first = await rejectionOf(rig.clock, disk.read(0, 1));
    expect(first).toBeInstanceOf(DeviceFailedError);
    expect((first as Error).message).toMatch(/the medium changed: it now has 1024 blocks/);
    expect(await rejectionOf(rig.clock, disk.write(0, new Uint8Array(512)))).toBeInstanceOf(DeviceFailedError);
  });

  it('keeps every byte right under every recoverable fault at once, over many requests crossing the transfer limit', async () => {
    const rig = emulatedRig({
      sectorCount: 8192, seed: 42, transferBytesMax: 32 * 1024,
      faults: { 'stall-in': 50_000, 'stall-out': 50_000, short: 50_000, zlp: 50_000, 'csw-signature': 30_000, 'csw-tag': 30_000, phase: 30_000, 'unit-attention': 30_000, disconnect: 5_000 },
    });
    const disk = await openDriver(rig);
    const model = new Uint8Array(8192 * 512);
    const random = new SeededRandom(7);
    for (let i = 0; i < 300; i++) {
      const count = 1 + random.int(200);
      const lba = random.int(8192 - count);
      if (random.int(2) === 0) {
        const data = pattern(1000 + i, count * 512);
        await runUntilSettled(rig.clock, disk.write(lba, data));
        model.set(data, lba * 512);
      } else {
        const got = await runUntilSettled(rig.clock, disk.read(lba, count));
        expect(same(got, model.subarray(lba * 512, (lba + count) * 512)), `read ${i} at ${lba}+${count}`).toBe(true);
      }
    }
    const injected = rig.device.faults.injected;
    expect(Object.entries(injected).filter(([k, n]) => k !== 'medium' && n === 0)).toEqual([]);
    expect(disk.counters.resetRecoveries).toBeGreaterThan(0);
  });

  it('under transient medium errors, a read returns the right bytes or a MediaError inside its range, never anything else', async () => {
    const rig = emulatedRig({ sectorCount: 2048, seed: 9, faults: { medium: 300_000, 'stall-in': 50_000 } });
    const disk = await openDriver(rig);
    const data = pattern(77, 2048 * 512);
    for (let at = 0; at < 2048; at += 128) await runUntilSettled(rig.clock, disk.write(at, data.subarray(at * 512, (at + 128) * 512)));
    let media = 0;
    for (let i = 0; i < 200; i++) {
      const lba = (i * 37) % 1900;
      try {
        const got = await runUntilSettled(rig.clock, disk.read(lba, 100));
        expect(same(got, data.subarray(lba * 512, (lba + 100) * 512))).toBe(true);
      } catch (error) {
        expect(error).toBeInstanceOf(MediaError);
        expect((error as MediaError).lba).toBeGreaterThanOrEqual(lba);
        expect((error as MediaError).lba).toBeLessThan(lba + 100);
        media++;
      }
    }
    expect(media).toBeGreaterThan(10);
  });
});

/** Raw Bulk-Only transactions against the emulated device, one step at a time. */
class Raw {
  tag = 100;
  constructor(readonly rig: EmulatedRig) {}
  run<T>(p: Promise<T>): Promise<T> {
    return runUntilSettled(this.rig.clock, p);
  }
  async cbw(cb: Uint8Array, direction: DataDirection, length: number, lun = 0) {
    return this.run(this.rig.device.transferOut(2, encodeCbw({ tag: ++this.tag, dataTransferLength: length, direction, lun, cb })));
  }
  async in(length: number) {
    return this.run(this.rig.device.transferIn(1, length));
  }
  async out(data: Uint8Array) {
    return this.run(this.rig.device.transferOut(2, data));
  }
  async csw(length: number) {
    const r = await this.in(13);
    return r.status === 'ok' ? judgeCsw(bytesOf(r), { tag: this.tag, dataTransferLength: length }) : r.status;
  }
}

async function rawRig(faults = {}): Promise<Raw> {
  const rig = emulatedRig({ faults });
  await runUntilSettled(rig.clock, claimBulkOnly(rig.device, 'raw'));
  return new Raw(rig);
}

describe('the emulated device speaks Bulk-Only as the specification says', () => {
  it('answers the thirteen host/device cases of BOT 6.7 with the status and residue they call for', async () => {
    const r = await rawRig();
    const inquiry = Uint8Array.of(0x12, 0, 0, 0, 36, 0);
    // Case 5 (Hi > Di): 36 bytes of a 64-byte data phase, residue 28.
    await r.cbw(inquiry, 'in', 64);
    expect(bytesOf(await r.in(64)).length).toBe(36);
    expect(await r.csw(64)).toEqual({ kind: 'passed', residue: 28 });
    // Case 2 (Hn < Di): the host expects no data but the command has some: phase error.
    await r.cbw(inquiry, 'none', 0);
    expect(await r.csw(0)).toEqual({ kind: 'phase-error' });
    // Case 7 (Hi < Di): the device would send more than the host asked: phase error after what fits.
    await r.cbw(readWrite('read', 0, 1), 'in', 100);
    expect(bytesOf(await r.in(100)).length).toBe(100);
    expect(await r.csw(100)).toEqual({ kind: 'phase-error' });
    // Case 4 (Hi > Dn): no data for the host: bulk-in STALLs, then the CSW.
    await r.cbw(testUnitReady(), 'in', 16);
    expect((await r.in(16)).status).toBe('stall');
    await r.run(r.rig.device.clearHalt('in', 1));
    expect(await r.csw(16)).toEqual({ kind: 'passed', residue: 16 });
    // Case 9 (Ho > Dn): data the command does not take is accepted and reported as residue.
    await r.cbw(testUnitReady(), 'out', 512);
    await r.out(new Uint8Array(512));
    expect(await r.csw(512)).toEqual({ kind: 'passed', residue: 512 });
    // Case 11 (Ho > Do): a 1-block WRITE in a 1024-byte data phase.
    await r.cbw(readWrite('write', 3, 1), 'out', 1024);
    await r.out(new Uint8Array(1024).fill(9));
    expect(await r.csw(1024)).toEqual({ kind: 'passed', residue: 512 });
    // Case 13 (Ho < Do): phase error, nothing written.
    await r.cbw(readWrite('write', 4, 2), 'out', 512);
    await r.out(new Uint8Array(512).fill(7));
    expect(await r.csw(512)).toEqual({ kind: 'phase-error' });
    // Case 10 (Ho <> Di) and case 8 (Hi <> Do): phase errors.
    await r.cbw(readWrite('read', 0, 1), 'out', 512);
    await r.out(new Uint8Array(512));
    expect(await r.csw(512)).toEqual({ kind: 'phase-error' });
    await r.cbw(readWrite('write', 0, 1), 'in', 512);
    expect((await r.in(512)).status).toBe('stall');
    await r.run(r.rig.device.clearHalt('in', 1));
    expect(await r.csw(512)).toEqual({ kind: 'phase-error' });
    expect([...(await r.run(r.rig.media[0]!.read(3, 2)))].slice(0, 513)).toEqual([...new Uint8Array(512).fill(9), 0]);
  });

  it('stalls both pipes after an invalid CBW until a full reset recovery: the reset alone, or clearing HALT alone, is not enough', async () => {
    const r = await rawRig();
    const dev = r.rig.device;
    expect((await r.out(new Uint8Array(31).fill(0x55))).status).toBe('stall');
    expect((await r.in(13)).status).toBe('stall');
    await r.run(dev.clearHalt('in', 1));
    await r.run(dev.clearHalt('out', 2));
    expect((await r.cbw(testUnitReady(), 'none', 0)).status).toBe('stall'); // clearing HALT alone
    const reset = { requestType: 'class', recipient: 'interface', request: 0xff, value: 0, index: 0 } as const;
    await r.run(dev.controlTransferOut(reset));
    expect((await r.cbw(testUnitReady(), 'none', 0)).status).toBe('stall'); // the reset alone: STALLs survive it (BOT 3.1)
    await r.run(dev.controlTransferOut(reset));
    await r.run(dev.clearHalt('in', 1));
    await r.run(dev.clearHalt('out', 2));
    expect((await r.cbw(testUnitReady(), 'none', 0)).status).toBe('ok');
    expect(await r.csw(0)).toEqual({ kind: 'passed', residue: 0 });
  });

  it('reports a unit attention after a reset when told to, and REQUEST SENSE names it (06h/29h/00h)', async () => {
    const r = await rawRig({ 'unit-attention': 1 });
    const transport = new BulkOnlyTransport(r.rig.device, { interfaceNumber: 0, bulkIn: 1, bulkOut: 2 });
    await r.run(transport.resetRecovery());
    const tur = await r.run(transport.transact({ lun: 0, cb: testUnitReady(), direction: 'none', length: 0 }));
    expect(tur.kind).toBe('failed');
    const sense = await r.run(transport.transact({ lun: 0, cb: requestSense(18), direction: 'in', length: 18 }));
    expect(sense.kind === 'passed' && parseSense(sense.data)).toEqual({ key: 6, asc: 0x29, ascq: 0, information: null });
    expect((await r.run(transport.transact({ lun: 0, cb: testUnitReady(), direction: 'none', length: 0 }))).kind).toBe('passed');
  });

  it('commits each fault as described, and the transport recovers from each without help', async () => {
    for (const kind of ['csw-signature', 'csw-tag', 'phase'] as const) {
      const r = await rawRig({ [kind]: 1_000_000 });
      const transport = new BulkOnlyTransport(r.rig.device, { interfaceNumber: 0, bulkIn: 1, bulkOut: 2 });
      const outcome = await r.run(transport.transact({ lun: 0, cb: testUnitReady(), direction: 'none', length: 0 }));
      expect({ kind, outcome: outcome.kind, resets: transport.counters.resetRecoveries }).toEqual({ kind, outcome: 'recovered', resets: 1 });
    }
    const zlp = await rawRig({ zlp: 1_000_000 });
    const t = new BulkOnlyTransport(zlp.rig.device, { interfaceNumber: 0, bulkIn: 1, bulkOut: 2 });
    expect((await zlp.run(t.transact({ lun: 0, cb: testUnitReady(), direction: 'none', length: 0 }))).kind).toBe('passed');
    expect(t.counters.zeroLengthCsws).toBe(1);
    expect(CswStatus.PhaseError).toBe(2);
  });
});
