import { assert } from '../../../../firmware/errors.ts';
import type { BlockDevice } from '../../../../firmware/ports/block-device.ts';
import type { Random } from '../../../../firmware/ports/random.ts';
import type { HostClock } from '../../../clock/clock.ts';
import { CBW_SIGNATURE, CSW_SIGNATURE, CswStatus, LUN_MAX, decodeCbw, encodeCsw, type CommandBlockWrapper } from '../bot.ts';
import { Op, readWriteRange } from '../scsi.ts';
import type {
  MassStorageUsbDevice,
  UsbConfigurationInfo,
  UsbControlSetup,
  UsbDirection,
  UsbInTransferResult,
  UsbOutTransferResult,
} from '../usb-device.ts';
import { UsbEmuFaults, type UsbEmuFaultPlan } from './faults.ts';
import { SENSE, ScsiTarget, type Intent } from './scsi-target.ts';
import { busTime, HIGH_SPEED_PACKET_BYTES, UsbGone } from './bus.ts';

export interface EmulatedUsbOptions {
  clock: HostClock;
  /** One BlockDevice per logical unit (1..16). */
  luns: BlockDevice[];
  /** Draws of the fault plan (fork it per device from the run's seed). */
  random: Random;
  faults?: UsbEmuFaultPlan;
  vendorId?: number;
  productId?: number;
  serialNumber?: string;
  /** Largest READ/WRITE the device accepts (bytes), reported in its Block Limits page. Default 64 KiB. */
  transferBytesMax?: number;
  /** How long the device stays off the bus after a `disconnect` (ms, virtual). Default 20. */
  reattachMs?: number;
}

/** pid.codes' test VID and a PID of ours ('ML'): never a real product. */
export const EMULATED_VENDOR_ID = 0x1209;
export const EMULATED_PRODUCT_ID = 0x4d4c;
export const EMULATED_INTERFACE = 0;
export const EMULATED_BULK_IN = 1;
export const EMULATED_BULK_OUT = 2;
/** High-speed bulk: 512-byte packets, at most 13 of them per 125 us microframe. */

/** One thing the device has for bulk-in, in order: data, a STALL, a zero-length packet, the CSW. */
type InItem = { kind: 'data'; bytes: Uint8Array } | { kind: 'csw'; bytes: Uint8Array } | { kind: 'stall' } | { kind: 'zlp' };

/** The command whose data phase is under way (bulk-out). */
interface DataOut {
  cbw: CommandBlockWrapper;
  intent: Intent;
  target: ScsiTarget;
  chunks: Uint8Array[];
  received: number;
  /** The device will STALL this data phase (fault `stall-out`). */
  stall: boolean;
}

const BOT_RESET = 0xff;
const GET_MAX_LUN = 0xfe;

/**
 * A USB mass-storage device, emulated (docs/usb-serial-targets.md): the part of WebUSB's
 * `USBDevice` the driver uses, over any BlockDevice per LUN, speaking Bulk-Only Transport as BOT
 * 1.0 describes it, including its thirteen host/device disagreement cases (6.7), the STALL of
 * both pipes after an invalid CBW that only a full reset recovery undoes (6.6.1), and STALL
 * conditions surviving a Bulk-Only reset (3.1). It commits the faults of its plan on purpose,
 * drawn from its seeded stream (faults.ts), and counts them.
 *
 * Time: every transfer takes its bus time on the clock (512-byte packets, 13 per 125 us
 * microframe, at least one microframe), and the LUN's disk its own service time, so in virtual
 * time a run over it stays a pure function of the seed.
 */
