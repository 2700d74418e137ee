import { assert } from '../../firmware/errors.ts';
import type { LinkEndpoint, LinkHandler } from '../../firmware/ports/link.ts';
import type { Random } from '../../firmware/ports/random.ts';
import type { HostClock } from '../clock/clock.ts';
import type { ListedUsbDevice, UsbEnvironment } from '../disks/usb/open-usb.ts';
import { UsbSysfs } from '../disks/usb/sysfs.ts';
import type {
  MassStorageUsbDevice,
  UsbConfigurationInfo,
  UsbDirection,
  UsbInTransferResult,
  UsbOutTransferResult,
} from '../disks/usb/usb-device.ts';
import { USB_VENDOR_CLASS } from './usb-link-claim.ts';
import { busTime, HIGH_SPEED_PACKET_BYTES, UsbGone } from '../disks/usb/emulated/bus.ts';
import { HEARTBEAT_SLACK_BYTES } from './line-link.ts';

/**
 * A board with a USB mirror-link interface, emulated (docs/usb-link.md 5): the
 * part of WebUSB's `USBDevice` the host side uses, with a vendor-specific interface of one bulk
 * OUT and one bulk IN pipe, whose far end is a {@link LinkEndpoint}, the "gadget" side, as a
 * board's firmware would see its USB function: what the host writes to bulk OUT arrives there as
 * bytes; what it sends waits in the device's bounded IN buffer until the host reads it.
 *
 * Faults, each a chance per transfer drawn from a seeded stream: a STALL on either pipe (on OUT
 * after some whole packets were taken), a short IN (part of what is buffered, cut anywhere), a
 * zero-length IN packet, and a disconnect in the middle of a transfer (the OUT bytes after a
 * packet boundary, or the IN bytes being read, are lost), after which the device re-attaches
 * `reattachMs` later and must be found, opened and claimed again.
 */

/** pid.codes' test VID, and a PID of ours beside the emulated mass-storage device's 4D4C: never a real product. */
export const USB_LINK_EMULATED_VENDOR_ID = 0x1209;
export const USB_LINK_EMULATED_PRODUCT_ID = 0x4d4d;
export const USB_LINK_EMULATED_INTERFACE = 0;
export const USB_LINK_EMULATED_BULK_IN = 1;
export const USB_LINK_EMULATED_BULK_OUT = 2;

export const USB_LINK_FAULT_KINDS = ['stall-in', 'stall-out', 'short', 'zlp', 'disconnect'] as const;
export type UsbLinkFaultKind = (typeof USB_LINK_FAULT_KINDS)[number];
/** Chances in parts per million per transfer, by kind. */
export type UsbLinkFaultPlan = Partial<Record<UsbLinkFaultKind, number>>;
/** Highest chance accepted: a pipe that faults on every transfer would never move a byte. */
export const USB_LINK_FAULT_PER_MILLION_MAX = 500_000;

export interface EmulatedUsbLinkOptions {
  clock: HostClock;
  /** Draws of the fault plan (fork it per device from the run's seed). */
  random: Random;
  faults?: UsbLinkFaultPlan;
  vendorId?: number;
  productId?: number;
  serialNumber?: string;
  /** The gadget side's name (its LinkEndpoint `name`). */
  gadgetName?: string;
  /** Bytes the device's IN buffer holds before the gadget's `send` refuses. Default 64 KiB. */
  inBufferBytesMax?: number;
  /** How long the device stays off the bus after a disconnect (ms). Default 20. */
  reattachMs?: number;
}

