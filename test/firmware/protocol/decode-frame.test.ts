import { describe, expect, it } from 'vitest';
import {
  FrameError,
  FrameType,
  LockMode,
  NakReason,
  RejectAction,
  RejectReason,
  decodeFrame,
  encodeFrame,
} from '../../../firmware/protocol/index.ts';
import type { Frame, FrameErrorCode } from '../../../firmware/protocol/index.ts';
import { MAX, concat, sealedHeader, wireFrame } from './helpers.ts';

const write: Frame = { type: FrameType.Write, lun: 3, seq: 42, flags: 0, lockId: 9, lba: 100, tag: 5, data: new Uint8Array([1, 2, 3, 4]) };

function decodeError(bytes: Uint8Array, payloadBytesMax?: number): FrameError {
  try {
    decodeFrame(bytes, payloadBytesMax === undefined ? {} : { payloadBytesMax });
  } catch (err) {
    expect(err).toBeInstanceOf(FrameError);
    return err as FrameError;
  }
  throw new Error('decodeFrame accepted the bytes');
}

function expectError(bytes: Uint8Array, code: FrameErrorCode, message: RegExp, payloadBytesMax?: number): FrameError {
  const err = decodeError(bytes, payloadBytesMax);
  expect(err.code).toBe(code);
  expect(err.message).toMatch(message);
  expect(err.name).toBe('FrameError');
  return err;
}

