import { MirrorlabError, assert } from '../../../firmware/errors.ts';
import { crc32cRange } from '../../../firmware/protocol/crc.ts';
import { CRC_BYTES, FRAME_MAGIC, HEADER_BYTES } from '../../../firmware/protocol/frame.ts';
import {
  OFF_CODE,
  OFF_COUNT,
  OFF_FLAGS,
  OFF_HEADER_CRC,
  OFF_LBA,
  OFF_LOCK_ID,
  OFF_LUN,
  OFF_PAYLOAD_LENGTH,
  OFF_SEQ,
  OFF_TAG,
  OFF_TYPE,
  OFF_VERSION,
  readU16,
  readU32,
  readU64,
  writeU16,
  writeU32,
  writeU64,
} from '../../../firmware/protocol/layout.ts';
import { findMagic } from '../../../firmware/protocol/parse.ts';

/**
 * The serial block protocol's frames (docs/usb-serial-targets.md; the README has the table for
 * board authors). They are framed exactly like the mirror protocol's (firmware/protocol): the
 * 48-byte header with the magic "ML", its own CRC32C over bytes 0..43, the payload, and a CRC32C
 * over header and payload; the header's slots keep their offsets. Only the version byte and the
 * type numbers are the block protocol's own, so a block frame that reaches a mirror decoder (or
 * the reverse) is rejected as an unknown type or version, never misread:
 *
 *     slot      IDENTIFY  READ     WRITE    FLUSH    REPLY                     NAK
 *     type      0x40      0x41     0x42     0x43     0x50                      0x51
 *     seq       0         request number (1, 2, ...)  the request answered      the request expected next
 *     tag       session   session  session  session  session                   session
 *     lba       -         first    first    -        a medium error's LBA      -
 *     count     -         sectors  sectors  -        -                         -
 *     code      -         -        -        -        status (BlockStatus)      reason (NakReason)
 *     payload   -         -        data     -        READ: data; IDENTIFY: geometry
 *
 * Unused slots (and `flags`, `lun`, `lockId`) are 0.
 */
export const BLOCK_PROTOCOL_VERSION = 1;

export const BlockFrameType = {
  Identify: 0x40,
  Read: 0x41,
  Write: 0x42,
  Flush: 0x43,
  Reply: 0x50,
  Nak: 0x51,
} as const;
export type BlockFrameType = (typeof BlockFrameType)[keyof typeof BlockFrameType];

export const BlockStatus = {
  Ok: 0,
  /** A medium error at `lba`: that sector cannot be read (or written). */
  Media: 1,
  /** The device behind the board failed. */
  Failed: 2,
  /** The request reached outside the device. */
  Range: 3,
  /** The request made no sense (bad sizes, a count over the transfer limit). */
  BadRequest: 4,
  /** The session is not the board's current one (it restarted): IDENTIFY again. */
  Session: 5,
} as const;
export type BlockStatus = (typeof BlockStatus)[keyof typeof BlockStatus];

export const BlockNakReason = { Corrupt: 1, Gap: 2 } as const;

export interface BlockFrame {
  type: BlockFrameType;
  seq: number;
  session: number;
  lba: number;
  count: number;
  code: number;
  payload: Uint8Array;
}

/** IDENTIFY's reply payload: what the board serves. */
export interface BlockGeometry {
  sectorSize: number;
  sectorCount: number;
  /** Largest READ or WRITE payload the board takes in one frame (bytes, a multiple of the sector size). */
  transferBytesMax: number;
  /** Requests the host may have outstanding at once. */
  requestsInFlightMax: number;
  /** What the board calls its volume (at most 64 bytes of UTF-8). */
  name: string;
}

export const IDENTIFY_PAYLOAD_BYTES = 28;
export const DEVICE_NAME_BYTES_MAX = 64;
/** Largest payload any frame may carry: a READ or WRITE of 1 MiB (a board may take less: its IDENTIFY says). */
export const BLOCK_PAYLOAD_BYTES_MAX = 1024 * 1024;

const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(BlockFrameType));
const MAGIC_HI = FRAME_MAGIC >>> 8;

