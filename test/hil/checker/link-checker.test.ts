import { describe, expect, it } from 'vitest';
import type { TelemetryEvent } from '../../../firmware/telemetry/events.ts';
import { LinkChecker } from '../../../hil/checker/link-checker.ts';
import type { Violation } from '../../../hil/checker/violation.ts';
import type { TraceEvent } from '../../../hil/trace/events.ts';

/**
 * The link checker judged on hand-made histories: each invariant is shown holding on a correct
 * history and failing on a broken one (the same histories as the firmware would produce, with one
 * thing wrong). Broken firmware, end to end, is in mutations.test.ts and restart.test.ts.
 */
const CFG = { heartbeatMs: 100, interruptionMs: 1000, probationMs: 2000 };

function judge(events: TraceEvent[], endMs?: number): Violation[] {
  const violations: Violation[] = [];
  const c = new LinkChecker({ ...CFG, report: (v) => violations.push(v) });
  for (const e of events) c.emit(e);
  c.finish(endMs ?? events.at(-1)?.t ?? 0);
  return violations;
}

const start = (node: string, session: number, t = 0): TelemetryEvent => ({ kind: 'controller.start', t, node, session });
const sup = (t: number, node: string, peer: string, event: 'up' | 'down'): TelemetryEvent => ({ kind: 'link.supervision', t, node, peer, event, lastHeardMs: t, peerSession: 0, detail: '' });
const hb = (t: number, node: string, peer: string): TelemetryEvent => ({ kind: 'heartbeat.received', t, node, peer, session: 1, counter: 1, confirmedSeq: 0, gapMs: 0 });
const bothUp = (t = 10): TelemetryEvent[] => [start('A', 11), start('B', 22), sup(t, 'A', 'B', 'up'), sup(t, 'B', 'A', 'up')];
const silent = (t: number, end: number): TraceEvent[] => [
  { kind: 'link.fault', t, node: 'link', fault: 'silent.start', untilMs: end },
  { kind: 'link.fault', t: end, node: 'link', fault: 'silent.end' },
];
/** Heartbeats heard by `node` from `peer` every `everyMs` in [from, to]. */
const heartbeats = (node: string, peer: string, from: number, to: number, everyMs = 100): TelemetryEvent[] => {
  const out: TelemetryEvent[] = [];
  for (let t = from; t <= to; t += everyMs) out.push(hb(t, node, peer));
  return out;
};
const byTime = (events: TraceEvent[]): TraceEvent[] => [...events].sort((a, b) => a.t - b.t);

describe('link-detect', () => {
  it('holds when both sides declare the link down within the interruption timeout and a heartbeat of a silent cut', () => {
    const events = byTime([...bothUp(), ...silent(500, 5000), sup(1450, 'A', 'B', 'down'), sup(1590, 'B', 'A', 'down')]);
    expect(judge(events)).toEqual([]);
  });

  it('fails for a side that never declares it, naming the side and when it went deaf', () => {
    const v = judge(byTime([...bothUp(), ...silent(500, 5000), sup(1450, 'A', 'B', 'down')]));
    expect(v.map((x) => [x.invariant, x.node, x.tMs])).toEqual([['link-detect', 'B', 1600]]);
    expect(v[0]!.message).toMatch(/B hears nothing from A since 500 ms .* did not declare the link down within 1100 ms/);
  });

  it('fails for a declaration that comes too late, and also when the run ends first', () => {
    expect(judge(byTime([...bothUp(), ...silent(500, 5000), sup(1450, 'A', 'B', 'down'), sup(1700, 'B', 'A', 'down')])).map((x) => x.node)).toEqual(['B']);
    expect(judge(byTime([...bothUp(), { kind: 'link.fault', t: 500, node: 'link', fault: 'silent.start', untilMs: 9000 }]), 2000).map((x) => x.node)).toEqual(['A', 'B']);
  });

  it('owes nothing for a cut that ends before the deadline, or for a side already down', () => {
    expect(judge(byTime([...bothUp(), ...silent(500, 1200)]), 5000)).toEqual([]);
    expect(judge(byTime([...bothUp(), sup(300, 'B', 'A', 'down'), ...silent(500, 5000), sup(1450, 'A', 'B', 'down')]), 6000)).toEqual([]);
  });

  it('a one-way cut A>B deafens only B', () => {
    const oneway: TraceEvent[] = [
      { kind: 'link.fault', t: 500, node: 'link', fault: 'oneway.start', from: 'A', to: 'B', untilMs: 5000 },
      { kind: 'link.fault', t: 5000, node: 'link', fault: 'oneway.end', from: 'A', to: 'B' },
    ];
    expect(judge(byTime([...bothUp(), ...oneway, sup(1500, 'B', 'A', 'down')]))).toEqual([]);
    expect(judge(byTime([...bothUp(), ...oneway])).map((x) => x.node)).toEqual(['B']);
  });
});