export class EmulatedUsbLinkDevice implements MassStorageUsbDevice {
  readonly vendorId: number;
  readonly productId: number;
  readonly serialNumber: string;
  readonly manufacturerName = 'mirrorlab';
  readonly productName = 'emulated mirror link';
  /** The board's end of the link. */
  readonly gadget: UsbGadgetEndpoint;
  /** Test hooks: faults committed, transfers seen, the largest OUT transfer, the most IN transfers pending at once. */
  readonly injected: Record<UsbLinkFaultKind, number> = { 'stall-in': 0, 'stall-out': 0, short: 0, zlp: 0, disconnect: 0 };
  readonly stats = { transfersOut: 0, transfersIn: 0, outTransferBytesMax: 0, inPendingMax: 0, reattaches: 0, clearHalts: 0 };
  private readonly clock: HostClock;
  private readonly random: Random;
  private readonly plan: UsbLinkFaultPlan;
  private readonly reattachMs: number;
  private attached = true;
  private isOpen = false;
  private claimed = false;
  private selected: number | null = null;
  private readonly halted = { in: false, out: false };
  /** What the gadget sent and the host has not read yet. */
  private inQueue: Uint8Array[] = [];
  private inBytes = 0;
  private inPending = 0;
  /** Wakes the pending IN transfer: data arrived, the device went, or the interface was released. */
  private wake: (() => void) | null = null;
  private epoch = 0;
  private replugTimer: unknown = null;

  constructor(options: EmulatedUsbLinkOptions) {
    for (const [kind, ppm] of Object.entries(options.faults ?? {})) {
      assert((USB_LINK_FAULT_KINDS as readonly string[]).includes(kind), `unknown USB link fault ${kind}`);
      assert(Number.isInteger(ppm) && ppm >= 0 && ppm <= USB_LINK_FAULT_PER_MILLION_MAX,
        `USB link fault ${kind}: ${ppm} is not 0..${USB_LINK_FAULT_PER_MILLION_MAX} per million`);
    }
    this.clock = options.clock;
    this.random = options.random;
    this.plan = options.faults ?? {};
    this.vendorId = options.vendorId ?? USB_LINK_EMULATED_VENDOR_ID;
    this.productId = options.productId ?? USB_LINK_EMULATED_PRODUCT_ID;
    this.serialNumber = options.serialNumber ?? 'MLLINK0001';
    this.reattachMs = options.reattachMs ?? 20;
    this.gadget = new UsbGadgetEndpoint(this, options.gadgetName ?? 'gadget', options.inBufferBytesMax ?? 64 * 1024);
  }

  get opened(): boolean {
    return this.attached && this.isOpen;
  }

  get configuration(): UsbConfigurationInfo | null {
    return this.selected === null ? null : this.configurations[0]!;
  }

  get configurations(): UsbConfigurationInfo[] {
    const endpoint = (endpointNumber: number, direction: UsbDirection) =>
      ({ endpointNumber, direction, type: 'bulk' as const, packetSize: HIGH_SPEED_PACKET_BYTES });
    const endpoints = [endpoint(USB_LINK_EMULATED_BULK_IN, 'in'), endpoint(USB_LINK_EMULATED_BULK_OUT, 'out')];
    const alternate = { alternateSetting: 0, interfaceClass: USB_VENDOR_CLASS, interfaceSubclass: 0, interfaceProtocol: 0, endpoints };
    const iface = { interfaceNumber: USB_LINK_EMULATED_INTERFACE, claimed: this.claimed, alternate, alternates: [alternate] };
    return [{ configurationValue: 1, interfaces: [iface] }];
  }

  /** Whether the device is on the bus now. */
  get present(): boolean {
    return this.attached;
  }

  /** Bytes waiting in the IN buffer (test hook). */
  get inBufferedBytes(): number {
    return this.inBytes;
  }

  /**
   * The device drops off the bus now (test hook, and the `disconnect` fault): transfers in flight
   * fail, the IN buffer is lost, the gadget hears its host go; it comes back after `reattachMs`,
   * or never with `forever`.
   */
  unplug(options: { forever?: boolean } = {}): void {
    if (!this.attached) return;
    this.attached = false;
    this.epoch++;
    this.inQueue = [];
    this.inBytes = 0;
    this.wakeIn();
    this.gadget.hostGone('the USB host went away (bus reset or disconnect)');
    if (options.forever !== true) {
      this.replugTimer = this.clock.setTimeout(() => this.replug(), this.reattachMs);
    }
  }

