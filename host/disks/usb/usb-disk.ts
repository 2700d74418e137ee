import { DeviceFailedError, checkRange, checkWrite, type BlockDevice } from '../../../firmware/ports/block-device.ts';
import type { HostClock } from '../../clock/clock.ts';
import { AttachedDeviceError } from '../attached-errors.ts';
import { rejectLater } from '../later.ts';
import { SECTOR_BYTES_MAX } from '../memory.ts';
import { ServiceModel, type ServiceTimeConfig } from '../service-time.ts';
import { LUN_MAX } from './bot.ts';
import {
  VpdPage,
  inquiry,
  parseCapacity10,
  parseCapacity16,
  parseInquiry,
  parseMaxTransferBlocks,
  parseSupportedVpdPages,
  readCapacity10,
  readCapacity16,
  readWrite,
  synchronizeCache10,
  testUnitReady,
} from './scsi.ts';
import type { MassStorageUsbDevice } from './usb-device.ts';
import { UsbSession, claimBulkOnly, type SessionCounters } from './usb-session.ts';

/** The host's own ceiling on one READ or WRITE (bytes): what Linux's usb-storage allows by default, rounded up. */
export const USB_TRANSFER_BYTES_MAX = 128 * 1024;
/** Requests waiting for the device at once; beyond, a request is refused (the port's callers bound their queues well below). */
export const USB_REQUESTS_QUEUED_MAX = 65_536;
/** TEST UNIT READY attempts while opening (each retried inside for unit attentions). */
const READY_ATTEMPTS_MAX = 10;

export interface UsbDiskOptions {
  name: string;
  clock: HostClock;
  /** Logical unit (0..15, default 0). */
  lun?: number;
  /**
   * Hardware: the real I/O's own duration never reaches virtual time; each request settles through
   * `clock.settle` after this service model's time, one request at a time, like the file disk.
   * Absent for the emulated device, whose transfers take their time on the clock themselves.
   */
  realIo?: { service: ServiceTimeConfig };
  /** How to wait between attempts and polls (default `clock.sleep`; real sleeps for hardware). */
  pause?: (ms: number) => Promise<void>;
  /** Finds the device again after a disconnect (same VID, PID, serial). */
  locate?: () => Promise<MassStorageUsbDevice | undefined>;
  /** The host's ceiling on one transfer (bytes; default {@link USB_TRANSFER_BYTES_MAX}). */
  transferBytesMax?: number;
  /** Runs after close (re-attaching a kernel driver the user had us detach). */
  afterClose?: () => Promise<void>;
}

/** What the device said about itself when it was opened. */
export interface UsbDiskIdentity {
  vendor: string;
  product: string;
  revision: string;
  removable: boolean;
  maxLun: number;
  /** The device's own maximum transfer (Block Limits VPD), in blocks; null if it gave none. */
  deviceTransferBlocksMax: number | null;
}

/**
 * A USB mass-storage logical unit as a BlockDevice (docs/usb-serial-targets.md): SCSI over
 * Bulk-Only Transport through the WebUSB-style API of the `usb` package or of the emulated device.
 *
 * Requests are served one at a time, in issue order (Bulk-Only carries one command at a time), a
 * request of any size being split into READ/WRITE commands of at most the transfer limit (the
 * host's, lowered to the device's Block Limits). READ/WRITE(10) are used where they reach, the
 * 16-byte forms beyond 2^32 blocks; flush is SYNCHRONIZE CACHE. Every command recovers from
 * transport trouble by itself (UsbSession); a request fails only with the port's typed errors.
 */
export class UsbMassStorageDisk implements BlockDevice {
  readonly name: string;
  readonly sectorSize: number;
  readonly sectorCount: number;
  readonly identity: UsbDiskIdentity;
  /** Blocks per READ/WRITE command. */
  readonly transferBlocksMax: number;
  private readonly clock: HostClock;
  private readonly session: UsbSession;
  private readonly service: ServiceModel | null;
  private readonly afterClose: (() => Promise<void>) | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private busyUntilMs = 0;
  private closed = false;
  private recheckDue = false;
  /** Set when the medium turned out to have changed under us: every later request fails. */
  private failure: DeviceFailedError | null = null;

  private constructor(options: UsbDiskOptions, session: UsbSession, probe: Probe) {
    this.name = options.name;
    this.clock = options.clock;
    this.session = session;
    this.sectorSize = probe.blockLength;
    this.sectorCount = probe.blocks;
    this.identity = probe.identity;
    const host = Math.max(1, Math.floor((options.transferBytesMax ?? USB_TRANSFER_BYTES_MAX) / probe.blockLength));
    const device = probe.identity.deviceTransferBlocksMax;
    this.transferBlocksMax = device !== null && device > 0 ? Math.min(host, device) : host;
    this.service = options.realIo ? new ServiceModel(options.realIo.service, probe.blocks) : null;
    this.afterClose = options.afterClose;
  }

