import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RealClock } from '../../../../host/clock/real.ts';
import type { AttachedDeviceError } from '../../../../host/disks/attached-errors.ts';
import { listAttachedDevices } from '../../../../host/disks/discovery.ts';
import { MemoryDisk } from '../../../../host/disks/memory.ts';
import { EmulatedUsbMassStorage } from '../../../../host/disks/usb/emulated/emulated-usb-device.ts';
import { openUsbDisk, type ListedUsbDevice, type UsbEnvironment } from '../../../../host/disks/usb/open-usb.ts';
import { UsbSysfs } from '../../../../host/disks/usb/sysfs.ts';
import { parseVolumeSpec, withKernelDriverDetach } from '../../../../host/disks/volume-spec.ts';
import { SeededRandom } from '../../../../host/random.ts';
import { scratchDir } from '../../../support/scratch-dir.ts';
import { pattern } from '../helpers.ts';
import { Tap } from './usb-fixtures.ts';

/**
 * Opening a `usb:` volume against a fake /sys and /proc (built in a scratch directory, laid out as
 * Linux lays them out) and emulated devices that say where they sit on the bus: the USB safety
 * rules, checked without a USB bus.
 */
const scratch = scratchDir('usb-sysfs');
let trees = 0;

interface TreeOptions {
  driver?: string | null;
  mounted?: boolean;
  swap?: boolean;
  serial?: string;
}

/** A fake /sys + /proc with one mass-storage device, 1209:4d4c at bus 1 address 5, port 1-2. */
async function fakeTree(o: TreeOptions = {}): Promise<{ sys: string; proc: string }> {
  const root = join(scratch.dir(), `tree${trees++}`);
  const sys = join(root, 'sys');
  const proc = join(root, 'proc');
  const devices = join(sys, 'bus/usb/devices');
  const put = async (path: string, text: string): Promise<void> => {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, `${text}\n`);
  };
  const dev = join(devices, '1-2');
  await put(join(dev, 'idVendor'), '1209');
  await put(join(dev, 'idProduct'), '4d4c');
  await put(join(dev, 'serial'), o.serial ?? 'MLEMU0001');
  await put(join(dev, 'busnum'), '1');
  await put(join(dev, 'devnum'), '5');
  await put(join(dev, 'product'), 'emulated mass storage');
  const iface = join(devices, '1-2:1.0');
  await put(join(iface, 'bInterfaceNumber'), '00');
  await put(join(iface, 'bInterfaceClass'), '08');
  await put(join(iface, 'bInterfaceSubClass'), '06');
  await put(join(iface, 'bInterfaceProtocol'), '50');
  if (o.driver !== null && o.driver !== undefined) {
    await mkdir(join(sys, 'bus/usb/drivers', o.driver), { recursive: true });
    await symlink(join('../../../../bus/usb/drivers', o.driver), join(iface, 'driver'));
    const block = join(iface, 'host6/target6:0:0/6:0:0:0/block/sdb');
    await put(join(block, 'dev'), '8:16');
    await put(join(block, 'sdb1/dev'), '8:17');
    await mkdir(join(block, 'holders'), { recursive: true });
  }
  await put(join(proc, 'self/mountinfo'), [
    '22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw',
    ...(o.mounted ? ['90 22 8:17 / /media/stick\\040one rw,nosuid shared:50 - vfat /dev/sdb1 rw'] : []),
  ].join('\n'));
  await put(join(proc, 'swaps'), ['Filename Type Size Used Priority', ...(o.swap ? ['/dev/sdb1 partition 1000 0 -2'] : [])].join('\n'));
  return { sys, proc };
}

/** An emulated device as the `usb` package lists it (bus, address), with kernel-driver calls that record what they do. */
class Listed extends Tap {
  readonly bus = '1';
  readonly address = 5;
  readonly kernel: string[] = [];
  opens = 0;
  override open(): Promise<void> {
    this.opens++;
    return super.open();
  }
  async detachKernelDriver(n: number): Promise<void> {
    this.kernel.push(`detach ${n}`);
  }
  async attachKernelDriver(n: number): Promise<void> {
    this.kernel.push(`attach ${n}`);
  }
}

function listed(serial?: string): Listed {
  const clock = new RealClock();
  return new Listed(new EmulatedUsbMassStorage({ clock, luns: [new MemoryDisk({ name: 'stick', sectorCount: 2048, clock })], random: new SeededRandom(1), serialNumber: serial }));
}

function env(devices: ListedUsbDevice[], tree: { sys: string; proc: string }): UsbEnvironment {
  return { listDevices: async () => devices, sysfs: new UsbSysfs(tree.sys, tree.proc) };
}

const SPEC = parseVolumeSpec('usb:1209:4d4c') as Extract<ReturnType<typeof parseVolumeSpec>, { kind: 'usb' }>;
const open = (devices: ListedUsbDevice[], tree: { sys: string; proc: string }, spec = SPEC) => openUsbDisk(spec, { name: 'usb', clock: new RealClock(), env: env(devices, tree) });

