import { DeviceFailedError, MediaError, OutOfRangeError, type BlockDevice } from '../../../../firmware/ports/block-device.ts';
import {
  Op,
  SA_READ_CAPACITY_16,
  SenseKey,
  VpdPage,
  descriptorSense,
  fixedSense,
  getU16,
  getU32,
  readWriteRange,
  type Sense,
} from '../scsi.ts';

/** A sense to report: key, additional sense code and qualifier, and the information field (an LBA) if any. */
export type SenseSpec = Omit<Sense, 'information'> & { information?: number };

export const SENSE = {
  invalidOpcode: { key: SenseKey.IllegalRequest, asc: 0x20, ascq: 0x00 },
  lbaOutOfRange: { key: SenseKey.IllegalRequest, asc: 0x21, ascq: 0x00 },
  invalidFieldInCdb: { key: SenseKey.IllegalRequest, asc: 0x24, ascq: 0x00 },
  lunNotSupported: { key: SenseKey.IllegalRequest, asc: 0x25, ascq: 0x00 },
  resetOccurred: { key: SenseKey.UnitAttention, asc: 0x29, ascq: 0x00 },
  aborted: { key: SenseKey.AbortedCommand, asc: 0x00, ascq: 0x00 },
  unrecoveredRead: { key: SenseKey.MediumError, asc: 0x11, ascq: 0x00 },
  writeError: { key: SenseKey.MediumError, asc: 0x0c, ascq: 0x00 },
  internalFailure: { key: SenseKey.HardwareError, asc: 0x44, ascq: 0x00 },
} as const satisfies Record<string, SenseSpec>;

/** What a command means to move, as the device sees it (BOT 6.7: Dn, Di, Do), or that it fails before moving anything. */
export interface Intent {
  direction: 'none' | 'in' | 'out';
  bytes: number;
  /** The command fails at once with this sense (no data moved, nothing done). */
  check?: SenseSpec;
}

export type Completion = { data: Uint8Array } | { check: SenseSpec };

export interface ScsiTargetOptions {
  vendor: string;
  product: string;
  revision: string;
  /** The largest READ/WRITE this unit accepts, in blocks, reported in the Block Limits VPD page. */
  transferBlocksMax: number;
}

const NO_DATA = new Uint8Array(0);

/**
 * One logical unit of the emulated device: the SCSI target behind Bulk-Only, over any
 * BlockDevice (or none: a LUN number beyond the device's). It keeps the sense of the last failed
 * command for REQUEST SENSE and a pending unit attention, as SPC-4 describes, and answers the
 * commands a block driver sends; anything else is ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE.
 */
export class ScsiTarget {
  private lastSense: SenseSpec | null = null;
  private unitAttention: SenseSpec | null = null;

  constructor(private readonly disk: BlockDevice | null, private readonly options: ScsiTargetOptions) {}

  /** A unit attention is now pending (after a reset, a power-on): the next command but INQUIRY and REQUEST SENSE fails with it. */
  raiseUnitAttention(sense: SenseSpec = SENSE.resetOccurred): void {
    if (this.disk !== null) this.unitAttention = sense;
  }

  /** Records a failure (a fault the device injects), for the next REQUEST SENSE. */
  fail(sense: SenseSpec): void {
    this.lastSense = sense;
  }

  /** What the command will move, or its immediate failure (which REQUEST SENSE will then report). */
  prepare(cb: Uint8Array): Intent {
    const op = cb[0]!;
    if (op === Op.Inquiry) {
      const data = this.inquiry(cb);
      return data === null ? this.refuse(SENSE.invalidFieldInCdb) : { direction: 'in', bytes: Math.min(getU16(cb, 3), data.length) };
    }
    if (op === Op.RequestSense) return { direction: 'in', bytes: Math.min(cb[4]!, this.senseBytes().length) };
    if (this.disk === null) return this.refuse(SENSE.lunNotSupported);
    if (this.unitAttention !== null) {
      const ua = this.unitAttention;
      this.unitAttention = null;
      return this.refuse(ua);
    }
    switch (op) {
      case Op.TestUnitReady:
      case Op.SynchronizeCache10:
        return { direction: 'none', bytes: 0 };
      case Op.ReadCapacity10:
        return { direction: 'in', bytes: 8 };
      case Op.ServiceActionIn16:
        return (cb[1]! & 0x1f) === SA_READ_CAPACITY_16 ? { direction: 'in', bytes: Math.min(getU32(cb, 10), 32) } : this.refuse(SENSE.invalidFieldInCdb);
      default:
        return this.prepareReadWrite(cb);
    }
  }

