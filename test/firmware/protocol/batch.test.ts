import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BATCH_ENTRIES_MAX,
  BATCH_ENTRY_LAYOUT,
  FRAME_ERROR_CODES,
  FrameError,
  FrameFlag,
  FrameType,
  LockMode,
  decodeFrame,
  encodeBatch,
  encodeFrame,
  encodedLength,
  isStreamFrame,
} from '../../../firmware/protocol/index.ts';
import type { BatchFrame, Frame, StreamFrame } from '../../../firmware/protocol/index.ts';
import { batch, concat, frameArb, recorder, split, wireFrame } from './helpers.ts';

const lock = (seq: number, lockId: number): StreamFrame => ({ type: FrameType.Lock, lun: 2, seq, flags: 0, lockId, lba: 64, count: 8, mode: LockMode.Write });
const write = (seq: number, lockId: number, flags = 0): StreamFrame => ({
  type: FrameType.Write, lun: 2, seq, flags, lockId, lba: 64 + seq, tag: 1000 + seq, data: new Uint8Array([seq, 1, 2, 3]),
});
const unlock = (seq: number, lockId: number): StreamFrame => ({ type: FrameType.Unlock, lun: 2, seq, flags: 0, lockId });

/** Sub-entry bytes written by hand from the layout table (not by the encoder), so the two check each other. */
function subEntry(fields: Record<string, number>, data?: Uint8Array): Uint8Array {
  const layout = BATCH_ENTRY_LAYOUT[fields.kind as FrameType.Lock | FrameType.Write | FrameType.Unlock] ?? BATCH_ENTRY_LAYOUT[FrameType.Unlock];
  const size = Math.max(...layout.map((f) => f.offset + f.bytes));
  const out = new Uint8Array(size + (data?.length ?? 0));
  const v = new DataView(out.buffer);
  for (const f of layout) {
    const value = fields[f.name] ?? (f.name === 'length' ? data?.length ?? 0 : 0);
    if (f.bytes === 1) v.setUint8(f.offset, value);
    else if (f.bytes === 4) v.setUint32(f.offset, value);
    else v.setBigUint64(f.offset, BigInt(value));
  }
  if (data) out.set(data, size);
  return out;
}

function batchBytes(count: number, entries: Uint8Array[], header: { seq?: number; flags?: number; lun?: number } = {}): Uint8Array {
  return wireFrame({ type: FrameType.Batch, seq: header.seq ?? 10, flags: header.flags ?? 0, lun: header.lun ?? 0, count }, concat(entries));
}

