import { assert } from '../errors.ts';
import {
  CRC_BYTES, FRAME_OVERHEAD_BYTES, FrameFlag, FrameType, HEADER_BYTES, HEARTBEAT_PAYLOAD_BYTES, HEARTBEAT_TAGS_PAYLOAD_BYTES, U64_FIELD_MAX,
  frameTypeName,
} from './frame.ts';
import { RESYNC_ENTRY_BYTES } from './frame.ts';
import type { BatchFrame, Frame, ResyncDataFrame, StreamFrame } from './frame.ts';
import { batchPayloadBytes, dataBytesOf, readStreamFrameFields, subEntryBytes, writeSubEntry } from './batch.ts';
import { resyncEntryProblem, resyncSpanProblem, writeResyncEntries } from './resync-entries.ts';
import { helloPayloadBytes, rawFieldsOf } from './fields.ts';
import {
  HEARTBEAT_OFF_PEER_SESSION, HEARTBEAT_OFF_PEER_STREAM, HEARTBEAT_OFF_STREAM, HEARTBEAT_OFF_TOKENS, HEARTBEAT_OFF_TOKENS_BACK,
  HELLO_OFF_BATCH_BYTES_MAX, HELLO_OFF_CONNECTION, HELLO_OFF_CONNECTIONS, HELLO_OFF_FEATURES, HELLO_OFF_LOCKS_WINDOW, HELLO_OFF_PEER_SESSION,
  HELLO_OFF_PEER_STREAM, HELLO_OFF_REQUIRED, HELLO_OFF_STREAM, OFF_HEADER_CRC, U32_MAX, emptyRawFields, frameBytesFor, writeRawFields, writeU16,
  writeU32, writeU64,
} from './layout.ts';
import type { RawFields } from './layout.ts';
import { crc32cRange } from './crc.ts';
import { FrameBytes } from './frame-bytes.ts';
import { controlPayloadProblem, fieldLabel, fieldProblem, fieldsAllowed, subEntryProblem } from './rules.ts';
import type { FieldKey } from './rules.ts';

/** Bytes `encodeFrame(frame)` returns. */
export function encodedLength(frame: Frame): number {
  switch (frame.type) {
    case FrameType.Write:
      return FRAME_OVERHEAD_BYTES + frame.data.length;
    case FrameType.Hello:
      return FRAME_OVERHEAD_BYTES + helloPayloadBytes(frame);
    case FrameType.Heartbeat:
      return FRAME_OVERHEAD_BYTES + (frame.tags === undefined ? HEARTBEAT_PAYLOAD_BYTES : HEARTBEAT_TAGS_PAYLOAD_BYTES);
    case FrameType.Batch:
      return FRAME_OVERHEAD_BYTES + batchPayloadBytes(frame.entries);
    case FrameType.ResyncData:
      return FRAME_OVERHEAD_BYTES + frame.entries.length * RESYNC_ENTRY_BYTES;
    default:
      return FRAME_OVERHEAD_BYTES;
  }
}

/**
 * Encodes one frame into a fresh buffer of exactly {@link encodedLength} bytes. The frame comes
 * from our own firmware, so an invalid one (a field out of range, not an integer, or against its
 * type's rules in rules.ts) is a programmer error and fails an assert; it never reaches the wire.
 */
export function encodeFrame(frame: Frame): Uint8Array {
  return encodeFrameWith(frame, sharedFrameBytes);
}

/**
 * Scratch state of this process's encoder: frame-buffer slabs, and the raw fields of the frame
 * being encoded (reused: encoding is synchronous and calls nothing that could encode again).
 * One thread, so nothing here is shared with anyone else.
 */
const sharedFrameBytes = new FrameBytes();
const scratchRaw = emptyRawFields();
const scratchEntry = emptyRawFields();

/**
 * A BATCH's entries must be what the frames they stand for would be (rules.ts), consecutive from
 * the batch's seq, on its LUN, with Retransmit left to the batch. A programmer error otherwise.
 */
function assertBatchEntries(frame: BatchFrame): void {
  frame.entries.forEach((e: StreamFrame, i) => {
    const raw = rawFieldsOf(e, scratchEntry);
    if (raw.type !== FrameType.Lock && raw.type !== FrameType.Write && raw.type !== FrameType.Unlock) {
      assert(false, `cannot encode BATCH seq ${frame.seq}: entry ${i} is a ${frameTypeName(raw.type)}, not a stream frame`);
    }
    if (raw.seq !== frame.seq + i || raw.lun !== frame.lun) {
      assert(false, `cannot encode BATCH seq ${frame.seq} lun ${frame.lun}: entry ${i} has seq ${raw.seq} lun ${raw.lun}; entries are consecutive, on the batch's LUN`);
    }
    if (!fitsSlots(raw)) assertEncodable(raw);
    const problem = subEntryProblem(raw, i);
    if (problem !== null) assert(false, `cannot encode BATCH seq ${frame.seq}: ${problem.field} = ${problem.value} is not allowed; ${problem.allowed}`);
  });
}

