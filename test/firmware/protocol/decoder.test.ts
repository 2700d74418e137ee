import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../../firmware/errors.ts';
import { FrameDecoder, FrameType, encodeFrame } from '../../../firmware/protocol/index.ts';
import type { Frame } from '../../../firmware/protocol/index.ts';
import { concat, recorder, sealedHeader, wireFrame } from './helpers.ts';

const ack = (seq: number): Frame => ({ type: FrameType.Ack, lun: 0, seq, flags: 0 });
const write = (seq: number, bytes = 16): Frame => ({
  type: FrameType.Write, lun: 1, seq, flags: 0, lockId: 1, lba: seq, tag: seq, data: new Uint8Array(bytes).fill(seq),
});
const codes = (errors: { code: string }[]): string[] => errors.map((e) => e.code);

describe('FrameDecoder: reassembly', () => {
  it('decodes frames coalesced in one chunk in place, with zero copies', () => {
    const { decoder, frames, errors } = recorder();
    const chunk = concat([encodeFrame(write(1)), encodeFrame(ack(1)), encodeFrame(write(2))]);
    decoder.push(chunk);
    expect(frames).toEqual([write(1), ack(1), write(2)]);
    expect(errors).toEqual([]);
    const data = (frames[2] as Extract<Frame, { type: FrameType.Write }>).data;
    expect(data.buffer).toBe(chunk.buffer);
    expect(data.byteOffset).toBe(52 + 68 + 48);
    expect(decoder.reassemblyCapacity).toBe(0);
  });

  it('decodes a stream fed one byte at a time, giving split frames their own copy of the data', () => {
    const { decoder, frames, errors } = recorder();
    const stream = concat([encodeFrame(write(1)), encodeFrame(write(2)), encodeFrame(ack(3))]);
    for (const byte of stream) decoder.push(new Uint8Array([byte]));
    expect(frames).toEqual([write(1), write(2), ack(3)]);
    expect(errors).toEqual([]);
    const [first, second] = frames as Array<Extract<Frame, { type: FrameType.Write }>>;
    expect(first!.data.buffer).not.toBe(second!.data.buffer);
    expect(decoder.bufferedBytes).toBe(0);
    expect(decoder.framesDecoded).toBe(3);
  });

  it('keeps only the partial tail of a chunk, and allocates the reassembly buffer lazily', () => {
    const { decoder, frames } = recorder({ payloadBytesMax: 100 });
    const stream = concat([encodeFrame(write(1)), encodeFrame(write(2))]);
    decoder.push(stream.subarray(0, 80));
    expect(frames).toHaveLength(1);
    expect(decoder.bufferedBytes).toBe(80 - 68);
    expect(decoder.reassemblyCapacity).toBe(256 + 52); // a HELLO's largest payload, accepted whatever payloadBytesMax
    decoder.push(stream.subarray(80));
    expect(frames).toEqual([write(1), write(2)]);
    expect(decoder.bufferedBytes).toBe(0);
  });
});

