import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FRAME_ERROR_CODES,
  FRAME_TYPE_NAMES,
  FrameError,
  FrameType,
  decodeFrame,
  encodeFrame,
  encodedLength,
} from '../../../firmware/protocol/index.ts';
import { concat, frameArb, recorder, sealedHeader, split, wireFrame } from './helpers.ts';

const cuts = fc.array(fc.nat(), { maxLength: 12 });

/** Bytes that look like frames without being frames: random bytes, bare magics, unsealed headers. */
const garbageArb = fc
  .array(
    fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 80 }),
      fc.constant(new Uint8Array([0x4d, 0x4c])),
      fc.constant(new Uint8Array([0x4d])),
      fc.uint8Array({ minLength: 46, maxLength: 46 }).map((rest) => concat([new Uint8Array([0x4d, 0x4c]), rest])),
      fc.uint8Array({ minLength: 46, maxLength: 46 }).map((rest) => concat([new Uint8Array([0x4d, 0x4c, 1]), rest.subarray(1)])),
    ),
    { minLength: 1, maxLength: 6 },
  )
  .map(concat);

type Edit = { kind: 'insert' | 'delete' | 'overwrite'; at: number; bytes: Uint8Array };
const editArb: fc.Arbitrary<Edit> = fc.record({
  kind: fc.constantFrom('insert' as const, 'delete' as const, 'overwrite' as const),
  at: fc.nat(),
  bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
});

function applyEdit(stream: Uint8Array, e: Edit): Uint8Array {
  const at = e.at % (stream.length + 1);
  if (e.kind === 'insert') return concat([stream.subarray(0, at), e.bytes, stream.subarray(at)]);
  if (e.kind === 'delete') return concat([stream.subarray(0, at), stream.subarray(at + e.bytes.length)]);
  const out = stream.slice();
  out.set(e.bytes.subarray(0, Math.max(0, out.length - at)), at);
  return out;
}

/** Pieces of a hostile stream: valid frames, garbage, and sealed headers declaring anything. */
const hostilePieceArb = fc.oneof(
  frameArb(120).map(encodeFrame),
  garbageArb,
  fc
    .record({ type: fc.integer({ min: 0, max: 255 }), payloadLength: fc.oneof(fc.nat(600), fc.constant(0xffffffff), fc.nat()) })
    .map((h) => sealedHeader({ ...h, seq: 1, lockId: 1 })),
  frameArb(120).chain((f) => fc.nat(encodedLength(f) - 1).map((n) => encodeFrame(f).subarray(0, n))),
);

