import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../../firmware/errors.ts';
import {
  FRAME_OVERHEAD_BYTES,
  FrameType,
  LockMode,
  LockRejectPolicy,
  NakReason,
  RejectAction,
  RejectReason,
  encodeFrame,
  encodedLength,
} from '../../../firmware/protocol/index.ts';
import type { Frame } from '../../../firmware/protocol/index.ts';
import { MAX, wireFrame } from './helpers.ts';

const base = { lun: 7, flags: 0 };

describe('encodeFrame: layout (checked against an independent builder of the frame.ts table)', () => {
  const cases: Array<[string, Frame, Parameters<typeof wireFrame>[0], Uint8Array?]> = [
    ['HELLO maps sessionId/windowBytes/controllerId/windowEntries/policy onto lba/tag/lockId/count/code, the rest into its 24-byte payload',
      { ...base, type: FrameType.Hello, seq: 9, controllerId: 0xdeadbeef, sessionId: MAX, windowBytes: 2 ** 40 + 3,
        windowEntries: 4096, policy: LockRejectPolicy.Retransmit, locksWindow: 0x01020304,
        features: 0x0a0b0c09, requiredFeatures: 0x08000001, connection: 0x0102, connections: 0x0304, peerSession: 2 ** 40 + 5 },
      { type: 1, lun: 7, seq: 9, lba: MAX, tag: 2 ** 40 + 3, lockId: 0xdeadbeef, count: 4096, code: 1 },
      new Uint8Array([1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x09, 0x08, 0, 0, 1, 1, 2, 3, 4, 0, 0, 1, 0, 0, 0, 0, 5])],
    ['HEARTBEAT maps counter/sessionId/confirmedSeq/controllerId onto seq/lba/tag/lockId, peerSession into its 8-byte payload',
      { ...base, type: FrameType.Heartbeat, flags: 4, seq: 3, controllerId: 9, sessionId: 2 ** 33, confirmedSeq: 17, peerSession: 258 },
      { type: 9, lun: 7, flags: 4, seq: 3, lba: 2 ** 33, tag: 17, lockId: 9 }, new Uint8Array([0, 0, 0, 0, 0, 0, 1, 2])],
    ['LOCK', { ...base, type: FrameType.Lock, seq: 1, flags: 3, lockId: 5, lba: 2 ** 33, count: 8, mode: LockMode.Read },
      { type: 2, lun: 7, seq: 1, flags: 3, lockId: 5, lba: 2 ** 33, count: 8, code: 2 }],
    ['WRITE carries its data as the payload',
      { ...base, type: FrameType.Write, seq: 2, lockId: 5, lba: 16, tag: 77, data: new Uint8Array([9, 8, 7]) },
      { type: 3, lun: 7, seq: 2, lockId: 5, lba: 16, tag: 77 }, new Uint8Array([9, 8, 7])],
    ['UNLOCK', { ...base, type: FrameType.Unlock, seq: 3, lockId: 5 }, { type: 4, lun: 7, seq: 3, lockId: 5 }],
    ['ACK', { ...base, type: FrameType.Ack, seq: 0 }, { type: 5, lun: 7 }],
    ['LOCK_GRANTED', { ...base, type: FrameType.LockGranted, seq: 1, lockId: 5 }, { type: 6, lun: 7, seq: 1, lockId: 5 }],
    ['LOCK_REJECTED puts reason in code and action in count',
      { ...base, type: FrameType.LockRejected, seq: 1, lockId: 5, reason: RejectReason.MirrorLock, action: RejectAction.Discarded },
      { type: 7, lun: 7, seq: 1, lockId: 5, code: 2, count: 2 }],
    ['LOCK_REJECTED for a full lock table (reason 3, TableFull)',
      { ...base, type: FrameType.LockRejected, seq: 2, lockId: 6, reason: RejectReason.TableFull, action: RejectAction.Held },
      { type: 7, lun: 7, seq: 2, lockId: 6, code: 3, count: 1 }],
    ['NAK', { ...base, type: FrameType.Nak, seq: 4, reason: NakReason.MediaError }, { type: 8, lun: 7, seq: 4, code: 6 }],
    // Feature `tags` (docs/tag-tables.md, "Tokens"): tokens in fields these frames leave unused.
    ['ACK carries its token watermark in tag', { ...base, type: FrameType.Ack, seq: 40, tokens: 37 }, { type: 5, lun: 7, seq: 40, tag: 37 }],
    ['WRITE returns tokens as a distance back in count',
      { ...base, type: FrameType.Write, seq: 100, lockId: 5, lba: 16, tag: 77, data: new Uint8Array([1]), tokensBack: 90 },
      { type: 3, lun: 7, seq: 100, lockId: 5, lba: 16, tag: 77, count: 10 }, new Uint8Array([1])],
    ['HELLO with tags carries stream and peerStream after batchBytesMax (0 without batch), 36 bytes',
      { ...base, type: FrameType.Hello, seq: 9, controllerId: 1, sessionId: 5, windowBytes: 0, windowEntries: 0, policy: LockRejectPolicy.HaltResume,
        locksWindow: 1, features: 0x4, requiredFeatures: 0, connection: 0, connections: 1, peerSession: 0, stream: 3, peerStream: 0x01020304 },
      { type: 1, lun: 7, seq: 9, lba: 5, lockId: 1 },
      new Uint8Array([0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4])],
    ['HEARTBEAT with tags: tokens, tokensBack, stream, peerStream after peerSession, 32 bytes',
      { ...base, type: FrameType.Heartbeat, seq: 3, controllerId: 9, sessionId: 2, confirmedSeq: 17, peerSession: 258, tags: { tokens: 16, tokensBack: 2 ** 40, stream: 2, peerStream: 7 } },
      { type: 9, lun: 7, seq: 3, lba: 2, tag: 17, lockId: 9 },
      new Uint8Array([0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 7])],
  ];
  it.each(cases)('%s', (_name, frame, header, payload) => {
    const bytes = encodeFrame(frame);
    expect(bytes).toEqual(wireFrame(header, payload));
    expect(bytes.length).toBe(encodedLength(frame));
    expect(bytes.length).toBe(FRAME_OVERHEAD_BYTES + (payload?.length ?? 0));
  });

  it('writes the magic, version and big-endian fields where the table says', () => {
    const bytes = encodeFrame({ ...base, type: FrameType.Unlock, seq: 0x0102030405, lockId: 0x0a0b0c0d });
    expect([...bytes.subarray(0, 8)]).toEqual([0x4d, 0x4c, 2, 4, 0, 0, 0, 7]);
    expect([...bytes.subarray(8, 16)]).toEqual([0, 0, 0, 1, 2, 3, 4, 5]);
    expect([...bytes.subarray(32, 36)]).toEqual([0x0a, 0x0b, 0x0c, 0x0d]);
  });
});