  /** Does the command (after its data-out phase, for a WRITE), reading and writing the disk. */
  async complete(cb: Uint8Array, dataOut: Uint8Array = NO_DATA): Promise<Completion> {
    const op = cb[0]!;
    if (op === Op.Inquiry) return { data: (this.inquiry(cb) ?? NO_DATA).subarray(0, getU16(cb, 3)) };
    if (op === Op.RequestSense) {
      const data = this.senseBytes().subarray(0, cb[4]!);
      // Reporting a pending unit attention through REQUEST SENSE clears it (SPC-4 5.17).
      if (this.lastSense === null) this.unitAttention = null;
      this.lastSense = null;
      return { data };
    }
    const disk = this.disk!;
    try {
      switch (op) {
        case Op.TestUnitReady:
          return { data: NO_DATA };
        case Op.SynchronizeCache10:
          await disk.flush();
          return { data: NO_DATA };
        case Op.ReadCapacity10:
          return { data: capacity10(disk) };
        case Op.ServiceActionIn16:
          return { data: capacity16(disk).subarray(0, getU32(cb, 10)) };
      }
      const range = readWriteRange(cb)!;
      if (range.blocks === 0) return { data: NO_DATA };
      if (!range.write) return { data: await disk.read(range.lba, range.blocks) };
      await disk.write(range.lba, dataOut.subarray(0, range.blocks * disk.sectorSize));
      return { data: NO_DATA };
    } catch (error) {
      return { check: this.record(this.senseOf(error, op === Op.Write10 || op === Op.Write16)) };
    }
  }

  private prepareReadWrite(cb: Uint8Array): Intent {
    const range = readWriteRange(cb);
    if (range === null) return this.refuse(SENSE.invalidOpcode);
    const disk = this.disk!;
    if (range.lba + range.blocks > disk.sectorCount) return this.refuse(SENSE.lbaOutOfRange);
    if (range.blocks > this.options.transferBlocksMax) return this.refuse(SENSE.invalidFieldInCdb);
    return { direction: range.blocks === 0 ? 'none' : range.write ? 'out' : 'in', bytes: range.blocks * disk.sectorSize };
  }

  private refuse(sense: SenseSpec): Intent {
    return { direction: 'none', bytes: 0, check: this.record(sense) };
  }

  private record(sense: SenseSpec): SenseSpec {
    this.lastSense = sense;
    return sense;
  }

  private senseOf(error: unknown, write: boolean): SenseSpec {
    if (error instanceof MediaError) return { ...(write ? SENSE.writeError : SENSE.unrecoveredRead), information: error.lba };
    if (error instanceof OutOfRangeError) return SENSE.lbaOutOfRange;
    if (error instanceof DeviceFailedError) return SENSE.internalFailure;
    return SENSE.internalFailure;
  }

  /** The sense data REQUEST SENSE would return now: the last failure, else a pending unit attention, else NO SENSE. */
  private senseBytes(): Uint8Array {
    const s = this.lastSense ?? this.unitAttention ?? { key: SenseKey.NoSense, asc: 0, ascq: 0 };
    return s.information !== undefined && s.information > 0xffffffff ? descriptorSense({ ...s, information: s.information }) : fixedSense(s);
  }

  /** The INQUIRY data the command asks for; null for a VPD page this unit does not have. */
  private inquiry(cb: Uint8Array): Uint8Array | null {
    if ((cb[1]! & 0x01) === 0) return this.standardInquiry();
    if (cb[2] === VpdPage.Supported) return Uint8Array.from([0, VpdPage.Supported, 0, 2, VpdPage.Supported, VpdPage.BlockLimits]);
    if (cb[2] === VpdPage.BlockLimits) {
      const page = new Uint8Array(64);
      page[1] = VpdPage.BlockLimits;
      page[3] = 60;
      new DataView(page.buffer).setUint32(8, this.options.transferBlocksMax);
      return page;
    }
    return null;
  }

  private standardInquiry(): Uint8Array {
    const data = new Uint8Array(36);
    data[0] = this.disk === null ? 0x7f : 0x00; // qualifier 3 / type 1Fh: no unit on this LUN
    data[1] = 0x80; // removable
    data[2] = 0x06; // SPC-4
    data[3] = 0x02; // response data format
    data[4] = 31; // additional length
    const put = (at: number, width: number, text: string): void => {
      for (let i = 0; i < width; i++) data[at + i] = i < text.length ? text.charCodeAt(i) & 0x7f : 0x20;
    };
    put(8, 8, this.options.vendor);
    put(16, 16, this.options.product);
    put(32, 4, this.options.revision);
    return data;
  }
}

function capacity10(disk: BlockDevice): Uint8Array {
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.min(disk.sectorCount - 1, 0xffffffff));
  view.setUint32(4, disk.sectorSize);
  return out;
}

function capacity16(disk: BlockDevice): Uint8Array {
  const out = new Uint8Array(32);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(disk.sectorCount - 1));
  view.setUint32(8, disk.sectorSize);
  return out;
}
