import { DeviceFailedError } from '../../../firmware/ports/block-device.ts';
import { AttachedDeviceError } from '../attached-errors.ts';
import {
  BulkOnlyTransport,
  UsbDisconnectedError,
  UsbResetFailedError,
  UsbTransferError,
  type BotCommand,
  type BotCounters,
  type BotEndpoints,
} from './bot-transport.ts';
import { parseSense, requestSense, type Sense } from './scsi.ts';
import { senseAction } from './sense-action.ts';
import type { MassStorageUsbDevice, UsbConfigurationInfo } from './usb-device.ts';

/** USB class codes of a SCSI-transparent Bulk-Only mass-storage interface. */
export const MASS_STORAGE_CLASS = 0x08;
export const SCSI_TRANSPARENT_SUBCLASS = 0x06;
export const BULK_ONLY_PROTOCOL = 0x50;

/**
 * Attempts at one command before the device is given up on (each after a recovery): enough that
 * a device failing a third of its commands still gets through, but for 1 command in 40 million.
 */
export const COMMAND_ATTEMPTS_MAX = 16;
/** After a disconnect, look for the device again every so often, this many times (5 s in all). */
export const REATTACH_POLL_MS = 50;
export const REATTACH_POLLS_MAX = 100;
/** Sense bytes asked for: fixed format needs 18, descriptor format with an information descriptor 20. */
const SENSE_BYTES = 64;

export interface SessionOptions {
  /** Used in messages and errors. */
  name: string;
  lun: number;
  /** Waits between attempts and polls: virtual for the emulated device, real for hardware. */
  pause: (ms: number) => Promise<void>;
  /** Finds the device again after it disconnected (same VID, PID and serial); absent: a disconnect is final. */
  locate?: () => Promise<MassStorageUsbDevice | undefined>;
  /** Called once the device is back, before the interrupted command is retried (to check its capacity). */
  onReattach?: () => void;
}

/** Counters of recoveries, for tests and reports. */
export interface SessionCounters extends BotCounters {
  senseRetries: number;
  incompleteDataPhases: number;
  reattaches: number;
  transferFailures: number;
}

/** The first Bulk-Only mass-storage interface of a configuration, with its bulk endpoints; null if there is none. */
export function findBulkOnlyInterface(config: UsbConfigurationInfo | null | undefined): BotEndpoints | null {
  for (const iface of config?.interfaces ?? []) {
    const alt = iface.alternate;
    if (alt.interfaceClass !== MASS_STORAGE_CLASS || alt.interfaceSubclass !== SCSI_TRANSPARENT_SUBCLASS || alt.interfaceProtocol !== BULK_ONLY_PROTOCOL) continue;
    const bulkIn = alt.endpoints.find((e) => e.type === 'bulk' && e.direction === 'in');
    const bulkOut = alt.endpoints.find((e) => e.type === 'bulk' && e.direction === 'out');
    if (bulkIn && bulkOut) return { interfaceNumber: iface.interfaceNumber, bulkIn: bulkIn.endpointNumber, bulkOut: bulkOut.endpointNumber };
  }
  return null;
}

/**
 * Opens the device, selects its first configuration if none is active, finds its Bulk-Only
 * interface and claims it. Claiming never detaches a kernel driver: that is the caller's decision
 * (open-usb.ts, and only with --detach-kernel-driver).
 */
export async function claimBulkOnly(device: MassStorageUsbDevice, name: string): Promise<BotEndpoints> {
  if (!device.opened) await device.open();
  if (!device.configuration) {
    const first = device.configurations?.[0];
    if (!first) throw new AttachedDeviceError('ML_ERR_USB_NOT_MASS_STORAGE', `${name}: the device has no configuration; expected a USB mass-storage device`);
    await device.selectConfiguration(first.configurationValue);
  }
  const ep = findBulkOnlyInterface(device.configuration);
  if (!ep) {
    throw new AttachedDeviceError('ML_ERR_USB_NOT_MASS_STORAGE',
      `${name}: no Bulk-Only mass-storage interface (class 08h, subclass 06h, protocol 50h) in its active configuration; expected a USB stick, card reader or disk bridge (UAS-only devices are not supported)`);
  }
  await device.claimInterface(ep.interfaceNumber);
  return ep;
}

/**
 * One logical unit of a Bulk-Only device, as a command executor: {@link run} issues a SCSI
 * command and returns its data, doing whatever recovery it takes (docs/usb-serial-targets.md):
 * retrying after a reset recovery, after an incomplete data phase, after a unit attention or an
 * aborted command (REQUEST SENSE tells), waiting for a unit becoming ready, and finding the
 * device again after a disconnect. Its errors are the typed ones of the BlockDevice port:
 * {@link MediaError} for medium errors only, {@link DeviceFailedError} for the rest.
 */
export class UsbSession {
  readonly counters: SessionCounters;
  private bot: BulkOnlyTransport;

  constructor(
    private device: MassStorageUsbDevice,
    private endpoints: BotEndpoints,
    private readonly options: SessionOptions,
  ) {
    this.bot = new BulkOnlyTransport(device, endpoints);
    this.counters = { ...this.bot.counters, senseRetries: 0, incompleteDataPhases: 0, reattaches: 0, transferFailures: 0 };
  }

