import { assert } from '../errors.ts';
import { CRC_BYTES, FRAME_OVERHEAD_BYTES, FrameType, HEADER_BYTES, U64_FIELD_MAX, frameTypeName } from './frame.ts';
import type { Frame } from './frame.ts';
import { rawFieldsOf } from './fields.ts';
import { OFF_HEADER_CRC, U32_MAX, frameBytesFor, writeRawFields, writeU32 } from './layout.ts';
import type { RawFields } from './layout.ts';
import { crc32cRange } from './crc.ts';
import { FrameBytes } from './frame-bytes.ts';
import { fieldLabel, fieldProblem } from './rules.ts';
import type { FieldKey } from './rules.ts';

/** Bytes `encodeFrame(frame)` returns. */
export function encodedLength(frame: Frame): number {
  return FRAME_OVERHEAD_BYTES + (frame.type === FrameType.Write ? frame.data.length : 0);
}

/**
 * Encodes one frame into a fresh buffer of exactly {@link encodedLength} bytes. The frame comes
 * from our own firmware, so an invalid one (a field out of range, not an integer, or against its
 * type's rules in rules.ts) is a programmer error and fails an assert; it never reaches the wire.
 */
export function encodeFrame(frame: Frame): Uint8Array {
  return encodeFrameWith(frame, sharedFrameBytes);
}

/** The frame-buffer slabs of this process (one thread: JavaScript has no shared mutable memory here). */
const sharedFrameBytes = new FrameBytes();

function encodeFrameWith(frame: Frame, frameBytes: FrameBytes): Uint8Array {
  const raw = rawFieldsOf(frame);
  assertWidths(raw);
  const problem = fieldProblem(raw);
  if (problem !== null) {
    assert(false, `cannot encode ${frameTypeName(raw.type)} seq ${raw.seq}: ${problem.field} = ${problem.value} is not allowed; ${problem.allowed}`);
  }
  const total = frameBytesFor(raw.payloadLength);
  const out = frameBytes.take(total);
  writeRawFields(out, raw);
  const headerCrc = crc32cRange(out, 0, OFF_HEADER_CRC);
  writeU32(out, OFF_HEADER_CRC, headerCrc);
  if (frame.type === FrameType.Write) out.set(frame.data, HEADER_BYTES);
  // The frame CRC covers bytes 0..total-5. Bytes 0..43 are already folded into headerCrc, so
  // continue from there instead of hashing the header twice.
  const crcAt = total - CRC_BYTES;
  writeU32(out, crcAt, crc32cRange(out, OFF_HEADER_CRC, crcAt, headerCrc));
  return out;
}

const WIDTHS: ReadonlyArray<readonly [FieldKey | 'lun', number]> = [
  ['flags', 0xff],
  ['code', 0xff],
  ['lun', 0xffff],
  ['seq', U64_FIELD_MAX],
  ['lba', U64_FIELD_MAX],
  ['tag', U64_FIELD_MAX],
  ['lockId', U32_MAX],
  ['count', U32_MAX],
  ['payloadLength', U32_MAX],
];

/** Every field is an integer that fits its slot; otherwise the write would silently wrap. */
function assertWidths(raw: RawFields): void {
  for (const [key, max] of WIDTHS) {
    const value: unknown = raw[key];
    if (Number.isInteger(value) && (value as number) >= 0 && (value as number) <= max) continue;
    const name = key === 'lun' ? 'lun' : fieldLabel(raw.type as FrameType, key);
    assert(false, `cannot encode ${frameTypeName(raw.type)}: ${name} must be an integer from 0 to ${max}, got ${String(value)}`);
  }
}
