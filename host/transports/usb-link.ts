import { assert } from '../../firmware/errors.ts';
import type { HostClock } from '../clock/clock.ts';
import type { UsbEnvironment } from '../disks/usb/open-usb.ts';
import { bytesOf, classifyUsbError, type UsbInTransferResult } from '../disks/usb/usb-device.ts';
import { definedOnly } from './defaults.ts';
import type { LinkLogger } from './link-logger.ts';
import type { LiveLinkStats, UsbTransferStats } from './live-link-types.ts';
import { LineLink } from './line-link.ts';
import { claimUsbLink, systemUsbLinkEnvironment, usbLinkLabel, type ClaimedUsbLink, type UsbLinkTarget } from './usb-link-claim.ts';

export { USB_VENDOR_CLASS, type UsbLinkTarget } from './usb-link-claim.ts';

export interface UsbLinkOptions extends UsbLinkTarget {
  clock: HostClock;
  logger: LinkLogger;
  localName: string;
  peerName: string;
  /** Where devices come from (default: the `usb` package and sysfs; tests pass an emulated device's). */
  env?: UsbEnvironment;
  /** A `send` is refused once this many bytes wait to go out. */
  sendQueueBytesMax?: number;
  /** Largest bulk transfer, either way (bytes; a multiple of the endpoints' packet size). */
  transferBytesMax?: number;
  /** An IN transfer on a quiet pipe ends after this long and another is posted (it bounds how long shutdown waits). */
  inTimeoutMs?: number;
  /** An OUT transfer the device has not taken after this long is retried... */
  outTimeoutMs?: number;
  /** ...and this many failures in a row (or IN errors other than STALL and timeouts) mean the device is lost. */
  transferErrorsMax?: number;
  /** A device that disappeared: an `open(0)` looks for it this many times... */
  reopenAttemptsMax?: number;
  /** ...this long apart; heartbeats sent while it is gone look once at most this often. */
  reopenIntervalMs?: number;
}

/**
 * Defaults (docs/usb-link.md 3). 16 KiB transfers: the largest every Linux usbfs
 * takes as one request (older kernels split anything bigger), 32 high-speed packets, and more
 * than the firmware's usual frame; the send queue holds four of them; an idle IN transfer is
 * posted again every 100 ms, which costs nothing on the bus (the host controller polls, not us).
 */
export const USB_LINK_DEFAULTS = {
  sendQueueBytesMax: 64 * 1024,
  transferBytesMax: 16 * 1024,
  inTimeoutMs: 100,
  outTimeoutMs: 1000,
  transferErrorsMax: 8,
  reopenAttemptsMax: 3,
  reopenIntervalMs: 250,
} as const;

/** `VID:PID[:SERIAL]` of `usb-link:`; VID and PID are 4 hex digits, SERIAL printable ASCII of up to 126 characters. */
export function parseUsbLinkSpec(rest: string, fail: (problem: string) => never): UsbLinkTarget {
  const m = /^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})(?::(.*))?$/.exec(rest);
  if (m === null) {
    return fail('usb-link takes a vendor and a product ID of 4 hex digits each, and optionally a serial number: usb-link:VID:PID[:SERIAL]');
  }
  const serial = m[3] ?? null;
  // A USB string descriptor holds at most 126 UTF-16 units; mirrorlab compares serials as printed, so printable ASCII.
  if (serial !== null && !/^[\x21-\x7e]{1,126}$/.test(serial)) {
    fail(`serial number ${JSON.stringify(serial.slice(0, 40))} is not 1 to 126 printable ASCII characters`);
  }
  return { vendorId: parseInt(m[1]!, 16), productId: parseInt(m[2]!, 16), serial };
}

type Required_ = Required<Omit<UsbLinkOptions, 'serial'>> & { serial: string | null };

/**
 * A live link over a USB bulk pipe pair (docs/usb-link.md 3, 4): one data
 * connection, heartbeats inline as frames on the same byte stream, like a serial line.
 *
 * Out: sends and heartbeats wait, whole and in order, in one bounded queue; one OUT transfer at a
 * time carries up to `transferBytesMax` of it. In: one IN transfer is pending at a time; what it
 * returns goes to the firmware's decoder, open or not (as on a serial line, `open` and `close`
 * are the firmware's own bookkeeping and its HELLO marks where a conversation starts).
 *
 * Recovery: a STALL on either pipe is cleared (CLEAR_FEATURE ENDPOINT_HALT) and the transfer
 * goes on from the bytes the device took; zero-length and short packets are just short reads.
 * A device that disappears is `closed(0, reason)`, with whatever was queued or in flight lost;
 * an `open(0)` (or a heartbeat, at most once per `reopenIntervalMs`) looks for it again and
 * claims it afresh, which is how a re-attached device comes back. Sessions are the firmware's.
 */