  /** Stops a pending re-attach (for a test's teardown). */
  dispose(): void {
    if (this.replugTimer !== null) this.clock.clearTimeout(this.replugTimer);
    this.replugTimer = null;
  }

  async open(): Promise<void> {
    this.present_();
    this.isOpen = true;
  }

  async close(): Promise<void> {
    this.isOpen = false;
    this.claimed = false;
    this.wakeIn();
  }

  async selectConfiguration(value: number): Promise<void> {
    this.usable(false);
    if (value !== 1) throw new Error(`selectConfiguration: no configuration ${value}`);
    this.selected = value;
  }

  async claimInterface(n: number): Promise<void> {
    this.usable(false);
    if (this.selected === null || n !== USB_LINK_EMULATED_INTERFACE) {
      throw new Error(`claimInterface: no interface ${n} in the active configuration`);
    }
    if (this.claimed) throw new Error('claimInterface: LIBUSB_ERROR_BUSY, the interface is claimed already');
    this.claimed = true;
  }

  /** Releasing aborts the interface's pending transfers (WebUSB does the same). */
  async releaseInterface(n: number): Promise<void> {
    if (n === USB_LINK_EMULATED_INTERFACE) this.claimed = false;
    this.wakeIn();
  }

  async controlTransferIn(): Promise<UsbInTransferResult> {
    this.usable(false);
    return { status: 'stall' };
  }

  async controlTransferOut(): Promise<UsbOutTransferResult> {
    this.usable(false);
    return { status: 'stall', bytesWritten: 0 };
  }

  async clearHalt(direction: UsbDirection, endpointNumber: number): Promise<void> {
    await this.busTime(0);
    this.usable(true);
    const expected = direction === 'in' ? USB_LINK_EMULATED_BULK_IN : USB_LINK_EMULATED_BULK_OUT;
    assert(endpointNumber === expected, `clearHalt: no bulk-${direction} endpoint ${endpointNumber}`);
    this.halted[direction] = false;
    this.stats.clearHalts++;
  }

  async transferOut(endpointNumber: number, data: Uint8Array): Promise<UsbOutTransferResult> {
    assert(endpointNumber === USB_LINK_EMULATED_BULK_OUT, `transferOut: endpoint ${endpointNumber} is not bulk-out`);
    this.usable(true);
    const epoch = this.epoch;
    this.stats.transfersOut++;
    this.stats.outTransferBytesMax = Math.max(this.stats.outTransferBytesMax, data.length);
    await this.busTime(data.length);
    this.stillThere(epoch);
    if (this.halted.out) return { status: 'stall', bytesWritten: 0 };
    const packets = Math.ceil(data.length / HIGH_SPEED_PACKET_BYTES);
    if (this.strikes('stall-out')) {
      const taken = Math.min(data.length, this.random.int(packets) * HIGH_SPEED_PACKET_BYTES);
      this.toGadget(data.subarray(0, taken));
      this.halted.out = true;
      return { status: 'stall', bytesWritten: taken };
    }
    if (this.strikes('disconnect')) {
      this.toGadget(data.subarray(0, Math.min(data.length, this.random.int(packets) * HIGH_SPEED_PACKET_BYTES)));
      this.unplug();
      throw new UsbGone('transferOut: the device disconnected (emulated: dropped off the bus mid-transfer)');
    }
    this.toGadget(data);
    return { status: 'ok', bytesWritten: data.length };
  }

  async transferIn(endpointNumber: number, length: number, timeoutMs?: number): Promise<UsbInTransferResult> {
    assert(endpointNumber === USB_LINK_EMULATED_BULK_IN, `transferIn: endpoint ${endpointNumber} is not bulk-in`);
    assert(length > 0 && length % HIGH_SPEED_PACKET_BYTES === 0,
      `transferIn: ${length} bytes is not a whole number of ${HIGH_SPEED_PACKET_BYTES}-byte packets (it would babble)`);
    this.usable(true);
    this.inPending++;
    this.stats.inPendingMax = Math.max(this.stats.inPendingMax, this.inPending);
    try {
      return await this.readIn(length, timeoutMs);
    } finally {
      this.inPending--;
    }
  }