export class EmulatedUsbMassStorage implements MassStorageUsbDevice {
  readonly vendorId: number;
  readonly productId: number;
  readonly serialNumber: string;
  readonly manufacturerName = 'mirrorlab';
  readonly productName = 'emulated mass storage';
  readonly faults: UsbEmuFaults;
  /** BOT commands received (CBWs accepted), resets and re-attachments (test hooks). */
  readonly stats = { commands: 0, botResets: 0, reattaches: 0, invalidCbws: 0 };
  private readonly clock: HostClock;
  private readonly disks: BlockDevice[];
  private readonly targets: ScsiTarget[];
  /** Answers for LUNs the device does not have (INQUIRY: no unit; anything else: LUN not supported). */
  private readonly absent: ScsiTarget;
  private readonly reattachMs: number;
  private attached = true;
  private gone = false;
  private isOpen = false;
  /** Re-attached while it was open: the old handle is dead until opened again. */
  private reattached = false;
  private claimed = false;
  private selected: number | null = null;
  /** 'dead': an invalid CBW was received; both pipes STALL until a reset recovery (BOT 6.6.1). */
  private phase: 'command' | 'data-out' | 'dead' = 'command';
  private readonly halted = { in: false, out: false };
  private inQueue: InItem[] = [];
  private dataOut: DataOut | null = null;
  /** The device's processing of the current command; bulk-in waits for it. */
  private work: Promise<void> = Promise.resolve();
  /** Bumped by resets and disconnects: work of an older epoch is dropped. */
  private epoch = 0;

  constructor(options: EmulatedUsbOptions) {
    assert(options.luns.length >= 1 && options.luns.length <= LUN_MAX + 1, `an emulated device has 1..${LUN_MAX + 1} LUNs`);
    this.clock = options.clock;
    this.vendorId = options.vendorId ?? EMULATED_VENDOR_ID;
    this.productId = options.productId ?? EMULATED_PRODUCT_ID;
    this.serialNumber = options.serialNumber ?? 'MLEMU0001';
    this.faults = new UsbEmuFaults(options.faults ?? {}, options.random);
    this.reattachMs = options.reattachMs ?? 20;
    const transferBytes = options.transferBytesMax ?? 64 * 1024;
    const identity = { vendor: 'MIRRORLB', product: 'EMULATED DISK', revision: '0001' };
    this.disks = options.luns;
    this.targets = options.luns.map((disk) => new ScsiTarget(disk, { ...identity, transferBlocksMax: Math.max(1, Math.floor(transferBytes / disk.sectorSize)) }));
    this.absent = new ScsiTarget(null, { ...identity, transferBlocksMax: 1 });
  }

  get opened(): boolean {
    return this.attached && this.isOpen;
  }

  get configuration(): UsbConfigurationInfo | null {
    return this.selected === null ? null : this.configurations[0]!;
  }

  get configurations(): UsbConfigurationInfo[] {
    const endpoint = (endpointNumber: number, direction: UsbDirection) => ({ endpointNumber, direction, type: 'bulk' as const, packetSize: HIGH_SPEED_PACKET_BYTES });
    const endpoints = [endpoint(EMULATED_BULK_IN, 'in'), endpoint(EMULATED_BULK_OUT, 'out')];
    const alternate = { alternateSetting: 0, interfaceClass: 0x08, interfaceSubclass: 0x06, interfaceProtocol: 0x50, endpoints };
    return [{ configurationValue: 1, interfaces: [{ interfaceNumber: EMULATED_INTERFACE, claimed: this.claimed, alternate, alternates: [alternate] }] }];
  }

  /** Whether the device is on the bus now (test hook; a `locate` function for the driver). */
  get present(): boolean {
    return this.attached;
  }

  /**
   * The device drops off the bus now (test hook): transfers in flight and later ones fail; it
   * comes back after `reattachMs`, or never with `forever` (a dead device).
   */
  unplug(options: { forever?: boolean } = {}): void {
    if (!this.attached) return;
    this.attached = false;
    this.gone = options.forever === true;
    this.epoch++;
    if (!this.gone) this.clock.setTimeout(() => this.replug(), this.reattachMs);
  }

  async open(): Promise<void> {
    this.present_();
    this.isOpen = true;
    this.reattached = false;
  }