  get name(): string {
    return this.options.name;
  }

  get interfaceNumber(): number {
    return this.endpoints.interfaceNumber;
  }

  /** The device now (a new object after a re-attach). */
  get current(): MassStorageUsbDevice {
    return this.device;
  }

  async maxLun(): Promise<number> {
    return this.bot.maxLun();
  }

  /**
   * Issues `cmd` until it passes (its data), a sense says what error the caller gets, or the
   * attempts run out (DeviceFailedError naming the last problem). `exact`: the data phase must
   * move every byte (READ, WRITE); otherwise a short reply is fine (INQUIRY, sense, VPD).
   * `request` is the LBA range a READ or WRITE covers, for a medium error's LBA.
   */
  async run(cmd: Omit<BotCommand, 'lun'>, request: { lba: number; blocks: number } | null, exact: boolean): Promise<Uint8Array> {
    const full: BotCommand = { ...cmd, lun: this.options.lun };
    let last = 'no attempt made';
    for (let attempt = 1; attempt <= COMMAND_ATTEMPTS_MAX; attempt++) {
      const outcome = await this.attempt(full);
      if (typeof outcome === 'string') {
        last = outcome;
        continue;
      }
      if (outcome.kind === 'passed') {
        const complete = !exact || (outcome.residue === 0 && (full.direction !== 'in' || outcome.data.length === full.length));
        if (complete) return outcome.data;
        this.counters.incompleteDataPhases++;
        last = `the data phase moved ${full.direction === 'in' ? outcome.data.length : full.length - outcome.residue} of ${full.length} bytes`;
        continue;
      }
      const sense = await this.sense();
      if (sense === null) {
        last = 'the command failed and REQUEST SENSE gave no usable sense data';
        continue;
      }
      const action = senseAction(this.options.name, sense, request);
      if (action.kind === 'fail') throw action.error;
      this.counters.senseRetries++;
      if (action.kind === 'wait') await this.options.pause(action.ms);
      if (action.kind === 'recheck') this.options.onReattach?.();
      last = action.why;
    }
    throw new DeviceFailedError(this.options.name, `gave up on the command (opcode 0x${full.cb[0]!.toString(16)}) after ${COMMAND_ATTEMPTS_MAX} attempts: ${last}`);
  }

  /** Releases the interface and closes the device (best effort: it may be gone). */
  async close(): Promise<void> {
    await this.device.releaseInterface(this.endpoints.interfaceNumber).catch(() => undefined);
    await this.device.close().catch(() => undefined);
  }

  /** One transaction; a transport failure is recovered from here and comes back as its description. */
  private async attempt(cmd: BotCommand): Promise<Awaited<ReturnType<BulkOnlyTransport['transact']>> | string> {
    try {
      const outcome = await this.bot.transact(cmd);
      this.syncCounters();
      return outcome.kind === 'recovered' ? outcome.problem : outcome;
    } catch (error) {
      return this.afterTransportError(error);
    }
  }

  private async sense(): Promise<Sense | null> {
    const outcome = await this.attempt({ lun: this.options.lun, cb: requestSense(SENSE_BYTES), direction: 'in', length: SENSE_BYTES });
    return typeof outcome === 'string' || outcome.kind !== 'passed' ? null : parseSense(outcome.data);
  }

  private async afterTransportError(error: unknown): Promise<string> {
    this.syncCounters();
    if (error instanceof UsbDisconnectedError) {
      await this.reattach();
      return error.message;
    }
    if (error instanceof UsbTransferError) {
      this.counters.transferFailures++;
      try {
        await this.bot.resetRecovery();
      } catch (resetError) {
        if (resetError instanceof UsbDisconnectedError) {
          await this.reattach();
          return resetError.message;
        }
        throw new DeviceFailedError(this.options.name, `${error.message}, and the reset recovery after it failed too: ${(resetError as Error).message}`);
      }
      return error.message;
    }
    if (error instanceof UsbResetFailedError) throw new DeviceFailedError(this.options.name, error.message);
    throw error;
  }

  /** Waits for the device to come back (same identity), then opens and claims it again. */
  private async reattach(): Promise<void> {
    const locate = this.options.locate;
    if (!locate) throw new DeviceFailedError(this.options.name, 'the device disconnected');
    for (let poll = 1; poll <= REATTACH_POLLS_MAX; poll++) {
      await this.options.pause(REATTACH_POLL_MS);
      const found = await locate().catch(() => undefined);
      if (!found) continue;
      try {
        this.endpoints = await claimBulkOnly(found, this.options.name);
      } catch {
        continue;
      }
      this.device = found;
      this.bot = new BulkOnlyTransport(found, this.endpoints);
      this.counters.reattaches++;
      this.options.onReattach?.();
      return;
    }
    throw new DeviceFailedError(this.options.name, `the device disconnected and was not back within ${REATTACH_POLL_MS * REATTACH_POLLS_MAX} ms`);
  }

  /** Adds the transport's counters (a new transport after each re-attach) into ours. */
  private syncCounters(): void {
    const c = this.bot.counters;
    for (const key of ['commands', 'stalls', 'zeroLengthCsws', 'cswInDataStage', 'resetRecoveries', 'problems'] as const) {
      this.counters[key] += c[key];
      c[key] = 0;
    }
  }
}
