import { describe, expect, it } from 'vitest';
import { FrameBufferPool } from '../../../firmware/protocol/frame-pool.ts';
import { FrameDecoder, FrameType, encodeFrame } from '../../../firmware/protocol/index.ts';
import type { Frame } from '../../../firmware/protocol/index.ts';

type WriteFrame = Extract<Frame, { type: FrameType.Write }>;
const write = (seq: number, bytes: number): WriteFrame => ({
  type: FrameType.Write, lun: 0, seq, flags: 0, lockId: 1, lba: seq, tag: seq, data: new Uint8Array(bytes).fill(seq),
});

describe('FrameBufferPool', () => {
  it('lends a buffer given back again, of the same length only', () => {
    const pool = new FrameBufferPool(1 << 20);
    const a = pool.take(1000);
    pool.giveBack(a.subarray(48, 900));
    expect(pool.stats.freeBytes).toBe(1000);
    expect(pool.take(999).buffer).not.toBe(a.buffer);
    expect(pool.take(1000).buffer).toBe(a.buffer);
    expect(pool.stats).toEqual({ lent: 3, reused: 1, freeBytes: 0 });
  });

  it('ignores what it did not lend, and a second give-back of the same buffer', () => {
    const pool = new FrameBufferPool(1 << 20);
    pool.giveBack(new Uint8Array(1000));
    expect(pool.stats.freeBytes).toBe(0);
    const a = pool.take(1000);
    pool.giveBack(a);
    pool.giveBack(a);
    const b = pool.take(1000);
    const c = pool.take(1000);
    expect(b.buffer).toBe(a.buffer);
    expect(c.buffer).not.toBe(a.buffer);
  });

  it('keeps at most freeBytesMax bytes of buffers nobody holds', () => {
    const pool = new FrameBufferPool(2500);
    const bufs = [pool.take(1000), pool.take(1000), pool.take(1000)];
    for (const b of bufs) pool.giveBack(b);
    expect(pool.stats.freeBytes).toBe(2000);
  });

  it('gives a decoder the buffers large split frames are gathered in, which come back reused', () => {
    const pool = new FrameBufferPool(1 << 20);
    const frames: WriteFrame[] = [];
    const decoder = new FrameDecoder({ payloadBytesMax: 1 << 20, frameBuffers: pool, onFrame: (f) => frames.push(f as WriteFrame), onError: (e) => {
      throw e;
    } });
    for (let seq = 1; seq <= 3; seq++) {
      const bytes = encodeFrame(write(seq, 40_000));
      decoder.push(bytes.slice(0, 20_000));
      decoder.push(bytes.slice(20_000));
      expect(frames[seq - 1]).toEqual(write(seq, 40_000));
      pool.giveBack(frames[seq - 1]!.data);
    }
    expect(pool.stats).toEqual({ lent: 3, reused: 2, freeBytes: 40_052 });
    // A frame decoded in place in its chunk is not the pool's: giving it back does nothing.
    decoder.push(encodeFrame(write(4, 40_000)).slice());
    pool.giveBack(frames[3]!.data);
    expect(pool.stats.freeBytes).toBe(40_052);
  });
});