  async close(): Promise<void> {
    this.isOpen = false;
    this.claimed = false;
  }

  async selectConfiguration(value: number): Promise<void> {
    this.usable(false);
    if (value !== 1) throw new Error(`selectConfiguration: no configuration ${value}`);
    this.selected = value;
  }

  async claimInterface(n: number): Promise<void> {
    this.usable(false);
    if (this.selected === null || n !== EMULATED_INTERFACE) throw new Error(`claimInterface: no interface ${n} in the active configuration`);
    this.claimed = true;
  }

  async releaseInterface(n: number): Promise<void> {
    if (n === EMULATED_INTERFACE) this.claimed = false;
  }

  async controlTransferIn(setup: UsbControlSetup, length: number): Promise<UsbInTransferResult> {
    await this.bus(length);
    this.usable(true);
    if (isClassRequest(setup, GET_MAX_LUN) && length >= 1) return { status: 'ok', data: new DataView(Uint8Array.of(this.targets.length - 1).buffer) };
    return { status: 'stall' };
  }

  async controlTransferOut(setup: UsbControlSetup): Promise<UsbOutTransferResult> {
    await this.bus(0);
    this.usable(true);
    if (!isClassRequest(setup, BOT_RESET)) return { status: 'stall', bytesWritten: 0 };
    // Bulk-Only Mass Storage Reset (BOT 3.1): ready for a CBW again; STALLs stay until cleared.
    this.stats.botResets++;
    this.restart();
    if (this.faults.has('unit-attention')) for (const t of this.targets) t.raiseUnitAttention();
    return { status: 'ok', bytesWritten: 0 };
  }

  async clearHalt(direction: UsbDirection, endpointNumber: number): Promise<void> {
    await this.bus(0);
    this.usable(true);
    assert(endpointNumber === (direction === 'in' ? EMULATED_BULK_IN : EMULATED_BULK_OUT), `clearHalt: no bulk-${direction} endpoint ${endpointNumber}`);
    // After an invalid CBW only a reset recovery helps: the pipe stalls again at once (BOT 6.6.1).
    if (this.phase !== 'dead') this.halted[direction] = false;
  }

  async transferOut(endpointNumber: number, data: Uint8Array): Promise<UsbOutTransferResult> {
    await this.bus(data.length);
    this.usable(true);
    assert(endpointNumber === EMULATED_BULK_OUT, `transferOut: endpoint ${endpointNumber} is not bulk-out`);
    if (this.halted.out) return { status: 'stall', bytesWritten: 0 };
    if (this.phase === 'data-out') return this.receiveData(data);
    if (this.phase === 'dead' || this.inQueue.length > 0) return this.invalidCbw();
    if (this.faults.strikes('disconnect')) this.drop();
    return this.receiveCbw(data);
  }