describe('FrameDecoder: large frames that span chunks', () => {
  const big = (seq: number): Frame => write(seq, 64 * 1024);

  it('gathers each in a buffer of its own that its data stays a view into, never written again', () => {
    const { decoder, frames, errors } = recorder({ payloadBytesMax: 1024 * 1024 });
    const stream = concat([encodeFrame(big(1)), encodeFrame(ack(1)), encodeFrame(big(2)), encodeFrame(big(3))]);
    // 64 KiB reads, as a TCP socket delivers them: no WRITE here arrives whole.
    for (let at = 0; at < stream.length; at += 65_536) decoder.push(stream.slice(at, at + 65_536));
    expect(errors).toEqual([]);
    expect(frames).toEqual([big(1), ack(1), big(2), big(3)]);
    const datas = [frames[0], frames[2], frames[3]].map((f) => (f as Extract<Frame, { type: FrameType.Write }>).data);
    for (const d of datas) {
      expect(d.buffer.byteLength).toBe(64 * 1024 + 52);
      expect(d.byteOffset).toBe(48);
    }
    expect(new Set(datas.map((d) => d.buffer)).size).toBe(3);
    expect(datas.map((d) => d.every((x) => x === d[0]))).toEqual([true, true, true]);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('keeps the shared buffer at 16 KiB, and a truncated large frame is reported and dropped', () => {
    const { decoder, frames, errors } = recorder({ payloadBytesMax: 1024 * 1024 });
    const bytes = encodeFrame(big(1));
    decoder.push(bytes.slice(0, 30));
    expect(decoder.reassemblyCapacity).toBe(16 * 1024);
    decoder.push(bytes.slice(30, 40_000));
    expect(decoder.reassemblyCapacity).toBe(bytes.length);
    decoder.end();
    expect(codes(errors)).toEqual(['ML_ERR_FRAME_TRUNCATED']);
    decoder.push(bytes.slice(0, 100));
    decoder.push(bytes.slice(100));
    expect(frames).toEqual([big(1)]);
    expect(decoder.bufferedBytes).toBe(0);
    expect(decoder.reassemblyCapacity).toBe(16 * 1024);
  });

  it('lets go of a frame\'s own buffer even when the callback throws on that frame', () => {
    let calls = 0;
    const kept: Frame[] = [];
    const decoder = new FrameDecoder({
      payloadBytesMax: 1024 * 1024,
      onFrame: (f) => {
        kept.push(f);
        if (++calls === 1) throw new Error('receiver bug');
      },
      onError: () => {},
    });
    const first = encodeFrame(big(1));
    decoder.push(first.slice(0, 1000));
    expect(() => decoder.push(first.slice(1000))).toThrow('receiver bug');
    const second = encodeFrame(big(2));
    decoder.push(second.slice(0, 1000));
    decoder.push(second.slice(1000));
    expect(kept).toEqual([big(1), big(2)]);
  });
});

describe('FrameDecoder: control frames under a small payloadBytesMax', () => {
  // Found by the decoder fuzz (docs/fuzzing.md): HELLO and HEARTBEAT are accepted whatever
  // payloadBytesMax, but the reassembly buffer was capped at payloadBytesMax, so a HELLO split
  // over chunks tripped an assertion that escaped push().
  it('reassembles a HELLO larger than payloadBytesMax, fed a byte at a time', () => {
    const hello: Frame = {
      type: FrameType.Hello, lun: 0, seq: 0, flags: 0, controllerId: 1, sessionId: 9, windowBytes: 1 << 20, windowEntries: 64,
      policy: 0, locksWindow: 4, features: 0, requiredFeatures: 0, connection: 0, connections: 1, peerSession: 0,
    } as Frame;
    const { decoder, frames, errors } = recorder({ payloadBytesMax: 1 });
    const bytes = encodeFrame(hello);
    expect(bytes.length).toBeGreaterThan(1 + 52);
    for (const byte of bytes) decoder.push(new Uint8Array([byte]));
    expect(errors).toEqual([]);
    expect(frames).toEqual([hello]);
    expect(decoder.reassemblyCapacity).toBeLessThanOrEqual(decoder.reassemblyBytesMax);
  });
});

describe('FrameDecoder: errors and resynchronisation', () => {
  it('reports a garbage run split over chunks as one ML_ERR_FRAME_MAGIC with its count', () => {
    const { decoder, frames, errors } = recorder();
    decoder.push(new Uint8Array([1, 2, 3]));
    decoder.push(new Uint8Array([0x4d]));
    decoder.push(new Uint8Array([0x4d, 9]));
    expect(errors).toEqual([]);
    decoder.push(encodeFrame(ack(1)));
    expect(codes(errors)).toEqual(['ML_ERR_FRAME_MAGIC']);
    expect(errors[0]!.skippedBytes).toBe(6);
    expect(frames).toEqual([ack(1)]);
    expect(decoder.bytesSkipped).toBe(6);
  });

  it('on a bad header CRC drops one byte, reports once, and finds the next frame', () => {
    const { decoder, frames, errors } = recorder();
    const bad = encodeFrame(ack(1));
    bad[10]! ^= 1;
    decoder.push(concat([bad, encodeFrame(ack(2))]));
    expect(codes(errors)).toEqual(['ML_ERR_FRAME_HEADER_CRC', 'ML_ERR_FRAME_MAGIC']);
    expect(errors[1]!.skippedBytes).toBe(51);
    expect(frames).toEqual([ack(2)]);
    expect(decoder.bytesSkipped).toBe(52);
  });

  it('drops a sound frame of another version whole, names it, and decodes what follows', () => {
    const { decoder, frames, errors } = recorder();
    const foreign = wireFrame({ version: 7, type: FrameType.Write, seq: 3, lockId: 1 }, new Uint8Array(40).fill(0x4d));
    for (const chunk of [foreign.subarray(0, 50), foreign.subarray(50), encodeFrame(ack(2))]) decoder.push(chunk);
    expect(codes(errors)).toEqual(['ML_ERR_FRAME_VERSION']);
    expect(errors[0]!.message).toMatch(/WRITE seq 3 lun 0 speaks protocol version 7/);
    expect(frames).toEqual([ack(2)]);
    expect(decoder.bytesSkipped).toBe(foreign.length);
  });

  it('a wrong version under a broken header CRC is noise: one byte dropped, rescan', () => {
    const { decoder, frames, errors } = recorder();
    decoder.push(concat([wireFrame({ version: 7 }, new Uint8Array(0), false), encodeFrame(ack(2))]));
    expect(codes(errors)).toEqual(['ML_ERR_FRAME_HEADER_CRC', 'ML_ERR_FRAME_MAGIC']);
    expect(frames).toEqual([ack(2)]);
  });

  it('drops a frame with a bad CRC whole (no rescan of its payload) and names it', () => {
    const { decoder, frames, errors } = recorder();
    const bad = encodeFrame(write(5, 64));
    bad[60]! ^= 0x80;
    for (const chunk of [bad.subarray(0, 30), bad.subarray(30), encodeFrame(ack(6))]) decoder.push(chunk);
    expect(codes(errors)).toEqual(['ML_ERR_FRAME_CRC']);
    expect([errors[0]!.type, errors[0]!.seq, errors[0]!.lun]).toEqual([FrameType.Write, 5, 1]);
    expect(frames).toEqual([ack(6)]);
  });

  it('drops a frame with a bad field whole and names it', () => {
    const { decoder, frames, errors } = recorder();
    decoder.push(concat([wireFrame({ type: FrameType.Nak, seq: 8, code: 99 }), encodeFrame(ack(1))]));
    expect(codes(errors)).toEqual(['ML_ERR_FRAME_FIELD']);
    expect(errors[0]!.message).toMatch(/NAK seq 8 lun 0: reason = 99 is not allowed/);
    expect(errors[0]!.seq).toBe(8);
    expect(frames).toEqual([ack(1)]);
  });

  it('skips an unknown type whole, even when its payload holds frame-shaped bytes', () => {
    const { decoder, frames, errors } = recorder();
    const hidden = encodeFrame(ack(99));
    decoder.push(concat([wireFrame({ type: 200, seq: 3 }, concat([hidden, hidden])), encodeFrame(ack(1))]));
    expect(codes(errors)).toEqual(['ML_ERR_FRAME_TYPE']);
    expect(frames).toEqual([ack(1)]);
  });

  it('streams past a too-large frame without buffering it, then decodes what follows', () => {
    const { decoder, frames, errors } = recorder({ payloadBytesMax: 64 });
    const payload = new Uint8Array(10_000);
    for (let at = 0; at + 52 <= payload.length; at += 700) payload.set(encodeFrame(ack(99)), at);
    const stream = concat([wireFrame({ type: FrameType.Write, seq: 4, lockId: 1 }, payload), encodeFrame(ack(1))]);
    for (let at = 0; at < stream.length; at += 333) {
      decoder.push(stream.subarray(at, at + 333));
      expect(decoder.reassemblyCapacity).toBeLessThanOrEqual(64 + 52);
    }
    expect(codes(errors)).toEqual(['ML_ERR_FRAME_TOO_LARGE']);
    expect(errors[0]!.seq).toBe(4);
    expect(frames).toEqual([ack(1)]);
    expect(decoder.bytesSkipped).toBe(10_052);
  });

  it('never buffers for a declared 4 GiB payload', () => {
    const { decoder, errors } = recorder({ payloadBytesMax: 1000 });
    const header = sealedHeader({ type: FrameType.Write, seq: 1, lockId: 1, payloadLength: 0xffffffff });
    decoder.push(header.subarray(0, 20));
    decoder.push(concat([header.subarray(20), new Uint8Array(100_000)]));
    expect(codes(errors)).toEqual(['ML_ERR_FRAME_TOO_LARGE']);
    expect(decoder.bufferedBytes).toBe(0);
    expect(decoder.reassemblyCapacity).toBeLessThanOrEqual(1052);
  });
});

describe('FrameDecoder: end(), reset() and counters', () => {
  it('end() reports a truncated frame once and clears it', () => {
    const { decoder, errors } = recorder();
    decoder.push(encodeFrame(write(1)).subarray(0, 60));
    decoder.end();
    expect(codes(errors)).toEqual(['ML_ERR_FRAME_TRUNCATED']);
    expect(errors[0]!.message).toMatch(/input ended 60 bytes into a frame that needs 68/);
    expect(decoder.bufferedBytes).toBe(0);
    decoder.end();
    expect(errors).toHaveLength(1);
  });

  it('end() reports trailing garbage, including a lone first magic byte, as ML_ERR_FRAME_MAGIC', () => {
    const { decoder, errors } = recorder();
    decoder.push(new Uint8Array([7, 7, 0x4d]));
    decoder.end();
    expect(codes(errors)).toEqual(['ML_ERR_FRAME_MAGIC']);
    expect(errors[0]!.skippedBytes).toBe(3);
    expect(decoder.bytesSkipped).toBe(3);
  });

  it('a lone first magic byte ending one chunk, then bytes that are no magic, is garbage at end(), not a truncated frame', () => {
    // Found by the decoder fuzz (docs/fuzzing.md): the bytes after the lone 0x4D were added to the
    // buffered candidate without judging it again, so end() reported them as a truncated frame.
    const { decoder, errors } = recorder();
    decoder.push(new Uint8Array([0x4d]));
    decoder.push(new Uint8Array([0x94, 0xef, 0x7b]));
    decoder.end();
    expect(codes(errors)).toEqual(['ML_ERR_FRAME_MAGIC']);
    expect(errors[0]!.skippedBytes).toBe(4);
  });

  it('reset() drops a partial frame without a report', () => {
    const { decoder, frames, errors } = recorder();
    decoder.push(encodeFrame(write(1)).subarray(0, 30));
    decoder.reset();
    expect(decoder.bufferedBytes).toBe(0);
    decoder.push(encodeFrame(write(2)));
    expect(frames).toEqual([write(2)]);
    expect(errors).toEqual([]);
    expect(decoder.bytesSkipped).toBe(30);
  });

  it('counts frames, errors and skipped bytes', () => {
    const { decoder } = recorder();
    decoder.push(concat([new Uint8Array(5), encodeFrame(ack(1)), wireFrame({ type: 20 }), encodeFrame(ack(2))]));
    expect([decoder.framesDecoded, decoder.errors, decoder.bytesSkipped]).toEqual([2, 2, 57]);
  });
});

describe('FrameDecoder: callbacks', () => {
  it('a throwing onFrame propagates, and the frames after it are still decoded exactly once', () => {
    const seen: number[] = [];
    let throws = true;
    const decoder = new FrameDecoder({
      onFrame: (f) => {
        seen.push(f.seq);
        if (throws && f.seq === 1) throw new Error('handler bug');
      },
      onError: () => {},
    });
    const frames = [1, 2, 3].map((s) => encodeFrame(ack(s)));
    expect(() => decoder.push(concat([...frames, frames[0]!.subarray(0, 10)]))).toThrow('handler bug');
    throws = false;
    decoder.push(frames[0]!.subarray(10));
    expect(seen).toEqual([1, 2, 3, 1]);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('a throwing onError while decoding from the reassembly buffer leaves the decoder consistent', () => {
    const seen: string[] = [];
    const decoder = new FrameDecoder({
      onFrame: (f) => seen.push(`frame ${f.seq}`),
      onError: (e) => {
        seen.push(e.code);
        throw new Error('handler bug');
      },
    });
    const bad = encodeFrame(ack(1));
    bad[20]! ^= 4;
    const stream = concat([bad, encodeFrame(ack(2))]);
    decoder.push(stream.subarray(0, 30));
    expect(() => decoder.push(stream.subarray(30))).toThrow('handler bug');
    expect(() => decoder.push(new Uint8Array(0))).toThrow('handler bug');
    decoder.push(new Uint8Array(0));
    expect(seen).toEqual(['ML_ERR_FRAME_HEADER_CRC', 'ML_ERR_FRAME_MAGIC', 'frame 2']);
  });

  it('a callback may reset() the decoder; the rest of the chunk is dropped', () => {
    const seen: number[] = [];
    const decoder: FrameDecoder = new FrameDecoder({
      onFrame: (f) => {
        seen.push(f.seq);
        if (f.seq === 1) decoder.reset();
      },
      onError: () => {},
    });
    decoder.push(concat([encodeFrame(ack(1)), encodeFrame(ack(2))]));
    decoder.push(encodeFrame(ack(3)));
    expect(seen).toEqual([1, 3]);
    expect(decoder.bytesSkipped).toBe(52);
  });

  it('push() or end() from a callback is a programmer error, and the rejected chunk is not taken', () => {
    const seen: number[] = [];
    let reenter: (() => void) | null = null;
    const decoder: FrameDecoder = new FrameDecoder({
      onFrame: (f) => {
        seen.push(f.seq);
        reenter?.();
      },
      onError: () => {},
    });
    reenter = () => decoder.push(encodeFrame(ack(9)));
    expect(() => decoder.push(encodeFrame(ack(1)))).toThrow(AssertionError);
    reenter = () => decoder.end();
    expect(() => decoder.push(encodeFrame(ack(2)))).toThrow(/must not be called from onFrame\/onError/);
    reenter = null;
    decoder.push(encodeFrame(ack(3)));
    expect(seen).toEqual([1, 2, 3]);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('rejects a payloadBytesMax that is not a u32', () => {
    const make = (payloadBytesMax: number) => () => new FrameDecoder({ payloadBytesMax, onFrame() {}, onError() {} });
    expect(make(-1)).toThrow(/payloadBytesMax must be an integer from 0 to 4294967295, got -1/);
    expect(make(1.5)).toThrow(AssertionError);
    expect(make(2 ** 32)).toThrow(AssertionError);
  });
});
