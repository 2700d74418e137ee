import { FRAME_MAGIC, FRAME_OVERHEAD_BYTES, PROTOCOL_VERSION } from './frame.ts';

/**
 * Byte-level layout of the 48-byte header (see the table in frame.ts), and the raw fields it
 * holds. Reads and writes are manual big-endian byte operations: on this hot path they beat a
 * DataView (no view object per frame, no byteOffset arithmetic for subarrays).
 */
export const OFF_VERSION = 2;
export const OFF_TYPE = 3;
export const OFF_FLAGS = 4;
export const OFF_CODE = 5;
export const OFF_LUN = 6;
export const OFF_SEQ = 8;
export const OFF_LBA = 16;
export const OFF_TAG = 24;
export const OFF_LOCK_ID = 32;
export const OFF_COUNT = 36;
export const OFF_PAYLOAD_LENGTH = 40;
export const OFF_HEADER_CRC = 44;

/** HELLO payload fields, from the payload's start (layout in frame.ts). */
export const HELLO_OFF_LOCKS_WINDOW = 0;
export const HELLO_OFF_FEATURES = 4;
export const HELLO_OFF_REQUIRED = 8;
export const HELLO_OFF_CONNECTION = 12;
export const HELLO_OFF_CONNECTIONS = 14;
export const HELLO_OFF_PEER_SESSION = 16;
/** Feature `batch`: the largest BATCH payload the sender accepts. */
export const HELLO_OFF_BATCH_BYTES_MAX = 24;
/** Feature `tags`: the sender's source stream number, and the receiver's that `seq` refers to. */
export const HELLO_OFF_STREAM = 28;
export const HELLO_OFF_PEER_STREAM = 32;
/** HEARTBEAT payload: its peerSession, from the payload's start. */
export const HEARTBEAT_OFF_PEER_SESSION = 0;
/** HEARTBEAT payload, feature `tags`: tokens, tokensBack, stream, peerStream. */
export const HEARTBEAT_OFF_TOKENS = 8;
export const HEARTBEAT_OFF_TOKENS_BACK = 16;
export const HEARTBEAT_OFF_STREAM = 24;
export const HEARTBEAT_OFF_PEER_STREAM = 28;

export const MAGIC_HI = FRAME_MAGIC >>> 8;
export const MAGIC_LO = FRAME_MAGIC & 0xff;
export const U32_MAX = 0xffffffff;
const TWO_32 = 0x100000000;

/** The header's fields as numbers, before they are given per-type names. */
export interface RawFields {
  type: number;
  flags: number;
  code: number;
  lun: number;
  seq: number;
  lba: number;
  tag: number;
  lockId: number;
  count: number;
  payloadLength: number;
}

export function emptyRawFields(): RawFields {
  return { type: 0, flags: 0, code: 0, lun: 0, seq: 0, lba: 0, tag: 0, lockId: 0, count: 0, payloadLength: 0 };
}

/** Set every field of `raw` to 0 (a scratch object about to be reused); returns it. */
export function clearRawFields(raw: RawFields): RawFields {
  raw.type = 0;
  raw.flags = 0;
  raw.code = 0;
  raw.lun = 0;
  raw.seq = 0;
  raw.lba = 0;
  raw.tag = 0;
  raw.lockId = 0;
  raw.count = 0;
  raw.payloadLength = 0;
  return raw;
}

export function readU16(b: Uint8Array, p: number): number {
  return (b[p]! << 8) | b[p + 1]!;
}

export function readU32(b: Uint8Array, p: number): number {
  return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
}

/**
 * A u64 as a number. Values above 2^53-1 come back inexact but still above
 * Number.MAX_SAFE_INTEGER (the high word is then >= 2^21), which is all validation needs.
 */
export function readU64(b: Uint8Array, p: number): number {
  return readU32(b, p) * TWO_32 + readU32(b, p + 4);
}

export function writeU16(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 8;
  b[p + 1] = v;
}

export function writeU32(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = v >>> 16;
  b[p + 2] = v >>> 8;
  b[p + 3] = v;
}

/** `v` must be an integer in [0, 2^53-1]; the split into words is then exact. */
export function writeU64(b: Uint8Array, p: number, v: number): void {
  const hi = Math.floor(v / TWO_32);
  writeU32(b, p, hi);
  writeU32(b, p + 4, v - hi * TWO_32);
}

export function readRawFields(b: Uint8Array, p: number, into: RawFields): RawFields {
  into.type = b[p + OFF_TYPE]!;
  into.flags = b[p + OFF_FLAGS]!;
  into.code = b[p + OFF_CODE]!;
  into.lun = readU16(b, p + OFF_LUN);
  into.seq = readU64(b, p + OFF_SEQ);
  into.lba = readU64(b, p + OFF_LBA);
  into.tag = readU64(b, p + OFF_TAG);
  into.lockId = readU32(b, p + OFF_LOCK_ID);
  into.count = readU32(b, p + OFF_COUNT);
  into.payloadLength = readU32(b, p + OFF_PAYLOAD_LENGTH);
  return into;
}

/** Writes bytes 0..43 of a header at offset 0 (everything but the header CRC). */
export function writeRawFields(b: Uint8Array, raw: RawFields): void {
  writeU16(b, 0, FRAME_MAGIC);
  b[OFF_VERSION] = PROTOCOL_VERSION;
  b[OFF_TYPE] = raw.type;
  b[OFF_FLAGS] = raw.flags;
  b[OFF_CODE] = raw.code;
  writeU16(b, OFF_LUN, raw.lun);
  writeU64(b, OFF_SEQ, raw.seq);
  writeU64(b, OFF_LBA, raw.lba);
  writeU64(b, OFF_TAG, raw.tag);
  writeU32(b, OFF_LOCK_ID, raw.lockId);
  writeU32(b, OFF_COUNT, raw.count);
  writeU32(b, OFF_PAYLOAD_LENGTH, raw.payloadLength);
}

/** Total bytes on the wire for a frame whose header declares `payloadLength`. */
export function frameBytesFor(payloadLength: number): number {
  return FRAME_OVERHEAD_BYTES + payloadLength;
}
