import { setTimeout as sleep } from 'node:timers/promises';
import type { HostClock } from '../../clock/clock.ts';
import { AttachedDeviceError } from '../attached-errors.ts';
import type { ServiceTimeConfig } from '../service-time.ts';
import type { AttachedVolumeSpec } from '../volume-spec.ts';
import { UsbMassStorageDisk } from './usb-disk.ts';
import type { MassStorageUsbDevice } from './usb-device.ts';
import { MASS_STORAGE_CLASS } from './usb-session.ts';
import { UsbSysfs } from './sysfs.ts';

/** A device as the `usb` package lists it: the WebUSB part, plus where it sits on the bus (Linux). */
export type ListedUsbDevice = MassStorageUsbDevice & { bus?: string; address?: number; ports?: number[] };

/** Where devices come from: the `usb` package and sysfs, or a test's fakes. */
export interface UsbEnvironment {
  /** Every USB device present (an empty list on a machine without a USB bus). */
  listDevices(): Promise<ListedUsbDevice[]>;
  sysfs: UsbSysfs;
}

type UsbSpec = Extract<AttachedVolumeSpec, { kind: 'usb' }>;

export const hex4 = (v: number): string => v.toString(16).padStart(4, '0');

/**
 * The `usb` package's devices. Loaded only when a usb volume is opened (its native module is
 * then needed); `getDevices()` rejects when /sys/bus/usb is missing, which means no devices.
 */
export async function systemUsbEnvironment(): Promise<UsbEnvironment> {
  let usb: { getDevices(): Promise<unknown[]> };
  try {
    ({ usb } = (await import('usb')) as unknown as { usb: typeof usb });
  } catch (error) {
    throw new AttachedDeviceError('ML_ERR_USB_UNAVAILABLE', `the usb package's native module cannot be loaded here (${(error as Error).message}); reinstall with npm ci on this platform`, error);
  }
  return {
    listDevices: async () => (await usb.getDevices().catch(() => [])) as ListedUsbDevice[],
    sysfs: new UsbSysfs(),
  };
}

export interface OpenUsbOptions {
  name: string;
  clock: HostClock;
  service?: ServiceTimeConfig;
  env?: UsbEnvironment;
}

/**
 * Opens a `usb:` volume (docs/usb-serial-targets.md, "USB safety"): finds exactly one device with
 * the spec's IDs (and serial), refuses it if any disk the kernel made of it is mounted, used as
 * swap or held by device-mapper or md (whatever the flags), refuses it if a kernel driver holds
 * its mass-storage interface unless the spec says to detach it (only --detach-kernel-driver
 * does), refuses it if another program has claimed it, then claims it and opens the LUN. A
 * detached kernel driver is attached again when the volume is closed.
 */
export async function openUsbDisk(spec: UsbSpec, options: OpenUsbOptions): Promise<UsbMassStorageDisk> {
  const env = options.env ?? (await systemUsbEnvironment());
  const label = usbLabel(spec);
  const device = await findOne(spec, env, label);
  const iface = await inspect(spec, env, device, label);
  const detach = iface?.driver !== null && iface?.driver !== undefined && iface.driver !== 'usbfs';
  let detached = false;
  try {
    await device.open();
    if (detach) {
      if (!device.detachKernelDriver) throw new AttachedDeviceError('ML_ERR_USB_IN_USE', `${label}: held by the kernel driver ${iface!.driver}, and this platform cannot detach it`);
      await device.detachKernelDriver(iface!.number);
      detached = true;
    }
    const locate = async (): Promise<MassStorageUsbDevice | undefined> => (await env.listDevices()).find((d) => matches(d, spec));
    const reattach = async (): Promise<void> => {
      if (detached) await device.attachKernelDriver?.(iface!.number).catch(() => undefined);
    };
    return await UsbMassStorageDisk.open(device, {
      name: options.name, clock: options.clock, lun: spec.lun, realIo: { service: options.service ?? {} }, pause: (ms) => sleep(ms), locate, afterClose: reattach,
    }).catch((error: unknown) => {
      throw claimError(error, label);
    });
  } catch (error) {
    await device.close().catch(() => undefined);
    if (detached) await device.attachKernelDriver?.(iface!.number).catch(() => undefined);
    throw error;
  }
}

