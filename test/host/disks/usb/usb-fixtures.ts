import type { BlockDevice } from '../../../../firmware/ports/block-device.ts';
import { decodeCbw, type CommandBlockWrapper } from '../../../../host/disks/usb/bot.ts';
import { bytesOf, type MassStorageUsbDevice, type UsbControlSetup } from '../../../../host/disks/usb/usb-device.ts';
import { VirtualClock } from '../../../../host/clock/virtual.ts';
import { FaultyDisk } from '../../../../host/disks/faulty.ts';
import { MemoryDisk } from '../../../../host/disks/memory.ts';
import { EmulatedUsbMassStorage } from '../../../../host/disks/usb/emulated/emulated-usb-device.ts';
import type { UsbEmuFaultPlan } from '../../../../host/disks/usb/emulated/faults.ts';
import { UsbMassStorageDisk, type UsbDiskOptions } from '../../../../host/disks/usb/usb-disk.ts';
import { SeededRandom } from '../../../../host/random.ts';
import { runUntilSettled } from '../helpers.ts';

/** An emulated device over memory disks (one per LUN, each under a fault overlay), on a virtual clock. */
export interface EmulatedRig {
  clock: VirtualClock;
  media: MemoryDisk[];
  overlays: FaultyDisk[];
  device: EmulatedUsbMassStorage;
}

export function emulatedRig(options: { sectorSize?: number; sectorCount?: number; luns?: number; faults?: UsbEmuFaultPlan; seed?: number; writeCacheSectors?: number; transferBytesMax?: number } = {}): EmulatedRig {
  const clock = new VirtualClock();
  const sectorSize = options.sectorSize ?? 512;
  const media = Array.from({ length: options.luns ?? 1 }, (_, i) => new MemoryDisk({
    name: `emu.lun${i}`, sectorSize, sectorCount: options.sectorCount ?? 2048, clock, service: { fixedMs: 0.05, perByteMs: 0.000_01 },
    writeCacheBytesMax: (options.writeCacheSectors ?? 0) * sectorSize,
  }));
  const overlays = media.map((m) => new FaultyDisk({ inner: m, clock }));
  const device = new EmulatedUsbMassStorage({
    clock, luns: overlays as BlockDevice[], random: new SeededRandom(options.seed ?? 1), faults: options.faults, transferBytesMax: options.transferBytesMax,
  });
  return { clock, media, overlays, device };
}

/** Opens the driver on a rig's device (or a tap on it), running the clock while it does. */
export function openDriver(rig: EmulatedRig, options: Partial<UsbDiskOptions> = {}, through: MassStorageUsbDevice = rig.device): Promise<UsbMassStorageDisk> {
  const { device } = rig;
  return runUntilSettled(rig.clock, UsbMassStorageDisk.open(through, {
    name: 'usb-emu', clock: rig.clock, locate: async () => (device.present ? through : undefined), ...options,
  }), 100_000);
}

/**
 * A device seen through a tap: records every CBW the host sends, and can rewrite what the device
 * returns in the data phase of a command (to play a device the emulator is not: a CD drive, say).
 */
export class Tap implements MassStorageUsbDevice {
  readonly cbws: CommandBlockWrapper[] = [];
  rewriteIn: ((cb: Uint8Array, data: Uint8Array) => Uint8Array) | null = null;
  private current: CommandBlockWrapper | null = null;

  constructor(readonly inner: MassStorageUsbDevice) {}

  get vendorId(): number { return this.inner.vendorId; }
  get productId(): number { return this.inner.productId; }
  get serialNumber(): string | null | undefined { return this.inner.serialNumber; }
  get opened(): boolean { return this.inner.opened; }
  get configuration() { return this.inner.configuration; }
  get configurations() { return this.inner.configurations; }
  open(): Promise<void> { return this.inner.open(); }
  close(): Promise<void> { return this.inner.close(); }
  selectConfiguration(v: number): Promise<void> { return this.inner.selectConfiguration(v); }
  claimInterface(n: number): Promise<void> { return this.inner.claimInterface(n); }
  releaseInterface(n: number): Promise<void> { return this.inner.releaseInterface(n); }
  controlTransferIn(setup: UsbControlSetup, length: number) { return this.inner.controlTransferIn(setup, length); }
  controlTransferOut(setup: UsbControlSetup, data?: Uint8Array) { return this.inner.controlTransferOut(setup, data); }
  clearHalt(direction: 'in' | 'out', ep: number): Promise<void> { return this.inner.clearHalt(direction, ep); }

  transferOut(ep: number, data: Uint8Array) {
    const d = data.length === 31 ? decodeCbw(data) : null;
    if (d?.ok) {
      this.cbws.push(d.cbw);
      this.current = d.cbw;
    }
    return this.inner.transferOut(ep, data);
  }

  async transferIn(ep: number, length: number) {
    const r = await this.inner.transferIn(ep, length);
    const cmd = this.current;
    if (this.rewriteIn === null || cmd === null || cmd.direction !== 'in' || length !== cmd.dataTransferLength || r.data === undefined) return r;
    const rewritten = this.rewriteIn(cmd.cb, bytesOf(r));
    return { ...r, data: new DataView(rewritten.buffer.slice(rewritten.byteOffset, rewritten.byteOffset + rewritten.length)) };
  }

  /** Opcodes of the commands sent so far. */
  get opcodes(): number[] {
    return this.cbws.map((c) => c.cb[0]!);
  }
}
