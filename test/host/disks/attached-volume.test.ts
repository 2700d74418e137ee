import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RealClock } from '../../../host/clock/real.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { AttachedDeviceError } from '../../../host/disks/attached-errors.ts';
import type { FaultyDisk } from '../../../host/disks/faulty.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { BlockServer } from '../../../host/disks/serial-disk/block-server.ts';
import { openSerialLine } from '../../../host/disks/serial-disk/line.ts';
import { UsbMassStorageDisk } from '../../../host/disks/usb/usb-disk.ts';
import {
  buildVolume, formatVolumeSpec, holdsPriorData, isRealDevice, parseVolumeSpec, withKernelDriverDetach, VolumeSpecError, type VolumeSpec,
} from '../../../host/disks/volume-spec.ts';
import { SeededRandom } from '../../../host/random.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { pattern, runUntilSettled } from './helpers.ts';
import { ptyPair, type PtyPair } from '../../../host/disks/serial-disk/socat-pty.ts';

const MiB = 2 ** 20;

describe('volume specs of attached targets', () => {
  it('read usb, usb-emu and serial-disk specs, and format them back', () => {
    const cases: [string, VolumeSpec][] = [
      ['usb:0781:5581', { kind: 'usb', vendorId: 0x0781, productId: 0x5581, serial: null, lun: 0, sectorSize: 512, detachKernelDriver: false }],
      ['usb:0781:5581:4C530001:lun=1:sector=4096', { kind: 'usb', vendorId: 0x0781, productId: 0x5581, serial: '4C530001', lun: 1, sectorSize: 4096, detachKernelDriver: false }],
      ['usb-emu:64MiB', { kind: 'usb-emu', bytes: 64 * MiB, sectorSize: 512, faults: {} }],
      ['usb-emu:64MiB:faults=stall-in@0.05,csw-tag@0.02', { kind: 'usb-emu', bytes: 64 * MiB, sectorSize: 512, faults: { 'stall-in': 50_000, 'csw-tag': 20_000 } }],
      ['serial-disk:/dev/ttyUSB0', { kind: 'serial-disk', path: '/dev/ttyUSB0', baud: 115_200, sectorSize: 512 }],
      ['serial-disk:/dev/ttyUSB0:921600', { kind: 'serial-disk', path: '/dev/ttyUSB0', baud: 921_600, sectorSize: 512 }],
      ['serial-disk:/dev/serial/by-path/pci-0000:00:14.0-usb-0:1:1.0-port0:57600:sector=4096',
        { kind: 'serial-disk', path: '/dev/serial/by-path/pci-0000:00:14.0-usb-0:1:1.0-port0', baud: 57_600, sectorSize: 4096 }],
    ];
    for (const [text, spec] of cases) {
      expect(parseVolumeSpec(text)).toEqual(spec);
      expect(parseVolumeSpec(formatVolumeSpec(spec))).toEqual(spec);
    }
    expect(formatVolumeSpec(parseVolumeSpec('usb-emu:64MiB:faults=csw-tag'))).toBe('usb-emu:64MiB:faults=csw-tag@0.02');
  });

  it('refuse bad ones, saying what is wrong and what is allowed', () => {
    const cases: [string, RegExp][] = [
      ['usb:781:5581', /vendor ID "781" is not 4 hex digits/],
      ['usb:0781', /usb takes a vendor and a product ID/],
      ['usb:0781:5581:A:B', /usb takes a vendor and a product ID/],
      ['usb:0781:5581:lun=16', /a LUN is 0 to 15/],
      ['mem:64MiB:lun=1', /lun= applies to usb, not mem/],
      ['usb-emu:64MiB:faults=gremlins', /unknown USB fault "gremlins".*stall-in, stall-out/],
      ['usb-emu:64MiB:faults=phase@0.9', /chance must be a decimal from 0 to 0.5/],
      ['usb-emu:64MiB:faults=phase,phase', /named twice/],
      ['raid1:2x64MiB:faults=phase', /faults= applies to usb-emu/],
      ['usb-emu', /usb-emu takes one size/],
      ['serial-disk:', /serial-disk takes the path of a serial port/],
      ['serial-disk:/dev/ttyS0:300', /baud rate 300 is not 1200 to 4000000/],
    ];
    for (const [text, problem] of cases) {
      let error: unknown;
      try {
        parseVolumeSpec(text);
      } catch (e) {
        error = e;
      }
      expect(error, text).toBeInstanceOf(VolumeSpecError);
      expect((error as Error).message).toMatch(problem);
    }
  });

  it('say which kinds hold data from before a run, which are real devices, and where a kernel driver may be detached', () => {
    const [usb, emu, serial, file, mem] = ['usb:0781:5581', 'usb-emu:1MiB', 'serial-disk:/dev/ttyS0', 'file:/x:1MiB', 'mem:1MiB'].map(parseVolumeSpec) as VolumeSpec[];
    expect([usb, emu, serial, file, mem].map((s) => holdsPriorData(s!))).toEqual([true, false, true, true, false]);
    expect([usb, emu, serial, file, mem].map((s) => isRealDevice(s!))).toEqual([true, false, true, false, false]);
    expect(withKernelDriverDetach(usb!)).toMatchObject({ detachKernelDriver: true });
    expect(withKernelDriverDetach(mem!)).toBe(mem);
  });
});

