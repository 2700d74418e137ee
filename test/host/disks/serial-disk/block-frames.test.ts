import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32cRange } from '../../../../firmware/protocol/crc.ts';
import { FrameDecoder, encodeFrame, FrameType, type Frame } from '../../../../firmware/protocol/index.ts';
import {
  BlockFrameDecoder, BlockFrameError, BlockFrameType, BlockStatus, decodeGeometry, DEVICE_NAME_BYTES_MAX, IDENTIFY_PAYLOAD_BYTES, encodeBlockFrame, encodeGeometry, type BlockFrame,
} from '../../../../host/disks/serial-disk/block-frames.ts';

const frame = (over: Partial<BlockFrame>): BlockFrame => ({ type: BlockFrameType.Read, seq: 1, session: 77, lba: 0, count: 0, code: 0, payload: new Uint8Array(0), ...over });

function decodeAll(chunks: Uint8Array[], payloadBytesMax?: number): { frames: BlockFrame[]; errors: BlockFrameError[]; decoder: BlockFrameDecoder } {
  const frames: BlockFrame[] = [];
  const errors: BlockFrameError[] = [];
  const decoder = new BlockFrameDecoder({ payloadBytesMax, onFrame: (f) => frames.push(f), onError: (e) => errors.push(e) });
  for (const c of chunks) decoder.push(c);
  return { frames, errors, decoder };
}

const SAMPLES: BlockFrame[] = [
  frame({ type: BlockFrameType.Identify, seq: 0 }),
  frame({ type: BlockFrameType.Read, seq: 5, lba: 2 ** 40, count: 8 }),
  frame({ type: BlockFrameType.Write, seq: 6, lba: 3, count: 1, payload: Uint8Array.from({ length: 512 }, (_, i) => i & 0xff) }),
  frame({ type: BlockFrameType.Flush, seq: 7 }),
  frame({ type: BlockFrameType.Reply, seq: 6, code: BlockStatus.Media, lba: 4 }),
  frame({ type: BlockFrameType.Nak, seq: 9, code: 2 }),
];
/** Recomputes both CRCs, so a frame edited by a test is wrong only in what the test changed. */
function reseal(b: Uint8Array): Uint8Array {
  const view = new DataView(b.buffer, b.byteOffset, b.length);
  const headerCrc = crc32cRange(b, 0, 44);
  view.setUint32(44, headerCrc);
  view.setUint32(b.length - 4, crc32cRange(b, 44, b.length - 4, headerCrc));
  return b;
}
const concat = (parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));

