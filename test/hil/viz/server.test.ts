import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { firmwareCharts } from '../../../hil/viz/charts.ts';
import { VizServerError } from '../../../hil/viz/errors.ts';
import { LiveFeed } from '../../../hil/viz/live.ts';
import type { LiveControl } from '../../../hil/viz/pacing.ts';
import { VizServer } from '../../../hil/viz/server.ts';
import { TraceIndex } from '../../../hil/viz/trace-index.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { BROKEN, makeTrace } from './fixtures.ts';

const scratch = scratchDir('viz-server');

/** A GET with any Host header (fetch would not let a test lie about it). */
function get(port: number, path: string, host = `127.0.0.1:${port}`): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('visualizer server (replay)', () => {
  let server: VizServer;
  let index: TraceIndex;

  beforeAll(async () => {
    const trace = await makeTrace(scratch.dir(), 'broken', BROKEN);
    index = await TraceIndex.build(trace.path);
    server = await VizServer.start({ port: 0, trace: index });
  });
  afterAll(async () => {
    await server.close();
    index.close();
  });

  it('listens on 127.0.0.1 only and serves the page with a policy that forbids loading anything from elsewhere', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await get(server.port, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'; script-src 'self'/);
    expect(page.body).toContain('/vendor/elk.bundled.js');
    expect((await get(server.port, '/assets/app.js')).headers['content-type']).toMatch(/javascript/);
    expect((await get(server.port, '/vendor/elk.bundled.js')).body.length).toBeGreaterThan(1_000_000);
  });

  it('serves nothing but its own files, and only to requests addressed to it', async () => {
    for (const path of ['/assets/../server.ts', '/assets/%2e%2e%2fserver.ts', '/assets/server.ts', '/vendor/elk-api.js', '/etc/passwd', '/node_modules/ws/package.json']) {
      expect((await get(server.port, path)).status, path).toBe(404);
    }
    // A page elsewhere that resolves its own name to 127.0.0.1 (DNS rebinding) is refused.
    expect((await get(server.port, '/api/info', `evil.example:${server.port}`)).status).toBe(421);
    expect((await get(server.port, '/api/info', `localhost:${server.port}`)).status).toBe(200);
  });

  it('answers the page: the trace at an instant, windows of events, jumps and plots', async () => {
    const info = JSON.parse((await get(server.port, '/api/info')).body);
    expect(info.mode).toBe('replay');
    expect(info.trace.events).toBe(index.count);
    expect(info.trace.violationsTotal).toBeGreaterThan(0);
    expect(info.charts.instances.map((i: { name: string }) => i.name)).toEqual(['link:A->B', 'link:B->A', 'source:A->B', 'target:A->B', 'target:B->A']);
    const at = JSON.parse((await get(server.port, `/api/at?i=${index.count - 1}&around=3`)).body);
    expect(at.states['source:A->B'].state).toBe(index.statesAt(index.count - 1)['source:A->B']!.state);
    expect(at.events.map((e: { index: number }) => e.index)).toEqual([index.count - 4, index.count - 3, index.count - 2, index.count - 1]);
    const byTime = JSON.parse((await get(server.port, `/api/at?t=${index.violations[0]!.atMs}`)).body);
    expect(byTime.i).toBe(index.violations[0]!.index);
    expect(JSON.parse((await get(server.port, '/api/jump?from=0&to=violation&dir=next')).body).index).toBe(index.violations[0]!.index);
    const plot = JSON.parse((await get(server.port, `/api/plot?t0=0&t1=${index.durationMs}&buckets=100`)).body);
    expect(plot.series.length).toBeGreaterThan(4);
  });

  it('refuses bad queries with a message saying what is allowed', async () => {
    const cases: [string, RegExp][] = [
      ['/api/at?i=-1', /i must be an integer from 0 to \d+, got "-1"/],
      ['/api/at?i=1e3', /i must be an integer/],
      [`/api/at?i=${index.count}`, /i must be an integer from 0 to/],
      ['/api/at?t=abc', /t must be a number/],
      ['/api/jump?from=0&to=everything&dir=next', /to must be one of state, fault, violation, error/],
      ['/api/plot?t0=5&t1=1&buckets=10', /t1 \(1\) is before t0 \(5\)/],
      ['/api/plot?t0=0&t1=1&buckets=100000', /buckets must be an integer from 1 to 4000/],
      ['/api/events?from=0&count=100000', /count must be an integer from 1 to 500/],
      ['/api/nothing', /no such API/],
    ];
    for (const [path, message] of cases) {
      const r = await get(server.port, path);
      expect(r.status, path).toBe(400);
      expect(JSON.parse(r.body).error, path).toMatch(message);
    }
  });

  it('says so in one line when its port is taken', async () => {
    await expect(VizServer.start({ port: server.port })).rejects.toThrow(VizServerError);
    await expect(VizServer.start({ port: server.port })).rejects.toThrow(/port \d+ on 127\.0\.0\.1 is in use; choose another with --port \(0 picks a free one\)/);
  });
});

