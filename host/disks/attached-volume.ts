import type { BlockDevice } from '../../firmware/ports/block-device.ts';
import { SeededRandom } from '../random.ts';
import { AttachedDeviceError } from './attached-errors.ts';
import { FaultyDisk } from './faulty.ts';
import { MemoryDisk } from './memory.ts';
import { openSerialLine } from './serial-disk/line.ts';
import { SerialDisk } from './serial-disk/serial-disk.ts';
import { EmulatedUsbMassStorage } from './usb/emulated/emulated-usb-device.ts';
import { SetupClock } from './usb/emulated/setup-clock.ts';
import { openUsbDisk } from './usb/open-usb.ts';
import { UsbMassStorageDisk } from './usb/usb-disk.ts';
import type { BuildVolumeOptions, Volume } from './volume.ts';
import type { AttachedVolumeSpec } from './volume-spec.ts';

/**
 * Builds the volumes on attached (or emulated) storage targets (docs/usb-serial-targets.md):
 * `usb-emu` (the driver over an emulated device over a memory disk), `usb` (the driver over a
 * real device, through the `usb` package) and `serial-disk` (the serial block protocol over a
 * port). Each is one disk (`disks[0]`, under the fault overlay when asked), whose sector size
 * must be the one the spec names.
 */
export async function buildAttachedVolume(spec: AttachedVolumeSpec, options: BuildVolumeOptions): Promise<Volume> {
  const opened = spec.kind === 'usb-emu' ? await openUsbEmu(spec, options) : spec.kind === 'usb' ? await openUsbDisk(spec, options) : await openSerial(spec, options);
  const disk = opened as BlockDevice & { close(): Promise<void> };
  if (disk.sectorSize !== spec.sectorSize) {
    await disk.close().catch(() => undefined);
    throw new AttachedDeviceError('ML_ERR_DISK_SECTOR_SIZE',
      `${options.name}: the device has ${disk.sectorSize}-byte sectors, but the spec says ${spec.sectorSize}; add :sector=${disk.sectorSize} to the spec (a mirror needs the same sector size on both sides)`);
  }
  const top = options.faultOverlay === false ? disk : new FaultyDisk({ inner: disk, clock: options.clock });
  return { spec, device: top, array: null, disks: [top], close: () => disk.close() };
}

/**
 * An emulated device over a sparse memory disk, with the driver on top. Opening takes transfers,
 * so it runs on a clock of its own that is then handed over to the volume's (see SetupClock).
 */
async function openUsbEmu(spec: Extract<AttachedVolumeSpec, { kind: 'usb-emu' }>, options: BuildVolumeOptions): Promise<UsbMassStorageDisk> {
  const clock = new SetupClock();
  const random = options.random ?? new SeededRandom(0);
  const media = new MemoryDisk({
    name: `${options.name}.media`, sectorSize: spec.sectorSize, sectorCount: spec.bytes / spec.sectorSize, clock, service: options.service,
    writeCacheBytesMax: options.writeCacheBytesMax, random: random.fork(`disk:${options.name}.media`),
  });
  const device = new EmulatedUsbMassStorage({ clock, luns: [media], random: random.fork(`usb-emu:${options.name}`), faults: spec.faults });
  const disk = await clock.drive(UsbMassStorageDisk.open(device, { name: options.name, clock, locate: async () => (device.present ? device : undefined) }));
  clock.handOver(options.clock);
  return disk;
}

async function openSerial(spec: Extract<AttachedVolumeSpec, { kind: 'serial-disk' }>, options: BuildVolumeOptions): Promise<SerialDisk> {
  const line = await openSerialLine(spec.path, spec.baud);
  try {
    return await SerialDisk.open({ name: options.name, clock: options.clock, line, baud: spec.baud, service: options.service });
  } catch (error) {
    await line.close();
    if (error instanceof AttachedDeviceError && error.code === 'ML_ERR_SERIAL_DISK_SILENT') {
      throw new AttachedDeviceError('ML_ERR_SERIAL_DISK_SILENT',
        `${options.name}: nothing on ${spec.path} answered the serial block protocol's IDENTIFY (${error.message}); expected a board, or mirrorlab serial-disk --port, on the other end at ${spec.baud} baud`, error);
    }
    throw error;
  }
}