  private async readIn(length: number, timeoutMs: number | undefined): Promise<UsbInTransferResult> {
    const epoch = this.epoch;
    if (this.inBytes === 0 && !this.halted.in) await this.waitIn(timeoutMs);
    this.stillThere(epoch);
    this.usable(true);
    if (this.inBytes === 0 && !this.halted.in) {
      const timeout = new Error('transferIn timed out (LIBUSB_TRANSFER_TIMED_OUT): the device had nothing to send');
      timeout.name = 'TimeoutError';
      throw timeout;
    }
    await this.busTime(Math.min(length, this.inBytes));
    this.stillThere(epoch);
    this.stats.transfersIn++;
    if (this.halted.in) return { status: 'stall' };
    if (this.strikes('stall-in')) {
      this.halted.in = true;
      return { status: 'stall' };
    }
    if (this.strikes('zlp')) return { status: 'ok', data: new DataView(new ArrayBuffer(0)) };
    const cut = this.strikes('short') ? 1 + this.random.int(Math.min(length, this.inBytes)) : length;
    const bytes = this.takeIn(Math.min(cut, length));
    if (this.strikes('disconnect')) {
      this.unplug();
      throw new UsbGone('transferIn: the device disconnected (emulated: dropped off the bus mid-transfer)');
    }
    return { status: 'ok', data: new DataView(bytes.buffer, bytes.byteOffset, bytes.length) };
  }

  /** The gadget queues bytes for the host (false: the buffer is full or the host is gone). */
  fromGadget(bytes: Uint8Array, limitBytes: number): boolean {
    if (!this.attached || this.inBytes >= limitBytes) return false;
    this.inQueue.push(bytes);
    this.inBytes += bytes.length;
    this.wakeIn();
    return true;
  }

  private toGadget(bytes: Uint8Array): void {
    if (bytes.length > 0) this.gadget.deliver(bytes.slice());
  }

  private takeIn(max: number): Uint8Array {
    const out = new Uint8Array(Math.min(max, this.inBytes));
    for (let at = 0; at < out.length; ) {
      const q = this.inQueue[0]!;
      const n = Math.min(q.length, out.length - at);
      out.set(q.subarray(0, n), at);
      at += n;
      if (n === q.length) this.inQueue.shift();
      else this.inQueue[0] = q.subarray(n);
    }
    this.inBytes -= out.length;
    this.gadget.drained(this.inBytes);
    return out;
  }

  private waitIn(timeoutMs: number | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: unknown = null;
      const done = (): void => {
        if (timer !== null) this.clock.clearTimeout(timer);
        if (this.wake === done) this.wake = null;
        resolve();
      };
      this.wake = done;
      if (timeoutMs !== undefined && timeoutMs > 0) timer = this.clock.setTimeout(done, timeoutMs);
    });
  }

  private wakeIn(): void {
    this.wake?.();
  }

  private strikes(kind: UsbLinkFaultKind): boolean {
    const ppm = this.plan[kind] ?? 0;
    if (ppm === 0 || !this.random.chance(ppm, 1_000_000)) return false;
    this.injected[kind]++;
    return true;
  }

  private replug(): void {
    this.replugTimer = null;
    this.attached = true;
    this.isOpen = false;
    this.claimed = false;
    this.selected = null;
    this.halted.in = false;
    this.halted.out = false;
    this.stats.reattaches++;
    this.gadget.hostBack();
  }

  /** The bus time of a transfer of `bytes` (high speed: 512-byte packets, 13 per 125 us microframe). */
  private busTime(bytes: number): Promise<void> {
    return busTime(this.clock, bytes);
  }

  private present_(): void {
    if (!this.attached) throw new UsbGone('the device is not on the bus');
  }

  /** The device went (or came back: a new handle) while a transfer was under way. */
  private stillThere(epoch: number): void {
    if (epoch !== this.epoch) throw new UsbGone('the device was disconnected during the transfer');
  }

  private usable(claimed: boolean): void {
    this.present_();
    if (!this.isOpen) throw new Error('InvalidStateError: the device is not open');
    if (claimed && !this.claimed) throw new Error('InvalidStateError: the interface is not claimed (transfer aborted)');
  }
}

