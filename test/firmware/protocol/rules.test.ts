import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RawFields } from '../../../firmware/protocol/layout.ts';
import { fieldProblem, fieldsAllowed } from '../../../firmware/protocol/rules.ts';
import { MAX } from './helpers.ts';

/** Values near every limit the rules draw, and values a u64 slot can hold beyond 2^53-1. */
const edge = fc.oneof(
  fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 31, 32, 33, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff),
  fc.constantFrom(2 ** 32, MAX - 1, MAX, 2 ** 53, 2 ** 64 - 1),
  fc.nat(),
  fc.maxSafeNat(),
);
const u8 = fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 0x80, 0xff), fc.integer({ min: 0, max: 0xff }));
const u32 = fc.oneof(fc.constantFrom(0, 1, 2, 3, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff }));

/** Header fields as the decoder reads them: each fits its slot, anything else goes. */
const rawArb: fc.Arbitrary<RawFields> = fc.record({
  type: fc.integer({ min: 1, max: 8 }),
  flags: u8,
  code: u8,
  lun: fc.integer({ min: 0, max: 0xffff }),
  seq: edge,
  lba: edge,
  tag: edge,
  lockId: u32,
  count: u32,
  payloadLength: fc.oneof(u32, fc.constant(0)),
});

describe('field rules', () => {
  it('the fast check and the descriptive one always agree', () => {
    fc.assert(
      fc.property(rawArb, (raw) => {
        expect(fieldsAllowed(raw)).toBe(fieldProblem(raw) === null);
      }),
      { numRuns: 20_000 },
    );
  });

  it('both find fault with a field outside its enumeration, and accept what the rules allow', () => {
    const lock = { type: 2, flags: 1, code: 1, lun: 0, seq: 1, lba: 0, tag: 0, lockId: 1, count: 8, payloadLength: 0 };
    expect(fieldsAllowed(lock)).toBe(true);
    for (const code of [0, 3, 32, 33]) {
      expect(fieldsAllowed({ ...lock, code })).toBe(false);
      expect(fieldProblem({ ...lock, code })?.field).toBe('mode');
    }
    expect(fieldsAllowed({ ...lock, flags: 4 })).toBe(false);
    expect(fieldsAllowed({ ...lock, lba: MAX, count: 1 })).toBe(false);
  });
});
