import { crc32c } from '@node-rs/crc32';
import { FrameType, HEADER_BYTES, type Frame } from '../../firmware/protocol/frame.ts';
import { FrameError, magicError, truncatedError } from '../../firmware/protocol/errors.ts';
import { emptyRawFields, MAGIC_HI, MAGIC_LO } from '../../firmware/protocol/layout.ts';
import { declaredFrameBytes, headerError, readFrame } from '../../firmware/protocol/parse.ts';

/**
 * What the streaming decoder must say about a whole byte stream, worked out with the stream in one
 * piece and no state to carry between chunks (docs/fuzzing.md 3). It uses the decoder's own
 * judgements of one header and one frame (parse.ts: the one-shot decoder and the field rules are
 * checked against the generator separately); what it checks is the streaming: reassembly across
 * any cut, resynchronisation after garbage, dropping a rejected frame whole as it streams past,
 * and what end() reports. The rules, from docs/protocol.md and the decoder's comment:
 *
 * - bytes that cannot start a frame are garbage; a run of them is one ML_ERR_FRAME_MAGIC, reported
 *   when a full magic ends it, or at the end of the stream (a lone first magic byte at the very
 *   end is garbage too);
 * - a header that fails its CRC costs one byte;
 * - a sound header of another version, an unknown type or an oversized payload drops the whole
 *   declared frame, however far it reaches (past the end of the stream: nothing more is said);
 * - a sound header whose frame is not all there at the end is ML_ERR_FRAME_TRUNCATED; so is a
 *   full magic with less than a header behind it;
 * - a complete frame yields its frame, or its CRC or field error, and the scan goes on after it.
 */
export function referenceDecode(stream: Uint8Array, payloadBytesMax: number): DecodeEvent[] {
  const events: DecodeEvent[] = [];
  const n = stream.length;
  let garbage = 0;
  const flush = (): void => {
    if (garbage > 0) events.push(errorEvent(magicError(garbage)));
    garbage = 0;
  };
  let p = 0;
  while (p < n) {
    if (stream[p] !== MAGIC_HI || p + 1 === n || stream[p + 1] !== MAGIC_LO) {
      garbage++;
      p++;
      continue;
    }
    flush();
    if (n - p < HEADER_BYTES) {
      events.push(errorEvent(truncatedError(n - p, HEADER_BYTES)));
      break;
    }
    const bad = headerError(stream, p, payloadBytesMax);
    if (bad !== null) {
      events.push(errorEvent(bad));
      p += bad.code === 'ML_ERR_FRAME_HEADER_CRC' ? 1 : declaredFrameBytes(stream, p);
      continue;
    }
    const frameBytes = declaredFrameBytes(stream, p);
    if (n - p < frameBytes) {
      events.push(errorEvent(truncatedError(n - p, frameBytes)));
      break;
    }
    const result = readFrame(stream, p, frameBytes, emptyRawFields(), true);
    events.push(result instanceof FrameError ? errorEvent(result) : frameEvent(result));
    p += frameBytes;
  }
  flush();
  return events;
}

/** A decoder's output, made comparable: a frame by its fields (data by length and CRC32C), an error by code and message. */
export type DecodeEvent = string;

export function frameEvent(f: Frame): DecodeEvent {
  if (f.type === FrameType.Write) {
    const { data, ...rest } = f;
    return `frame ${JSON.stringify(rest)} data ${data.length}:${crc32c(data)}`;
  }
  return `frame ${JSON.stringify(f)}`;
}

export function errorEvent(e: FrameError): DecodeEvent {
  return `error ${e.code} ${e.message}`;
}