describe('probation', () => {
  const cut = (): TraceEvent[] => [...bothUp(), ...heartbeats('A', 'B', 0, 400), sup(1400, 'A', 'B', 'down')];

  it('holds when the link comes back after a whole probationary interval of clean heartbeats', () => {
    expect(judge(byTime([...cut(), ...heartbeats('A', 'B', 3000, 5100), sup(5050, 'A', 'B', 'up')]))).toEqual([]);
  });

  it('fails when it comes back early, saying how long the heartbeats had been clean', () => {
    const v = judge(byTime([...cut(), ...heartbeats('A', 'B', 3000, 4000), sup(3500, 'A', 'B', 'up')]));
    expect(v.map((x) => [x.invariant, x.node, x.tMs])).toEqual([['probation', 'A', 3500]]);
    expect(v[0]!.message).toMatch(/clean for only 500 ms; a probationary interval of 2000 ms comes first/);
  });

  it('a gap longer than the interruption timeout starts probation again; heartbeats from before the down never count', () => {
    const gap = [...heartbeats('A', 'B', 3000, 3500), ...heartbeats('A', 'B', 4700, 7000)];
    expect(judge(byTime([...cut(), ...gap, sup(6000, 'A', 'B', 'up')])).map((x) => x.invariant)).toEqual(['probation']);
    expect(judge(byTime([...cut(), ...gap, sup(6800, 'A', 'B', 'up')]))).toEqual([]);
    expect(judge(byTime([...cut(), sup(1500, 'A', 'B', 'up')])).map((x) => x.message)).toEqual([expect.stringMatching(/no heartbeat was heard since it declared the link down/)]);
  });
});

describe('session', () => {
  const append = (t: number, seq: number, tag: number): TelemetryEvent => ({
    kind: 'rollback.append', t, node: 'A', peer: 'B', seq, entry: 'write', lun: 0, lba: tag * 8, count: 8, lockId: 1, tag, entries: 1, bytes: 4148,
  });
  const apply = (t: number, seq: number, tag: number, sourceSession = 11): TelemetryEvent => ({
    kind: 'target.apply', t, node: 'B', peer: 'A', seq, lockId: 1, tag, lun: 0, lba: tag * 8, count: 8, sourceSession,
  });
  const stream = (t: number, sourceSession: number, targetSession: number): TelemetryEvent => ({
    kind: 'stream.start', t, node: 'A', peer: 'B', role: 'source', sourceSession, targetSession, firstSeq: 1,
  });
  const base = [start('A', 11), start('B', 22), append(1, 1, 100), append(1, 2, 101), stream(2, 11, 22)];

  it('holds when every write applied is the entry of its stream with that number', () => {
    expect(judge([...base, apply(3, 1, 100), apply(3, 2, 101)])).toEqual([]);
  });

  it('fails for a write applied under another entry\'s number', () => {
    const v = judge([...base, apply(3, 2, 100)]);
    expect(v.map((x) => [x.invariant, x.node, x.seq])).toEqual([['session', 'B', 2]]);
    expect(v[0]!.message).toMatch(/B applied write tag 100 as entry 2 of the stream from A, whose entry 2 is write tag 101/);
  });

  it('after a restart of the source, an old-stream write passed off as the new stream\'s is caught', () => {
    // A restarts as session 33 and sends a new stream; B applies an old write under the new session.
    const restarted = [...base, start('A', 33, 10), append(11, 1, 500), stream(12, 33, 22)];
    expect(judge([...restarted, apply(13, 1, 500, 33)])).toEqual([]);
    expect(judge([...restarted, apply(13, 2, 101, 33)]).map((x) => x.invariant)).toEqual(['session']);
    // An old-stream write applied as the old stream's (it was on its way before the restart) is no violation...
    expect(judge([...restarted, apply(13, 2, 101, 11)])).toEqual([]);
    // ...but one labelled with a session that is neither is.
    expect(judge([...restarted, apply(13, 1, 500, 99)]).map((x) => x.message)).toEqual([expect.stringMatching(/not a stream between their current sessions/)]);
  });
});
