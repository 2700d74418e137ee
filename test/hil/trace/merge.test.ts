import { describe, expect, it } from 'vitest';
import type { TelemetryEvent } from '../../../firmware/telemetry/events.ts';
import { happenedBefore, mergeTelemetry, type MergedEvent, type TelemetrySource } from '../../../hil/trace/merge.ts';
import { RecordingTelemetry, runWrites, scriptedFaults, settle, smallTopology, randomWrites } from '../../support/harness.ts';
import { FrameType } from '../../../firmware/protocol/frame.ts';

/** Stamped lines, as a controller process writes them: counter, incarnation, wall clock (skewed as given). */
function journal(proc: string, events: object[], wallStart: number): TelemetrySource {
  const lines = events.map((e, i) => JSON.stringify({ n: i + 1, proc, wall: wallStart + i, ...e }));
  return { name: `${proc}.jsonl`, text: `${lines.join('\n')}\n` };
}

const frame = (kind: 'frame.sent' | 'frame.received', node: string, peer: string, type: string, seq: number, crc: number, conn = 0) =>
  ({ kind, t: 0, node, peer, type, seq, lun: 0, bytes: 100, conn, crc, ...(kind === 'frame.sent' ? { retransmit: false } : {}) });

/** A speculative write: A sends it, B applies it and ACKs, A acks its host. */
function writeRound(bWallSkewMs: number): TelemetrySource[] {
  const a = journal('A/1', [
    { kind: 'host.write', t: 0, node: 'A', tag: 7, lun: 0, lba: 0, count: 8 },
    frame('frame.sent', 'A', 'B', 'WRITE', 1, 0xaaaa),
    frame('frame.received', 'A', 'B', 'ACK', 1, 0xbbbb),
    { kind: 'host.ack', t: 0, node: 'A', tag: 7, lun: 0, lba: 0, count: 8, mode: 'speculative' },
  ], 1_000);
  const b = journal('B/2', [
    frame('frame.received', 'B', 'A', 'WRITE', 1, 0xaaaa),
    { kind: 'target.apply', t: 0, node: 'B', peer: 'A', seq: 1, lockId: 1, tag: 7, lun: 0, lba: 0, count: 8, sourceSession: 1 },
    frame('frame.sent', 'B', 'A', 'ACK', 1, 0xbbbb),
  ], 1_000 + bWallSkewMs);
  return [a, b];
}

const kinds = (events: MergedEvent[]): string[] => events.map((m) => `${m.event.node}:${m.event.kind}`);

