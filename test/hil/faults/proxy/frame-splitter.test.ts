import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameType } from '../../../../firmware/protocol/index.ts';
import { FrameSplitter, type StreamPiece } from '../../../../hil/faults/proxy/frame-splitter.ts';
import { concat, frameArb, sealedHeader, split, wireFrame } from '../../../firmware/protocol/helpers.ts';

function splitter(payloadBytesMax = 4096): { s: FrameSplitter; pieces: StreamPiece[] } {
  const pieces: StreamPiece[] = [];
  const s = new FrameSplitter({ payloadBytesMax, onPiece: (p) => pieces.push({ ...p, bytes: p.bytes.slice() }) });
  return { s, pieces };
}

/** A run of stream material: a frame's bytes, or noise (random bytes that start no frame by construction: no 0x4D). */
const part = fc.oneof(
  frameArb(300).map((f) => ({ frame: true, bytes: encodeFrame(f) })),
  fc.uint8Array({ minLength: 1, maxLength: 80 }).map((b) => ({ frame: false, bytes: b.map((x) => (x === 0x4d ? 0x4e : x)) })),
);

describe('FrameSplitter', () => {
  it('cuts any mix of frames and noise, split anywhere, into pieces that concatenate to the input, the frames exactly as sent', () => {
    fc.assert(fc.property(fc.array(part, { maxLength: 24 }), fc.array(fc.nat(), { maxLength: 12 }), (parts, cuts) => {
      const input = concat(parts.map((p) => p.bytes));
      const { s, pieces } = splitter();
      let pendingMax = 0;
      for (const chunk of split(input, cuts)) {
        s.push(chunk);
        pendingMax = Math.max(pendingMax, s.pendingBytes);
      }
      s.end();
      expect(concat(pieces.map((p) => p.bytes))).toEqual(input);
      const frames = pieces.filter((p) => p.kind === 'frame').map((p) => p.bytes);
      expect(frames).toEqual(parts.filter((p) => p.frame).map((p) => p.bytes));
      expect(s.noiseBytes).toBe(parts.filter((p) => !p.frame).reduce((n, p) => n + p.bytes.length, 0));
      expect(pendingMax).toBeLessThanOrEqual(s.pendingBytesMax);
      expect(s.pendingBytes).toBe(0);
    }), { numRuns: 300 });
  });

  it('keeps its place with noise full of magic bytes and frame fragments between the frames', () => {
    const ack = encodeFrame({ type: FrameType.Ack, lun: 0, seq: 3, flags: 0 });
    // A fragment with a sound header (ack minus its last bytes) claims the next frame's first bytes
    // as its own, as the far end's decoder would: then only the concatenation is promised.
    const truncated = [ack.subarray(0, 48), ack.subarray(0, 51)];
    const nasty = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 60 }),
      fc.constantFrom(Uint8Array.of(0x4d), Uint8Array.of(0x4d, 0x4c), ack.subarray(5), ...truncated),
    );
    const mixed = fc.oneof(frameArb(100).map((f) => ({ frame: true, bytes: encodeFrame(f) })), nasty.map((bytes) => ({ frame: false, bytes })));
    fc.assert(fc.property(fc.array(mixed, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 }), (parts, cuts) => {
      const input = concat(parts.map((p) => p.bytes));
      const { s, pieces } = splitter();
      for (const chunk of split(input, cuts)) s.push(chunk);
      s.end();
      expect(concat(pieces.map((p) => p.bytes))).toEqual(input);
      if (parts.some((p) => truncated.includes(p.bytes))) return;
      expect(pieces.filter((p) => p.kind === 'frame').map((p) => p.bytes)).toEqual(parts.filter((p) => p.frame).map((p) => p.bytes));
    }), { numRuns: 300 });
  });

  it('hands out noise as soon as it is known to be noise, and a frame as soon as it is whole', () => {
    const { s, pieces } = splitter();
    const ack = encodeFrame({ type: FrameType.Ack, lun: 2, seq: 7, flags: 0 });
    s.push(Uint8Array.of(1, 2, 3));
    expect(pieces).toEqual([{ kind: 'noise', bytes: Uint8Array.of(1, 2, 3) }]);
    s.push(ack.subarray(0, 30));
    expect(pieces).toHaveLength(1);
    s.push(ack.subarray(30));
    expect(pieces[1]).toEqual({ kind: 'frame', bytes: ack, type: FrameType.Ack, seq: 7, lun: 2 });
  });

  it('relays frames it cannot accept as noise: a bad frame CRC, another version, a declared 4 GiB payload that streams past unbuffered', () => {
    const { s, pieces } = splitter(1024);
    const good = encodeFrame({ type: FrameType.Ack, lun: 0, seq: 1, flags: 0 });
    const badCrc = good.slice();
    badCrc[badCrc.length - 1]! ^= 1;
    const otherVersion = wireFrame({ version: 9, type: FrameType.Ack });
    const huge = sealedHeader({ type: FrameType.Write, lockId: 1, seq: 1, payloadLength: 0xffffffff });
    s.push(concat([badCrc, otherVersion, huge]));
    for (let i = 0; i < 64; i++) s.push(new Uint8Array(64 * 1024).fill(0x4d));
    expect(s.pendingBytes).toBeLessThanOrEqual(s.pendingBytesMax);
    s.end();
    expect(pieces.every((p) => p.kind === 'noise')).toBe(true);
    expect(s.noiseBytes).toBe(badCrc.length + otherVersion.length + huge.length + 64 * 64 * 1024);
    expect(s.frames).toBe(0);
  });

  it('a lone magic byte or a truncated frame at the end of the stream is noise', () => {
    const { s, pieces } = splitter();
    const ack = encodeFrame({ type: FrameType.Ack, lun: 0, seq: 1, flags: 0 });
    s.push(ack.subarray(0, 40));
    s.end();
    expect(pieces).toEqual([{ kind: 'noise', bytes: ack.subarray(0, 40) }]);
  });
});