describe('visualizer server (live)', () => {
  it('streams a hello and ticks, obeys control messages, and shrugs off hostile ones', async () => {
    const control: LiveControl & { log: string[] } = {
      speed: 0.01, paused: false, log: [], now: () => 0,
      setSpeed(x) { this.log.push(`speed ${x}`); },
      pause() { this.log.push('pause'); },
      resume() { this.log.push('resume'); },
    };
    const feed = new LiveFeed(firmwareCharts(), control);
    const server = await VizServer.start({ port: 0, live: feed });
    try {
      // Only local pages may connect.
      const foreign = new WebSocket(`ws://127.0.0.1:${server.port}/live`, { headers: { origin: 'http://evil.example' } });
      await expect(new Promise((resolve, reject) => { foreign.on('open', resolve); foreign.on('error', reject); })).rejects.toThrow(/403/);
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/live`);
      const messages: { type: string; [k: string]: unknown }[] = [];
      ws.on('message', (d) => messages.push(JSON.parse(String(d))));
      await new Promise((resolve) => ws.on('open', resolve));
      await feed.waitForPage();
      feed.start();
      feed.emit({ kind: 'state', t: 0, node: 'A', machine: 'source:A->B', from: '', to: 'linkDown', event: 'xstate.init' });
      feed.emit({ kind: 'rollback.append', t: 1, node: 'A', peer: 'B', seq: 1, entry: 'write', lun: 0, lba: 0, count: 8, lockId: 1, tag: 1, entries: 3, bytes: 100 });
      feed.emit({ kind: 'state', t: 2, node: 'A', machine: 'source:A->B', from: 'linkDown', to: 'idle', event: 'link.up' });
      ws.send('not json');
      ws.send(Buffer.from([0, 1, 2, 255]));
      ws.send(JSON.stringify({ type: 'speed', value: 1e9 }));
      ws.send(JSON.stringify({ type: 'pause' }));
      ws.send(JSON.stringify({ type: 'speed', value: 0.5 }));
      await new Promise((resolve) => setTimeout(resolve, 350));
      expect(messages[0]!.type).toBe('hello');
      const ticks = messages.filter((m) => m.type === 'tick');
      expect(ticks.length).toBeGreaterThan(0);
      const states = ticks.at(-1)!.states as Record<string, { to: string; from: string; event: string }>;
      expect(states['source:A->B']).toMatchObject({ to: 'idle', from: 'linkDown', event: 'link.up' });
      expect(ticks.flatMap((t) => t.transitions as unknown[]).length).toBe(2);
      expect(Object.keys(ticks.find((t) => Object.keys(t.points as object).length > 0)!.points as object)).toContain('rollback|A->B');
      expect(control.log).toEqual(['pause', 'speed 0.5']);
      expect(feed.ignoredMessages).toBe(3);
      // A message past the size limit closes that page's connection; the server carries on.
      const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
      ws.send('x'.repeat(10_000));
      expect(await closed).toBe(1009);
      const again = new WebSocket(`ws://127.0.0.1:${server.port}/live`);
      const hello = await new Promise<{ type: string; states: Record<string, unknown> }>((resolve) => again.on('message', (d) => resolve(JSON.parse(String(d)))));
      expect(hello.type).toBe('hello');
      expect(Object.keys(hello.states)).toEqual(['source:A->B']);
      again.close();
    } finally {
      feed.stop();
      await server.close();
    }
  });
});
