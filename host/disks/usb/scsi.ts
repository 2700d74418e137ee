import { assert } from '../../../firmware/errors.ts';

/**
 * The SCSI commands a block device needs (SPC-4, SBC-3), as command blocks and parsed replies.
 * Command blocks are big-endian. Both the driver (usb-disk.ts) and the emulated device's target
 * (emulated/scsi-target.ts) use these, so the two agree on one layout; the byte-vector tests pin
 * it to the standards.
 */
export const Op = {
  TestUnitReady: 0x00,
  RequestSense: 0x03,
  Inquiry: 0x12,
  ReadCapacity10: 0x25,
  Read10: 0x28,
  Write10: 0x2a,
  SynchronizeCache10: 0x35,
  Read16: 0x88,
  Write16: 0x8a,
  /** SERVICE ACTION IN(16); READ CAPACITY(16) is its service action 0x10. */
  ServiceActionIn16: 0x9e,
} as const;
export const SA_READ_CAPACITY_16 = 0x10;

/** Vital product data pages we ask for. */
export const VpdPage = { Supported: 0x00, BlockLimits: 0xb0 } as const;

export const SenseKey = {
  NoSense: 0x0,
  RecoveredError: 0x1,
  NotReady: 0x2,
  MediumError: 0x3,
  HardwareError: 0x4,
  IllegalRequest: 0x5,
  UnitAttention: 0x6,
  DataProtect: 0x7,
  AbortedCommand: 0xb,
} as const;

/** READ(10)/WRITE(10) reach LBAs below 2^32 and move at most 65,535 blocks. */
export const LBA10_MAX = 0xffffffff;
export const BLOCKS10_MAX = 0xffff;

const u16 = (b: Uint8Array, p: number, v: number): void => {
  b[p] = (v >>> 8) & 0xff;
  b[p + 1] = v & 0xff;
};
const u32 = (b: Uint8Array, p: number, v: number): void => {
  b[p] = (v >>> 24) & 0xff;
  b[p + 1] = (v >>> 16) & 0xff;
  b[p + 2] = (v >>> 8) & 0xff;
  b[p + 3] = v & 0xff;
};
const u64 = (b: Uint8Array, p: number, v: number): void => {
  const hi = Math.floor(v / 0x100000000);
  u32(b, p, hi);
  u32(b, p + 4, v - hi * 0x100000000);
};
export const getU16 = (b: Uint8Array, p: number): number => (b[p]! << 8) | b[p + 1]!;
export const getU32 = (b: Uint8Array, p: number): number => b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
/** A u64 as a number: exact up to 2^53, which every LBA here is. */
export const getU64 = (b: Uint8Array, p: number): number => getU32(b, p) * 0x100000000 + getU32(b, p + 4);

export function testUnitReady(): Uint8Array {
  return new Uint8Array(6);
}

export function requestSense(allocationLength: number): Uint8Array {
  assert(allocationLength >= 1 && allocationLength <= 255, 'REQUEST SENSE allocation length is 1..255');
  const cb = new Uint8Array(6);
  cb[0] = Op.RequestSense;
  cb[4] = allocationLength;
  return cb;
}

/** INQUIRY: the standard data, or (with `page`) a vital product data page. */
export function inquiry(allocationLength: number, page?: number): Uint8Array {
  assert(allocationLength >= 1 && allocationLength <= 0xffff, 'INQUIRY allocation length is 1..65535');
  const cb = new Uint8Array(6);
  cb[0] = Op.Inquiry;
  if (page !== undefined) {
    cb[1] = 0x01; // EVPD
    cb[2] = page;
  }
  u16(cb, 3, allocationLength);
  return cb;
}

export function readCapacity10(): Uint8Array {
  const cb = new Uint8Array(10);
  cb[0] = Op.ReadCapacity10;
  return cb;
}

export function readCapacity16(allocationLength = 32): Uint8Array {
  const cb = new Uint8Array(16);
  cb[0] = Op.ServiceActionIn16;
  cb[1] = SA_READ_CAPACITY_16;
  u32(cb, 10, allocationLength);
  return cb;
}

/** READ or WRITE of `blocks` at `lba`: the 10-byte form where it reaches, else the 16-byte one. */
export function readWrite(kind: 'read' | 'write', lba: number, blocks: number): Uint8Array {
  assert(Number.isSafeInteger(lba) && lba >= 0 && Number.isInteger(blocks) && blocks >= 1 && blocks <= 0xffffffff, 'bad READ/WRITE range');
  if (lba + blocks - 1 <= LBA10_MAX && blocks <= BLOCKS10_MAX) {
    const cb = new Uint8Array(10);
    cb[0] = kind === 'read' ? Op.Read10 : Op.Write10;
    u32(cb, 2, lba);
    u16(cb, 7, blocks);
    return cb;
  }
  const cb = new Uint8Array(16);
  cb[0] = kind === 'read' ? Op.Read16 : Op.Write16;
  u64(cb, 2, lba);
  u32(cb, 10, blocks);
  return cb;
}

/** SYNCHRONIZE CACHE(10) of the whole medium (LBA 0, 0 blocks: "to the end"). */
export function synchronizeCache10(): Uint8Array {
  const cb = new Uint8Array(10);
  cb[0] = Op.SynchronizeCache10;
  return cb;
}

