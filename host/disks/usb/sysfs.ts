import { readFile, readdir, readlink } from 'node:fs/promises';
import { basename, join } from 'node:path';

/**
 * What Linux says about a USB device, read from sysfs and procfs without opening the device:
 * its interfaces and the driver bound to each (usb-storage, uas, or usbfs when a program has
 * claimed it), the SCSI disks the kernel made of a mass-storage interface, and whether any of
 * them (or a partition) is mounted, used as swap or held by device-mapper or md. The roots are
 * parameters so tests can build a tree of their own. On a machine without /sys/bus/usb every
 * answer is "nothing known", never an error: the caller then relies on claiming the interface.
 */
export interface UsbInterfaceState {
  /** Directory name, e.g. `1-1.4:1.0`. */
  name: string;
  number: number;
  class: number;
  subclass: number;
  protocol: number;
  /** The bound driver's name (`usb-storage`, `uas`, `usbfs`...), or null if none. */
  driver: string | null;
}

export interface UsbBlockDevice {
  /** `sdb` */
  name: string;
  lun: number;
  /** `8:16`, and the partitions' numbers too. */
  devs: string[];
  /** `sdb`, `sdb1`, ... */
  names: string[];
  /** What makes it busy: `mounted at /media/x`, `swap`, `held by dm-0`. Empty: free. */
  uses: string[];
}

export class UsbSysfs {
  constructor(private readonly sysRoot = '/sys', private readonly procRoot = '/proc') {}

  private get devicesDir(): string {
    return join(this.sysRoot, 'bus/usb/devices');
  }

  /** The sysfs directory name of the device with these IDs (and serial, and bus address when known), or null. */
  async findDevice(match: { vendorId: number; productId: number; serial?: string | null; busnum?: number; devnum?: number }): Promise<string | null> {
    for (const name of await this.list(this.devicesDir)) {
      if (name.includes(':')) continue; // an interface, not a device
      const dir = join(this.devicesDir, name);
      const [vid, pid] = [await this.hex(join(dir, 'idVendor')), await this.hex(join(dir, 'idProduct'))];
      if (vid !== match.vendorId || pid !== match.productId) continue;
      if (match.serial && (await this.text(join(dir, 'serial'))) !== match.serial) continue;
      if (match.busnum !== undefined && match.devnum !== undefined) {
        if (Number(await this.text(join(dir, 'busnum'))) !== match.busnum || Number(await this.text(join(dir, 'devnum'))) !== match.devnum) continue;
      }
      return name;
    }
    return null;
  }

  /** Every device directory with its IDs, serial and names (for `mirrorlab devices`). */
  async devices(): Promise<{ name: string; vendorId: number; productId: number; serial: string | null; manufacturer: string | null; product: string | null }[]> {
    const out = [];
    for (const name of await this.list(this.devicesDir)) {
      if (name.includes(':') || name.startsWith('usb')) continue;
      const dir = join(this.devicesDir, name);
      const vendorId = await this.hex(join(dir, 'idVendor'));
      const productId = await this.hex(join(dir, 'idProduct'));
      if (vendorId === null || productId === null) continue;
      out.push({ name, vendorId, productId, serial: await this.text(join(dir, 'serial')), manufacturer: await this.text(join(dir, 'manufacturer')), product: await this.text(join(dir, 'product')) });
    }
    return out;
  }

  /** The interfaces of the active configuration of device `name`. */
  async interfaces(name: string): Promise<UsbInterfaceState[]> {
    const out: UsbInterfaceState[] = [];
    for (const entry of await this.list(this.devicesDir)) {
      if (!entry.startsWith(`${name}:`)) continue;
      const dir = join(this.devicesDir, entry);
      const driverLink = await readlink(join(dir, 'driver')).catch(() => null);
      out.push({
        name: entry,
        number: (await this.hex(join(dir, 'bInterfaceNumber'))) ?? 0,
        class: (await this.hex(join(dir, 'bInterfaceClass'))) ?? 0,
        subclass: (await this.hex(join(dir, 'bInterfaceSubClass'))) ?? 0,
        protocol: (await this.hex(join(dir, 'bInterfaceProtocol'))) ?? 0,
        driver: driverLink === null ? null : basename(driverLink),
      });
    }
    return out.sort((a, b) => a.number - b.number);
  }

