import { MirrorlabError, assert } from '../../../firmware/errors.ts';
import { CBW_BYTES, CSW_BYTES, encodeCbw, judgeCsw, type DataDirection } from './bot.ts';
import { bytesOf, classifyUsbError, type MassStorageUsbDevice, type UsbInTransferResult, type UsbOutTransferResult } from './usb-device.ts';

/** The Bulk-Only interface the driver talks to: its number and its two bulk endpoints. */
export interface BotEndpoints {
  interfaceNumber: number;
  bulkIn: number;
  bulkOut: number;
}

export interface BotCommand {
  lun: number;
  cb: Uint8Array;
  direction: DataDirection;
  /** Bytes of the data phase (0 with direction `none`). */
  length: number;
  /** Direction `out`: exactly `length` bytes. */
  data?: Uint8Array;
}

/**
 * What one command came to: the CSW said passed or failed (with the data-in bytes received and
 * the residue), or the transaction went wrong and has already been recovered from (a reset
 * recovery, endpoints cleared), so the command may simply be issued again.
 */
export type BotOutcome =
  | { kind: 'passed'; residue: number; data: Uint8Array }
  | { kind: 'failed'; residue: number; data: Uint8Array }
  | { kind: 'recovered'; problem: string };

/** The device went away in the middle of a transaction (unplugged, powered off, re-enumerated). */
export class UsbDisconnectedError extends MirrorlabError {
  constructor(detail: string) {
    super('ML_ERR_USB_DISCONNECTED', `the USB device disconnected: ${detail}`);
  }
}

/** Reset recovery itself failed: the device no longer speaks Bulk-Only; nothing short of re-plugging helps. */
export class UsbResetFailedError extends MirrorlabError {
  constructor(detail: string) {
    super('ML_ERR_USB_RESET_FAILED', `Bulk-Only reset recovery failed: ${detail}`);
  }
}

/** Counts of what went wrong and was recovered from, for reports and tests. */
export interface BotCounters {
  commands: number;
  stalls: number;
  zeroLengthCsws: number;
  cswInDataStage: number;
  resetRecoveries: number;
  problems: number;
}

/** Reads of the status stage before giving up on a CSW: one more after a STALL (BOT 5.3.3), and after each zero-length packet. */
const CSW_READS_MAX = 3;
/** A transfer that has not completed by then is abandoned and the device reset (real devices only). */
export const USB_TRANSFER_TIMEOUT_MS = 5000;

/** Class-specific requests of BOT 3.1 and 3.2. */
const BULK_ONLY_RESET = 0xff;
const GET_MAX_LUN = 0xfe;

/**
 * The host side of Bulk-Only Transport (BOT 5.3, 6.7): one command at a time, CBW out, the data
 * phase, the CSW in, with the recoveries the specification asks for. A STALL in the data phase
 * clears the endpoint and goes on to the status stage; a STALL on the CSW is cleared and the CSW
 * read once more; zero-length packets before the CSW are skipped; a CSW that is invalid (size,
 * signature, tag) or not meaningful, a phase error, babble or a timeout end in a reset recovery
 * (Bulk-Only Mass Storage Reset, then CLEAR_FEATURE(ENDPOINT_HALT) on bulk-in and on bulk-out),
 * after which the caller may re-issue the command. A device that disappears is reported as
 * {@link UsbDisconnectedError}, for the caller to wait for it.
 */
export class BulkOnlyTransport {
  readonly counters: BotCounters = { commands: 0, stalls: 0, zeroLengthCsws: 0, cswInDataStage: 0, resetRecoveries: 0, problems: 0 };
  private tag = 0;

  constructor(
    private readonly device: MassStorageUsbDevice,
    private readonly ep: BotEndpoints,
    private readonly timeoutMs = USB_TRANSFER_TIMEOUT_MS,
  ) {}

  /** GET MAX LUN (BOT 3.2); a device with one LUN may STALL it, which means 0. */
  async maxLun(): Promise<number> {
    const setup = { requestType: 'class', recipient: 'interface', request: GET_MAX_LUN, value: 0, index: this.ep.interfaceNumber } as const;
    const result = await this.guard(() => this.device.controlTransferIn(setup, 1, this.timeoutMs));
    if (typeof result === 'string' || result.status !== 'ok') return 0;
    const data = bytesOf(result);
    return data.length >= 1 ? Math.min(data[0]!, 15) : 0;
  }

  async transact(cmd: BotCommand): Promise<BotOutcome> {
    assert(cmd.direction !== 'out' || cmd.data?.length === cmd.length, 'a data-out command carries exactly `length` bytes');
    this.counters.commands++;
    this.tag = (this.tag + 1) >>> 0;
    const tag = this.tag;
    const expect = { tag, dataTransferLength: cmd.length };
    const cbw = encodeCbw({ tag, dataTransferLength: cmd.length, direction: cmd.direction, lun: cmd.lun, cb: cmd.cb });
    const sent = await this.out(cbw);
    if (sent === 'stall' || sent === 'babble' || sent.bytesWritten !== CBW_BYTES) return this.recover('the device did not take the CBW');
    let data: Uint8Array = new Uint8Array(0);
    if (cmd.direction === 'in') {
      const got = await this.in(cmd.length);
      if (got === 'babble') return this.recover('babble in the data stage');
      if (got === 'stall') await this.clearHalt('in');
      else data = got;
      // A device with nothing to send may answer with its CSW straight away (a short packet of 13 bytes).
      if (data.length === CSW_BYTES && cmd.length > CSW_BYTES) {
        const early = judgeCsw(data, expect);
        if (early.kind === 'passed' || early.kind === 'failed') {
          this.counters.cswInDataStage++;
          return { ...early, data: new Uint8Array(0) };
        }
      }
    } else if (cmd.direction === 'out') {
      const put = await this.out(cmd.data!);
      if (put === 'babble') return this.recover('babble in the data stage');
      if (put === 'stall') await this.clearHalt('out');
    }
    return this.status(expect, data);
  }