describe('decodeFrame', () => {
  it('round-trips LOCK_REJECTED with reason TableFull (3)', () => {
    const rejected: Frame = { type: FrameType.LockRejected, lun: 2, seq: 7, flags: 0, lockId: 4, reason: RejectReason.TableFull, action: RejectAction.Discarded };
    const bytes = encodeFrame(rejected);
    expect(bytes[5]).toBe(3);
    expect(decodeFrame(bytes)).toEqual(rejected);
  });

  it('HELLO: locksWindow round-trips, and a decoder with a tiny payloadBytesMax (for WRITE data) still takes HELLO', () => {
    const hello: Frame = {
      type: FrameType.Hello, lun: 0, seq: 3, flags: 0, controllerId: 1, sessionId: 2, windowBytes: 1024, windowEntries: 16, policy: 0, locksWindow: 0xfffffffe,
    };
    const bytes = encodeFrame(hello);
    expect(bytes.length).toBe(56);
    expect(decodeFrame(bytes, { payloadBytesMax: 0 })).toEqual(hello);
    expect(decodeError(wireFrame({ type: FrameType.Hello }, new Uint8Array(5)), 0).code).toBe('ML_ERR_FRAME_TOO_LARGE');
  });

  it('round-trips NAK with reasons LockInUse (7) and LocksExceeded (8)', () => {
    const exceeded: Frame = { type: FrameType.Nak, lun: 0, seq: 2, flags: 0, reason: NakReason.LocksExceeded };
    expect(decodeFrame(encodeFrame(exceeded))).toEqual(exceeded);
  });

  it('round-trips NAK with reason LockInUse (7)', () => {
    const nak: Frame = { type: FrameType.Nak, lun: 1, seq: 9, flags: 0, reason: NakReason.LockInUse };
    const bytes = encodeFrame(nak);
    expect(bytes[5]).toBe(7);
    expect(decodeFrame(bytes)).toEqual(nak);
  });

  it('decodes a frame and gives a WRITE a view of the input, not a copy', () => {
    const bytes = encodeFrame(write);
    const frame = decodeFrame(bytes);
    expect(frame).toEqual(write);
    expect(frame.type === FrameType.Write && frame.data.buffer).toBe(bytes.buffer);
  });

  it('ML_ERR_FRAME_MAGIC: garbage before the magic, with the count', () => {
    const err = expectError(concat([new Uint8Array([1, 2, 3]), encodeFrame(write)]), 'ML_ERR_FRAME_MAGIC',
      /skipped 3 bytes that did not start a frame; every frame starts with the magic 0x4D4C \("ML"\)/);
    expect(err.skippedBytes).toBe(3);
    expect(decodeError(new Uint8Array([0x4c])).skippedBytes).toBe(1);
  });

  it('ML_ERR_FRAME_VERSION: another protocol version', () => {
    expectError(wireFrame({ version: 2 }), 'ML_ERR_FRAME_VERSION', /protocol version 2; this decoder accepts only version 1/);
  });

  it('ML_ERR_FRAME_HEADER_CRC: a header byte changed', () => {
    const bytes = encodeFrame(write);
    bytes[20]! ^= 0x10;
    expectError(bytes, 'ML_ERR_FRAME_HEADER_CRC', /header CRC32C mismatch: the header carries 0x[0-9a-f]{8} but its first 44 bytes give 0x[0-9a-f]{8}/);
  });

  it('ML_ERR_FRAME_TYPE: an unknown type, named with what is known', () => {
    const err = expectError(wireFrame({ type: 9, seq: 4, lun: 2 }), 'ML_ERR_FRAME_TYPE',
      /unknown frame type 9 \(seq 4 lun 2\); known types are 1 \(HELLO\), .*8 \(NAK\)/);
    expect([err.type, err.seq, err.lun]).toEqual([9, 4, 2]);
  });

  it('ML_ERR_FRAME_TOO_LARGE: payloadLength beyond payloadBytesMax, even a declared 4 GiB', () => {
    const big = { ...write, data: new Uint8Array(300) };
    const err = expectError(encodeFrame(big), 'ML_ERR_FRAME_TOO_LARGE',
      /WRITE seq 42 lun 3 declares a payload of 300 bytes; this decoder accepts at most 256 \(payloadBytesMax\)/, 256);
    expect(err.seq).toBe(42);
    expectError(sealedHeader({ type: FrameType.Write, seq: 1, payloadLength: 0xffffffff }), 'ML_ERR_FRAME_TOO_LARGE',
      /4294967295 bytes; this decoder accepts at most 1048576/);
  });

  it('ML_ERR_FRAME_CRC: a payload byte changed; the error names the frame', () => {
    const bytes = encodeFrame(write);
    bytes[49]! ^= 0x01;
    const err = expectError(bytes, 'ML_ERR_FRAME_CRC',
      /WRITE seq 42 lun 3: frame CRC32C mismatch \(the frame carries 0x[0-9a-f]{8}, its bytes give 0x[0-9a-f]{8}\)/);
    expect([err.type, err.seq, err.lun]).toEqual([FrameType.Write, 42, 3]);
  });

  it('ML_ERR_FRAME_TRUNCATED: the input ends mid-header or mid-frame', () => {
    const bytes = encodeFrame(write);
    expectError(bytes.subarray(0, bytes.length - 1), 'ML_ERR_FRAME_TRUNCATED', /input ended 55 bytes into a frame that needs 56/);
    expectError(bytes.subarray(0, 10), 'ML_ERR_FRAME_TRUNCATED', /input ended 10 bytes into a frame that needs at least 48 for the header/);
    expectError(new Uint8Array(0), 'ML_ERR_FRAME_TRUNCATED', /input ended 0 bytes into/);
    expectError(new Uint8Array([0x4d]), 'ML_ERR_FRAME_TRUNCATED', /input ended 1 byte into/);
  });

  it('ML_ERR_FRAME_FIELD: bytes after the declared frame', () => {
    expectError(concat([encodeFrame(write), new Uint8Array(2)]), 'ML_ERR_FRAME_FIELD',
      /WRITE seq 42 lun 3: payloadLength = 4 is not allowed; it declares a 56-byte WRITE frame but 58 bytes were given/);
  });
});

/** HELLO's payload: its locksWindow, big-endian. */
const locks = (n: number): Uint8Array => new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);