/** A frame from our own code with a bad field is a programmer error: it never reaches the line. */
export function encodeBlockFrame(f: BlockFrame): Uint8Array {
  assert(KNOWN_TYPES.has(f.type), `unknown block frame type ${f.type}`);
  const U53 = Number.MAX_SAFE_INTEGER;
  const fields = [['seq', f.seq, U53], ['session', f.session, U53], ['lba', f.lba, U53], ['count', f.count, 0xffffffff], ['code', f.code, 0xff]] as const;
  for (const [name, v, max] of fields) {
    assert(Number.isInteger(v) && v >= 0 && v <= max, `block frame ${name} must be an integer from 0 to ${max}, got ${v}`);
  }
  assert(f.payload.length <= BLOCK_PAYLOAD_BYTES_MAX, `block frame payload of ${f.payload.length} bytes exceeds ${BLOCK_PAYLOAD_BYTES_MAX}`);
  const total = HEADER_BYTES + f.payload.length + CRC_BYTES;
  const out = new Uint8Array(total);
  writeU16(out, 0, FRAME_MAGIC);
  out[OFF_VERSION] = BLOCK_PROTOCOL_VERSION;
  out[OFF_TYPE] = f.type;
  out[OFF_CODE] = f.code;
  writeU64(out, OFF_SEQ, f.seq);
  writeU64(out, OFF_LBA, f.lba);
  writeU64(out, OFF_TAG, f.session);
  writeU32(out, OFF_COUNT, f.count);
  writeU32(out, OFF_PAYLOAD_LENGTH, f.payload.length);
  const headerCrc = crc32cRange(out, 0, OFF_HEADER_CRC);
  writeU32(out, OFF_HEADER_CRC, headerCrc);
  out.set(f.payload, HEADER_BYTES);
  writeU32(out, total - CRC_BYTES, crc32cRange(out, OFF_HEADER_CRC, total - CRC_BYTES, headerCrc));
  return out;
}

export function encodeGeometry(g: BlockGeometry): Uint8Array {
  const name = new TextEncoder().encode(g.name).subarray(0, DEVICE_NAME_BYTES_MAX);
  const out = new Uint8Array(IDENTIFY_PAYLOAD_BYTES + name.length);
  writeU32(out, 0, BLOCK_PROTOCOL_VERSION);
  writeU32(out, 4, g.sectorSize);
  writeU64(out, 8, g.sectorCount);
  writeU32(out, 16, g.transferBytesMax);
  writeU32(out, 20, g.requestsInFlightMax);
  writeU32(out, 24, name.length);
  out.set(name, IDENTIFY_PAYLOAD_BYTES);
  return out;
}

/** A board's IDENTIFY reply, checked (it is input from a wire): the geometry, or what is wrong with it. */
export function decodeGeometry(payload: Uint8Array): BlockGeometry | string {
  if (payload.length < IDENTIFY_PAYLOAD_BYTES) return `the IDENTIFY reply carries ${payload.length} bytes, expected at least ${IDENTIFY_PAYLOAD_BYTES}`;
  const revision = readU32(payload, 0);
  if (revision !== BLOCK_PROTOCOL_VERSION) return `the board speaks block protocol revision ${revision}; this host speaks ${BLOCK_PROTOCOL_VERSION}`;
  const sectorSize = readU32(payload, 4);
  const sectorCount = readU64(payload, 8);
  const transferBytesMax = readU32(payload, 16);
  const requestsInFlightMax = readU32(payload, 20);
  const nameLength = readU32(payload, 24);
  if (sectorSize < 512 || sectorSize > 65_536 || (sectorSize & (sectorSize - 1)) !== 0) return `sector size ${sectorSize} is not a power of two from 512 to 65536`;
  if (!Number.isSafeInteger(sectorCount) || sectorCount < 1 || !Number.isSafeInteger(sectorCount * sectorSize)) return `sector count ${sectorCount} is not 1 to 2^53 bytes' worth`;
  if (transferBytesMax < sectorSize || transferBytesMax > BLOCK_PAYLOAD_BYTES_MAX || transferBytesMax % sectorSize !== 0) {
    return `transfer limit ${transferBytesMax} is not a multiple of the sector size from ${sectorSize} to ${BLOCK_PAYLOAD_BYTES_MAX}`;
  }
  if (requestsInFlightMax < 1 || requestsInFlightMax > 256) return `requests in flight ${requestsInFlightMax} is not 1 to 256`;
  if (nameLength > DEVICE_NAME_BYTES_MAX || IDENTIFY_PAYLOAD_BYTES + nameLength !== payload.length) return `the name length ${nameLength} does not match the ${payload.length}-byte payload`;
  const name = new TextDecoder('utf-8', { fatal: false }).decode(payload.subarray(IDENTIFY_PAYLOAD_BYTES)).replace(/[^\x20-\x7e]/g, '?');
  return { sectorSize, sectorCount, transferBytesMax, requestsInFlightMax, name };
}

export type BlockFrameErrorCode =
  | 'ML_ERR_BLOCK_FRAME_GARBAGE'
  | 'ML_ERR_BLOCK_FRAME_HEADER'
  | 'ML_ERR_BLOCK_FRAME_TYPE'
  | 'ML_ERR_BLOCK_FRAME_TOO_LARGE'
  | 'ML_ERR_BLOCK_FRAME_CRC'
  | 'ML_ERR_BLOCK_FRAME_FIELD';