  /** BOT 5.3.4: Bulk-Only Mass Storage Reset, then clear HALT on bulk-in, then on bulk-out. */
  async resetRecovery(): Promise<void> {
    this.counters.resetRecoveries++;
    const setup = { requestType: 'class', recipient: 'interface', request: BULK_ONLY_RESET, value: 0, index: this.ep.interfaceNumber } as const;
    const reset = await this.guard(() => this.device.controlTransferOut(setup, undefined, this.timeoutMs));
    if (typeof reset === 'string' || reset.status !== 'ok') throw new UsbResetFailedError('the device refused the Bulk-Only Mass Storage Reset');
    await this.clearHalt('in', true);
    await this.clearHalt('out', true);
  }

  /** The status stage: read the CSW, retrying after a STALL once and after zero-length packets. */
  private async status(expect: { tag: number; dataTransferLength: number }, data: Uint8Array): Promise<BotOutcome> {
    let stalled = false;
    for (let read = 0; read < CSW_READS_MAX; read++) {
      const got = await this.in(CSW_BYTES);
      if (got === 'babble') return this.recover('babble in the status stage');
      if (got === 'stall') {
        if (stalled) return this.recover('bulk-in stalled twice in the status stage');
        stalled = true;
        await this.clearHalt('in');
        continue;
      }
      if (got.length === 0) {
        this.counters.zeroLengthCsws++;
        continue;
      }
      const verdict = judgeCsw(got, expect);
      if (verdict.kind === 'passed' || verdict.kind === 'failed') return { ...verdict, data };
      if (verdict.kind === 'phase-error') return this.recover('the device reported a phase error');
      return this.recover(verdict.problem);
    }
    return this.recover(`no CSW after ${CSW_READS_MAX} reads of the status stage`);
  }

  private async recover(problem: string): Promise<BotOutcome> {
    this.counters.problems++;
    await this.resetRecovery();
    return { kind: 'recovered', problem };
  }

  private async in(length: number): Promise<Uint8Array | 'stall' | 'babble'> {
    const result = await this.guard(() => this.device.transferIn(this.ep.bulkIn, length, this.timeoutMs));
    if (result === 'stall' || (typeof result !== 'string' && result.status === 'stall')) return this.stalled();
    if (result === 'babble' || result.status === 'babble') return 'babble';
    return bytesOf(result);
  }

  private async out(data: Uint8Array): Promise<UsbOutTransferResult | 'stall' | 'babble'> {
    const result = await this.guard(() => this.device.transferOut(this.ep.bulkOut, data, this.timeoutMs));
    if (result === 'stall' || (typeof result !== 'string' && result.status === 'stall')) return this.stalled();
    return result === 'babble' || result.status === 'babble' ? 'babble' : result;
  }

  private stalled(): 'stall' {
    this.counters.stalls++;
    return 'stall';
  }

  private async clearHalt(direction: 'in' | 'out', duringReset = false): Promise<void> {
    const endpoint = direction === 'in' ? this.ep.bulkIn : this.ep.bulkOut;
    try {
      await this.device.clearHalt(direction, endpoint);
    } catch (error) {
      if (classifyUsbError(error) === 'disconnected') throw new UsbDisconnectedError(messageOf(error));
      throw new UsbResetFailedError(`CLEAR_FEATURE(ENDPOINT_HALT) on bulk-${direction} failed${duringReset ? ' after the reset' : ''}: ${messageOf(error)}`);
    }
  }

  /**
   * Runs one transfer, turning the `usb` package's rejections into what they mean: a STALL is a
   * status like WebUSB's, a vanished device a {@link UsbDisconnectedError}; a timeout or anything
   * else ends in a reset recovery, reported as the STALL-like outcome the caller retries after.
   */
  private async guard<T extends UsbInTransferResult | UsbOutTransferResult>(transfer: () => Promise<T>): Promise<T | 'stall' | 'babble'> {
    try {
      return await transfer();
    } catch (error) {
      const kind = classifyUsbError(error);
      if (kind === 'stall' || kind === 'babble') return kind;
      if (kind === 'disconnected') throw new UsbDisconnectedError(messageOf(error));
      throw new UsbTransferError(kind, error);
    }
  }
}

/** A transfer timed out or failed in a way the USB stack did not name; the driver resets and retries. */
export class UsbTransferError extends MirrorlabError {
  constructor(readonly failure: string, cause: unknown) {
    super('ML_ERR_USB_TRANSFER', `a USB transfer failed (${failure}): ${messageOf(cause)}`);
    this.cause = cause;
  }
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));