/**
 * Packs consecutive standalone stream frames (as {@link encodeFrame} made them, on one LUN) into
 * one BATCH with `flags` (Retransmit or 0): each frame's fields and data are copied into its
 * sub-entry, and the batch gets its own CRCs. What the source's transmitter sends when several
 * entries of its rollback log are ready at once (docs/implied-locks.md). `tokensBack` (feature
 * `tags`, 0: none) returns tokens of the stream through that seq, below the batch's first entry.
 */
export function encodeBatch(frames: readonly Uint8Array[], flags: number, tokensBack = 0): Uint8Array {
  assert(frames.length >= 1 && (flags & ~FrameFlag.Retransmit) === 0, 'encodeBatch: at least one frame, and only the Retransmit flag');
  const first = readStreamFrameFields(frames[0]!, scratchEntry);
  const raw = scratchRaw;
  raw.type = FrameType.Batch;
  raw.flags = flags;
  raw.code = 0;
  raw.lun = (frames[0]![6]! << 8) | frames[0]![7]!;
  raw.seq = first.seq;
  raw.lba = 0;
  raw.tag = tokensBack;
  raw.lockId = 0;
  raw.count = frames.length;
  let payload = 0;
  for (const f of frames) payload += subEntryBytes(f[3]!, dataBytesOf(f));
  raw.payloadLength = payload;
  if (!fieldsAllowed(raw)) assertEncodable(raw);
  const total = frameBytesFor(payload);
  const out = sharedFrameBytes.take(total);
  writeRawFields(out, raw);
  const headerCrc = crc32cRange(out, 0, OFF_HEADER_CRC);
  writeU32(out, OFF_HEADER_CRC, headerCrc);
  let at = HEADER_BYTES;
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i]!;
    const e = readStreamFrameFields(f, scratchEntry);
    if (e.seq !== raw.seq + i || ((f[6]! << 8) | f[7]!) !== raw.lun) assert(false, `encodeBatch: frame ${i} is not entry seq ${raw.seq + i} of LUN ${raw.lun}`);
    at = writeSubEntry(out, at, e, e.type === FrameType.Write ? f.subarray(HEADER_BYTES, HEADER_BYTES + e.payloadLength) : null);
  }
  const crcAt = total - CRC_BYTES;
  writeU32(out, crcAt, crc32cRange(out, OFF_HEADER_CRC, crcAt, headerCrc));
  return out;
}

/** A RESYNC_DATA's entries follow the entry rules and lie within its total: a programmer error otherwise. */
function assertResyncEntries(frame: ResyncDataFrame): void {
  const bad = resyncSpanProblem(frame.first, frame.entries.length, frame.total) ?? frame.entries.reduce<ReturnType<typeof resyncEntryProblem>>(
    (found, e, i) => found ?? resyncEntryProblem(e, i), null);
  if (bad !== null) assert(false, `cannot encode RESYNC_DATA exchange ${frame.seq}: ${bad.field} = ${bad.value} is not allowed; ${bad.allowed}`);
}