describe('merging telemetry of several processes', () => {
  it('puts the apply before the host ack because of the send -> receive edges, though B\'s clock runs 10 s late', () => {
    const sources = writeRound(-10_000);
    // By wall clock alone every B event would come first: B received the WRITE before A sent it.
    const byWall = sources.flatMap((s) => s.text.trim().split('\n').map((l) => JSON.parse(l))).sort((x, y) => x.wall - y.wall);
    expect(byWall.map((e) => `${e.node}:${e.kind}`).indexOf('B:frame.received')).toBe(0);
    const r = mergeTelemetry(sources);
    expect(r.problems).toEqual([]);
    expect(r.edges).toBe(2);
    expect(kinds(r.events)).toEqual([
      'A:host.write', 'A:frame.sent', 'B:frame.received', 'B:target.apply', 'B:frame.sent', 'A:frame.received', 'A:host.ack',
    ]);
    const apply = r.events.find((m) => m.event.kind === 'target.apply')!;
    const ack = r.events.find((m) => m.event.kind === 'host.ack')!;
    expect(happenedBefore(apply, ack)).toBe(true);
    expect(happenedBefore(ack, apply)).toBe(false);
  });

  it('puts the apply before the host ack when B\'s clock runs 10 s early, too', () => {
    const r = mergeTelemetry(writeRound(10_000));
    expect(r.problems).toEqual([]);
    const order = kinds(r.events);
    expect(order.indexOf('B:target.apply')).toBeLessThan(order.indexOf('A:host.ack'));
    expect(order.indexOf('A:frame.sent')).toBeLessThan(order.indexOf('B:frame.received'));
  });

  it('says when two events were concurrent: nothing orders an event of A before one of B that no message connects', () => {
    const r = mergeTelemetry(writeRound(0));
    const write = r.events.find((m) => m.event.kind === 'host.write')!;
    const received = r.events.find((m) => m.event.node === 'B' && m.event.kind === 'frame.received')!;
    const bSent = r.events.find((m) => m.event.node === 'B' && m.event.kind === 'frame.sent')!;
    const aReceived = r.events.find((m) => m.event.node === 'A' && m.event.kind === 'frame.received')!;
    expect(happenedBefore(write, received)).toBe(true);
    expect(happenedBefore(bSent, write)).toBe(false);
    expect(happenedBefore(bSent, aReceived)).toBe(true);
    // Two processes that exchanged nothing: neither event happened before the other.
    const lone = mergeTelemetry([journal('A/1', [{ kind: 'x', t: 0, node: 'A' }], 0), journal('B/2', [{ kind: 'y', t: 0, node: 'B' }], 0)]);
    expect(happenedBefore(lone.events[0]!, lone.events[1]!)).toBe(false);
    expect(happenedBefore(lone.events[1]!, lone.events[0]!)).toBe(false);
  });

  it('orders by heartbeats too: a confirmation a heartbeat carried puts the apply before the host ack', () => {
    const a = journal('A/1', [
      frame('frame.sent', 'A', 'B', 'WRITE', 1, 0xaaaa),
      { kind: 'heartbeat.received', t: 0, node: 'A', peer: 'B', session: 2, counter: 40, confirmedSeq: 1, gapMs: 100 },
      { kind: 'host.ack', t: 0, node: 'A', tag: 7, lun: 0, lba: 0, count: 8, mode: 'speculative' },
    ], 0);
    const b = journal('B/2', [
      frame('frame.received', 'B', 'A', 'WRITE', 1, 0xaaaa),
      { kind: 'target.apply', t: 0, node: 'B', peer: 'A', seq: 1, lockId: 1, tag: 7, lun: 0, lba: 0, count: 8, sourceSession: 1 },
      { kind: 'heartbeat.sent', t: 0, node: 'B', peer: 'A', session: 2, counter: 40, confirmedSeq: 1 },
    ], 50_000);
    const r = mergeTelemetry([a, b]);
    expect(r.problems).toEqual([]);
    expect(r.edges).toBe(2);
    expect(kinds(r.events)).toEqual(['A:frame.sent', 'B:frame.received', 'B:target.apply', 'B:heartbeat.sent', 'A:heartbeat.received', 'A:host.ack']);
    // A heartbeat of another session (an earlier start of B) is not this one.
    const stale = mergeTelemetry([a, journal('B/3', [{ kind: 'heartbeat.sent', t: 0, node: 'B', peer: 'A', session: 3, counter: 40, confirmedSeq: 1 }], 0)]);
    expect(stale.problems.map((p) => p.message)).toContain('A received heartbeat 40 of session 2 from B, and no source holds that send');
  });

  it('reports a receive with no matching send, and still places it in its local order', () => {
    const [a] = writeRound(0);
    const extra = journal('B/2', [
      frame('frame.received', 'B', 'A', 'WRITE', 1, 0xaaaa),
      frame('frame.received', 'B', 'A', 'WRITE', 2, 0xcccc),
      { kind: 'target.apply', t: 0, node: 'B', peer: 'A', seq: 2, lockId: 1, tag: 8, lun: 0, lba: 8, count: 8, sourceSession: 1 },
    ], 1_000);
    const r = mergeTelemetry([a!, extra]);
    expect(r.problems).toHaveLength(2); // the WRITE seq 2 nobody sent, and A's ACK nobody in these files sent
    const unmatched = r.problems.filter((p) => p.kind === 'unmatched-receive');
    expect(unmatched.map((p) => `${p.source}:${p.line}`)).toEqual(['A/1.jsonl:3', 'B/2.jsonl:2']);
    expect(unmatched[1]!.message).toMatch(/B received WRITE seq 2 on connection 0 \(crc 52428\) from A, and no source holds that send/);
    expect(r.events).toHaveLength(7);
    const order = kinds(r.events.filter((m) => m.source === 1));
    expect(order).toEqual(['B:frame.received', 'B:frame.received', 'B:target.apply']);
  });

  it('ties a receive to the first send of the same bytes (a retransmission sends them again) and to nothing of another connection', () => {
    const a = journal('A/1', [
      frame('frame.sent', 'A', 'B', 'WRITE', 1, 0xaaaa, 0),
      { kind: 'marker', t: 0, node: 'A' },
      frame('frame.sent', 'A', 'B', 'WRITE', 1, 0xaaaa, 0),
      frame('frame.sent', 'A', 'B', 'WRITE', 2, 0xdddd, 1),
    ], 0);
    const b = journal('B/2', [frame('frame.received', 'B', 'A', 'WRITE', 1, 0xaaaa, 0), frame('frame.received', 'B', 'A', 'WRITE', 2, 0xdddd, 0)], -50);
    const r = mergeTelemetry([a, b]);
    const received = r.events.find((m) => m.event.kind === 'frame.received')!;
    expect(r.events[received.sentAt!]!.line).toBe(1);
    // WRITE 2 went on connection 1; a receive on connection 0 is not that frame.
    expect(r.problems.map((p) => p.kind)).toEqual(['unmatched-receive']);
  });

  it('reports a line cut short by a kill, lines missing from a counter, and a counter going backwards', () => {
    const good = journal('A/1', [{ kind: 'a', t: 0, node: 'A' }, { kind: 'b', t: 0, node: 'A' }], 0);
    const gap = `${JSON.stringify({ n: 5, proc: 'A/1', wall: 9, kind: 'c', t: 0, node: 'A' })}\n${JSON.stringify({ n: 4, proc: 'A/1', wall: 10, kind: 'd', t: 0, node: 'A' })}\n`;
    const cut = '{"n":6,"proc":"A/1","wall":11,"ki';
    const r = mergeTelemetry([{ name: 'a.jsonl', text: good.text + gap + cut }]);
    expect(r.problems.map((p) => `${p.kind}@${p.line}`)).toEqual(['events-lost@3', 'counter-order@4', 'unparseable@5']);
    expect(r.problems[2]!.message).toMatch(/last line: a process killed while writing it/);
    expect(r.events.map((m) => m.event.kind)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('keeps the incarnations of one controller in file order, and a new incarnation\'s counter starts at 1 without a complaint', () => {
    const first = journal('A/1', [{ kind: 'process.start', t: 0, node: 'A' }, { kind: 'x', t: 0, node: 'A' }], 100);
    const second = journal('A/9', [{ kind: 'process.start', t: 0, node: 'A' }], 0); // a wall clock set back between the two
    const r = mergeTelemetry([{ name: 'a.jsonl', text: first.text + second.text }]);
    expect(r.problems).toEqual([]);
    expect(r.events.map((m) => m.event.proc)).toEqual(['A/1', 'A/1', 'A/9']);
  });

  it('merges real firmware telemetry from a run with retransmissions: every receive tied, every apply before its write\'s host ack', async () => {
    // A simulated pair, corrupting every 7th WRITE so frames are sent again; each controller's events become one "process".
    const tel = new RecordingTelemetry();
    const { topo } = smallTopology({ mode: 'speculative', telemetry: tel, rttMs: 1 });
    topo.link.setFaults(scriptedFaults((_dir, type, n) => (type === FrameType.Write && n % 7 === 3 ? 'corrupt' : 'pass')));
    const results = await runWrites(topo, topo.source, 0, randomWrites(60, 8, 4096), 8);
    for (const w of results) expect(w.error).toBeUndefined();
    await settle(topo);
    const per = (node: string, skewMs: number): TelemetrySource => journal(`${node}/1`, tel.events.filter((e: TelemetryEvent) => e.node === node), skewMs);
    // B's wall clock 1,000 s late: by wall time every apply would come after every host ack.
    const r = mergeTelemetry([per('A', 0), per('B', 1_000_000)]);
    expect(r.problems).toEqual([]);
    const receives = r.events.filter((m) => m.event.kind === 'frame.received' || m.event.kind === 'heartbeat.received');
    expect(r.edges).toBe(receives.length);
    expect(receives.some((m) => m.event.kind === 'heartbeat.received')).toBe(true);
    expect(tel.of('frame.sent').filter((e) => e.retransmit).length).toBeGreaterThan(0);
    for (const m of receives) expect(m.sentAt).not.toBeNull();
    const applies = r.events.filter((m) => m.event.kind === 'target.apply');
    const acks = new Map(r.events.filter((m) => m.event.kind === 'host.ack').map((m) => [m.event.tag, m] as const));
    expect(applies.length).toBeGreaterThanOrEqual(60);
    for (const apply of applies) {
      const ack = acks.get(apply.event.tag)!;
      expect(happenedBefore(apply, ack), `tag ${String(apply.event.tag)}`).toBe(true);
      expect(r.events.indexOf(apply)).toBeLessThan(r.events.indexOf(ack));
    }
  });
});