describe('encodeFrame: an invalid frame is a programmer error (assert)', () => {
  const write = { ...base, type: FrameType.Write, seq: 1, lockId: 1, lba: 0, tag: 0, data: new Uint8Array(1) } as const;
  const lock = { ...base, type: FrameType.Lock, seq: 1, lockId: 1, lba: 0, count: 1, mode: LockMode.Write } as const;
  const hello = {
    ...base, type: FrameType.Hello, seq: 0, controllerId: 0, sessionId: 1, windowBytes: 0, windowEntries: 0, policy: 0, locksWindow: 1,
    features: 0, requiredFeatures: 0, connection: 0, connections: 1, peerSession: 0,
  } as const;
  const heartbeat = { ...base, type: FrameType.Heartbeat, seq: 1, controllerId: 0, sessionId: 1, confirmedSeq: 0, peerSession: 0 } as const;
  const cases: Array<[string, unknown, RegExp]> = [
    ['non-integer lba', { ...write, lba: 1.5 }, /lba must be an integer from 0 to 9007199254740991, got 1.5/],
    ['negative lun', { ...write, lun: -1 }, /lun must be an integer from 0 to 65535, got -1/],
    ['lun too large', { ...write, lun: 65536 }, /lun must be an integer from 0 to 65535/],
    ['lockId beyond u32', { ...write, lockId: 2 ** 32 }, /lockId must be an integer from 0 to 4294967295/],
    ['seq beyond 2^53-1', { ...write, seq: 2 ** 53 }, /seq must be an integer/],
    ['seq as a string', { ...write, seq: '1' }, /seq must be an integer.*got 1/],
    ['empty WRITE', { ...write, data: new Uint8Array(0) }, /payloadLength \(data.length\) = 0.*at least 1 byte/],
    ['WRITE data not a Uint8Array', { ...write, data: [1, 2] }, /data must be a Uint8Array/],
    ['stream seq 0', { ...lock, seq: 0 }, /seq = 0 is not allowed; allowed: 1 to 2\^53-1/],
    ['lockId 0', { ...lock, lockId: 0 }, /lockId = 0 is not allowed; allowed: at least 1/],
    ['LOCK count 0', { ...lock, count: 0 }, /count = 0/],
    ['LOCK past 2^53-1', { ...lock, lba: MAX, count: 1 }, /lba \+ count = 9007199254740991 \+ 1/],
    ['unknown lock mode', { ...lock, mode: 9 }, /mode = 9 is not allowed; allowed: 1 \(Write\), 2 \(Read\)/],
    ['unknown flag bit', { ...lock, flags: 0x80 }, /flags = 0x80 .*0x01 \(GrantWanted\), 0x02 \(Retransmit\)/],
    ['GrantWanted on a WRITE', { ...write, flags: 1 }, /flags = 0x01 .*allowed bits: 0x02 \(Retransmit\)/],
    ['flags on an ACK', { ...base, type: FrameType.Ack, seq: 1, flags: 2 }, /ACK seq 1: flags = 0x02 .*defines no flags/],
    ['GrantWanted on a HELLO', { ...hello, flags: 1 }, /HELLO seq 0: flags = 0x01 is not allowed; allowed bits: 0x02 \(Retransmit\), 0x08 \(PeerRestarted\)/],
    ['HELLO policy unknown', { ...hello, policy: 2 }, /policy = 2 .*0 \(HaltResume\), 1 \(Retransmit\)/],
    ['HELLO locksWindow 0', { ...hello, locksWindow: 0 }, /HELLO: locksWindow = 0 is not allowed; allowed: 1 to 4294967295/],
    ['HELLO locksWindow beyond u32', { ...hello, locksWindow: 2 ** 32 }, /locksWindow = 4294967296 is not allowed; allowed: 1 to 4294967295/],
    ['HELLO sessionId 0', { ...hello, sessionId: 0 }, /HELLO seq 0: sessionId = 0 is not allowed; allowed: 1 to 2\^53-1/],
    ['HELLO requires what it lacks', { ...hello, features: 1, requiredFeatures: 2 }, /requiredFeatures = 2 is not allowed; allowed: a subset of features/],
    ['HELLO connection out of range', { ...hello, connection: 1 }, /connection = 1 is not allowed; allowed: 0 to connections - 1 \(0\)/],
    ['HELLO connections beyond u16', { ...hello, connections: 70_000 }, /connections = 70000 is not allowed; allowed: 1 to 65535/],
    ['HELLO peerSession missing', { ...hello, peerSession: undefined }, /peerSession = undefined is not allowed/],
    ['HEARTBEAT counter 0', { ...heartbeat, seq: 0 }, /HEARTBEAT seq 0: counter = 0 is not allowed/],
    ['HEARTBEAT Retransmit flag', { ...heartbeat, flags: 2 }, /flags = 0x02 is not allowed; allowed bits: 0x04 \(Probe\)/],
    ['REJECTED action unknown', { ...base, type: FrameType.LockRejected, seq: 1, lockId: 1, reason: 1, action: 0 }, /action = 0/],
    ['NAK reason unknown', { ...base, type: FrameType.Nak, seq: 1, reason: 0 }, /reason = 0 .*1 \(Corrupt\)/],
    ['unknown type', { ...base, type: 10, seq: 1 }, /unknown type TYPE_10/],
  ];
  it.each(cases)('%s', (_name, frame, message) => {
    expect(() => encodeFrame(frame as Frame)).toThrow(AssertionError);
    expect(() => encodeFrame(frame as Frame)).toThrow(message);
  });
});