/** Bytes off the line that are not a good block frame. `header` is set when the header CRC vouched for it. */
export class BlockFrameError extends MirrorlabError {
  declare readonly code: BlockFrameErrorCode;
  constructor(code: BlockFrameErrorCode, message: string, readonly header?: { type: number; seq: number; session: number }) {
    super(code, message);
  }
}

export interface BlockFrameDecoderOptions {
  /** Largest payload accepted (bytes); longer frames are skipped unread. Default {@link BLOCK_PAYLOAD_BYTES_MAX}. */
  payloadBytesMax?: number;
  onFrame(frame: BlockFrame): void;
  onError(error: BlockFrameError): void;
}

/**
 * A streaming decoder for block frames: bytes split or coalesced anywhere in, frames and typed
 * errors out, never more than one frame buffered. It resynchronises the way the mirror decoder
 * does (docs/design.md 2.3): garbage and a header that fails its CRC cost one byte each and a
 * rescan for the magic; a frame whose header is sound but whose type, size or CRC is wrong is
 * dropped whole (its header's length is trusted), so payload bytes are never rescanned for frames.
 */
export class BlockFrameDecoder {
  readonly payloadBytesMax: number;
  private buf: Uint8Array;
  private start = 0;
  private end = 0;
  private skipRemaining = 0;
  private garbage = 0;
  private decoded = 0;
  private errors = 0;

  constructor(private readonly options: BlockFrameDecoderOptions) {
    this.payloadBytesMax = options.payloadBytesMax ?? BLOCK_PAYLOAD_BYTES_MAX;
    assert(Number.isInteger(this.payloadBytesMax) && this.payloadBytesMax >= IDENTIFY_PAYLOAD_BYTES + DEVICE_NAME_BYTES_MAX && this.payloadBytesMax <= BLOCK_PAYLOAD_BYTES_MAX,
      'payloadBytesMax must hold at least an IDENTIFY reply and at most BLOCK_PAYLOAD_BYTES_MAX');
    // Never more than one largest frame, not even to start with (a small payloadBytesMax means less).
    this.buf = new Uint8Array(Math.min(4096, HEADER_BYTES + this.payloadBytesMax + CRC_BYTES));
  }

  get framesDecoded(): number {
    return this.decoded;
  }

  get errorCount(): number {
    return this.errors;
  }

  /** Bytes held while waiting for the rest of a frame (at most one frame's worth). */
  get bufferedBytes(): number {
    return this.end - this.start;
  }

  push(chunk: Uint8Array): void {
    let from = 0;
    if (this.skipRemaining > 0) {
      from = Math.min(chunk.length, this.skipRemaining);
      this.skipRemaining -= from;
    }
    for (let at = from; at < chunk.length; ) {
      const room = this.reserve(chunk.length - at);
      this.buf.set(chunk.subarray(at, at + room), this.end);
      this.end += room;
      at += room;
      this.scan();
      if (this.skipRemaining > 0 && at < chunk.length) {
        const n = Math.min(chunk.length - at, this.skipRemaining);
        this.skipRemaining -= n;
        at += n;
      }
    }
  }

  /** Drops whatever is buffered (the line went quiet mid-frame: what follows is a new frame). */
  reset(): void {
    if (this.end > this.start) this.garbage += this.end - this.start;
    this.start = this.end = 0;
    this.skipRemaining = 0;
    this.reportGarbage();
  }