  async transferIn(endpointNumber: number, length: number): Promise<UsbInTransferResult> {
    this.usable(true);
    assert(endpointNumber === EMULATED_BULK_IN, `transferIn: endpoint ${endpointNumber} is not bulk-in`);
    const epoch = this.epoch;
    await this.work;
    if (epoch !== this.epoch) this.usable(true);
    if (this.halted.in) return this.bus(0).then(() => ({ status: 'stall' as const }));
    const item = this.inQueue.shift();
    await this.bus(item?.kind === 'data' || item?.kind === 'csw' ? Math.min(length, item.bytes.length) : 0);
    this.usable(true);
    if (this.faults.strikes('disconnect')) this.drop();
    if (item === undefined) {
      const timeout = new Error('transferIn timed out: the device had nothing to send (it NAKs until the host gives up)');
      timeout.name = 'TimeoutError';
      throw timeout;
    }
    if (item.kind === 'stall') {
      this.halted.in = true;
      return { status: 'stall' };
    }
    if (item.kind === 'zlp') return { status: 'ok', data: new DataView(new ArrayBuffer(0)) };
    if (item.kind === 'csw') this.phase = this.phase === 'dead' ? 'dead' : 'command';
    const bytes = item.bytes.length > length ? item.bytes.subarray(0, length) : item.bytes;
    const view = new DataView(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    return { status: item.bytes.length > length ? 'babble' : 'ok', data: view };
  }

  /** A CBW arrived: judge it, decide the faults of this command, and start it (BOT 6.7's cases). */
  private receiveCbw(bytes: Uint8Array): UsbOutTransferResult {
    const verdict = decodeCbw(bytes);
    if (!verdict.ok) return this.invalidCbw();
    const cbw = verdict.cbw;
    this.stats.commands++;
    const target = this.targets[cbw.lun] ?? this.absent;
    const op = cbw.cb[0]!;
    if (op !== Op.Inquiry && op !== Op.RequestSense && this.faults.strikes('unit-attention')) target.raiseUnitAttention();
    const intent = target.prepare(cbw.cb);
    if (cbw.direction === 'out') {
      const stall = intent.direction === 'out' && intent.check === undefined && this.faults.strikes('stall-out');
      this.dataOut = { cbw, intent, target, chunks: [], received: 0, stall };
      this.phase = 'data-out';
    } else {
      this.run((reply) => this.execute(reply, cbw, target, intent));
    }
    return { status: 'ok', bytesWritten: bytes.length };
  }

  /** Bulk-out bytes of a data phase: gather them, then do the write (or whatever the case calls for). */
  private receiveData(bytes: Uint8Array): UsbOutTransferResult {
    const d = this.dataOut!;
    if (d.stall) {
      this.halted.out = true;
      this.phase = 'command';
      this.dataOut = null;
      d.target.fail(SENSE.aborted);
      const reply: InItem[] = [];
      this.queueCsw(reply, d.cbw, CswStatus.Failed, d.cbw.dataTransferLength);
      this.inQueue.push(...reply);
      return { status: 'stall', bytesWritten: 0 };
    }
    const take = Math.min(bytes.length, d.cbw.dataTransferLength - d.received);
    d.chunks.push(bytes.slice(0, take));
    d.received += take;
    if (this.faults.strikes('disconnect')) {
      // Off the bus half-way through a write: part of it may have reached the medium, as on a real stick.
      this.partialWrite(d);
      this.drop();
    }
    if (d.received >= d.cbw.dataTransferLength) {
      this.phase = 'command';
      this.dataOut = null;
      this.run((reply) => this.finishDataOut(reply, d));
    }
    return { status: 'ok', bytesWritten: take };
  }

  /** A command without a data-out phase (BOT 6.7 cases 1-8). */
  private async execute(reply: InItem[], cbw: CommandBlockWrapper, target: ScsiTarget, intent: Intent): Promise<void> {
    const hostIn = cbw.direction === 'in' ? cbw.dataTransferLength : 0;
    if (intent.check !== undefined) return this.failNoData(reply, cbw, hostIn);
    if (cbw.direction === 'none' && intent.direction !== 'none') return this.queueCsw(reply, cbw, CswStatus.PhaseError, 0); // cases 2, 3
    if (cbw.direction === 'in' && intent.direction === 'out') { // case 8
      reply.push({ kind: 'stall' });
      return this.queueCsw(reply, cbw, CswStatus.PhaseError, hostIn);
    }
    const range = readWriteRange(cbw.cb);
    if (range !== null && intent.direction === 'in' && this.faults.strikes('medium')) {
      target.fail({ ...SENSE.unrecoveredRead, information: range.lba + this.faults.pick(range.blocks) });
      return this.failNoData(reply, cbw, hostIn);
    }
    const done = await target.complete(cbw.cb);
    if ('check' in done) return this.failNoData(reply, cbw, hostIn);
    if (cbw.direction === 'none') return this.queueCsw(reply, cbw, CswStatus.Passed, 0);
    if (intent.direction === 'none') return this.failNoData(reply, cbw, hostIn, CswStatus.Passed); // case 4
    const sent = Math.min(done.data.length, hostIn);
    const csw = this.sendData(reply, target, done.data.subarray(0, sent), range !== null);
    const status = done.data.length > hostIn ? CswStatus.PhaseError : csw.failed ? CswStatus.Failed : CswStatus.Passed; // case 7; cases 5, 6
    return this.queueCsw(reply, cbw, status, hostIn - (csw.sent ?? sent));
  }

  /**
   * The data-in phase of a command that succeeded, with the faults that strike there; says what
   * the CSW must then report (a failure, or fewer bytes sent).
   */
  private sendData(reply: InItem[], target: ScsiTarget, data: Uint8Array, isRead: boolean): { failed?: boolean; sent?: number } {
    if (isRead && this.faults.strikes('short')) {
      const sent = this.faults.pick(data.length);
      reply.push({ kind: 'data', bytes: data.slice(0, sent) });
      return { sent };
    }
    if (isRead && this.faults.strikes('zlp')) {
      reply.push({ kind: 'zlp' });
      return { sent: 0 };
    }
    if (this.faults.strikes('stall-in')) {
      if (this.faults.pick(2) === 0) {
        reply.push({ kind: 'stall' });
        target.fail(SENSE.aborted);
        return { failed: true, sent: 0 };
      }
      reply.push({ kind: 'data', bytes: data }, { kind: 'stall' });
      return {};
    }
    reply.push({ kind: 'data', bytes: data });
    return {};
  }

  /** After the data-out phase (BOT 6.7 cases 9-13). */
  private async finishDataOut(reply: InItem[], d: DataOut): Promise<void> {
    const hostOut = d.cbw.dataTransferLength;
    if (d.intent.check !== undefined) return this.queueCsw(reply, d.cbw, CswStatus.Failed, hostOut); // case 9, failed at once
    if (d.intent.direction === 'none') return this.queueCsw(reply, d.cbw, CswStatus.Passed, hostOut); // case 9
    if (d.intent.direction === 'in' || d.intent.bytes > hostOut) return this.queueCsw(reply, d.cbw, CswStatus.PhaseError, hostOut); // cases 10, 13
    const done = await d.target.complete(d.cbw.cb, concat(d.chunks, d.intent.bytes));
    if ('check' in done) return this.queueCsw(reply, d.cbw, CswStatus.Failed, hostOut);
    return this.queueCsw(reply, d.cbw, CswStatus.Passed, hostOut - d.intent.bytes); // cases 11, 12
  }

  /** The command failed (or had no data) before its data-in phase: STALL bulk-in if the host expects data, then the CSW. */
  private failNoData(reply: InItem[], cbw: CommandBlockWrapper, hostIn: number, status: CswStatus = CswStatus.Failed): void {
    if (hostIn > 0) reply.push({ kind: 'stall' });
    this.queueCsw(reply, cbw, status, hostIn);
  }

  /** Queues the CSW, with whatever a fault does to it. */
  private queueCsw(reply: InItem[], cbw: CommandBlockWrapper, status: CswStatus, residue: number): void {
    let signature = CSW_SIGNATURE;
    let tag = cbw.tag;
    if (this.faults.strikes('csw-signature')) signature = CBW_SIGNATURE; // 'USBC': a CBW's signature, not a CSW's
    else if (this.faults.strikes('csw-tag')) tag = (tag + 1) >>> 0;
    else if (this.faults.strikes('phase')) {
      if (this.faults.pick(2) === 0) return this.internalError();
      status = CswStatus.PhaseError;
    } else if (this.faults.strikes('zlp')) reply.push({ kind: 'zlp' });
    reply.push({ kind: 'csw', bytes: encodeCsw({ tag, residue, status }, signature) });
  }

  /**
   * An internal device error (BOT 6.6.2): no CSW; both pipes STALL until a full reset recovery,
   * so a host that resets without clearing the halts gets nowhere.
   */
  private internalError(): void {
    this.phase = 'dead';
    this.halted.in = true;
    this.halted.out = true;
  }

  /** An invalid CBW (or bytes where none was due): STALL both pipes until a reset recovery (BOT 6.6.1). */
  private invalidCbw(): UsbOutTransferResult {
    this.stats.invalidCbws++;
    this.phase = 'dead';
    this.inQueue = [];
    this.halted.in = true;
    this.halted.out = true;
    return { status: 'stall', bytesWritten: 0 };
  }

  /**
   * Runs the device's processing of a command after whatever it is still doing; its bulk-in items
   * are published when it ends, unless a reset or disconnect came in between (then they are dropped).
   * An exception here is the emulator's own bug: it surfaces on the host's next bulk-in.
   */
  private run(work: (reply: InItem[]) => Promise<void>): void {
    const epoch = this.epoch;
    this.work = this.work.then(async () => {
      const reply: InItem[] = [];
      await work(reply);
      if (epoch === this.epoch) this.inQueue.push(...reply);
    });
  }

  /** Back to waiting for a CBW: a Bulk-Only reset, a re-attach. */
  private restart(): void {
    this.epoch++;
    this.phase = 'command';
    this.inQueue = [];
    this.dataOut = null;
    this.work = Promise.resolve();
  }

  private drop(): never {
    this.unplug();
    throw new UsbGone('the device disconnected (emulated: dropped off the bus mid-transfer)');
  }

  /** The whole sectors of a data phase cut short that reach the medium anyway (the rest never arrived). */
  private partialWrite(d: DataOut): void {
    const range = readWriteRange(d.cbw.cb);
    const disk = this.disks[d.cbw.lun];
    if (range === null || !range.write || d.intent.direction !== 'out' || d.intent.check !== undefined || disk === undefined) return;
    const sectors = Math.min(range.blocks, Math.floor(d.received / disk.sectorSize));
    if (sectors > 0) disk.write(range.lba, concat(d.chunks, sectors * disk.sectorSize)).catch(() => undefined);
  }

  private replug(): void {
    this.attached = true;
    this.reattached = this.isOpen;
    this.isOpen = false;
    this.claimed = false;
    this.halted.in = false;
    this.halted.out = false;
    this.restart();
    this.stats.reattaches++;
    // A re-attached device has been power-cycled: every unit reports it first (SPC-4 6.x, POWER ON OCCURRED).
    for (const t of this.targets) t.raiseUnitAttention();
  }

  /** The bus time of a transfer of `bytes` on the clock. */
  private bus(bytes: number): Promise<void> {
    return busTime(this.clock, bytes);
  }

  private present_(): void {
    if (!this.attached) throw new UsbGone('the device is not on the bus');
  }

  private usable(claimed: boolean): void {
    this.present_();
    // A handle opened before the device dropped off the bus is dead, as an fd on a vanished usbfs node is.
    if (!this.isOpen) throw this.reattached ? new UsbGone('the device was disconnected since it was opened; open it again') : new Error('InvalidStateError: the device is not open');
    if (claimed && !this.claimed) throw new Error('InvalidStateError: the interface is not claimed');
  }
}

function isClassRequest(setup: UsbControlSetup, request: number): boolean {
  return setup.requestType === 'class' && setup.recipient === 'interface' && setup.request === request && setup.index === EMULATED_INTERFACE;
}

function concat(chunks: Uint8Array[], bytes: number): Uint8Array {
  if (chunks.length === 1 && chunks[0]!.length >= bytes) return chunks[0]!.subarray(0, bytes);
  const out = new Uint8Array(bytes);
  let at = 0;
  for (const c of chunks) {
    if (at >= bytes) break;
    const n = Math.min(c.length, bytes - at);
    out.set(c.subarray(0, n), at);
    at += n;
  }
  return out;
}

