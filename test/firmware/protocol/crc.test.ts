import { crc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32cRange, crc32cSmall } from '../../../firmware/protocol/crc.ts';
import { FrameBytes } from '../../../firmware/protocol/frame-bytes.ts';

describe('crc32cRange', () => {
  it('matches the native CRC32C for any bytes, range and initial value', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 0xffffffff }), (bytes, a, b, initial) => {
        const start = bytes.length === 0 ? 0 : a % bytes.length;
        const end = start + (bytes.length === 0 ? 0 : b % (bytes.length - start + 1));
        const expected = crc32c(Buffer.from(bytes.subarray(start, end)), initial);
        expect(crc32cSmall(bytes, start, end, initial)).toBe(expected);
        expect(crc32cRange(bytes, start, end, initial)).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('knows the standard check value', () => {
    const ascii = new TextEncoder().encode('123456789');
    expect(crc32cSmall(ascii, 0, ascii.length)).toBe(0xe3069283);
  });
});

describe('FrameBytes', () => {
  it('hands out disjoint buffers of the asked length', () => {
    const fb = new FrameBytes();
    const taken = Array.from({ length: 600 }, (_, i) => fb.take(1 + ((i * 997) % 9000)));
    taken.forEach((b, i) => b.fill(i & 0xff));
    taken.forEach((b, i) => {
      expect(b.length).toBe(1 + ((i * 997) % 9000));
      expect(b.every((x) => x === (i & 0xff))).toBe(true);
    });
  });
});