function encodeFrameWith(frame: Frame, frameBytes: FrameBytes): Uint8Array {
  const raw = rawFieldsOf(frame, scratchRaw);
  if (frame.type === FrameType.Hello || frame.type === FrameType.Heartbeat) {
    const bad = controlPayloadProblem(frame.type, frame.type === FrameType.Heartbeat ? { ...frame, confirmedSeq: frame.confirmedSeq } : frame);
    if (bad !== null) assert(false, `cannot encode ${frameTypeName(frame.type)}: ${bad.field} = ${bad.value} is not allowed; ${bad.allowed}`);
  }
  if (frame.type === FrameType.Batch) assertBatchEntries(frame);
  if (frame.type === FrameType.ResyncData) assertResyncEntries(frame);
  // The cheap checks pass for every frame our firmware builds; only when one fails are the
  // descriptive checks run, to say what is wrong. Both read the same limits and rules.
  if (!fitsSlots(raw) || !fieldsAllowed(raw)) assertEncodable(raw);
  const total = frameBytesFor(raw.payloadLength);
  const out = frameBytes.take(total);
  writeRawFields(out, raw);
  const headerCrc = crc32cRange(out, 0, OFF_HEADER_CRC);
  writeU32(out, OFF_HEADER_CRC, headerCrc);
  if (frame.type === FrameType.Write) out.set(frame.data, HEADER_BYTES);
  else if (frame.type === FrameType.Hello) {
    const p = HEADER_BYTES;
    writeU32(out, p + HELLO_OFF_LOCKS_WINDOW, frame.locksWindow);
    writeU32(out, p + HELLO_OFF_FEATURES, frame.features);
    writeU32(out, p + HELLO_OFF_REQUIRED, frame.requiredFeatures);
    writeU16(out, p + HELLO_OFF_CONNECTION, frame.connection);
    writeU16(out, p + HELLO_OFF_CONNECTIONS, frame.connections);
    writeU64(out, p + HELLO_OFF_PEER_SESSION, frame.peerSession);
    if (raw.payloadLength >= HELLO_OFF_BATCH_BYTES_MAX + 4) writeU32(out, p + HELLO_OFF_BATCH_BYTES_MAX, frame.batchBytesMax ?? 0);
    if (raw.payloadLength >= HELLO_OFF_PEER_STREAM + 4) {
      writeU32(out, p + HELLO_OFF_STREAM, frame.stream ?? 0);
      writeU32(out, p + HELLO_OFF_PEER_STREAM, frame.peerStream ?? 0);
    }
  } else if (frame.type === FrameType.Heartbeat) {
    writeU64(out, HEADER_BYTES + HEARTBEAT_OFF_PEER_SESSION, frame.peerSession);
    const tags = frame.tags;
    if (tags !== undefined) {
      writeU64(out, HEADER_BYTES + HEARTBEAT_OFF_TOKENS, tags.tokens);
      writeU64(out, HEADER_BYTES + HEARTBEAT_OFF_TOKENS_BACK, tags.tokensBack);
      writeU32(out, HEADER_BYTES + HEARTBEAT_OFF_STREAM, tags.stream);
      writeU32(out, HEADER_BYTES + HEARTBEAT_OFF_PEER_STREAM, tags.peerStream);
    }
  } else if (frame.type === FrameType.Batch) {
    let at = HEADER_BYTES;
    for (const e of frame.entries) at = writeSubEntry(out, at, rawFieldsOf(e, scratchEntry), e.type === FrameType.Write ? e.data : null);
  } else if (frame.type === FrameType.ResyncData) writeResyncEntries(out, HEADER_BYTES, frame.entries);
  // The frame CRC covers bytes 0..total-5. Bytes 0..43 are already folded into headerCrc, so
  // continue from there instead of hashing the header twice.
  const crcAt = total - CRC_BYTES;
  writeU32(out, crcAt, crc32cRange(out, OFF_HEADER_CRC, crcAt, headerCrc));
  return out;
}

/** The largest value each header field's slot holds (layout in frame.ts). */
const SLOT_MAX: Readonly<Record<FieldKey | 'lun', number>> = {
  flags: 0xff,
  code: 0xff,
  lun: 0xffff,
  seq: U64_FIELD_MAX,
  lba: U64_FIELD_MAX,
  tag: U64_FIELD_MAX,
  lockId: U32_MAX,
  count: U32_MAX,
  payloadLength: U32_MAX,
};

function fits(value: number, max: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= max;
}

/** Every field is an integer that fits its slot (written out field by field: this runs per frame). */
function fitsSlots(raw: RawFields): boolean {
  return (
    fits(raw.flags, SLOT_MAX.flags) && fits(raw.code, SLOT_MAX.code) && fits(raw.lun, SLOT_MAX.lun) &&
    fits(raw.seq, SLOT_MAX.seq) && fits(raw.lba, SLOT_MAX.lba) && fits(raw.tag, SLOT_MAX.tag) &&
    fits(raw.lockId, SLOT_MAX.lockId) && fits(raw.count, SLOT_MAX.count) && fits(raw.payloadLength, SLOT_MAX.payloadLength)
  );
}

/** Fails an assert naming the first field that does not fit its slot or its type's rules. */
function assertEncodable(raw: RawFields): void {
  assertWidths(raw);
  const problem = fieldProblem(raw);
  if (problem !== null) {
    assert(false, `cannot encode ${frameTypeName(raw.type)} seq ${raw.seq}: ${problem.field} = ${problem.value} is not allowed; ${problem.allowed}`);
  }
}

/** Every field is an integer that fits its slot; otherwise the write would silently wrap. */
function assertWidths(raw: RawFields): void {
  for (const [key, max] of Object.entries(SLOT_MAX) as [FieldKey | 'lun', number][]) {
    const value: unknown = raw[key];
    if (fits(value as number, max)) continue;
    const name = key === 'lun' ? 'lun' : fieldLabel(raw.type as FrameType, key);
    assert(false, `cannot encode ${frameTypeName(raw.type)}: ${name} must be an integer from 0 to ${max}, got ${String(value)}`);
  }
}