/** The LBA and block count of a READ/WRITE command block, or null if it is not one. */
export function readWriteRange(cb: Uint8Array): { write: boolean; lba: number; blocks: number } | null {
  switch (cb[0]) {
    case Op.Read10:
    case Op.Write10:
      return cb.length >= 10 ? { write: cb[0] === Op.Write10, lba: getU32(cb, 2), blocks: getU16(cb, 7) } : null;
    case Op.Read16:
    case Op.Write16:
      return cb.length >= 16 ? { write: cb[0] === Op.Write16, lba: getU64(cb, 2), blocks: getU32(cb, 10) } : null;
    default:
      return null;
  }
}

/** Standard INQUIRY data, the part a block driver looks at. */
export interface InquiryData {
  /** Peripheral qualifier (0: a device is connected to this LUN; 3: no device can be). */
  qualifier: number;
  /** Peripheral device type (0: direct-access block device). */
  deviceType: number;
  removable: boolean;
  vendor: string;
  product: string;
  revision: string;
}

export function parseInquiry(data: Uint8Array): InquiryData | null {
  if (data.length < 36) return null;
  const text = (from: number, to: number): string => String.fromCharCode(...data.subarray(from, to)).replace(/[^\x20-\x7e]/g, '?').trim();
  return {
    qualifier: data[0]! >>> 5,
    deviceType: data[0]! & 0x1f,
    removable: (data[1]! & 0x80) !== 0,
    vendor: text(8, 16),
    product: text(16, 32),
    revision: text(32, 36),
  };
}

export interface Capacity {
  /** The last LBA (READ CAPACITY(10) says 0xFFFFFFFF when it does not fit: ask READ CAPACITY(16)). */
  lastLba: number;
  blockLength: number;
}

export function parseCapacity10(data: Uint8Array): Capacity | null {
  return data.length < 8 ? null : { lastLba: getU32(data, 0), blockLength: getU32(data, 4) };
}

export function parseCapacity16(data: Uint8Array): Capacity | null {
  return data.length < 12 ? null : { lastLba: getU64(data, 0), blockLength: getU32(data, 8) };
}

/** The VPD pages a device lists in page 0x00. */
export function parseSupportedVpdPages(data: Uint8Array): number[] {
  if (data.length < 4) return [];
  const n = Math.min(getU16(data, 2), data.length - 4);
  return [...data.subarray(4, 4 + n)];
}

/** Block Limits (VPD 0xB0): the MAXIMUM TRANSFER LENGTH in blocks (0: no limit reported), or null. */
export function parseMaxTransferBlocks(data: Uint8Array): number | null {
  return data.length < 12 || data[1] !== VpdPage.BlockLimits ? null : getU32(data, 8);
}

/** Sense data (SPC-4 4.5): the key, the additional sense code and qualifier, the information field. */
export interface Sense {
  key: number;
  asc: number;
  ascq: number;
  /** The information field (for a medium error: the first LBA in error), when the device set it. */
  information: number | null;
}

/** Parses fixed (0x70/0x71) or descriptor (0x72/0x73) format sense data; null if neither. */
export function parseSense(data: Uint8Array): Sense | null {
  if (data.length < 1) return null;
  const code = data[0]! & 0x7f;
  if ((code === 0x70 || code === 0x71) && data.length >= 14) {
    const valid = (data[0]! & 0x80) !== 0;
    return { key: data[2]! & 0x0f, asc: data[12]!, ascq: data[13]!, information: valid ? getU32(data, 3) : null };
  }
  if ((code === 0x72 || code === 0x73) && data.length >= 8) {
    let information: number | null = null;
    const end = Math.min(data.length, 8 + data[7]!);
    for (let p = 8; p + 2 <= end; p += 2 + data[p + 1]!) {
      // The information descriptor: type 0, length 0x0A, VALID bit, a reserved byte, an 8-byte field.
      if (data[p] === 0x00 && data[p + 1] === 0x0a && p + 12 <= end && (data[p + 2]! & 0x80) !== 0) information = getU64(data, p + 4);
    }
    return { key: data[1]! & 0x0f, asc: data[2]!, ascq: data[3]!, information };
  }
  return null;
}

/** Fixed-format sense data (18 bytes); the information field is set when `information` is given and fits 32 bits. */
export function fixedSense(s: Omit<Sense, 'information'> & { information?: number }): Uint8Array {
  const out = new Uint8Array(18);
  const info = s.information;
  out[0] = info !== undefined && info <= 0xffffffff ? 0xf0 : 0x70;
  out[2] = s.key;
  if (info !== undefined && info <= 0xffffffff) u32(out, 3, info);
  out[7] = 10;
  out[12] = s.asc;
  out[13] = s.ascq;
  return out;
}

/** Descriptor-format sense data with an information descriptor (for LBAs beyond 32 bits). */
export function descriptorSense(s: Omit<Sense, 'information'> & { information: number }): Uint8Array {
  const out = new Uint8Array(20);
  out[0] = 0x72;
  out[1] = s.key;
  out[2] = s.asc;
  out[3] = s.ascq;
  out[7] = 12;
  out[8] = 0x00;
  out[9] = 0x0a;
  out[10] = 0x80;
  u64(out, 12, s.information);
  return out;
}

/** `key/asc/ascq` in the usual hex notation, for messages. */
export function senseText(s: Sense): string {
  const h = (v: number): string => v.toString(16).padStart(2, '0');
  return `sense ${h(s.key)}/${h(s.asc)}/${h(s.ascq)}`;
}
