import { crc32cRange } from './crc.ts';
import { CRC_BYTES, FrameType, HEADER_BYTES, HEARTBEAT_TAGS_PAYLOAD_BYTES, HELLO_PAYLOAD_BYTES_MAX, PROTOCOL_VERSION } from './frame.ts';
import type { BatchFrame, Frame, ResyncDataFrame, StreamFrame } from './frame.ts';
import { batchSeqProblem, parseSubEntries } from './batch.ts';
import { parseResyncEntries, resyncSpanProblem } from './resync-entries.ts';
import { crcError, fieldError, headerCrcError, tooLargeError, typeError, versionError } from './errors.ts';
import type { FrameError, FrameHeaderInfo } from './errors.ts';
import { frameOf } from './fields.ts';
import {
  MAGIC_HI,
  MAGIC_LO,
  OFF_HEADER_CRC,
  OFF_LUN,
  OFF_PAYLOAD_LENGTH,
  OFF_SEQ,
  OFF_TYPE,
  OFF_VERSION,
  readRawFields,
  readU16,
  readU32,
  readU64,
} from './layout.ts';
import type { RawFields } from './layout.ts';
import { fieldProblem, fieldsAllowed, isKnownFrameType, payloadBytesMaxOf, payloadProblem, subEntryProblem } from './rules.ts';

/**
 * The checks shared by the one-shot and the streaming decoder, in the order docs/design.md 2.3 implies:
 * a header is judged on its own (version, header CRC, type, declared length) before anyone waits
 * for its payload; a complete frame is then judged on its frame CRC and its fields. Both return
 * an error instead of throwing, so the streaming decoder's hot path has no try/catch.
 */

const NO_DATA = new Uint8Array(0);

export function headerInfo(b: Uint8Array, p: number): FrameHeaderInfo {
  return { type: b[p + OFF_TYPE]!, seq: readU64(b, p + OFF_SEQ), lun: readU16(b, p + OFF_LUN) };
}

/**
 * Judges the complete 48-byte header at `p`. The header CRC comes first: the header's layout is
 * the same in every protocol version, so a sound header of another version is a real frame from
 * a peer speaking that version (ML_ERR_FRAME_VERSION, reported with its type and sequence number),
 * while a header that fails its CRC is not a frame start at all. Type and length are looked at only
 * once the header CRC vouches for them.
 */
export function headerError(b: Uint8Array, p: number, payloadBytesMax: number): FrameError | null {
  const carried = readU32(b, p + OFF_HEADER_CRC);
  const computed = crc32cRange(b, p, p + OFF_HEADER_CRC);
  if (carried !== computed) return headerCrcError(carried, computed);
  const version = b[p + OFF_VERSION]!;
  if (version !== PROTOCOL_VERSION) return versionError(version, headerInfo(b, p));
  const type = b[p + OFF_TYPE]!;
  if (!isKnownFrameType(type)) return typeError(headerInfo(b, p));
  const payloadLength = readU32(b, p + OFF_PAYLOAD_LENGTH);
  // payloadBytesMax bounds WRITE data; the small fixed payloads of HELLO and HEARTBEAT are always
  // let through (their rules check the length).
  if (payloadLength > Math.max(payloadBytesMax, controlPayloadBytesMax(type))) return tooLargeError(headerInfo(b, p), payloadLength, payloadBytesMax);
  // More than any frame of its type carries (an ACK declaring a megabyte): waiting for that many
  // bytes would only swallow the frames behind it, so it is judged here, like any oversized payload.
  const typeMax = payloadBytesMaxOf(type);
  if (payloadLength > typeMax) return tooLargeError(headerInfo(b, p), payloadLength, typeMax, 'type');
  return null;
}

function controlPayloadBytesMax(type: number): number {
  return type === FrameType.Hello ? HELLO_PAYLOAD_BYTES_MAX : type === FrameType.Heartbeat ? HEARTBEAT_TAGS_PAYLOAD_BYTES : 0;
}

/** Bytes on the wire of the frame whose (sound) header is at `p`. */
export function declaredFrameBytes(b: Uint8Array, p: number): number {
  return HEADER_BYTES + readU32(b, p + OFF_PAYLOAD_LENGTH) + CRC_BYTES;
}

/**
 * Reads the complete frame of `frameBytes` at `p`, whose header passed {@link headerError}.
 * A WRITE's data is a view into `b` unless `copyPayload` (the caller reuses `b`). `raw` is the
 * caller's scratch object, so the hot path allocates only the frame itself.
 */
