import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TraceFormatError } from '../../../hil/viz/errors.ts';
import type { LooseEvent } from '../../../hil/viz/fold.ts';
import { TraceIndex } from '../../../hil/viz/trace-index.ts';
import { SeededRandom } from '../../../host/random.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { BROKEN, makeTrace, type TraceFixture } from './fixtures.ts';

const scratch = scratchDir('viz-index');

/** The slow, obvious answers the index must agree with. */
function naiveStates(events: LooseEvent[], i: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of events.slice(0, i + 1)) if (e.kind === 'state') out[e.machine as string] = e.to as string;
  return out;
}

function naiveRollback(events: LooseEvent[], i: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of events.slice(0, i + 1)) if (e.kind === 'rollback.append' || e.kind === 'rollback.confirm') out[`rollback|${e.node}->${e.peer}`] = e.entries as number;
  return out;
}

async function indexOf(lines: string[], limits?: { eventsMax: number; lineBytesMax: number }): Promise<TraceIndex> {
  const path = scratch.path('t', '.jsonl');
  writeFileSync(path, lines.join('\n'));
  return TraceIndex.build(path, limits);
}

async function refusal(lines: string[], limits?: { eventsMax: number; lineBytesMax: number }): Promise<TraceFormatError> {
  try {
    await indexOf(lines, limits);
  } catch (err) {
    if (err instanceof TraceFormatError) return err;
    throw err;
  }
  throw new Error('the trace was accepted');
}