describe('opening a usb: volume', () => {
  it('refuses a device with a mounted partition, even with --detach-kernel-driver, before touching it', async () => {
    const d = listed();
    const error = await open([d], await fakeTree({ driver: 'usb-storage', mounted: true }), withKernelDriverDetach(SPEC) as typeof SPEC).catch((e: unknown) => e);
    expect((error as AttachedDeviceError).code).toBe('ML_ERR_USB_MOUNTED');
    expect((error as Error).message).toBe('USB device 1209:4d4c is in use by this system: /dev/sdb1 is mounted at /media/stick one; unmount it (and stop what holds it) first: mirrorlab will not take a disk from under a filesystem');
    expect([d.opens, d.kernel]).toEqual([0, []]);
  });

  it('refuses a device used as swap', async () => {
    const error = await open([listed()], await fakeTree({ driver: 'usb-storage', swap: true })).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/\/dev\/sdb1 is in use as swap/);
  });

  it('never detaches a kernel driver unless told to: without the flag, a held device is refused and left alone', async () => {
    const d = listed();
    const error = await open([d], await fakeTree({ driver: 'usb-storage' })).catch((e: unknown) => e);
    expect((error as AttachedDeviceError).code).toBe('ML_ERR_USB_IN_USE');
    expect((error as Error).message).toMatch(/held by the kernel driver usb-storage; pass --detach-kernel-driver/);
    expect([d.opens, d.kernel]).toEqual([0, []]);
  });

  it('with --detach-kernel-driver, detaches it, works, and attaches it again when closed', async () => {
    const d = listed();
    const disk = await open([d], await fakeTree({ driver: 'usb-storage' }), withKernelDriverDetach(SPEC) as typeof SPEC);
    await disk.write(3, pattern(1, 1024));
    expect(Buffer.compare(await disk.read(3, 2), pattern(1, 1024))).toBe(0);
    expect(d.kernel).toEqual(['detach 0']);
    await disk.close();
    expect(d.kernel).toEqual(['detach 0', 'attach 0']);
  });

  it('refuses a device another program has claimed, whatever the flags', async () => {
    const error = await open([listed()], await fakeTree({ driver: 'usbfs' }), withKernelDriverDetach(SPEC) as typeof SPEC).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/another program has claimed its mass-storage interface/);
  });

  it('opens a free device (no driver bound), and tells apart several by serial number', async () => {
    const tree = await fakeTree({ driver: null });
    const disk = await open([listed()], tree);
    expect(disk.sectorCount).toBe(2048);
    await disk.close();
    const two = [listed('A1'), listed('B2')];
    const ambiguous = await open(two, tree).catch((e: unknown) => e);
    expect((ambiguous as AttachedDeviceError).code).toBe('ML_ERR_USB_AMBIGUOUS');
    expect((ambiguous as Error).message).toMatch(/2 devices match .* name one by serial number, usb:1209:4d4c:SERIAL \(serials: A1, B2\)/);
    const missing = await open(two, tree, parseVolumeSpec('usb:1209:4d4c:C3') as typeof SPEC).catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(/USB device 1209:4d4c \(serial C3\) is not connected \(present: 1209:4d4c, 1209:4d4c\)/);
  });

  it('lists devices for `mirrorlab devices`: mass storage or not, free or why not', async () => {
    const held = await listAttachedDevices({ listSerial: async () => [{ path: '/dev/ttyUSB0', manufacturer: 'FTDI', vendorId: '0403', productId: '6001' }], usb: async () => env([listed()], await fakeTree({ driver: 'usb-storage', mounted: true })) });
    expect(held.serial).toEqual([{ path: '/dev/ttyUSB0', manufacturer: 'FTDI', serialNumber: null, vendorId: '0403', productId: '6001', spec: 'serial-disk:/dev/ttyUSB0' }]);
    expect(held.usb).toEqual([expect.objectContaining({
      vendorId: '1209', productId: '4d4c', serialNumber: 'MLEMU0001', massStorage: true, driver: 'usb-storage', free: false,
      busy: ['held by the kernel driver usb-storage', '/dev/sdb1 is mounted at /media/stick one'], spec: 'usb:1209:4d4c:MLEMU0001',
    })]);
    const free = await listAttachedDevices({ listSerial: async () => [], usb: async () => env([listed()], await fakeTree({ driver: null })) });
    expect(free.usb[0]).toMatchObject({ massStorage: true, free: true, busy: [] });
  });

  it('a machine without udevadm lists no serial ports and says why, rather than failing', async () => {
    const noUdev = async (): Promise<never> => {
      throw new Error('spawn udevadm ENOENT');
    };
    const listing = await listAttachedDevices({ listSerial: noUdev, usb: async () => env([], await fakeTree({ driver: null })) });
    expect(listing.serial).toEqual([]);
    expect(listing.notes).toContain('serial ports cannot be listed here: udevadm is not installed (serialport lists ports through udev); a port can still be named by its path (serial-disk:/dev/ttyUSB0)');
  });
});