export function usbLabel(spec: UsbSpec): string {
  return `USB device ${hex4(spec.vendorId)}:${hex4(spec.productId)}${spec.serial === null ? '' : ` (serial ${spec.serial})`}`;
}

function matches(d: MassStorageUsbDevice, spec: UsbSpec): boolean {
  return d.vendorId === spec.vendorId && d.productId === spec.productId && (spec.serial === null || d.serialNumber === spec.serial);
}

async function findOne(spec: UsbSpec, env: UsbEnvironment, label: string): Promise<ListedUsbDevice> {
  const all = await env.listDevices();
  const found = all.filter((d) => matches(d, spec));
  if (found.length === 0) {
    const seen = all.length === 0 ? 'no USB devices are present here' : `present: ${all.map((d) => `${hex4(d.vendorId)}:${hex4(d.productId)}`).join(', ')}`;
    throw new AttachedDeviceError('ML_ERR_USB_NOT_FOUND', `${label} is not connected (${seen}); see mirrorlab devices`);
  }
  if (found.length > 1) {
    const serials = found.map((d) => d.serialNumber ?? '(none)').join(', ');
    throw new AttachedDeviceError('ML_ERR_USB_AMBIGUOUS', `${found.length} devices match ${label}; name one by serial number, usb:${hex4(spec.vendorId)}:${hex4(spec.productId)}:SERIAL (serials: ${serials})`);
  }
  return found[0]!;
}

/**
 * The mass-storage interface's state in sysfs (null when sysfs knows nothing of the device), after
 * refusing what must be refused: a disk of the device in use, a kernel driver that may not be
 * detached, another program's claim.
 */
async function inspect(spec: UsbSpec, env: UsbEnvironment, device: ListedUsbDevice, label: string) {
  const busnum = device.bus !== undefined && /^\d+$/.test(device.bus) ? Number(device.bus) : undefined;
  const dir = await env.sysfs.findDevice({ vendorId: spec.vendorId, productId: spec.productId, serial: spec.serial, busnum, devnum: device.address });
  if (dir === null) return null;
  const iface = (await env.sysfs.interfaces(dir)).find((i) => i.class === MASS_STORAGE_CLASS);
  if (iface === undefined) {
    throw new AttachedDeviceError('ML_ERR_USB_NOT_MASS_STORAGE', `${label} has no mass-storage interface (class 08h); expected a USB stick, card reader or disk bridge`);
  }
  const busy = (await env.sysfs.blockDevices(iface.name)).flatMap((b) => b.uses);
  if (busy.length > 0) {
    throw new AttachedDeviceError('ML_ERR_USB_MOUNTED', `${label} is in use by this system: ${busy.join('; ')}; unmount it (and stop what holds it) first: mirrorlab will not take a disk from under a filesystem`);
  }
  if (iface.driver === 'usbfs') throw new AttachedDeviceError('ML_ERR_USB_IN_USE', `${label}: another program has claimed its mass-storage interface; close that program first`);
  if (iface.driver !== null && !spec.detachKernelDriver) {
    throw new AttachedDeviceError('ML_ERR_USB_IN_USE',
      `${label} is held by the kernel driver ${iface.driver}; pass --detach-kernel-driver to let mirrorlab detach it (it is attached again afterwards), or unbind it yourself`);
  }
  return iface;
}

/** A failure to claim the interface means someone else holds it; other errors pass through. */
function claimError(error: unknown, label: string): unknown {
  if (error instanceof AttachedDeviceError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/claim|busy|EBUSY|access|permission/i.test(message)) {
    return new AttachedDeviceError('ML_ERR_USB_IN_USE',
      `${label} cannot be claimed (${message}): a kernel driver or another program holds it, or this user lacks access (a udev rule); with a kernel driver, pass --detach-kernel-driver`, error);
  }
  return error;
}