describe('wire codec properties', () => {
  it('(a) round trip: every valid frame encodes and decodes to itself', () => {
    fc.assert(
      fc.property(frameArb(300), (frame) => {
        const bytes = encodeFrame(frame);
        expect(bytes.length).toBe(encodedLength(frame));
        expect(decodeFrame(bytes)).toEqual(frame);
      }),
      { numRuns: 500 },
    );
  });

  it('(b) frames split or coalesced at any boundaries decode to the same frames', () => {
    fc.assert(
      fc.property(fc.array(frameArb(300), { maxLength: 12 }), cuts, (sent, at) => {
        const { decoder, frames, errors } = recorder();
        for (const chunk of split(concat(sent.map(encodeFrame)), at)) decoder.push(chunk);
        decoder.end();
        expect(errors).toEqual([]);
        expect(frames).toEqual(sent);
      }),
      { numRuns: 300 },
    );
  });

  it('(c) hostile and mutated streams: no throw, only FrameErrors, memory within the cap, every byte accounted for', () => {
    const streamArb = fc.oneof(
      fc.array(hostilePieceArb, { maxLength: 10 }).map(concat),
      fc.tuple(fc.array(frameArb(120), { minLength: 1, maxLength: 8 }), fc.array(editArb, { minLength: 1, maxLength: 5 }))
        .map(([frames, edits]) => edits.reduce(applyEdit, concat(frames.map(encodeFrame)))),
      fc.uint8Array({ maxLength: 2000 }),
    );
    fc.assert(
      fc.property(streamArb, cuts, (stream, at) => {
        const { decoder, frames, errors } = recorder({ payloadBytesMax: 256 });
        for (const chunk of split(stream, at)) {
          decoder.push(chunk);
          expect(decoder.bufferedBytes).toBeLessThanOrEqual(decoder.reassemblyBytesMax);
          expect(decoder.reassemblyCapacity).toBeLessThanOrEqual(256 + 52);
        }
        decoder.end();
        for (const e of errors) {
          expect(e).toBeInstanceOf(FrameError);
          expect(FRAME_ERROR_CODES).toContain(e.code);
        }
        for (const f of frames) expect(decodeFrame(encodeFrame(f))).toEqual(f);
        const frameBytes = frames.reduce((n, f) => n + encodedLength(f), 0);
        expect(frameBytes + decoder.bytesSkipped).toBe(stream.length);
        expect(decoder.bufferedBytes).toBe(0);
      }),
      { numRuns: 400 },
    );
  });

  it('(c) decodeFrame throws only FrameError on arbitrary and mutated bytes', () => {
    const bytesArb = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.tuple(frameArb(100), fc.array(editArb, { minLength: 1, maxLength: 3 }))
        .map(([f, edits]) => edits.reduce(applyEdit, encodeFrame(f))),
      hostilePieceArb,
    );
    fc.assert(
      fc.property(bytesArb, (bytes) => {
        try {
          decodeFrame(bytes, { payloadBytesMax: 256 });
        } catch (err) {
          expect(err).toBeInstanceOf(FrameError);
          expect(FRAME_ERROR_CODES).toContain((err as FrameError).code);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('(d) any single flipped bit is detected by both decoders', () => {
    const flipArb = frameArb(100).chain((f) => fc.tuple(fc.constant(f), fc.nat(encodedLength(f) * 8 - 1)));
    fc.assert(
      fc.property(flipArb, cuts, ([frame, bit], at) => {
        const bytes = encodeFrame(frame);
        bytes[bit >> 3]! ^= 1 << (bit & 7);
        expect(() => decodeFrame(bytes)).toThrow(FrameError);
        const { decoder, frames, errors } = recorder();
        for (const chunk of split(bytes, at)) decoder.push(chunk);
        decoder.end();
        expect(frames).toEqual([]);
        expect(errors.length).toBeGreaterThan(0);
      }),
      { numRuns: 500 },
    );
  });

  it('(e) after garbage, the decoder resynchronises and decodes the frames that follow', () => {
    fc.assert(
      fc.property(garbageArb, fc.array(frameArb(200), { minLength: 1, maxLength: 6 }), cuts, (garbage, sent, at) => {
        const { decoder, frames, errors } = recorder();
        for (const chunk of split(concat([garbage, ...sent.map(encodeFrame)]), at)) decoder.push(chunk);
        decoder.end();
        expect(frames).toEqual(sent);
        expect(errors.length).toBeGreaterThan(0);
        expect(errors.every((e) => e.code !== 'ML_ERR_FRAME_CRC' && e.code !== 'ML_ERR_FRAME_TRUNCATED')).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('(e) a corrupted frame in a stream costs only itself', () => {
    const arb = fc.tuple(fc.array(frameArb(100), { minLength: 3, maxLength: 6 }), fc.nat(), fc.nat(), cuts);
    fc.assert(
      fc.property(arb, ([sent, which, bit, at]) => {
        const victim = which % sent.length;
        const encoded = sent.map(encodeFrame);
        const target = encoded[victim]!;
        target[Math.floor(bit / 8) % target.length]! ^= 1 << (bit % 8);
        const { decoder, frames } = recorder();
        for (const chunk of split(concat(encoded), at)) decoder.push(chunk);
        decoder.end();
        expect(frames).toEqual(sent.filter((_, i) => i !== victim));
      }),
      { numRuns: 300 },
    );
  });

  it('a header with a sound CRC but an unknown type never yields a frame', () => {
    fc.assert(
      fc.property(fc.integer({ min: 10, max: 255 }).filter((t) => FRAME_TYPE_NAMES[t as FrameType] === undefined), fc.uint8Array({ maxLength: 40 }), (type, payload) => {
        const { decoder, frames, errors } = recorder();
        decoder.push(concat([wireFrame({ type }, payload), encodeFrame({ type: FrameType.Ack, lun: 0, seq: 1, flags: 0 })]));
        expect(frames).toHaveLength(1);
        expect(errors.map((e) => e.code)).toEqual(['ML_ERR_FRAME_TYPE']);
      }),
      { numRuns: 50 },
    );
  });
});