  /**
   * Claims the device's Bulk-Only interface, checks the LUN, and asks the unit what it is: a
   * block device (INQUIRY), ready (TEST UNIT READY), how big (READ CAPACITY 10, then 16 if the
   * answer does not fit), how much one command may move (Block Limits VPD, if offered).
   */
  static async open(device: MassStorageUsbDevice, options: UsbDiskOptions): Promise<UsbMassStorageDisk> {
    const lun = options.lun ?? 0;
    if (!Number.isInteger(lun) || lun < 0 || lun > LUN_MAX) throw new AttachedDeviceError('ML_ERR_USB_LUN', `${options.name}: LUN ${lun} is not 0..${LUN_MAX}`);
    const endpoints = await claimBulkOnly(device, options.name);
    let disk: UsbMassStorageDisk | null = null;
    const session = new UsbSession(device, endpoints, {
      name: options.name, lun, pause: options.pause ?? ((ms) => options.clock.sleep(ms)), locate: options.locate,
      onReattach: () => disk?.markRecheck(),
    });
    try {
      const maxLun = await session.maxLun();
      if (lun > maxLun) throw new AttachedDeviceError('ML_ERR_USB_LUN', `${options.name}: the device has LUNs 0..${maxLun}, not ${lun}; pick one with :lun=N`);
      const probe = await probeUnit(session, maxLun);
      disk = new UsbMassStorageDisk(options, session, probe);
      return disk;
    } catch (error) {
      await session.close();
      throw error;
    }
  }

  /** Recoveries so far (test hook). */
  get counters(): SessionCounters {
    return this.session.counters;
  }

  read(lba: number, count: number): Promise<Uint8Array> {
    try {
      checkRange(this, lba, count);
    } catch (error) {
      return rejectLater(this.clock, error);
    }
    return this.enqueue(count * this.sectorSize, lba, count, async () => {
      const out = new Uint8Array(count * this.sectorSize);
      for (let done = 0; done < count; ) {
        const blocks = Math.min(this.transferBlocksMax, count - done);
        const bytes = blocks * this.sectorSize;
        const data = await this.command({ cb: readWrite('read', lba + done, blocks), direction: 'in', length: bytes }, { lba: lba + done, blocks });
        out.set(data, done * this.sectorSize);
        done += blocks;
      }
      return out;
    });
  }

  write(lba: number, data: Uint8Array): Promise<void> {
    const count = checkWrite(this, lba, data);
    if (typeof count !== 'number') return rejectLater(this.clock, count);
    return this.enqueue(data.length, lba, count, async () => {
      for (let done = 0; done < count; ) {
        const blocks = Math.min(this.transferBlocksMax, count - done);
        const chunk = data.subarray(done * this.sectorSize, (done + blocks) * this.sectorSize);
        await this.command({ cb: readWrite('write', lba + done, blocks), direction: 'out', length: chunk.length, data: chunk }, { lba: lba + done, blocks });
        done += blocks;
      }
    });
  }

  flush(): Promise<void> {
    return this.enqueue(0, 0, 0, async () => {
      await this.command({ cb: synchronizeCache10(), direction: 'none', length: 0 }, null);
    });
  }

  /**
   * Releases the interface and closes the device. Requests still queued fail with
   * DeviceFailedError; one in flight fails or completes as its transfers do (closing does not
   * wait for it: on a virtual clock nobody may be running the time it needs).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.close();
    await this.afterClose?.();
  }

  private markRecheck(): void {
    this.recheckDue = true;
  }

  /** One command of a request, after checking that the unit is still the one we opened. */
  private async command(cmd: Parameters<UsbSession['run']>[0], request: { lba: number; blocks: number } | null): Promise<Uint8Array> {
    if (this.failure) throw this.failure;
    if (this.recheckDue) await this.recheckCapacity();
    const data = await this.session.run(cmd, request, true);
    // A unit attention met while running the command may ask for a recheck; do it before the next.
    if (this.recheckDue) await this.recheckCapacity();
    return data;
  }

  /** After a re-attach or a unit attention about the medium: another capacity is another medium, a failed device. */
  private async recheckCapacity(): Promise<void> {
    this.recheckDue = false;
    const capacity = await readCapacity(this.session);
    if (capacity.blockLength !== this.sectorSize || capacity.blocks !== this.sectorCount) {
      this.failure = new DeviceFailedError(this.name,
        `the medium changed: it now has ${capacity.blocks} blocks of ${capacity.blockLength} bytes, not ${this.sectorCount} of ${this.sectorSize}`);
      throw this.failure;
    }
  }