  /** Room for up to `want` more bytes, compacting and growing the buffer up to one largest frame. */
  private reserve(want: number): number {
    const cap = HEADER_BYTES + this.payloadBytesMax + CRC_BYTES;
    if (this.start > 0 && this.end + want > this.buf.length) {
      this.buf.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    if (this.end + want > this.buf.length && this.buf.length < cap) {
      const grown = new Uint8Array(Math.min(cap, Math.max(this.buf.length * 2, this.end + want)));
      grown.set(this.buf.subarray(0, this.end));
      this.buf = grown;
    }
    return Math.min(want, this.buf.length - this.end);
  }

  private scan(): void {
    const b = this.buf;
    while (this.end > this.start) {
      const at = findMagic(b, this.start, this.end);
      if (at > this.start) {
        this.garbage += at - this.start;
        this.start = at;
        continue;
      }
      if (this.end - at < 2 && b[at] === MAGIC_HI) return; // a lone first magic byte: wait for the next
      if (this.end - at < HEADER_BYTES) return;
      const headerCrc = readU32(b, at + OFF_HEADER_CRC);
      if (b[at + OFF_VERSION] !== BLOCK_PROTOCOL_VERSION || crc32cRange(b, at, at + OFF_HEADER_CRC) !== headerCrc) {
        this.garbage += 1;
        this.start = at + 1;
        continue;
      }
      this.reportGarbage();
      const header = { type: b[at + OFF_TYPE]!, seq: readU64(b, at + OFF_SEQ), session: readU64(b, at + OFF_TAG) };
      const payloadLength = readU32(b, at + OFF_PAYLOAD_LENGTH);
      const total = HEADER_BYTES + payloadLength + CRC_BYTES;
      if (!KNOWN_TYPES.has(header.type) || payloadLength > this.payloadBytesMax) {
        const problem = !KNOWN_TYPES.has(header.type)
          ? new BlockFrameError('ML_ERR_BLOCK_FRAME_TYPE', `unknown block frame type 0x${header.type.toString(16)} (seq ${header.seq}); known: 0x40-0x43, 0x50, 0x51`, header)
          : new BlockFrameError('ML_ERR_BLOCK_FRAME_TOO_LARGE', `a block frame declares ${payloadLength} payload bytes; at most ${this.payloadBytesMax} are accepted`, header);
        this.drop(at, total, problem);
        continue;
      }
      if (this.end - at < total) return;
      const crcAt = at + total - CRC_BYTES;
      if (crc32cRange(b, at + OFF_HEADER_CRC, crcAt, headerCrc) !== readU32(b, crcAt)) {
        const what = `block frame type 0x${header.type.toString(16)} seq ${header.seq}`;
        this.drop(at, total, new BlockFrameError('ML_ERR_BLOCK_FRAME_CRC', `${what}: frame CRC32C mismatch; the frame was dropped`, header));
        continue;
      }
      this.start = at + total;
      const problem = fieldProblem(b, at);
      if (problem !== null) {
        this.fail(new BlockFrameError('ML_ERR_BLOCK_FRAME_FIELD', `block frame type 0x${header.type.toString(16)} seq ${header.seq}: ${problem}`, header));
        continue;
      }
      this.decoded++;
      this.options.onFrame({
        type: header.type as BlockFrameType, seq: header.seq, session: header.session, lba: readU64(b, at + OFF_LBA),
        count: readU32(b, at + OFF_COUNT), code: b[at + OFF_CODE]!, payload: b.slice(at + HEADER_BYTES, crcAt),
      });
    }
  }

  /** Drops a frame whose header is sound: what is buffered of it now, the rest as it streams past. */
  private drop(at: number, total: number, error: BlockFrameError): void {
    const here = Math.min(total, this.end - at);
    this.start = at + here;
    this.skipRemaining = total - here;
    this.fail(error);
  }

  private reportGarbage(): void {
    if (this.garbage === 0) return;
    const n = this.garbage;
    this.garbage = 0;
    const starts = `a frame starts with "ML", version ${BLOCK_PROTOCOL_VERSION}, and a sound header CRC`;
    this.fail(new BlockFrameError('ML_ERR_BLOCK_FRAME_GARBAGE', `skipped ${n} byte${n === 1 ? '' : 's'} that did not start a block frame (${starts})`));
  }

  private fail(error: BlockFrameError): void {
    this.errors++;
    this.options.onError(error);
  }
}

/** The fields a sound frame must have right for its type (flags, lun and lockId are always 0; u64 slots at most 2^53-1). */
function fieldProblem(b: Uint8Array, at: number): string | null {
  if (b[at + OFF_FLAGS] !== 0) return `flags = ${b[at + OFF_FLAGS]}; must be 0`;
  if (readU16(b, at + OFF_LUN) !== 0) return 'lun must be 0';
  if (readU32(b, at + OFF_LOCK_ID) !== 0) return 'the lockId slot must be 0';
  for (const [name, off] of [['seq', OFF_SEQ], ['lba', OFF_LBA], ['session', OFF_TAG]] as const) {
    if (readU64(b, at + off) > Number.MAX_SAFE_INTEGER) return `${name} exceeds 2^53-1`;
  }
  const type = b[at + OFF_TYPE]!;
  const payload = readU32(b, at + OFF_PAYLOAD_LENGTH);
  const count = readU32(b, at + OFF_COUNT);
  if ((type === BlockFrameType.Read || type === BlockFrameType.Write) && count === 0) return 'count must be at least 1 sector';
  if (type === BlockFrameType.Write && payload === 0) return 'a WRITE carries its data';
  if (type !== BlockFrameType.Write && type !== BlockFrameType.Reply && payload !== 0) return `payloadLength = ${payload}; this type carries none`;
  if (type !== BlockFrameType.Read && type !== BlockFrameType.Write && count !== 0) return `count = ${count}; this type carries none`;
  return null;
}