describe('block frames', () => {
  it('use the mirror protocol\'s framing: magic "ML", a 48-byte header with its CRC, the payload, a CRC over both', () => {
    const b = encodeBlockFrame(SAMPLES[2]!);
    expect([b[0], b[1], b[2], b[3]]).toEqual([0x4d, 0x4c, 1, 0x42]);
    expect(b.length).toBe(48 + 512 + 4);
  });

  it('decode to what was encoded, whatever the chunking', () => {
    const stream = concat(SAMPLES.map(encodeBlockFrame));
    for (let cut = 1; cut < stream.length; cut += 7) {
      const { frames, errors } = decodeAll([stream.subarray(0, cut), stream.subarray(cut)]);
      expect(errors).toEqual([]);
      expect(frames).toEqual(SAMPLES);
    }
    expect(decodeAll([...stream].map((x) => Uint8Array.of(x))).frames).toEqual(SAMPLES);
  });

  it('skip garbage and resynchronise on the next frame, reporting what was skipped', () => {
    const { frames, errors } = decodeAll([Uint8Array.of(1, 2, 0x4d, 3), encodeBlockFrame(SAMPLES[1]!), Uint8Array.of(0x4d, 0x4c, 9), encodeBlockFrame(SAMPLES[3]!)]);
    expect(frames).toEqual([SAMPLES[1], SAMPLES[3]]);
    expect(errors.map((e) => e.code)).toEqual(['ML_ERR_BLOCK_FRAME_GARBAGE', 'ML_ERR_BLOCK_FRAME_GARBAGE']);
    expect(errors[0]!.message).toMatch(/skipped 4 bytes/);
  });

  it('drop a frame with a flipped bit anywhere, keep the frames after it, and name it when its header is sound', () => {
    const write = encodeBlockFrame(SAMPLES[2]!);
    for (const at of [5, 30, 47, 100, write.length - 1]) {
      const spoiled = write.slice();
      spoiled[at]! ^= 0x10;
      const { frames, errors } = decodeAll([spoiled, encodeBlockFrame(SAMPLES[3]!)]);
      expect(frames).toEqual([SAMPLES[3]]);
      expect(errors.length).toBeGreaterThan(0);
      if (at >= 48) expect(errors[0]).toMatchObject({ code: 'ML_ERR_BLOCK_FRAME_CRC', header: { type: 0x42, seq: 6, session: 77 } });
    }
  });

  it('skip an over-long frame as it streams past, buffering none of it, and a frame of unknown type whole (its payload is not rescanned)', () => {
    const big = encodeBlockFrame(frame({ type: BlockFrameType.Write, count: 4, payload: new Uint8Array(64 * 1024) }));
    const chunks = Array.from({ length: big.length / 1024 + 1 }, (_, i) => big.subarray(i * 1024, (i + 1) * 1024));
    const { frames, errors, decoder } = decodeAll([...chunks, encodeBlockFrame(SAMPLES[3]!)], 4096);
    expect(frames).toEqual([SAMPLES[3]]);
    expect(errors.map((e) => e.code)).toEqual(['ML_ERR_BLOCK_FRAME_TOO_LARGE']);
    expect(decoder.bufferedBytes).toBe(0);
    // A frame of a type from a newer board, carrying a valid frame inside its payload: dropped whole, the inner one never decoded.
    const inner = encodeBlockFrame(SAMPLES[1]!);
    const outer = encodeBlockFrame(frame({ type: BlockFrameType.Reply, payload: inner }));
    outer[3] = 0x4f;
    const { frames: f2, errors: e2 } = decodeAll([reseal(outer), encodeBlockFrame(SAMPLES[3]!)]);
    expect(f2).toEqual([SAMPLES[3]]);
    expect(e2.map((e) => e.code)).toEqual(['ML_ERR_BLOCK_FRAME_TYPE']);
  });

  it('refuse fields their type does not allow', () => {
    const withFlags = encodeBlockFrame(SAMPLES[3]!);
    withFlags[4] = 1;
    const withLun = encodeBlockFrame(SAMPLES[3]!);
    withLun[7] = 2;
    const bad = [frame({ type: BlockFrameType.Read, count: 0 }), frame({ type: BlockFrameType.Flush, count: 3 }), frame({ type: BlockFrameType.Write, count: 1 })].map(encodeBlockFrame);
    for (const bytes of [reseal(withFlags), reseal(withLun), ...bad]) {
      const { frames, errors } = decodeAll([bytes]);
      expect(frames).toEqual([]);
      expect(errors.map((e) => e.code)).toEqual(['ML_ERR_BLOCK_FRAME_FIELD']);
    }
  });

  it('are rejected by the mirror decoder, and mirror frames by the block decoder: never read as each other', () => {
    const mirrorFrames: Frame[] = [];
    const mirrorErrors: string[] = [];
    const mirror = new FrameDecoder({ onFrame: (f) => mirrorFrames.push(f), onError: (e) => mirrorErrors.push(e.code) });
    for (const f of SAMPLES) mirror.push(encodeBlockFrame(f));
    expect(mirrorFrames).toEqual([]);
    expect(mirrorErrors.length).toBeGreaterThan(0);
    const mirrorWrite = encodeFrame({ type: FrameType.Write, lun: 0, seq: 1, flags: 0, lockId: 1, lba: 0, tag: 1, data: new Uint8Array(512) });
    // A mirror frame speaks another version: skipped as noise, and the block frame after it is read.
    const { frames, errors } = decodeAll([mirrorWrite, encodeBlockFrame(SAMPLES[0]!)]);
    expect(frames).toEqual([SAMPLES[0]]);
    expect(errors.length).toBeGreaterThan(0);
  });

  it('never throw anything but a BlockFrameError, and never buffer more than one largest frame, whatever the bytes', () => {
    const good = concat(SAMPLES.map(encodeBlockFrame));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 3000 }), fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 20 }), fc.integer({ min: 0, max: good.length }), (noise, cuts, splice) => {
      const bytes = concat([good.subarray(0, splice), noise, good.subarray(splice)]);
      const decoder = new BlockFrameDecoder({ payloadBytesMax: 2048, onFrame: () => {}, onError: (e) => expect(e).toBeInstanceOf(BlockFrameError) });
      let at = 0;
      for (const n of [...cuts, bytes.length]) {
        decoder.push(bytes.subarray(at, at + n));
        at += n;
        expect(decoder.bufferedBytes).toBeLessThanOrEqual(48 + 2048 + 4);
      }
    }), { numRuns: 300 });
  });
});