  /** Runs `work` after every earlier request, settling on the clock (see {@link UsbDiskOptions.realIo}). */
  private enqueue<T>(bytes: number, lba: number, count: number, work: () => Promise<T>): Promise<T> {
    if (this.closed) return rejectLater(this.clock, new DeviceFailedError(this.name, 'closed'));
    if (this.queued >= USB_REQUESTS_QUEUED_MAX) {
      return rejectLater(this.clock, new DeviceFailedError(this.name, `more than ${USB_REQUESTS_QUEUED_MAX} requests queued`));
    }
    this.queued++;
    const start = (): Promise<T> => (this.closed ? Promise.reject(new DeviceFailedError(this.name, 'closed')) : work());
    const run = this.tail.then(start, start);
    this.tail = run.then(() => undefined, () => undefined).finally(() => this.queued--);
    if (this.service === null) return run;
    const from = Math.max(this.clock.now(), this.busyUntilMs);
    const ms = count === 0 ? this.service.flushMs() : this.service.transferMs(lba, count, bytes);
    this.busyUntilMs = from + ms;
    return this.clock.settle(run, this.busyUntilMs - this.clock.now());
  }
}

interface Probe {
  blockLength: number;
  blocks: number;
  identity: UsbDiskIdentity;
}

const DEVICE_TYPES: Record<number, string> = { 0x01: 'tape', 0x05: 'CD/DVD', 0x07: 'optical memory', 0x0e: 'simplified direct-access', 0x1f: 'unknown' };

async function probeUnit(session: UsbSession, maxLun: number): Promise<Probe> {
  const name = session.name;
  const inq = parseInquiry(await session.run({ cb: inquiry(36), direction: 'in', length: 36 }, null, false));
  if (inq === null) throw new AttachedDeviceError('ML_ERR_USB_NOT_MASS_STORAGE', `${name}: INQUIRY returned less than the 36 bytes of standard data`);
  if (inq.qualifier !== 0 || inq.deviceType !== 0) {
    const what = inq.qualifier !== 0 ? 'no device on this LUN' : `a ${DEVICE_TYPES[inq.deviceType] ?? `type ${inq.deviceType}`} device`;
    throw new AttachedDeviceError('ML_ERR_USB_NOT_MASS_STORAGE', `${name}: ${what} (peripheral qualifier ${inq.qualifier}, type ${inq.deviceType}); expected a direct-access block device (type 0)`);
  }
  await waitReady(session);
  const capacity = await readCapacity(session);
  return {
    blockLength: capacity.blockLength,
    blocks: capacity.blocks,
    identity: { vendor: inq.vendor, product: inq.product, revision: inq.revision, removable: inq.removable, maxLun, deviceTransferBlocksMax: await transferLimit(session) },
  };
}

async function waitReady(session: UsbSession): Promise<void> {
  let last: unknown = null;
  for (let i = 0; i < READY_ATTEMPTS_MAX; i++) {
    try {
      await session.run({ cb: testUnitReady(), direction: 'none', length: 0 }, null, true);
      return;
    } catch (error) {
      if (!(error instanceof DeviceFailedError)) throw error;
      last = error;
    }
  }
  throw new AttachedDeviceError('ML_ERR_USB_NOT_READY', `${session.name}: the unit is not ready: ${(last as Error).message}; expected a medium in the drive`, last);
}

/** READ CAPACITY(10), and (16) when the last LBA does not fit 32 bits. */
async function readCapacity(session: UsbSession): Promise<{ blockLength: number; blocks: number }> {
  const name = session.name;
  let capacity = parseCapacity10(await session.run({ cb: readCapacity10(), direction: 'in', length: 8 }, null, true));
  if (capacity !== null && capacity.lastLba === 0xffffffff) {
    capacity = parseCapacity16(await session.run({ cb: readCapacity16(32), direction: 'in', length: 32 }, null, false));
  }
  if (capacity === null) throw new DeviceFailedError(name, 'READ CAPACITY returned too few bytes');
  const { blockLength, lastLba } = capacity;
  if (blockLength < 512 || blockLength > SECTOR_BYTES_MAX || (blockLength & (blockLength - 1)) !== 0) {
    throw new DeviceFailedError(name, `READ CAPACITY reports ${blockLength}-byte blocks; expected a power of two from 512 to ${SECTOR_BYTES_MAX}`);
  }
  if (!Number.isSafeInteger(lastLba + 1) || !Number.isSafeInteger((lastLba + 1) * blockLength)) {
    throw new DeviceFailedError(name, `READ CAPACITY reports ${lastLba + 1} blocks, more than this host can address`);
  }
  return { blockLength, blocks: lastLba + 1 };
}

/** The Block Limits page's maximum transfer length, if the device lists the page; null otherwise. */
async function transferLimit(session: UsbSession): Promise<number | null> {
  try {
    const pages = parseSupportedVpdPages(await session.run({ cb: inquiry(255, VpdPage.Supported), direction: 'in', length: 255 }, null, false));
    if (!pages.includes(VpdPage.BlockLimits)) return null;
    return parseMaxTransferBlocks(await session.run({ cb: inquiry(64, VpdPage.BlockLimits), direction: 'in', length: 64 }, null, false));
  } catch (error) {
    // Many sticks refuse EVPD INQUIRY (ILLEGAL REQUEST): then the host's own ceiling applies.
    if (error instanceof DeviceFailedError) return null;
    throw error;
  }
}