/**
 * The gadget side: the board firmware's LinkEndpoint on its USB function. One connection,
 * heartbeats inline. It delivers what the host writes whenever the device is on the bus; its
 * sends wait in the device's IN buffer, bounded (a full buffer refuses, and `writable` follows
 * once the host has read it down to half). A disconnect is `closed(0)` if it held the connection;
 * an `open(0)` while the device is off the bus is granted when it comes back.
 */
export class UsbGadgetEndpoint implements LinkEndpoint {
  readonly connections = 1;
  readonly heartbeats = 'inline' as const;
  private handler: LinkHandler | null = null;
  private want = false;
  private held = false;
  private refused = false;
  private grantImmediate: ReturnType<typeof setImmediate> | null = null;
  readonly counters = { sendsRefused: 0, beatsDropped: 0, closedHeard: 0, opens: 0 };

  constructor(private readonly device: EmulatedUsbLinkDevice, readonly name: string, private readonly bufferBytesMax: number) {}

  attach(handler: LinkHandler): void {
    assert(this.handler === null, `${this.name}: a link endpoint takes one handler`);
    this.handler = handler;
  }

  open(conn: number): void {
    this.check(conn);
    if (this.want) return;
    this.want = true;
    if (this.device.present) this.scheduleGrant();
  }

  close(conn: number): void {
    this.check(conn);
    this.want = false;
    this.held = false;
    this.refused = false;
  }

  send(conn: number, bytes: Uint8Array): boolean {
    this.check(conn);
    if (!this.held) return false;
    if (!this.device.fromGadget(bytes, this.bufferBytesMax)) {
      this.refused = true;
      this.counters.sendsRefused++;
      return false;
    }
    return true;
  }

  sendDatagram(bytes: Uint8Array): void {
    if (!this.device.fromGadget(bytes, this.bufferBytesMax + HEARTBEAT_SLACK_BYTES)) this.counters.beatsDropped++;
  }

  /** Detaches the handler: nothing reaches it afterwards (a test's teardown). */
  shutdown(): void {
    this.handler = null;
    if (this.grantImmediate !== null) clearImmediate(this.grantImmediate);
    this.grantImmediate = null;
  }

  deliver(bytes: Uint8Array): void {
    this.handler?.bytes(0, bytes);
  }

  drained(bufferedBytes: number): void {
    if (!this.refused || !this.held || bufferedBytes > this.bufferBytesMax / 2) return;
    this.refused = false;
    this.handler?.writable(0);
  }

  hostGone(reason: string): void {
    if (this.grantImmediate !== null) clearImmediate(this.grantImmediate);
    this.grantImmediate = null;
    if (!this.held && !this.want) return;
    this.want = false;
    this.held = false;
    this.refused = false;
    this.counters.closedHeard++;
    this.handler?.closed(0, reason);
  }

  hostBack(): void {
    if (this.want) this.scheduleGrant();
  }

  private scheduleGrant(): void {
    this.grantImmediate ??= setImmediate(() => {
      this.grantImmediate = null;
      if (!this.want || this.held || !this.device.present) return;
      this.held = true;
      this.refused = false;
      this.counters.opens++;
      this.handler?.opened(0);
    });
  }

  private check(conn: number): void {
    assert(conn === 0, `connection ${String(conn)} does not exist: a USB link has one (0)`);
  }
}

/** Where the host side finds emulated devices: those on the bus now, and no sysfs (nothing holds them). */
export function emulatedUsbEnvironment(devices: readonly MassStorageUsbDevice[]): UsbEnvironment {
  return {
    listDevices: async () => devices.filter((d) => (d as { present?: boolean }).present !== false) as ListedUsbDevice[],
    sysfs: new UsbSysfs('/nonexistent/mirrorlab-emulated-sys', '/nonexistent/mirrorlab-emulated-proc'),
  };
}
