import { MASS_STORAGE_CLASS } from './usb/usb-session.ts';
import { hex4, systemUsbEnvironment, type ListedUsbDevice, type UsbEnvironment } from './usb/open-usb.ts';
import { findLinkInterface, USB_VENDOR_CLASS } from '../transports/usb-link-claim.ts';
import type { UsbSysfs } from './usb/sysfs.ts';

/**
 * What storage targets are attached here (`mirrorlab devices`): serial ports (serialport's list)
 * and USB devices (the `usb` package's, with sysfs for what each interface is and who holds it).
 * A machine without udevadm or without a USB bus has none, which is an answer, not an error: the
 * notes say why a list is empty.
 */
export interface SerialPortEntry {
  path: string;
  manufacturer: string | null;
  serialNumber: string | null;
  vendorId: string | null;
  productId: string | null;
  /** The volume spec that names it. */
  spec: string;
}

export interface UsbDeviceEntry {
  vendorId: string;
  productId: string;
  serialNumber: string | null;
  manufacturer: string | null;
  product: string | null;
  /** Whether it has a mass-storage interface (null: could not be told without opening it). */
  massStorage: boolean | null;
  /** The driver bound to its mass-storage interface (usb-storage, uas, usbfs for a program), or null. */
  driver: string | null;
  /** Free for mirrorlab: nothing holds it and none of its disks is mounted (null: unknown). */
  free: boolean | null;
  /** Why it is not free: a driver, a mount, swap, a holder. */
  busy: string[];
  spec: string;
  /**
   * Whether it offers a USB mirror link: a vendor-specific interface (class FFh) with one bulk IN
   * and one bulk OUT endpoint (null: could not be told). Then `linkSpec` names it as a link.
   */
  mirrorLink: boolean | null;
  linkSpec: string | null;
}

export interface DeviceListing {
  serial: SerialPortEntry[];
  usb: UsbDeviceEntry[];
  notes: string[];
}

interface PortInfo {
  path: string;
  manufacturer?: string;
  serialNumber?: string;
  vendorId?: string;
  productId?: string;
}

export interface DiscoverySources {
  listSerial?: () => Promise<PortInfo[]>;
  usb?: () => Promise<UsbEnvironment>;
}

export async function listAttachedDevices(sources: DiscoverySources = {}): Promise<DeviceListing> {
  const notes: string[] = [];
  const serial = await listSerial(sources.listSerial ?? defaultSerialList, notes);
  const usb = await listUsb(sources.usb ?? systemUsbEnvironment, notes);
  return { serial, usb, notes };
}

async function defaultSerialList(): Promise<PortInfo[]> {
  const { SerialPort } = await import('serialport');
  return SerialPort.list();
}

async function listSerial(list: () => Promise<PortInfo[]>, notes: string[]): Promise<SerialPortEntry[]> {
  let ports: PortInfo[];
  try {
    ports = await list();
  } catch (error) {
    // serialport lists ports with `udevadm info -e` on Linux; without udev there is nothing to ask.
    const why = /udevadm/.test(String((error as Error).message)) ? 'udevadm is not installed (serialport lists ports through udev)' : (error as Error).message;
    notes.push(`serial ports cannot be listed here: ${why}; a port can still be named by its path (serial-disk:/dev/ttyUSB0)`);
    return [];
  }
  return ports.map((p) => ({
    path: p.path, manufacturer: p.manufacturer ?? null, serialNumber: p.serialNumber ?? null, vendorId: p.vendorId ?? null, productId: p.productId ?? null,
    spec: `serial-disk:${p.path}`,
  }));
}

async function listUsb(environment: () => Promise<UsbEnvironment>, notes: string[]): Promise<UsbDeviceEntry[]> {
  let env: UsbEnvironment;
  try {
    env = await environment();
  } catch (error) {
    notes.push(`USB devices cannot be listed here: ${(error as Error).message}`);
    return [];
  }
  const devices = await env.listDevices();
  if (devices.length === 0 && (await env.sysfs.devices()).length === 0) notes.push('no USB devices (no USB bus here, or none attached: /sys/bus/usb lists nothing)');
  const out: UsbDeviceEntry[] = [];
  for (const d of devices) out.push(await describe(d, env));
  return out;
}