describe('trace index', () => {
  let fixture: TraceFixture;

  it('indexes a real run: every event, and at any instant the same states, log depths and counts as replaying it by hand', async () => {
    fixture = await makeTrace(scratch.dir(), 'broken', BROKEN);
    const { events } = fixture;
    const index = await TraceIndex.build(fixture.path);
    expect(index.count).toBe(events.length);
    expect(index.count).toBe(fixture.report.traceEvents);
    expect(index.run).toMatchObject({ seed: BROKEN.seed, mode: BROKEN.mode, sectorSize: 512, reproduce: fixture.report.reproduce });
    const random = new SeededRandom(5);
    for (let k = 0; k < 40; k++) {
      const i = k === 0 ? events.length - 1 : random.int(events.length);
      const states = Object.fromEntries(Object.entries(index.statesAt(i)).flatMap(([n, s]) => (s ? [[n, s.state]] : [])));
      expect(states, `states at ${i}`).toEqual(naiveStates(events, i));
      const series = index.seriesAt(i);
      for (const [key, v] of Object.entries(naiveRollback(events, i))) expect(series[key], `${key} at ${i}`).toBe(v);
      const counts = index.countsAt(i);
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(i + 1);
      expect(counts[`host.write@A`] ?? 0).toBe(events.slice(0, i + 1).filter((e) => e.kind === 'host.write' && e.node === 'A').length);
    }
    index.close();
  });

  it('reads events back from the file exactly, jumps to the next state change and fault, and places violations at their time', async () => {
    const { events, report } = fixture;
    const index = await TraceIndex.build(fixture.path);
    const mid = Math.floor(events.length / 2);
    expect(index.events(mid, 5).map((r) => r.event)).toEqual(events.slice(mid, mid + 5));
    expect(index.events(events.length - 2, 10).map((r) => r.index)).toEqual([events.length - 2, events.length - 1]);
    const nextState = events.findIndex((e, k) => k > mid && e.kind === 'state');
    expect(index.jump(mid, 'state', 'next')).toBe(nextState);
    const prevFault = events.map((e, k) => (e.kind === 'link.fault' && k < mid ? k : -1)).filter((k) => k >= 0).pop();
    expect(index.jump(mid, 'fault', 'prev')).toBe(prevFault);
    // Every violation the checker found is in the trace, at the last event at or before its time.
    expect(report.violations.length).toBeGreaterThan(0);
    const key = (x: [string, number, number]): string => `${x[1]} ${x[0]} ${x[2]}`;
    expect(index.violations.map((v) => key([v.invariant, v.atMs, v.lba])).sort()).toEqual(report.violations.map((v) => key([v.invariant, v.tMs, v.lba])).sort());
    for (const v of index.violations) {
      expect(events[v.index]!.t).toBeLessThanOrEqual(v.atMs);
      expect(events[v.index + 1]!.t > v.atMs || events[v.index + 1]!.kind === 'violation' || events[v.index + 1]!.t === events[v.index]!.t).toBe(true);
    }
    expect(index.jump(0, 'violation', 'next')).toBe(index.violations[0]!.index);
    index.close();
  });

  it('plots: the throughput buckets add up to every byte applied, and log depths stay within what the events said', async () => {
    const { events } = fixture;
    const index = await TraceIndex.build(fixture.path);
    const plot = index.plot(0, index.durationMs, 50);
    const applied = plot.series.find((s) => s.key === 'applied|A->B')!;
    const bucketMs = index.durationMs / 50;
    const bytes = applied.rate!.reduce<number>((sum, mbps) => sum + (mbps ?? 0) * 1e6 * (bucketMs / 1000), 0);
    const truth = events.filter((e) => e.kind === 'target.apply').reduce((n, e) => n + (e.count as number) * 512, 0);
    expect(Math.abs(bytes - truth) / truth).toBeLessThan(1e-3);
    const depth = plot.series.find((s) => s.key === 'rollback|A->B')!;
    const most = Math.max(...events.filter((e) => e.kind === 'rollback.append').map((e) => e.entries as number));
    expect(Math.max(...depth.max!.map((v) => v ?? 0))).toBe(most);
    expect(plot.violations.length).toBe(index.violations.length);
    expect(Object.values(plot.faults).flat().reduce((a, b) => a + b, 0)).toBe(events.filter((e) => e.kind === 'link.fault').length);
    expect(plot.partitions.length).toBe(1);
    index.close();
  });

  it('takes unknown kinds, blank lines, fields of the wrong type and a run cut off mid-line in its stride', async () => {
    const index = await indexOf([
      '{"kind":"state","t":0,"node":"A","machine":"link:A->B","from":"","to":"down","event":"xstate.init"}',
      '',
      '{"kind":"heartbeat.received","t":1,"node":"A","peer":"B","session":7,"counter":1,"confirmedSeq":0,"gapMs":1}',
      '{"kind":"a.kind.from.the.future","t":2,"node":"A","whatever":[1,2,3]}',
      '{"kind":"rollback.append","t":3,"node":"A","peer":"B","entries":"many"}',
      '{"kind":"state","t":4,"node":"A","machine":"link:A->B","from":"down","to":"probation.listening","event":"heartbeat.heard"}',
      '{"kind":"link.supervision","t":5,"node":"A","peer":"B","event":"up","lastHeardMs":5,"peerSession":7,"detail":""}',
      '{"kind":"host.wri',
    ]);
    expect(index.count).toBe(6);
    expect(index.truncatedLastLine).toBe(true);
    expect(index.countsAt(5)).toMatchObject({ 'a.kind.from.the.future@A': 1, 'heartbeat.received@A': 1 });
    expect(index.seriesAt(5)).toEqual({ 'supervision|A->B': 1 });
    expect(index.statesAt(5)['link:A->B']).toMatchObject({ state: 'probation.listening', from: 'down', event: 'heartbeat.heard' });
    // A hostile machine name is cut, once, not counted as a new machine at every event.
    const long = 'source:'.padEnd(500, 'x');
    const hostile = await indexOf([0, 1, 2].map((t) => `{"kind":"state","t":${t},"node":"A","machine":"${long}","from":"","to":"s${t}","event":"e"}`));
    expect([...hostile.instances.keys()]).toEqual([long.slice(0, 128)]);
    expect(hostile.statesAt(2)[long.slice(0, 128)]!.state).toBe('s2');
    hostile.close();
    // No definition for a `link` machine in this build: its chart is pieced together from the trace.
    const { models, instances } = index.charts([]);
    expect(instances).toEqual([{ name: 'link:A->B', model: 'link' }]);
    expect(models[0]!.discovered).toBe(true);
    expect(models[0]!.states.map((s) => s.path)).toEqual(['', 'down', 'probation', 'probation.listening']);
    index.close();
  });

  it('refuses what is not a trace, naming the line and saying what a trace is', async () => {
    const ok = '{"kind":"host.write","t":0,"node":"A","tag":1}';
    expect((await refusal([ok, 'this is not json', ok])).message).toMatch(/line 2: not JSON; a trace is one JSON event per line/);
    expect((await refusal([ok, '[1,2,3]'])).message).toMatch(/line 2: not a trace event; each line must be a JSON object with a string "kind"/);
    expect((await refusal([ok, '{"kind":"x","t":-1}'])).message).toMatch(/line 2: not a trace event/);
    expect((await refusal([ok, '{"t":1}'])).message).toMatch(/line 2: not a trace event/);
    expect((await refusal([ok, `{"kind":"${'k'.repeat(65)}","t":1}`])).message).toMatch(/line 2: not a trace event/);
    expect((await refusal([ok, ok, ok], { eventsMax: 2, lineBytesMax: 1000 })).message).toMatch(/line 3: more than 2 events/);
    expect((await refusal([ok, `{"kind":"x","t":1,"pad":"${'x'.repeat(2000)}"}`, ok], { eventsMax: 10, lineBytesMax: 1000 })).message).toMatch(/line 2: a line longer than 1000 bytes/);
    expect((await refusal([''])).message).toMatch(/t\d+\.jsonl: holds no events/);
    expect((await refusal(['', '  ', '{"kind":"cut off'])).message).toMatch(/holds no events/);
    const e = await refusal([ok, 'nope', ok]);
    expect(e.code).toBe('ML_ERR_TRACE_FORMAT');
  });

  it('never fails on hostile bytes with anything but its own refusal', async () => {
    const random = new SeededRandom(99);
    for (let round = 0; round < 40; round++) {
      const bytes = Buffer.alloc(2000);
      for (let k = 0; k < bytes.length; k++) bytes[k] = random.int(256);
      const path = scratch.path('hostile', '.jsonl');
      writeFileSync(path, Buffer.concat([Buffer.from('{"kind":"x","t":0}\n'), bytes]));
      try {
        (await TraceIndex.build(path, { eventsMax: 1000, lineBytesMax: 500 })).close();
      } catch (err) {
        expect(err).toBeInstanceOf(TraceFormatError);
      }
    }
  });
});