export class UsbLink extends LineLink<ClaimedUsbLink> {
  readonly description: string;
  private queue: Uint8Array[] = [];
  private queued = 0;
  private pumping: Promise<void> | null = null;
  private receiving: Promise<void> | null = null;
  private readonly usb: UsbTransferStats = {
    transfersOut: 0, transfersIn: 0, emptyIns: 0, stallsClearedIn: 0, stallsClearedOut: 0, babbles: 0, transferErrors: 0,
  };
  private readonly o: Required_;
  private readonly env: UsbEnvironment;
  private readonly label: string;

  private constructor(opts: UsbLinkOptions, env: UsbEnvironment, claimed: ClaimedUsbLink) {
    const o = { ...USB_LINK_DEFAULTS, ...definedOnly(opts) } as Required_;
    super(o, { what: 'a USB link', notAgain: 'was not found again' });
    this.o = o;
    this.env = env;
    this.label = usbLinkLabel(opts);
    this.description = `${this.label}, bulk pipes, heartbeats inline (${opts.localName} -> ${opts.peerName})`;
    this.device = claimed;
    this.adopt(claimed);
  }

  /** Finds and claims the device; absent, ambiguous, unsuitable or held is a LiveLinkError. */
  static async open(opts: UsbLinkOptions): Promise<UsbLink> {
    const positive = (v: number | undefined, what: string): void =>
      assert(v === undefined || (Number.isSafeInteger(v) && v >= 1), `${what} must be a positive integer, got ${v}`);
    positive(opts.sendQueueBytesMax, 'sendQueueBytesMax');
    positive(opts.transferBytesMax, 'transferBytesMax');
    const env = opts.env ?? (await systemUsbLinkEnvironment());
    const claimed = await claimUsbLink(opts, env);
    const transfer = opts.transferBytesMax ?? USB_LINK_DEFAULTS.transferBytesMax;
    if (transfer % claimed.packetBytes !== 0) {
      await release(claimed);
      assert(false, `transferBytesMax ${transfer} is not a multiple of the endpoints' ${claimed.packetBytes}-byte packets`);
    }
    return new UsbLink({ ...opts, env }, env, claimed);
  }

  stats(): LiveLinkStats {
    return { kind: 'usb', ...this.lineStats(), usb: { ...this.usb } };
  }

  protected queuedBytes(): number {
    return this.queued;
  }

  protected write(bytes: Uint8Array): void {
    this.enqueue(bytes);
  }

  protected findDevice(): Promise<ClaimedUsbLink> {
    return claimUsbLink(this.o, this.env);
  }

  protected letGo(claimed: ClaimedUsbLink): Promise<void> {
    return release(claimed);
  }

  protected deviceLabel(): string {
    return this.label;
  }

  protected async stop(): Promise<void> {
    const h = await this.stopLine();
    this.queue = [];
    this.queued = 0;
    // The pending IN transfer ends within inTimeoutMs (or at once, where releasing aborts it).
    const released = h === null ? Promise.resolve() : release(h);
    await Promise.all([this.pumping, this.receiving, released]);
  }

  protected adopt(claimed: ClaimedUsbLink): void {
    this.receiving = this.receive(claimed).finally(() => {
      if (this.device === null || this.device === claimed) this.receiving = null;
    });
  }

  private enqueue(bytes: Uint8Array): void {
    this.queue.push(bytes);
    this.queued += bytes.length;
    this.startPump();
  }

  /** One pump at a time; when one ends (its device lost, say), another starts if a device and bytes are there. */
  private startPump(): void {
    if (this.pumping !== null || this.device === null || this.queue.length === 0) return;
    this.pumping = this.pump(this.device).finally(() => {
      this.pumping = null;
      this.startPump();
    });
  }

  /** Up to `transferBytesMax` of the queue's head as one buffer, taken off the queue. */
  private take(): Uint8Array {
    const max = this.o.transferBytesMax;
    const first = this.queue[0]!;
    if (first.length >= max || this.queue.length === 1) {
      const part = first.length > max ? first.subarray(0, max) : first;
      if (first.length > max) this.queue[0] = first.subarray(max);
      else this.queue.shift();
      return part;
    }
    let size = 0;
    for (const q of this.queue) {
      size += q.length;
      if (size >= max) break;
    }
    const out = new Uint8Array(Math.min(size, max));
    for (let at = 0; at < out.length; ) {
      const q = this.queue[0]!;
      const n = Math.min(q.length, out.length - at);
      out.set(q.subarray(0, n), at);
      at += n;
      if (n === q.length) this.queue.shift();
      else this.queue[0] = q.subarray(n);
    }
    return out;
  }

  /** Moves the queue out, one transfer at a time, until it is empty or the device is lost. */
  private async pump(h: ClaimedUsbLink): Promise<void> {
    while (this.device === h && this.queue.length > 0) {
      const chunk = this.take();
      if (chunk.length === 0) continue;
      if (!(await this.transferOut(h, chunk))) return;
      this.queued -= chunk.length;
      this.drained();
    }
  }