  /** The endpoints of interface `iface` (its `ep_XX` directories): `type` as sysfs spells it (Bulk, Interrupt...), `direction` in or out. */
  async endpoints(iface: string): Promise<{ address: number; type: string; direction: string }[]> {
    const dir = join(this.devicesDir, iface);
    const out = [];
    for (const ep of (await this.list(dir)).filter((n) => /^ep_[0-9a-f]{2}$/.test(n))) {
      out.push({ address: parseInt(ep.slice(3), 16), type: (await this.text(join(dir, ep, 'type'))) ?? '', direction: (await this.text(join(dir, ep, 'direction'))) ?? '' });
    }
    return out;
  }

  /** The SCSI disks the kernel made of interface `iface` (`host*` / `target*` / `H:C:T:L` / `block/sdX`), each with what keeps it busy. */
  async blockDevices(iface: string): Promise<UsbBlockDevice[]> {
    const out: UsbBlockDevice[] = [];
    const base = join(this.devicesDir, iface);
    const mounts = await this.mounts();
    const swaps = await this.swaps();
    for (const host of (await this.list(base)).filter((n) => /^host\d+$/.test(n))) {
      for (const target of (await this.list(join(base, host))).filter((n) => /^target\d+:\d+:\d+$/.test(n))) {
        for (const unit of (await this.list(join(base, host, target))).filter((n) => /^\d+:\d+:\d+:\d+$/.test(n))) {
          for (const disk of await this.list(join(base, host, target, unit, 'block'))) {
            out.push(await this.describe(join(base, host, target, unit, 'block', disk), disk, Number(unit.split(':')[3]), mounts, swaps));
          }
        }
      }
    }
    return out;
  }

  private async describe(dir: string, name: string, lun: number, mounts: Map<string, string[]>, swaps: Set<string>): Promise<UsbBlockDevice> {
    const parts = (await this.list(dir)).filter((n) => n.startsWith(name));
    const names = [name, ...parts];
    const devs: string[] = [];
    const uses: string[] = [];
    for (const n of names) {
      const d = n === name ? dir : join(dir, n);
      const dev = await this.text(join(d, 'dev'));
      if (dev !== null) devs.push(dev);
      for (const at of (dev !== null ? mounts.get(dev) : undefined) ?? []) uses.push(`/dev/${n} is mounted at ${at}`);
      if (swaps.has(`/dev/${n}`)) uses.push(`/dev/${n} is in use as swap`);
      for (const holder of await this.list(join(d, 'holders'))) uses.push(`/dev/${n} is held by ${holder}`);
    }
    return { name, lun, devs, names, uses };
  }

  /** Mount points by `major:minor`, from mountinfo (its third field). */
  private async mounts(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const line of (await this.text(join(this.procRoot, 'self/mountinfo')) ?? '').split('\n')) {
      const fields = line.split(' ');
      if (fields.length < 5) continue;
      const at = fields[4]!.replace(/\\040/g, ' ');
      out.set(fields[2]!, [...(out.get(fields[2]!) ?? []), at]);
    }
    return out;
  }

  private async swaps(): Promise<Set<string>> {
    const lines = (await this.text(join(this.procRoot, 'swaps')) ?? '').split('\n').slice(1);
    return new Set(lines.map((l) => l.split(/\s+/)[0]!).filter((p) => p.startsWith('/dev/')));
  }

  private async list(dir: string): Promise<string[]> {
    return (await readdir(dir).catch(() => [] as string[])).sort();
  }

  private async text(path: string): Promise<string | null> {
    const t = await readFile(path, 'utf8').catch(() => null);
    return t === null ? null : t.trim();
  }

  private async hex(path: string): Promise<number | null> {
    const t = await this.text(path);
    return t !== null && /^[0-9a-fA-F]+$/.test(t) ? parseInt(t, 16) : null;
  }
}