describe('building attached volumes', () => {
  it('usb-emu: the driver over an emulated device, opened on a clock of its own, then living on the volume\'s', async () => {
    const clock = new VirtualClock();
    const volume = await buildVolume(parseVolumeSpec('usb-emu:8MiB:faults=csw-tag@0.1'), { name: 'B/lun0', clock, random: new SeededRandom(4) });
    expect(clock.now()).toBe(0); // opening did not move the run's clock
    const disk = volume.device as FaultyDisk;
    expect(disk.inner).toBeInstanceOf(UsbMassStorageDisk);
    expect(disk.sectorCount).toBe(8 * MiB / 512);
    await runUntilSettled(clock, disk.write(100, pattern(3, 64 * 1024)));
    expect(Buffer.compare(await runUntilSettled(clock, disk.read(100, 128)), pattern(3, 64 * 1024))).toBe(0);
    expect(clock.now()).toBeGreaterThan(0);
    await volume.close();
  });

  it('usb: a device that is not there is an operating error naming it (there is no USB bus here)', async () => {
    const error = await buildVolume(parseVolumeSpec('usb:1234:5678'), { name: 'A/lun0', clock: new VirtualClock() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AttachedDeviceError);
    expect((error as AttachedDeviceError).code).toBe('ML_ERR_USB_NOT_FOUND');
    expect((error as Error).message).toMatch(/^USB device 1234:5678 is not connected \(no USB devices are present here\); see mirrorlab devices$/);
  });

  describe('serial-disk over a PTY', () => {
    const scratch = scratchDir('attached');
    let pair: PtyPair;
    beforeAll(async () => {
      pair = await ptyPair(scratch.dir(), 'volume');
    });
    afterAll(async () => {
      await pair.stop();
    });

    it('opens what the board serves, and refuses a board whose sectors are not the spec\'s', async () => {
      const line = await openSerialLine(pair.b, 115_200);
      const server = new BlockServer({ line, device: new MemoryDisk({ name: 'board', sectorSize: 4096, sectorCount: 256, clock: new RealClock() }) });
      try {
        const refused = await buildVolume(parseVolumeSpec(`serial-disk:${pair.a}`), { name: 'B/lun0', clock: new VirtualClock() }).catch((e: unknown) => e);
        expect((refused as AttachedDeviceError).code).toBe('ML_ERR_DISK_SECTOR_SIZE');
        expect((refused as Error).message).toMatch(/the device has 4096-byte sectors, but the spec says 512; add :sector=4096/);
        const volume = await buildVolume(parseVolumeSpec(`serial-disk:${pair.a}:sector=4096`), { name: 'B/lun0', clock: new VirtualClock(), faultOverlay: false });
        expect(volume.device.sectorCount).toBe(256);
        await volume.close();
      } finally {
        await server.stop();
        await line.close();
      }
    });
  });
});