  /** One chunk out, through STALLs (cleared, then the rest sent) and timeouts (retried); false if the device was lost. */
  private async transferOut(h: ClaimedUsbLink, chunk: Uint8Array): Promise<boolean> {
    let rest = chunk;
    for (let failures = 0; this.device === h; ) {
      let result: { status: string; bytesWritten: number };
      try {
        result = await h.device.transferOut(h.outEndpoint, rest, this.o.outTimeoutMs);
      } catch (error) {
        const kind = classifyUsbError(error);
        if (kind === 'stall') result = { status: 'stall', bytesWritten: 0 };
        else if (kind === 'disconnected') return this.lost(h, `${this.label} disconnected: ${(error as Error).message}`);
        else if (++failures >= this.o.transferErrorsMax) {
          return this.lost(h, `${this.label}: ${failures} OUT transfers failed in a row, the last: ${(error as Error).message}`);
        }
        else {
          // A timeout: the device took nothing we can know of (WebUSB reports no partial count), so the chunk goes again; a
          // frame sent twice is the firmware's to discard (by sequence number), a torn one its decoder's to skip.
          this.usb.transferErrors++;
          continue;
        }
      }
      this.usb.transfersOut++;
      const progressed = result.bytesWritten > 0;
      rest = rest.subarray(Math.min(rest.length, result.bytesWritten));
      if (result.status === 'stall') {
        if (!(await this.clearHalt(h, 'out'))) return false;
      } else if (rest.length === 0) {
        return true;
      }
      // A device that keeps taking nothing (stalling, or answering "ok, 0 bytes") is lost, not looped on.
      failures = progressed ? 0 : failures + 1;
      if (failures >= this.o.transferErrorsMax) return this.lost(h, `${this.label}: ${failures} OUT transfers in a row took no bytes`);
    }
    return false;
  }

  /** Keeps one IN transfer pending while the device is ours, handing what arrives to the firmware. */
  private async receive(h: ClaimedUsbLink): Promise<void> {
    for (let failures = 0; this.device === h; ) {
      let result: UsbInTransferResult;
      try {
        result = await h.device.transferIn(h.inEndpoint, this.o.transferBytesMax, this.o.inTimeoutMs);
      } catch (error) {
        if (this.device !== h) return;
        const kind = classifyUsbError(error);
        if (kind === 'timeout') {
          this.usb.emptyIns++;
          continue;
        }
        if (kind === 'stall') result = { status: 'stall' };
        else if (kind === 'disconnected') return void this.lost(h, `${this.label} disconnected: ${(error as Error).message}`);
        else if (++failures >= this.o.transferErrorsMax) {
          return void this.lost(h, `${this.label}: ${failures} IN transfers failed in a row, the last: ${(error as Error).message}`);
        }
        else {
          this.usb.transferErrors++;
          await this.o.clock.sleep(1);
          continue;
        }
      }
      if (this.device !== h) return;
      this.usb.transfersIn++;
      failures = 0;
      if (result.status === 'stall') {
        if (!(await this.clearHalt(h, 'in'))) return;
        continue;
      }
      if (result.status === 'babble') {
        this.usb.babbles++;
        continue;
      }
      this.deliver(bytesOf(result));
    }
  }

  private deliver(bytes: Uint8Array): void {
    if (bytes.length === 0) {
      this.usb.emptyIns++;
      return;
    }
    this.received(bytes);
  }

  /** Clears a STALL on one pipe; false if the device was lost meanwhile. */
  private async clearHalt(h: ClaimedUsbLink, dir: 'in' | 'out'): Promise<boolean> {
    try {
      await h.device.clearHalt(dir, dir === 'in' ? h.inEndpoint : h.outEndpoint);
    } catch (error) {
      if (classifyUsbError(error) === 'disconnected') return this.lost(h, `${this.label} disconnected: ${(error as Error).message}`);
      this.usb.transferErrors++;
      return this.device === h;
    }
    if (dir === 'in') this.usb.stallsClearedIn++;
    else this.usb.stallsClearedOut++;
    return this.device === h;
  }

  /** The device is gone: drop it and what was queued; a connection the firmware held or wanted hears closed. Returns false. */
  private lost(h: ClaimedUsbLink, reason: string): false {
    this.lose(h, reason, () => {
      this.queue = [];
      this.queued = 0;
      void release(h);
      this.o.logger.warn({ device: this.label, reason }, 'USB link lost');
    });
    return false;
  }
}

/** Releases the interface and closes the device, ignoring what a vanished device says. */
async function release(h: ClaimedUsbLink): Promise<void> {
  await h.device.releaseInterface(h.interfaceNumber).catch(() => undefined);
  await h.device.close().catch(() => undefined);
}
