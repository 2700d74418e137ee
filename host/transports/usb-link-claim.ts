import { hex4, systemUsbEnvironment, type ListedUsbDevice, type UsbEnvironment } from '../disks/usb/open-usb.ts';
import type { MassStorageUsbDevice, UsbAlternateInfo, UsbConfigurationInfo } from '../disks/usb/usb-device.ts';
import { LiveLinkError } from './live-link-errors.ts';

/**
 * Finding and claiming the device of a `usb-link:` spec (docs/usb-link.md 2), as
 * `host/disks/usb/open-usb.ts` does it for a mass-storage volume: exactly one device with the
 * IDs (and serial), a vendor-specific interface (class FFh) with one bulk OUT and one bulk IN
 * endpoint, nobody else holding it. A kernel driver bound to that interface is never detached:
 * a mirror link has no business taking an interface from a driver, so the error says to unbind it.
 */

/** Which device a USB link uses. */
export interface UsbLinkTarget {
  vendorId: number;
  productId: number;
  /** Needed only when several devices share the IDs. */
  serial: string | null;
}

/** Interface class of a vendor-specific interface (USB-IF class codes). */
export const USB_VENDOR_CLASS = 0xff;

/** What a claimed link device offers: its handle and the pipe pair. */
export interface ClaimedUsbLink {
  device: MassStorageUsbDevice;
  interfaceNumber: number;
  inEndpoint: number;
  outEndpoint: number;
  /** wMaxPacketSize of the bulk endpoints (512 on high speed). */
  packetBytes: number;
}

export function usbLinkLabel(t: UsbLinkTarget): string {
  return `USB link device ${hex4(t.vendorId)}:${hex4(t.productId)}${t.serial === null ? '' : ` (serial ${t.serial})`}`;
}

/** The `usb` package's devices (loaded only now: its native module is needed), as a link error if it cannot load. */
export async function systemUsbLinkEnvironment(): Promise<UsbEnvironment> {
  try {
    return await systemUsbEnvironment();
  } catch (error) {
    throw new LiveLinkError('ML_ERR_LINK_USB_UNAVAILABLE', (error as Error).message, error);
  }
}

/**
 * The vendor interface with exactly one bulk IN and one bulk OUT endpoint in its active alternate
 * setting (the link never switches alternates: a board offering the pipes elsewhere is not one).
 */
export function findLinkInterface(config: UsbConfigurationInfo | null | undefined): { number: number; alt: UsbAlternateInfo } | null {
  for (const i of config?.interfaces ?? []) {
    const alt = i.alternate;
    if (alt.interfaceClass !== USB_VENDOR_CLASS) continue;
    const bulk = alt.endpoints.filter((e) => e.type === 'bulk');
    if (bulk.filter((e) => e.direction === 'in').length === 1 && bulk.filter((e) => e.direction === 'out').length === 1) {
      return { number: i.interfaceNumber, alt };
    }
  }
  return null;
}

function matches(d: MassStorageUsbDevice, t: UsbLinkTarget): boolean {
  return d.vendorId === t.vendorId && d.productId === t.productId && (t.serial === null || d.serialNumber === t.serial);
}

/** The one device the target names, or a {@link LiveLinkError} saying what is there instead. */
async function findOne(t: UsbLinkTarget, env: UsbEnvironment): Promise<ListedUsbDevice> {
  const label = usbLinkLabel(t);
  const all = await env.listDevices();
  const found = all.filter((d) => matches(d, t));
  if (found.length === 0) {
    const ids = all.map((d) => `${hex4(d.vendorId)}:${hex4(d.productId)}`).join(', ');
    const seen = all.length === 0 ? 'no USB devices are present here' : `present: ${ids}`;
    throw new LiveLinkError('ML_ERR_LINK_USB_NOT_FOUND', `${label} is not connected (${seen}); see mirrorlab devices`);
  }
  if (found.length > 1) {
    const serials = found.map((d) => d.serialNumber ?? '(none)').join(', ');
    throw new LiveLinkError('ML_ERR_LINK_USB_AMBIGUOUS',
      `${found.length} devices match ${label}; name one by serial number, ` +
      `usb-link:${hex4(t.vendorId)}:${hex4(t.productId)}:SERIAL (serials: ${serials})`);
  }
  return found[0]!;
}

/** Who holds interface `number` according to sysfs (null: nobody, or sysfs knows nothing of the device). */
async function holder(t: UsbLinkTarget, env: UsbEnvironment, device: ListedUsbDevice, number: number): Promise<string | null> {
  const busnum = device.bus !== undefined && /^\d+$/.test(device.bus) ? Number(device.bus) : undefined;
  const dir = await env.sysfs.findDevice({ vendorId: t.vendorId, productId: t.productId, serial: t.serial, busnum, devnum: device.address });
  if (dir === null) return null;
  return (await env.sysfs.interfaces(dir)).find((i) => i.number === number)?.driver ?? null;
}

/**
 * Finds, opens and claims the link device. Errors are {@link LiveLinkError}s naming the device and
 * what would work: absent (or no USB bus), ambiguous, no suitable interface, held by a kernel
 * driver or another program. The device is closed again on every error after it was opened.
 */
export async function claimUsbLink(t: UsbLinkTarget, env: UsbEnvironment): Promise<ClaimedUsbLink> {
  const label = usbLinkLabel(t);
  const device = await findOne(t, env);
  await device.open().catch((error: unknown) => {
    throw inUse(label, error);
  });
  try {
    if (device.configuration === null || device.configuration === undefined) {
      await device.selectConfiguration(device.configurations?.[0]?.configurationValue ?? 1);
    }
    const found = findLinkInterface(device.configuration);
    if (found === null) {
      throw new LiveLinkError('ML_ERR_LINK_USB_INTERFACE',
        `${label} has no vendor-specific interface (class FFh) with one bulk IN and one bulk OUT endpoint; ` +
        'a mirror link needs one (docs/usb-link.md 1)');
    }
    const driver = await holder(t, env, device, found.number);
    if (driver === 'usbfs') {
      throw new LiveLinkError('ML_ERR_LINK_USB_IN_USE', `${label}: another program has claimed its interface ${found.number}; close that program first`);
    }
    if (driver !== null) {
      throw new LiveLinkError('ML_ERR_LINK_USB_IN_USE',
        `${label}: its interface ${found.number} is held by the kernel driver ${driver}; a mirror link never detaches a driver: ` +
        `unbind it first (echo the interface name into /sys/bus/usb/drivers/${driver}/unbind)`);
    }
    await device.claimInterface(found.number).catch((error: unknown) => {
      throw inUse(label, error);
    });
    const pipe = (direction: 'in' | 'out') => found.alt.endpoints.find((e) => e.type === 'bulk' && e.direction === direction)!;
    const [bulkIn, bulkOut] = [pipe('in'), pipe('out')];
    return { device, interfaceNumber: found.number, inEndpoint: bulkIn.endpointNumber, outEndpoint: bulkOut.endpointNumber, packetBytes: bulkIn.packetSize };
  } catch (error) {
    await device.close().catch(() => undefined);
    throw error;
  }
}

/** A failure to open or claim: someone holds the device, or this user may not (a LiveLinkError passes through). */
function inUse(label: string, error: unknown): LiveLinkError {
  if (error instanceof LiveLinkError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new LiveLinkError('ML_ERR_LINK_USB_IN_USE',
    `${label} cannot be opened and claimed (${message}): a kernel driver or another program holds it, ` +
    'or this user lacks access (a udev rule giving it the device)', error);
}
