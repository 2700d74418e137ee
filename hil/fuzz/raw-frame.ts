import { crc32cRange } from '../../firmware/protocol/crc.ts';
import { CRC_BYTES, FRAME_MAGIC, HEADER_BYTES, PROTOCOL_VERSION } from '../../firmware/protocol/frame.ts';
import {
  OFF_CODE, OFF_COUNT, OFF_FLAGS, OFF_HEADER_CRC, OFF_LBA, OFF_LOCK_ID, OFF_LUN, OFF_PAYLOAD_LENGTH, OFF_SEQ, OFF_TAG, OFF_TYPE,
  OFF_VERSION, writeU16, writeU32,
} from '../../firmware/protocol/layout.ts';

/**
 * A frame as bytes on the wire, any of whose fields may be hostile (docs/fuzzing.md 2). The fuzzer
 * writes frames itself, from the layout table, instead of through the firmware's encoder: the
 * encoder asserts on every field a peer could get wrong, and a fuzzer has to be able to write
 * exactly those. u64 slots take a bigint for values past 2^53-1, which a number cannot hold.
 */
export interface RawFrameSpec {
  /** Default FRAME_MAGIC. */
  magic?: number;
  /** Default PROTOCOL_VERSION. */
  version?: number;
  type: number;
  flags: number;
  code: number;
  lun: number;
  seq: U64;
  lba: U64;
  tag: U64;
  lockId: number;
  count: number;
  payload: Uint8Array;
  /** The header's payloadLength (default payload.length): a hostile length says something else. */
  payloadLength?: number;
  /** false: a header CRC that does not match (default true). */
  goodHeaderCrc?: boolean;
  /** false: a frame CRC that does not match (default true). */
  goodFrameCrc?: boolean;
}

export type U64 = number | bigint;

const TWO_32 = 0x1_0000_0000;

/** A u64 slot from a number (at most 2^53-1) or a bigint (any 64-bit value). */
export function writeU64Any(b: Uint8Array, p: number, v: U64): void {
  if (typeof v === 'bigint') {
    writeU32(b, p, Number((v >> 32n) & 0xffff_ffffn));
    writeU32(b, p + 4, Number(v & 0xffff_ffffn));
    return;
  }
  const hi = Math.floor(v / TWO_32);
  writeU32(b, p, hi);
  writeU32(b, p + 4, v - hi * TWO_32);
}

/** The header's 48 bytes (CRC included, good or not as the spec says). */
export function writeHeader(out: Uint8Array, s: RawFrameSpec): number {
  writeU16(out, 0, s.magic ?? FRAME_MAGIC);
  out[OFF_VERSION] = s.version ?? PROTOCOL_VERSION;
  out[OFF_TYPE] = s.type;
  out[OFF_FLAGS] = s.flags;
  out[OFF_CODE] = s.code;
  writeU16(out, OFF_LUN, s.lun);
  writeU64Any(out, OFF_SEQ, s.seq);
  writeU64Any(out, OFF_LBA, s.lba);
  writeU64Any(out, OFF_TAG, s.tag);
  writeU32(out, OFF_LOCK_ID, s.lockId);
  writeU32(out, OFF_COUNT, s.count);
  writeU32(out, OFF_PAYLOAD_LENGTH, s.payloadLength ?? s.payload.length);
  const crc = crc32cRange(out, 0, OFF_HEADER_CRC);
  const headerCrc = s.goodHeaderCrc === false ? (crc ^ 0x5a5a_0001) >>> 0 : crc;
  writeU32(out, OFF_HEADER_CRC, headerCrc);
  return headerCrc;
}

/**
 * The frame's bytes: header, the payload actually carried (whatever the header declares) and the
 * frame CRC over both. With a hostile payloadLength the bytes and the declaration disagree: that
 * is the point.
 */
export function writeRawFrame(s: RawFrameSpec): Uint8Array {
  const total = HEADER_BYTES + s.payload.length + CRC_BYTES;
  const out = new Uint8Array(total);
  const headerCrc = writeHeader(out, s);
  out.set(s.payload, HEADER_BYTES);
  const crcAt = total - CRC_BYTES;
  const crc = crc32cRange(out, OFF_HEADER_CRC, crcAt, headerCrc);
  writeU32(out, crcAt, s.goodFrameCrc === false ? (crc ^ 0x0100_00a5) >>> 0 : crc);
  return out;
}

/** A copy of `s` with some fields replaced. */
export function withFields(s: RawFrameSpec, fields: Partial<RawFrameSpec>): RawFrameSpec {
  return { ...s, ...fields };
}
