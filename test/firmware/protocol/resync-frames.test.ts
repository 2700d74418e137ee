import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../../firmware/errors.ts';
import {
  FEATURE_BITS, FrameType, RESYNC_ENTRIES_MAX, RESYNC_ENTRY_BYTES, RESYNC_ENTRY_LAYOUT, TableState, decodeFrame, encodeFrame, encodedLength, FrameDecoder,
} from '../../../firmware/protocol/index.ts';
import type { Frame, ResyncEntry } from '../../../firmware/protocol/index.ts';
import { MAX, decodeError, wireFrame } from './helpers.ts';

/** The table exchange of a resync on the wire (feature `resync`, docs/protocol.md, docs/tag-tables.md "Resync"). */

const entries: ResyncEntry[] = [
  { tag: 1, lba: 0, count: 8 },
  { tag: 77, lba: 4096, count: 1 },
  { tag: MAX, lba: MAX - 0xffffffff, count: 0xffffffff },
];
const request: Frame = { type: FrameType.ResyncRequest, lun: 3, seq: 5, flags: 0, first: 4096, entriesMax: RESYNC_ENTRIES_MAX };
const data: Frame = { type: FrameType.ResyncData, lun: 3, seq: 5, flags: 0, first: 10, total: 13, state: TableState.Trusted, entries };

/** A RESYNC_DATA payload written from the layout table, independently of the encoder. */
function payloadOf(es: readonly { tag: bigint | number; lba: bigint | number; count: number }[]): Uint8Array {
  const out = new Uint8Array(es.length * RESYNC_ENTRY_BYTES);
  const v = new DataView(out.buffer);
  es.forEach((e, i) => {
    for (const f of RESYNC_ENTRY_LAYOUT) {
      const at = i * RESYNC_ENTRY_BYTES + f.offset;
      if (f.bytes === 8) v.setBigUint64(at, BigInt(e[f.name]));
      else v.setUint32(at, Number(e[f.name]));
    }
  });
  return out;
}

const DATA_HEADER = { type: FrameType.ResyncData, lun: 3, seq: 5, code: TableState.Trusted, lba: 0, tag: 2, count: 2 };
const two = [{ tag: 1, lba: 0, count: 8 }, { tag: 2, lba: 8, count: 8 }];


describe('resync frames: the codec', () => {
  it('the feature has a bit of its own, and the four types their names', () => {
    expect(FEATURE_BITS.resync).toBe(0x8);
    expect(Object.values(FEATURE_BITS).filter((b) => b === FEATURE_BITS.resync)).toHaveLength(1);
    expect([11, 12, 13, 15].map((t) => FrameType[t])).toEqual(['ResyncRequest', 'ResyncData', 'ResyncDone', 'ResyncAck']);
  });

  it.each<[string, Frame]>([
    ['RESYNC_REQUEST', request],
    ['RESYNC_DATA with entries at the edges of their fields', data],
    ['RESYNC_DATA of an empty, untrusted table', { type: FrameType.ResyncData, lun: 0, seq: 1, flags: 0, first: 0, total: 0, state: TableState.Untrusted, entries: [] }],
    ['RESYNC_DONE', { type: FrameType.ResyncDone, lun: 9, seq: MAX, flags: 0 }],
    ['RESYNC_ACK', { type: FrameType.ResyncAck, lun: 9, seq: 1, flags: 0 }],
  ])('%s round-trips, at the length encodedLength says', (_name, frame) => {
    const bytes = encodeFrame(frame);
    expect(bytes.length).toBe(encodedLength(frame));
    expect(decodeFrame(bytes)).toEqual(frame);
  });

  it('RESYNC_DATA entries are where the layout table says (an independent writer agrees with the encoder)', () => {
    const bytes = wireFrame({ ...DATA_HEADER, lba: 10, tag: 13, count: 3 }, payloadOf(entries));
    expect(decodeFrame(bytes)).toEqual(data);
    expect(encodeFrame(data)).toEqual(bytes);
  });

  it('the most entries a frame may carry decode, and take what the bound says', () => {
    const many = Array.from({ length: RESYNC_ENTRIES_MAX }, (_, i) => ({ tag: i + 1, lba: i * 8, count: 8 }));
    const frame: Frame = { type: FrameType.ResyncData, lun: 0, seq: 1, flags: 0, first: 0, total: many.length, state: TableState.Trusted, entries: many };
    expect(decodeFrame(encodeFrame(frame))).toEqual(frame);
    expect(encodedLength(frame)).toBe(52 + RESYNC_ENTRIES_MAX * RESYNC_ENTRY_BYTES);
  });

  it('a streaming decoder takes a RESYNC_DATA cut anywhere, and it holds no view of the bytes it came in', () => {
    const frames: Frame[] = [];
    const decoder = new FrameDecoder({ onFrame: (f) => frames.push(f), onError: (e) => { throw e; } });
    const bytes = encodeFrame(data);
    for (let i = 0; i < bytes.length; i += 7) decoder.push(bytes.slice(i, i + 7));
    expect(frames).toEqual([data]);
  });
});