describe('decodeFrame: ML_ERR_FRAME_FIELD names the field, its value and what is allowed', () => {
  const lock = { type: FrameType.Lock, seq: 1, lockId: 1, count: 1, code: LockMode.Write };
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['unknown flag bit', wireFrame({ type: FrameType.Ack, flags: 0x40 }), /ACK seq 0 lun 0: flags = 0x40 is not allowed; this frame type defines no flags/],
    ['GrantWanted on WRITE', wireFrame({ type: FrameType.Write, seq: 1, lockId: 1, flags: 1 }, new Uint8Array(1)), /flags = 0x01 is not allowed; allowed bits: 0x02 \(Retransmit\)/],
    ['seq above 2^53-1', wireFrame({ ...lock, seq: 2n ** 64n - 1n }), /seq = a value above 2\^53-1 is not allowed; allowed: 1 to 2\^53-1/],
    ['lba above 2^53-1', wireFrame({ ...lock, lba: 2n ** 53n }), /lba = a value above 2\^53-1 is not allowed; allowed: 0 to 2\^53-1/],
    ['stream seq 0', wireFrame({ ...lock, seq: 0 }), /LOCK seq 0 lun 0: seq = 0 is not allowed; allowed: 1 to 2\^53-1/],
    ['LOCK lockId 0', wireFrame({ ...lock, lockId: 0 }), /lockId = 0 is not allowed; allowed: at least 1/],
    ['LOCK count 0', wireFrame({ ...lock, count: 0 }), /count = 0 is not allowed; allowed: at least 1/],
    ['LOCK range past 2^53-1', wireFrame({ ...lock, lba: MAX - 1, count: 2 }), /lba \+ count = 9007199254740990 \+ 2 is not allowed/],
    ['LOCK mode unknown', wireFrame({ ...lock, code: 3 }), /mode = 3 is not allowed; allowed: 1 \(Write\), 2 \(Read\)/],
    ['LOCK tag set', wireFrame({ ...lock, tag: 5 }), /tag = 5 is not allowed; this frame type does not use the field, so it must be 0/],
    ['LOCK with a payload', wireFrame({ ...lock }, new Uint8Array(4)), /payloadLength = 4 is not allowed; only WRITE frames carry a payload/],
    ['empty WRITE', wireFrame({ type: FrameType.Write, seq: 1, lockId: 1 }), /payloadLength \(data.length\) = 0 is not allowed; a WRITE carries at least 1 byte/],
    ['WRITE count set', wireFrame({ type: FrameType.Write, seq: 1, lockId: 1, count: 8 }, new Uint8Array(1)), /count = 8 is not allowed/],
    ['WRITE lockId 0', wireFrame({ type: FrameType.Write, seq: 1 }, new Uint8Array(1)), /lockId = 0 is not allowed/],
    ['UNLOCK lba set', wireFrame({ type: FrameType.Unlock, seq: 1, lockId: 1, lba: 1 }), /UNLOCK seq 1 lun 0: lba = 1 is not allowed/],
    ['ACK lockId set', wireFrame({ type: FrameType.Ack, lockId: 3 }), /lockId = 3 is not allowed; this frame type does not use the field/],
    ['LOCK_GRANTED count set', wireFrame({ type: FrameType.LockGranted, seq: 1, lockId: 1, count: 1 }), /count = 1 is not allowed/],
    ['LOCK_REJECTED reason unknown', wireFrame({ type: FrameType.LockRejected, seq: 1, lockId: 1, code: 4, count: 1 }), /reason = 4 is not allowed; allowed: 1 \(LocalLock\), 2 \(MirrorLock\), 3 \(TableFull\)/],
    ['LOCK_REJECTED action unknown', wireFrame({ type: FrameType.LockRejected, seq: 1, lockId: 1, code: 1, count: 3 }), /action = 3 is not allowed; allowed: 1 \(Held\), 2 \(Discarded\)/],
    ['NAK reason unknown', wireFrame({ type: FrameType.Nak, seq: 1, code: 9 }), /reason = 9 is not allowed; allowed: 1 \(Corrupt\), .*7 \(LockInUse\), 8 \(LocksExceeded\)/],
    ['NAK seq 0', wireFrame({ type: FrameType.Nak, code: 1 }), /seq = 0 is not allowed/],
    ['HELLO policy unknown', wireFrame({ type: FrameType.Hello, code: 2 }, locks(1)), /HELLO seq 0 lun 0: policy = 2 is not allowed; allowed: 0 \(HaltResume\), 1 \(Retransmit\)/],
    ['HELLO sessionId above 2^53-1', wireFrame({ type: FrameType.Hello, lba: 2n ** 60n }, locks(1)), /sessionId = a value above 2\^53-1/],
    ['HELLO without its payload', wireFrame({ type: FrameType.Hello }), /payloadLength = 0 is not allowed; a HELLO carries exactly 4 bytes \(its locksWindow\)/],
    ['HELLO with a longer payload', wireFrame({ type: FrameType.Hello }, new Uint8Array(8)), /payloadLength = 8 is not allowed; a HELLO carries exactly 4 bytes/],
    ['HELLO locksWindow 0', wireFrame({ type: FrameType.Hello }, locks(0)), /HELLO seq 0 lun 0: locksWindow = 0 is not allowed; allowed: 1 to 4294967295/],
  ];
  it.each(cases)('%s', (_name, bytes, message) => {
    const err = expectError(bytes, 'ML_ERR_FRAME_FIELD', message);
    expect(err.type).toBe(bytes[3]);
  });
});
