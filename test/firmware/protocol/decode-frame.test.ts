import { describe, expect, it } from 'vitest';
import {
  FEATURE_BITS,
  FrameFlag,
  FrameType,
  LockMode,
  NakReason,
  RejectAction,
  RejectReason,
  decodeFrame,
  encodeFrame,
} from '../../../firmware/protocol/index.ts';
import type { Frame, FrameErrorCode ,
  FrameError} from '../../../firmware/protocol/index.ts';
import { MAX, concat, decodeError, sealedHeader, wireFrame } from './helpers.ts';

const write: Frame = { type: FrameType.Write, lun: 3, seq: 42, flags: 0, lockId: 9, lba: 100, tag: 5, data: new Uint8Array([1, 2, 3, 4]) };


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

  it('HELLO: its payload round-trips, and a decoder with a tiny payloadBytesMax (for WRITE data) still takes HELLO', () => {
    const hello: Frame = {
      type: FrameType.Hello, lun: 0, seq: 3, flags: 0, controllerId: 1, sessionId: 2, windowBytes: 1024, windowEntries: 16, policy: 0, locksWindow: 0xfffffffe,
      features: 0x80000003, requiredFeatures: 0x80000001, connection: 1, connections: 2, peerSession: MAX, batchBytesMax: 1 << 20,
    };
    const bytes = encodeFrame(hello);
    expect(bytes.length).toBe(48 + 28 + 4);
    expect(decodeFrame(bytes, { payloadBytesMax: 0 })).toEqual(hello);
    expect(decodeError(wireFrame({ type: FrameType.Hello, lba: 1 }, new Uint8Array(257)), 0).code).toBe('ML_ERR_FRAME_TOO_LARGE');
  });

  it('HELLO: without the batch feature it may leave batchBytesMax out (24 bytes, as version 2 began); with it, it may not', () => {
    const plain: Frame = {
      type: FrameType.Hello, lun: 0, seq: 0, flags: 0, controllerId: 1, sessionId: 2, windowBytes: 1024, windowEntries: 16, policy: 0, locksWindow: 1,
      features: FEATURE_BITS.impliedLocks, requiredFeatures: 0, connection: 0, connections: 1, peerSession: 0,
    };
    expect(encodeFrame(plain).length).toBe(48 + 24 + 4);
    expect(decodeFrame(encodeFrame(plain))).toEqual(plain);
    const noField = wireFrame({ type: FrameType.Hello, lba: 7 }, helloPayload({ features: FEATURE_BITS.batch }));
    expect(decodeError(noField).message).toMatch(/batchBytesMax = absent is not allowed; a HELLO advertising the batch feature carries batchBytesMax/);
    const tiny = wireFrame({ type: FrameType.Hello, lba: 7 }, concat([helloPayload({ features: FEATURE_BITS.batch }), new Uint8Array([0, 0, 0, 63])]));
    expect(decodeError(tiny).message).toMatch(/batchBytesMax = 63 is not allowed; .* from 64 to 4294967295/);
    expect(() => encodeFrame({ ...plain, features: FEATURE_BITS.batch })).toThrow(/batchBytesMax = absent is not allowed/);
  });

  it('HELLO: payload bytes beyond this version\'s fields (a later feature\'s) are accepted and ignored', () => {
    const longer = concat([helloPayload({}), new Uint8Array([9, 9, 9, 9])]);
    const f = decodeFrame(wireFrame({ type: FrameType.Hello, lba: 7 }, longer), { payloadBytesMax: 0 });
    expect(f).toMatchObject({ type: FrameType.Hello, sessionId: 7, locksWindow: 1, connections: 1 });
  });

  it('HEARTBEAT round-trips, Probe flag included, whatever the payloadBytesMax', () => {
    const hb: Frame = { type: FrameType.Heartbeat, lun: 0, seq: 12, flags: FrameFlag.Probe, controllerId: 7, sessionId: 99, confirmedSeq: 40, peerSession: 5 };
    const bytes = encodeFrame(hb);
    expect(bytes.length).toBe(48 + 8 + 4);
    expect(bytes[3]).toBe(9);
    expect(decodeFrame(bytes, { payloadBytesMax: 0 })).toEqual(hb);
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

  it('ML_ERR_FRAME_VERSION: a sound header of another protocol version is named as such, with its frame', () => {
    const err = expectError(wireFrame({ version: 1, type: FrameType.Hello, seq: 5, lun: 3 }), 'ML_ERR_FRAME_VERSION',
      /HELLO seq 5 lun 3 speaks protocol version 1; this firmware speaks version 2 \(the peer runs other firmware: upgrade one side\)/);
    expect([err.type, err.seq, err.lun]).toEqual([FrameType.Hello, 5, 3]);
  });

  it('ML_ERR_FRAME_HEADER_CRC: a header byte changed', () => {
    const bytes = encodeFrame(write);
    bytes[20]! ^= 0x10;
    expectError(bytes, 'ML_ERR_FRAME_HEADER_CRC', /header CRC32C mismatch: the header carries 0x[0-9a-f]{8} but its first 44 bytes give 0x[0-9a-f]{8}/);
  });

  it('ML_ERR_FRAME_TYPE: an unknown type, named with what is known', () => {
    const err = expectError(wireFrame({ type: 10, seq: 4, lun: 2 }), 'ML_ERR_FRAME_TYPE',
      /unknown frame type 10 \(seq 4 lun 2\); known types are 1 \(HELLO\), .*9 \(HEARTBEAT\)/);
    expect([err.type, err.seq, err.lun]).toEqual([10, 4, 2]);
  });

  it('ML_ERR_FRAME_TOO_LARGE: a payload its type never carries is judged from the header, never waited for', () => {
    const lock = encodeFrame({ type: FrameType.Lock, lun: 0, seq: 1, flags: 0, lockId: 1, lba: 0, count: 8, mode: LockMode.Write });
    expectError(wireFrame({ type: FrameType.Lock, seq: 1, lockId: 1, count: 8, code: LockMode.Write }, new Uint8Array(4)), 'ML_ERR_FRAME_TOO_LARGE',
      /LOCK seq 1 lun 0 declares a payload of 4 bytes; LOCK frames carry at most 0 bytes/);
    expectError(sealedHeader({ type: FrameType.Ack, seq: 1, payloadLength: 1 << 20 }), 'ML_ERR_FRAME_TOO_LARGE', /ACK frames carry at most 0 bytes/);
    expectError(sealedHeader({ type: FrameType.Heartbeat, seq: 1, lba: 1, payloadLength: 33 }), 'ML_ERR_FRAME_TOO_LARGE', /HEARTBEAT frames carry at most 32 bytes/);
    expect(decodeFrame(lock).type).toBe(FrameType.Lock);
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

interface HelloPayload {
  locksWindow: number;
  features: number;
  required: number;
  connection: number;
  connections: number;
  peerSession: bigint;
}

/** HELLO's payload, big-endian, from the layout table in frame.ts (defaults: a minimal valid one). */
function helloPayload(p: Partial<HelloPayload>): Uint8Array {
  const out = new Uint8Array(24);
  const v = new DataView(out.buffer);
  v.setUint32(0, p.locksWindow ?? 1);
  v.setUint32(4, p.features ?? 0);
  v.setUint32(8, p.required ?? 0);
  v.setUint16(12, p.connection ?? 0);
  v.setUint16(14, p.connections ?? 1);
  v.setBigUint64(16, p.peerSession ?? 0n);
  return out;
}
const HELLO = { type: FrameType.Hello, lba: 1 };
const HEARTBEAT = { type: FrameType.Heartbeat, seq: 1, lba: 1 };

describe('decodeFrame: ML_ERR_FRAME_FIELD names the field, its value and what is allowed', () => {
  const lock = { type: FrameType.Lock, seq: 1, lockId: 1, count: 1, code: LockMode.Write };
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['unknown flag bit', wireFrame({ type: FrameType.Ack, flags: 0x40 }), /ACK seq 0 lun 0: flags = 0x40 is not allowed; this frame type defines no flags/],
    ['GrantWanted on WRITE', wireFrame({ type: FrameType.Write, seq: 1, lockId: 1, flags: 1 }, new Uint8Array(1)), /flags = 0x01 is not allowed; allowed bits: 0x02 \(Retransmit\), 0x10 \(Ordered\)/],
    ['seq above 2^53-1', wireFrame({ ...lock, seq: 2n ** 64n - 1n }), /seq = a value above 2\^53-1 is not allowed; allowed: 1 to 2\^53-1/],
    ['lba above 2^53-1', wireFrame({ ...lock, lba: 2n ** 53n }), /lba = a value above 2\^53-1 is not allowed; allowed: 0 to 2\^53-1/],
    ['stream seq 0', wireFrame({ ...lock, seq: 0 }), /LOCK seq 0 lun 0: seq = 0 is not allowed; allowed: 1 to 2\^53-1/],
    ['LOCK lockId 0', wireFrame({ ...lock, lockId: 0 }), /lockId = 0 is not allowed; allowed: at least 1/],
    ['LOCK count 0', wireFrame({ ...lock, count: 0 }), /count = 0 is not allowed; allowed: at least 1/],
    ['LOCK range past 2^53-1', wireFrame({ ...lock, lba: MAX - 1, count: 2 }), /lba \+ count = 9007199254740990 \+ 2 is not allowed/],
    ['LOCK mode unknown', wireFrame({ ...lock, code: 3 }), /mode = 3 is not allowed; allowed: 1 \(Write\), 2 \(Read\)/],
    ['LOCK tag set', wireFrame({ ...lock, tag: 5 }), /tag = 5 is not allowed; this frame type does not use the field, so it must be 0/],
    ['empty WRITE', wireFrame({ type: FrameType.Write, seq: 1, lockId: 1 }), /payloadLength \(data.length\) = 0 is not allowed; a WRITE carries at least 1 byte/],
    ['WRITE tokens back reaching past entry 1', wireFrame({ type: FrameType.Write, seq: 8, lockId: 1, count: 8 }, new Uint8Array(1)), /count \(tokens back, as a distance\) = 8 is not allowed; allowed: 0 \(none\) to seq - 1 \(7\)/],
    ['ACK tokens beyond what it confirms', wireFrame({ type: FrameType.Ack, seq: 5, tag: 6 }), /tag \(tokens\) = 6 is not allowed; allowed: at most seq \(5\)/],
    ['WRITE lockId 0', wireFrame({ type: FrameType.Write, seq: 1 }, new Uint8Array(1)), /lockId = 0 is not allowed/],
    ['UNLOCK lba set', wireFrame({ type: FrameType.Unlock, seq: 1, lockId: 1, lba: 1 }), /UNLOCK seq 1 lun 0: lba = 1 is not allowed/],
    ['ACK lockId set', wireFrame({ type: FrameType.Ack, lockId: 3 }), /lockId = 3 is not allowed; this frame type does not use the field/],
    ['LOCK_GRANTED count set', wireFrame({ type: FrameType.LockGranted, seq: 1, lockId: 1, count: 1 }), /count = 1 is not allowed/],
    ['LOCK_REJECTED reason unknown', wireFrame({ type: FrameType.LockRejected, seq: 1, lockId: 1, code: 4, count: 1 }), /reason = 4 is not allowed; allowed: 1 \(LocalLock\), 2 \(MirrorLock\), 3 \(TableFull\)/],
    ['LOCK_REJECTED action unknown', wireFrame({ type: FrameType.LockRejected, seq: 1, lockId: 1, code: 1, count: 3 }), /action = 3 is not allowed; allowed: 1 \(Held\), 2 \(Discarded\)/],
    ['NAK reason unknown', wireFrame({ type: FrameType.Nak, seq: 1, code: 9 }), /reason = 9 is not allowed; allowed: 1 \(Corrupt\), .*7 \(LockInUse\), 8 \(LocksExceeded\)/],
    ['NAK seq 0', wireFrame({ type: FrameType.Nak, code: 1 }), /seq = 0 is not allowed/],
    ['HELLO policy unknown', wireFrame({ ...HELLO, code: 2 }, helloPayload({})), /HELLO seq 0 lun 0: policy = 2 is not allowed; allowed: 0 \(HaltResume\), 1 \(Retransmit\)/],
    ['HELLO sessionId above 2^53-1', wireFrame({ ...HELLO, lba: 2n ** 60n }, helloPayload({})), /sessionId = a value above 2\^53-1/],
    ['HELLO sessionId 0', wireFrame({ ...HELLO, lba: 0 }, helloPayload({})), /sessionId = 0 is not allowed; allowed: 1 to 2\^53-1/],
    ['HELLO without its payload', wireFrame(HELLO), /payloadLength = 0 is not allowed; a HELLO carries 24 to 256 bytes of payload/],
    ['HELLO with a short payload', wireFrame(HELLO, new Uint8Array(8)), /payloadLength = 8 is not allowed; a HELLO carries 24 to 256 bytes/],
    ['HELLO locksWindow 0', wireFrame(HELLO, helloPayload({ locksWindow: 0 })), /HELLO seq 0 lun 0: locksWindow = 0 is not allowed; allowed: 1 to 4294967295/],
    ['HELLO requires a feature it lacks', wireFrame(HELLO, helloPayload({ features: 1, required: 3 })), /requiredFeatures = 3 is not allowed; allowed: a subset of features/],
    ['HELLO connections 0', wireFrame(HELLO, helloPayload({ connections: 0 })), /connections = 0 is not allowed; allowed: 1 to 65535/],
    ['HELLO connection past connections', wireFrame(HELLO, helloPayload({ connection: 2, connections: 2 })), /connection = 2 is not allowed; allowed: 0 to connections - 1 \(1\)/],
    ['HELLO peerSession above 2^53-1', wireFrame(HELLO, helloPayload({ peerSession: 2n ** 63n })), /peerSession = a value above 2\^53-1/],
    ['HEARTBEAT counter 0', wireFrame({ ...HEARTBEAT, seq: 0 }, new Uint8Array(8)), /HEARTBEAT seq 0 lun 0: counter = 0 is not allowed; allowed: 1 to 2\^53-1/],
    ['HEARTBEAT sessionId 0', wireFrame({ ...HEARTBEAT, lba: 0 }, new Uint8Array(8)), /sessionId = 0 is not allowed/],
    ['HEARTBEAT GrantWanted', wireFrame({ ...HEARTBEAT, flags: 1 }, new Uint8Array(8)), /flags = 0x01 is not allowed; allowed bits: 0x04 \(Probe\)/],
    ['HEARTBEAT count set', wireFrame({ ...HEARTBEAT, count: 1 }, new Uint8Array(8)), /count = 1 is not allowed/],
    ['HEARTBEAT without its payload', wireFrame(HEARTBEAT), /payloadLength = 0 is not allowed; a HEARTBEAT carries 8 bytes \(its peerSession\), or 32 with feature tags/],
    ['HEARTBEAT payload neither 8 nor 32 bytes', wireFrame(HEARTBEAT, new Uint8Array(16)), /payloadLength = 16 is not allowed; a HEARTBEAT carries 8 bytes/],
    ['HEARTBEAT tokens beyond what it confirms', wireFrame({ ...HEARTBEAT, tag: 3 }, new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, ...new Array<number>(16).fill(0)])),
      /tokens = 4 is not allowed; allowed: 0 to confirmedSeq \(3\)/],
    ['HEARTBEAT peerSession above 2^53-1', wireFrame(HEARTBEAT, new Uint8Array([0xff, 0, 0, 0, 0, 0, 0, 0])), /peerSession = a value above 2\^53-1/],
  ];
  it.each(cases)('%s', (_name, bytes, message) => {
    const err = expectError(bytes, 'ML_ERR_FRAME_FIELD', message);
    expect(err.type).toBe(bytes[3]);
  });
});