function fieldError(bytes: Uint8Array): FrameError {
  try {
    decodeFrame(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(FrameError);
    expect((err as FrameError).code).toBe('ML_ERR_FRAME_FIELD');
    return err as FrameError;
  }
  throw new Error('decodeFrame accepted a bad BATCH');
}

describe('BATCH (feature batch)', () => {
  it('carries consecutive LOCK, WRITE and UNLOCK entries, each decoded as the frame it stands for', () => {
    const b: BatchFrame = { type: FrameType.Batch, lun: 2, seq: 7, flags: FrameFlag.Retransmit, entries: [lock(7, 3), write(8, 3, FrameFlag.Ordered), write(9, 4, FrameFlag.ImpliedLock), unlock(10, 3)] };
    const bytes = encodeFrame(b);
    // 48-byte header, LOCK 19, WRITE 26 + 4 twice, UNLOCK 6, CRC 4.
    expect(bytes.length).toBe(48 + 19 + 30 + 30 + 6 + 4);
    expect(encodedLength(b)).toBe(bytes.length);
    expect(bytes[3]).toBe(14);
    expect(decodeFrame(bytes)).toEqual(b);
  });

  it('is laid out as the table says: hand-built sub-entries decode to the same frames', () => {
    const data = new Uint8Array([9, 8, 7]);
    const bytes = batchBytes(3, [
      subEntry({ kind: FrameType.Lock, flags: FrameFlag.GrantWanted, lockId: 5, mode: LockMode.Read, lba: 100, count: 16 }),
      subEntry({ kind: FrameType.Write, flags: FrameFlag.ImpliedLock, lockId: 6, lba: 101, tag: 77 }, data),
      subEntry({ kind: FrameType.Unlock, lockId: 5 }),
    ], { seq: 20, lun: 4 });
    expect(decodeFrame(bytes)).toEqual({
      type: FrameType.Batch, lun: 4, seq: 20, flags: 0, entries: [
        { type: FrameType.Lock, lun: 4, seq: 20, flags: FrameFlag.GrantWanted, lockId: 5, lba: 100, count: 16, mode: LockMode.Read },
        { type: FrameType.Write, lun: 4, seq: 21, flags: FrameFlag.ImpliedLock, lockId: 6, lba: 101, tag: 77, data },
        { type: FrameType.Unlock, lun: 4, seq: 22, flags: 0, lockId: 5 },
      ],
    });
  });

  it('encodeBatch packs standalone encoded frames into the same bytes encodeFrame makes of the batch', () => {
    fc.assert(
      fc.property(batch(300), (b) => {
        const frame = b as BatchFrame;
        // The standalone frames may carry Retransmit: the batch's flag says it instead.
        const standalone = frame.entries.map((e, i) => encodeFrame({ ...e, flags: e.flags | (i % 2 === 0 ? FrameFlag.Retransmit : 0) } as Frame));
        expect(encodeBatch(standalone, frame.flags, frame.tokensBack)).toEqual(encodeFrame(frame));
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a batch whose entries are not consecutive, or on another LUN, as a programmer error', () => {
    expect(() => encodeFrame({ type: FrameType.Batch, lun: 2, seq: 7, flags: 0, entries: [lock(7, 3), write(9, 3)] })).toThrow(/entry 1 has seq 9 lun 2; entries are consecutive/);
    expect(() => encodeBatch([encodeFrame(lock(7, 3)), encodeFrame(write(9, 3))], 0)).toThrow(/frame 1 is not entry seq 8 of LUN 2/);
    expect(() => encodeFrame({ type: FrameType.Batch, lun: 2, seq: 7, flags: 0, entries: [{ ...lock(7, 3), flags: FrameFlag.Retransmit }] })).toThrow(/Retransmit \(0x02\) is the BATCH's flag/);
    expect(() => encodeFrame({ type: FrameType.Batch, lun: 2, seq: 7, flags: 0, entries: [] })).toThrow(/count \(entries\) = 0 is not allowed/);
  });

  describe('hostile batches: one bad entry makes the whole frame ML_ERR_FRAME_FIELD, naming the entry and what is allowed', () => {
    const w = (f: Record<string, number> = {}) => subEntry({ kind: FrameType.Write, lockId: 1, ...f }, new Uint8Array([1]));
    const cases: [string, Uint8Array, RegExp][] = [
      ['count 0', batchBytes(0, [w()]), /count \(entries\) = 0 is not allowed; a BATCH carries 1 to 4096 entries/],
      ['count above the maximum', batchBytes(BATCH_ENTRIES_MAX + 1, [w()]), /count \(entries\) = 4097 is not allowed/],
      ['empty payload', batchBytes(1, []), /payloadLength = 0 is not allowed; a BATCH carries its entries/],
      ['fewer entries than count', batchBytes(2, [w()]), /entry 1 \(seq 11\) = at byte 27 of 27 is not allowed; the payload ends before its kind/],
      ['more bytes than count entries', batchBytes(1, [w(), w()]), /payloadLength = 54 is not allowed; its 1 entries take 27 bytes/],
      ['unknown kind', batchBytes(1, [subEntry({ kind: FrameType.Ack, lockId: 1 })]), /entry 0 \(seq 10\) kind = 5 is not allowed; allowed: 2 \(LOCK\), 3 \(WRITE\), 4 \(UNLOCK\)/],
      ['a WRITE whose length runs past the payload', batchBytes(1, [w({ length: 5 })]), /entry 0 \(seq 10\) length = 5 is not allowed; allowed: at most the 1 bytes left/],
      ['a truncated LOCK', batchBytes(1, [subEntry({ kind: FrameType.Lock, lockId: 1, count: 1, mode: 1 }).subarray(0, 12)]), /the payload ends before a LOCK entry does/],
      ['an entry flagged Retransmit', batchBytes(1, [w({ flags: FrameFlag.Retransmit })]), /entry 0 \(seq 10\) flags = 0x02 is not allowed; Retransmit \(0x02\) is the BATCH's flag/],
      ['an empty WRITE', batchBytes(1, [subEntry({ kind: FrameType.Write, lockId: 1 })]), /entry 0 \(seq 10\) payloadLength \(data.length\) = 0 is not allowed/],
      ['lock id 0', batchBytes(1, [w({ lockId: 0 })]), /entry 0 \(seq 10\) lockId = 0 is not allowed; allowed: at least 1/],
      ['ImpliedLock on a LOCK', batchBytes(1, [subEntry({ kind: FrameType.Lock, flags: FrameFlag.ImpliedLock, lockId: 1, count: 1, mode: 1 })]), /entry 0 \(seq 10\) flags = 0x20 is not allowed; allowed bits: 0x01 \(GrantWanted\), 0x02 \(Retransmit\)/],
      ['a LOCK of no sectors', batchBytes(1, [subEntry({ kind: FrameType.Lock, lockId: 1, count: 0, mode: 1 })]), /entry 0 \(seq 10\) count = 0 is not allowed/],
      ['a LOCK range past 2^53', batchBytes(1, [subEntry({ kind: FrameType.Lock, lockId: 1, count: 2, mode: 1, lba: Number.MAX_SAFE_INTEGER - 1 })]), /entry 0 \(seq 10\) lba \+ count/],
      ['a sequence number past 2^53', batchBytes(2, [w(), w()], { seq: Number.MAX_SAFE_INTEGER }), /seq \+ count - 1 = 9007199254740991 \+ 2 - 1 is not allowed/],
      ['lba set in the header', wireFrame({ type: FrameType.Batch, seq: 1, count: 1, lba: 3 }, w()), /BATCH seq 1 lun 0: lba = 3 is not allowed; this frame type does not use the field/],
      ['an unknown flag on the batch', batchBytes(1, [w()], { flags: FrameFlag.Ordered }), /flags = 0x10 is not allowed; allowed bits: 0x02 \(Retransmit\)/],
    ];
    it.each(cases)('%s', (_name, bytes, message) => {
      expect(fieldError(bytes).message).toMatch(message);
    });
  });

  it('a BATCH larger than payloadBytesMax is dropped as it streams past, like a WRITE', () => {
    const b: BatchFrame = { type: FrameType.Batch, lun: 0, seq: 1, flags: 0, entries: [{ ...(write(1, 1) as Extract<StreamFrame, { type: FrameType.Write }>), lun: 0, data: new Uint8Array(300) }] };
    const { decoder, frames, errors } = recorder({ payloadBytesMax: 256 });
    for (const chunk of split(concat([encodeFrame(b), encodeFrame(unlock(2, 1))]), [10, 100, 200])) decoder.push(chunk);
    decoder.end();
    expect(errors.map((e) => e.code)).toEqual(['ML_ERR_FRAME_TOO_LARGE']);
    expect(frames).toEqual([unlock(2, 1)]);
    expect(decoder.reassemblyCapacity).toBeLessThanOrEqual(256 + 52);
  });

  it('sub-entry bytes of any value under sound CRCs: only FrameErrors, and every batch yielded obeys the rules', () => {
    const arb = fc.tuple(fc.integer({ min: 0, max: 20 }), fc.array(fc.oneof(
      fc.uint8Array({ minLength: 0, maxLength: 40 }),
      fc.record({ kind: fc.integer({ min: 0, max: 6 }), flags: fc.integer({ min: 0, max: 255 }), lockId: fc.integer({ min: 0, max: 3 }), lba: fc.maxSafeNat(),
        count: fc.integer({ min: 0, max: 3 }), mode: fc.integer({ min: 0, max: 3 }), tag: fc.nat(), length: fc.integer({ min: 0, max: 40 }) })
        .chain((f) => fc.uint8Array({ minLength: 0, maxLength: 8 }).map((d) => subEntry(f, d))),
    ), { maxLength: 6 }), fc.maxSafeNat());
    fc.assert(
      fc.property(arb, ([count, parts, seq]) => {
        const bytes = batchBytes(count, parts, { seq: Math.max(1, seq) });
        let frame: Frame;
        try {
          frame = decodeFrame(bytes, { payloadBytesMax: 4096 });
        } catch (err) {
          expect(err).toBeInstanceOf(FrameError);
          expect(FRAME_ERROR_CODES).toContain((err as FrameError).code);
          return;
        }
        // Whatever got through re-encodes to the same bytes: it is a frame our own encoder accepts.
        expect(frame.type).toBe(FrameType.Batch);
        const b = frame as BatchFrame;
        expect(b.entries.every((e, i) => isStreamFrame(e) && e.seq === b.seq + i && (e.flags & FrameFlag.Retransmit) === 0)).toBe(true);
        expect(encodeFrame(frame)).toEqual(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it('mixed streams of frames and batches split anywhere decode to the same frames', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(batch(200), frameArb(100)), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), (sent, cuts) => {
        const { decoder, frames, errors } = recorder();
        for (const chunk of split(concat(sent.map(encodeFrame)), cuts)) decoder.push(chunk);
        decoder.end();
        expect(errors).toEqual([]);
        expect(frames).toEqual(sent);
      }),
      { numRuns: 200 },
    );
  });
});