async function describe(d: ListedUsbDevice, env: UsbEnvironment): Promise<UsbDeviceEntry> {
  const serial = d.serialNumber ?? null;
  const base = {
    vendorId: hex4(d.vendorId), productId: hex4(d.productId), serialNumber: serial, manufacturer: d.manufacturerName ?? null, product: d.productName ?? null,
    spec: `usb:${hex4(d.vendorId)}:${hex4(d.productId)}${serial ? `:${serial}` : ''}`,
  };
  const busnum = d.bus !== undefined && /^\d+$/.test(d.bus) ? Number(d.bus) : undefined;
  const dir = await env.sysfs.findDevice({ vendorId: d.vendorId, productId: d.productId, serial, busnum, devnum: d.address });
  const linkSpec = `usb-link:${hex4(d.vendorId)}:${hex4(d.productId)}${serial ? `:${serial}` : ''}`;
  if (dir === null) {
    // No sysfs: the descriptors can still say what it is (reading them may open the device).
    const mirrorLink = mirrorLinkFromDescriptors(d);
    return { ...base, massStorage: massStorageFromDescriptors(d), driver: null, free: null, busy: [], mirrorLink, linkSpec: mirrorLink === true ? linkSpec : null };
  }
  const link = await mirrorLinkFromSysfs(env.sysfs, dir);
  const linkPart = { mirrorLink: link.found, linkSpec: link.found ? linkSpec : null };
  const linkBusy = link.driver === null ? [] : [`its link interface is ${link.driver === 'usbfs' ? 'claimed by a program (usbfs)' : `held by the kernel driver ${link.driver}`}`];
  const iface = (await env.sysfs.interfaces(dir)).find((i) => i.class === MASS_STORAGE_CLASS);
  if (iface === undefined) return { ...base, massStorage: false, driver: null, free: link.found ? linkBusy.length === 0 : null, busy: linkBusy, ...linkPart };
  const busy = (await env.sysfs.blockDevices(iface.name)).flatMap((b) => b.uses);
  if (iface.driver !== null) busy.unshift(iface.driver === 'usbfs' ? 'claimed by a program (usbfs)' : `held by the kernel driver ${iface.driver}`);
  return { ...base, massStorage: true, driver: iface.driver, free: busy.length === 0, busy: [...busy, ...linkBusy], ...linkPart };
}

/** A vendor interface with one bulk IN and one bulk OUT endpoint, from sysfs; the driver bound to it if any. */
async function mirrorLinkFromSysfs(sysfs: UsbSysfs, dir: string): Promise<{ found: boolean; driver: string | null }> {
  for (const i of (await sysfs.interfaces(dir)).filter((x) => x.class === USB_VENDOR_CLASS)) {
    const bulk = (await sysfs.endpoints(i.name)).filter((e) => e.type === 'Bulk');
    if (bulk.filter((e) => e.direction === 'in').length === 1 && bulk.filter((e) => e.direction === 'out').length === 1) return { found: true, driver: i.driver };
  }
  return { found: false, driver: null };
}

/** The same from the descriptors; null if they cannot be read. */
function mirrorLinkFromDescriptors(d: ListedUsbDevice): boolean | null {
  try {
    return findLinkInterface(d.configuration ?? d.configurations?.[0]) !== null;
  } catch {
    return null;
  }
}

/** Whether the active configuration has a mass-storage interface; null if it cannot be read (no permission to open the device). */
function massStorageFromDescriptors(d: ListedUsbDevice): boolean | null {
  try {
    return (d.configuration?.interfaces ?? []).some((i) => i.alternate.interfaceClass === MASS_STORAGE_CLASS);
  } catch {
    return null;
  }
}