describe('the block decoder\'s allocation', () => {
  // Found by the block-decoder fuzz (docs/fuzzing.md): the buffer started at 4 KiB whatever
  // payloadBytesMax, past one largest frame when that is smaller. The buffer is private: its length
  // is read because the bound is on the allocation, not only on the bytes held.
  it('never exceeds one largest frame, not even before the first byte', () => {
    const payloadBytesMax = IDENTIFY_PAYLOAD_BYTES + DEVICE_NAME_BYTES_MAX;
    const decoder = new BlockFrameDecoder({ payloadBytesMax, onFrame: () => {}, onError: () => {} });
    const allocated = (): number => (decoder as unknown as { buf: Uint8Array }).buf.length;
    expect(allocated()).toBeLessThanOrEqual(48 + payloadBytesMax + 4);
    decoder.push(encodeBlockFrame(SAMPLES[0]!).subarray(0, 30));
    expect(allocated()).toBeLessThanOrEqual(48 + payloadBytesMax + 4);
  });
});

describe('the example frames the README gives board authors', () => {
  const hex = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
  it('are what the encoder produces, byte for byte', () => {
    expect(hex(encodeBlockFrame(frame({ type: BlockFrameType.Identify, seq: 0, session: 0x1234 })))).toBe(
      '4d 4c 01 40 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 12 34 00 00 00 00 00 00 00 00 00 00 00 00 25 d6 87 05 7e 09 11 4d');
    expect(hex(encodeBlockFrame(frame({ type: BlockFrameType.Read, seq: 1, session: 0x1234, lba: 8, count: 2 })))).toBe(
      '4d 4c 01 41 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 08 00 00 00 00 00 00 12 34 00 00 00 00 00 00 00 02 00 00 00 00 73 95 99 e0 65 68 8d a4');
    const geometry = encodeGeometry({ sectorSize: 512, sectorCount: 131072, transferBytesMax: 4096, requestsInFlightMax: 8, name: 'board' });
    expect(hex(encodeBlockFrame(frame({ type: BlockFrameType.Reply, seq: 0, session: 0x1234, payload: geometry })))).toBe(
      '4d 4c 01 50 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 12 34 00 00 00 00 00 00 00 00 00 00 00 21 48 c9 f9 43 ' +
      '00 00 00 01 00 00 02 00 00 00 00 00 00 02 00 00 00 00 10 00 00 00 00 08 00 00 00 05 62 6f 61 72 64 59 38 26 33');
  });
});

describe('IDENTIFY\'s geometry', () => {
  const g = { sectorSize: 4096, sectorCount: 2 ** 30, transferBytesMax: 64 * 1024, requestsInFlightMax: 8, name: 'board-7' };

  it('round-trips', () => {
    expect(decodeGeometry(encodeGeometry(g))).toEqual(g);
  });

  it('is checked as input from a wire: each bad field is named', () => {
    const bad = (patch: (b: Uint8Array) => void): string => {
      const b = encodeGeometry(g);
      patch(b);
      return decodeGeometry(b) as string;
    };
    expect(bad((b) => (b[3] = 2))).toMatch(/revision 2; this host speaks 1/);
    expect(bad((b) => (b[6] = 3))).toMatch(/sector size .* is not a power of two/);
    expect(bad((b) => b.fill(0, 8, 16))).toMatch(/sector count 0/);
    expect(bad((b) => b.fill(0, 16, 20))).toMatch(/transfer limit 0/);
    expect(bad((b) => b.fill(0, 20, 24))).toMatch(/requests in flight 0/);
    expect(bad((b) => (b[27] = 9))).toMatch(/name length 9 does not match/);
    expect(decodeGeometry(new Uint8Array(10))).toMatch(/carries 10 bytes, expected at least 28/);
  });
});