export function readFrame(
  b: Uint8Array,
  p: number,
  frameBytes: number,
  raw: RawFields,
  copyPayload: boolean,
): Frame | FrameError {
  const crcAt = p + frameBytes - CRC_BYTES;
  const carried = readU32(b, crcAt);
  // The header CRC already covers bytes 0..43 and was verified: continue from it.
  const computed = crc32cRange(b, p + OFF_HEADER_CRC, crcAt, readU32(b, p + OFF_HEADER_CRC));
  if (carried !== computed) return crcError(headerInfo(b, p), carried, computed);
  readRawFields(b, p, raw);
  // The fast verdict first; the descriptive one only for a frame that is actually wrong.
  const problem = fieldsAllowed(raw) ? null : fieldProblem(raw);
  if (problem !== null) return fieldError(headerInfo(b, p), problem.field, problem.value, problem.allowed);
  const start = p + HEADER_BYTES;
  if (raw.type === FrameType.Hello || raw.type === FrameType.Heartbeat) {
    const payload = b.subarray(start, crcAt);
    const bad = payloadProblem(raw.type, payload, raw.tag);
    if (bad !== null) return fieldError(headerInfo(b, p), bad.field, bad.value, bad.allowed);
    return frameOf(raw, payload);
  }
  if (raw.type === FrameType.Batch) return readBatch(b, p, raw, copyPayload ? b.slice(start, crcAt) : b.subarray(start, crcAt));
  if (raw.type === FrameType.ResyncData) return readResyncData(b, p, raw, b.subarray(start, crcAt));
  if (raw.type !== FrameType.Write) return frameOf(raw, NO_DATA);
  return frameOf(raw, copyPayload ? b.slice(start, crcAt) : b.subarray(start, crcAt));
}

/** Scratch for reading a batch's sub-entries (one thread; reading calls nothing that reads again). */
const batchRaws: RawFields[] = [];
const batchDatas: (Uint8Array | null)[] = [];

/**
 * The entries of a BATCH whose header passed the rules: every one complete, of a stream type, and
 * allowed by its own type's rules exactly as the frame it stands for would be. A WRITE's data is a
 * view into `payload`. One bad entry makes the whole frame an ML_ERR_FRAME_FIELD naming it.
 */
function readBatch(b: Uint8Array, p: number, raw: RawFields, payload: Uint8Array): BatchFrame | FrameError {
  try {
    const bad = batchSeqProblem(raw.seq, raw.count) ?? parseSubEntries(payload, raw.count, raw.seq, batchRaws, batchDatas);
    if (bad !== null) return fieldError(headerInfo(b, p), bad.field, bad.value, bad.allowed);
    const entries: StreamFrame[] = new Array<StreamFrame>(raw.count);
    for (let i = 0; i < raw.count; i++) {
      const sub = batchRaws[i]!;
      sub.lun = raw.lun;
      const problem = subEntryProblem(sub, i);
      if (problem !== null) return fieldError(headerInfo(b, p), problem.field, problem.value, problem.allowed);
      entries[i] = frameOf(sub, batchDatas[i] ?? NO_DATA) as StreamFrame;
    }
    // Tokens back (feature `tags`) only when there are some: a peer without the feature sends 0.
    if (raw.tag !== 0) return { type: FrameType.Batch, lun: raw.lun, seq: raw.seq, flags: raw.flags, entries, tokensBack: raw.tag };
    return { type: FrameType.Batch, lun: raw.lun, seq: raw.seq, flags: raw.flags, entries };
  } finally {
    // The scratch must not keep views of this payload alive.
    batchDatas.length = 0;
  }
}

/**
 * A RESYNC_DATA whose header passed the rules (feature `resync`): its entries lie within the
 * table's total, and the payload holds exactly `count` of them, each allowed (resync-entries.ts).
 * The entries are read into objects of their own, so nothing keeps a view of the payload.
 */
function readResyncData(b: Uint8Array, p: number, raw: RawFields, payload: Uint8Array): ResyncDataFrame | FrameError {
  const span = resyncSpanProblem(raw.lba, raw.count, raw.tag);
  if (span !== null) return fieldError(headerInfo(b, p), span.field, span.value, span.allowed);
  const entries = parseResyncEntries(payload, raw.count);
  if (!Array.isArray(entries)) return fieldError(headerInfo(b, p), entries.field, entries.value, entries.allowed);
  return { type: FrameType.ResyncData, lun: raw.lun, seq: raw.seq, flags: raw.flags, first: raw.lba, total: raw.tag, state: raw.code, entries };
}

/**
 * Index of the first frame candidate in `b[from..end)`: a full magic, or a lone first magic byte
 * at `end - 1` (its second byte may come with the next chunk); `end` if there is none.
 * `indexOf` is native and skips runs of garbage far faster than a JavaScript loop.
 */
export function findMagic(b: Uint8Array, from: number, end: number): number {
  let i = from;
  while (i < end) {
    i = b.indexOf(MAGIC_HI, i);
    if (i < 0 || i >= end) return end;
    if (i + 1 === end || b[i + 1] === MAGIC_LO) return i;
    i += 1;
  }
  return end;
}
