import { describe, expect, it } from 'vitest';
import { TraceFingerprint, traceFingerprint } from '../../../hil/trace/fingerprint.ts';

const fp = (...events: object[]): string => traceFingerprint(events);

describe('the trace fingerprint', () => {
  it('is what the events parsed back from their JSON lines give', () => {
    const events = [
      { kind: 'frame.sent', t: 0.000123, node: 'A', peer: 'B', type: 'WRITE', seq: 2 ** 40, lun: 0, bytes: 4148, retransmit: false, conn: 1, crc: 0xfedcba98 },
      { kind: 'target.apply', t: 1.5, node: 'B', implied: undefined, stream: undefined, tag: -0, big: Number.MAX_SAFE_INTEGER, small: -(2 ** 31) },
      { kind: 'counters', t: 2, node: 'A', counters: { locksSent: 3, halts: 0 }, ranges: [[0, 8], [64, 8]], none: null, odd: [undefined, NaN, Infinity] },
      { kind: 'frame.error', t: 3, node: 'B', message: `${'\u00e9\u{1f600}"\\\n'.repeat(40)}\ud800` },
    ];
    const parsed = events.map((e) => JSON.parse(JSON.stringify(e)) as object);
    expect(fp(...parsed)).toBe(fp(...events));
    expect(fp(...events)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('tells apart what JSON tells apart: values, types, keys, their order, nesting and event boundaries', () => {
    const variants: object[][] = [
      [{ a: 1 }], [{ a: 2 }], [{ a: '1' }], [{ a: 1.5 }], [{ a: true }], [{ a: false }], [{ a: null }], [{ a: [1] }], [{ a: { b: 1 } }],
      [{ b: 1 }], [{ a: 1, b: 2 }], [{ b: 2, a: 1 }], [{ a: 1 }, { b: 2 }], [{ a: [1, 2] }], [{ a: [[1], 2] }], [{ a: [1, [2]] }],
      [{ a: 'ab', b: 'c' }], [{ a: 'a', b: 'bc' }], [{ a: 2 ** 31 }], [{ a: 2 ** 32 + 1 }], [{ a: -1 }], [{}], [{}, {}], [],
      [{ a: 'x'.repeat(65) }], [{ a: 'x'.repeat(64) }],
    ];
    const prints = variants.map((v) => fp(...v));
    expect(new Set(prints).size).toBe(variants.length);
  });

  it('gives strings by number after their first sight, and long ones and those past the table in full, each told apart', () => {
    // More distinct strings than the intern table holds: two runs that differ only in a late one differ.
    const names = Array.from({ length: 5000 }, (_, i) => `n${i}`);
    const events = names.map((node, i) => ({ kind: 'state', node, again: names[i >> 1] }));
    const late = events.map((e, i) => (i === 4999 ? { ...e, node: 'n4998' } : e));
    expect(traceFingerprint(late)).not.toBe(traceFingerprint(events));
    // A repeated string and a fresh one with the same text as an earlier string's number would have.
    expect(fp({ a: 'x' }, { a: 'x' })).not.toBe(fp({ a: 'x' }, { a: 'y' }));
    // A long string spans several hash batches; its last character counts.
    const long = 'z'.repeat(100_000);
    expect(fp({ m: `${long}a` })).not.toBe(fp({ m: `${long}b` }));
  });

  it('is the same however the events fall into hash batches, and digests a run of many events', () => {
    const events = Array.from({ length: 20_000 }, (_, i) => ({ kind: 'host.write', t: i / 7, node: i % 2 ? 'A' : 'B', tag: i, lba: i * 8, count: 8 }));
    const whole = traceFingerprint(events);
    const f = new TraceFingerprint();
    for (const e of events) f.add(JSON.parse(JSON.stringify(e)) as object);
    expect(f.digest()).toBe(whole);
    const changed = events.map((e, i) => (i === 12_345 ? { ...e, count: 16 } : e));
    expect(traceFingerprint(changed)).not.toBe(whole);
  });
});