describe('resync frames: hostile input is refused, naming the field', () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['RESYNC_REQUEST asking for no entries', wireFrame({ type: FrameType.ResyncRequest, seq: 1, count: 0 }), /entriesMax = 0 is not allowed; a RESYNC_REQUEST asks for 1 to 4096 entries/],
    ['RESYNC_REQUEST asking for too many', wireFrame({ type: FrameType.ResyncRequest, seq: 1, count: 4097 }), /entriesMax = 4097 is not allowed/],
    ['RESYNC_REQUEST of exchange 0', wireFrame({ type: FrameType.ResyncRequest, seq: 0, count: 1 }), /exchange = 0 is not allowed; allowed: 1 to 2\^53-1/],
    ['RESYNC_REQUEST with a flag', wireFrame({ type: FrameType.ResyncRequest, seq: 1, count: 1, flags: 2 }), /flags = 0x02 is not allowed; this frame type defines no flags/],
    ['RESYNC_REQUEST first past 2^53-1', wireFrame({ type: FrameType.ResyncRequest, seq: 1, count: 1, lba: 2n ** 60n }), /first = a value above 2\^53-1/],
    ['RESYNC_DATA of an unknown state', wireFrame({ ...DATA_HEADER, code: 3 }, payloadOf(two)), /state = 3 is not allowed; allowed: 1 \(Trusted\), 2 \(Untrusted\)/],
    ['RESYNC_DATA with a lockId', wireFrame({ ...DATA_HEADER, lockId: 1 }, payloadOf(two)), /lockId = 1 is not allowed; this frame type does not use the field/],
    ['RESYNC_DATA counting more than it carries', wireFrame({ ...DATA_HEADER, count: 3, tag: 3 }, payloadOf(two)), /payloadLength = 40 is not allowed; exactly count x 20 = 60 bytes/],
    ['RESYNC_DATA carrying more than it counts', wireFrame({ ...DATA_HEADER, count: 1 }, payloadOf(two)), /payloadLength = 40 is not allowed; exactly count x 20 = 20 bytes/],
    ['RESYNC_DATA with a torn entry', wireFrame(DATA_HEADER, payloadOf(two).subarray(0, 39)), /payloadLength = 39 is not allowed/],
    ['RESYNC_DATA beyond the table it counts', wireFrame({ ...DATA_HEADER, lba: 1 }, payloadOf(two)), /first \+ count = 1 \+ 2 is not allowed; allowed: at most total \(2\)/],
    ['RESYNC_DATA whose first + count passes 2^53', wireFrame({ ...DATA_HEADER, lba: MAX, tag: MAX }, payloadOf(two)), /first \+ count = 9007199254740991 \+ 2 is not allowed/],
    ['RESYNC_DATA with more entries than a frame may carry', wireFrame({ ...DATA_HEADER, count: 4097, tag: 5000 }), /count \(entries\) = 4097 is not allowed; a RESYNC_DATA carries 0 to 4096 entries/],
    ['an entry of tag 0', wireFrame(DATA_HEADER, payloadOf([two[0]!, { tag: 0, lba: 8, count: 8 }])), /entry 1 tag = 0 is not allowed; allowed: 1 to 2\^53-1/],
    ['an entry of tag past 2^53-1', wireFrame(DATA_HEADER, payloadOf([{ tag: 2n ** 63n, lba: 0, count: 1 }, two[1]!])), /entry 0 tag = a value above 2\^53-1/],
    ['an entry of no sectors', wireFrame(DATA_HEADER, payloadOf([two[0]!, { tag: 2, lba: 8, count: 0 }])), /entry 1 count = 0 is not allowed; allowed: 1 to 4294967295 sectors/],
    ['an entry past 2^53-1', wireFrame(DATA_HEADER, payloadOf([{ tag: 1, lba: MAX, count: 1 }, two[1]!])), /entry 0 lba \+ count = 9007199254740991 \+ 1 is not allowed/],
    ['RESYNC_DONE with a field set', wireFrame({ type: FrameType.ResyncDone, seq: 1, lba: 1 }), /RESYNC_DONE seq 1 lun 0: lba = 1 is not allowed/],
    ['RESYNC_ACK of exchange 0', wireFrame({ type: FrameType.ResyncAck, seq: 0 }), /exchange = 0 is not allowed/],
  ];
  it.each(cases)('%s', (_name, bytes, message) => {
    const err = decodeError(bytes);
    expect(err.code).toBe('ML_ERR_FRAME_FIELD');
    expect(err.message).toMatch(message);
  });

  it.each<[string, Uint8Array, number | undefined, RegExp]>([
    ['a RESYNC_DATA larger than the decoder takes', wireFrame(DATA_HEADER, payloadOf(two)), 39, /accepts at most 39 \(payloadBytesMax\)/],
    ['a RESYNC_DATA larger than the most entries a frame carries', wireFrame({ ...DATA_HEADER, payloadLength: 4097 * 20 }), undefined, /RESYNC_DATA frames carry at most 81920 bytes/],
    ['a RESYNC_REQUEST with a payload', wireFrame({ type: FrameType.ResyncRequest, seq: 1, count: 1 }, new Uint8Array(20)), undefined, /RESYNC_REQUEST frames carry at most 0 bytes/],
    ['a RESYNC_ACK declaring a megabyte', wireFrame({ type: FrameType.ResyncAck, seq: 1, payloadLength: 1 << 20 }), undefined, /RESYNC_ACK frames carry at most 0 bytes/],
  ])('%s is refused from its header as too large, never waited for', (_name, bytes, payloadBytesMax, message) => {
    const err = decodeError(bytes, payloadBytesMax);
    expect(err.code).toBe('ML_ERR_FRAME_TOO_LARGE');
    expect(err.message).toMatch(message);
  });

  it.each<[string, Frame, RegExp]>([
    ['an entry of tag 0', { ...data, entries: [{ tag: 0, lba: 0, count: 1 }], total: 11 } as Frame, /entry 0 tag = 0 is not allowed/],
    ['entries past the total', { ...data, total: 12 } as Frame, /first \+ count = 10 \+ 3 is not allowed; allowed: at most total \(12\)/],
    ['an unknown state', { ...data, state: 7 as TableState } as Frame, /state = 7 is not allowed/],
    ['a request for no entries', { ...request, entriesMax: 0 } as Frame, /entriesMax = 0 is not allowed/],
  ])('the encoder refuses %s: a programmer error, asserted', (_name, frame, message) => {
    expect(() => encodeFrame(frame)).toThrow(AssertionError);
    expect(() => encodeFrame(frame)).toThrow(message);
  });
});
