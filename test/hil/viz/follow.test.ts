import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { TraceEvent } from '../../../hil/trace/events.ts';
import { checkFollowPath, FOLLOW_LINE_BYTES_MAX, FOLLOW_LINES_PER_TURN_MAX, TelemetryFollower } from '../../../hil/viz/follow.ts';
import { runClientLoad } from '../../../hil/workload/client-load.ts';
import { ControlClient } from '../../../host/runtime/control-client.ts';
import { freePort, startController, waitFor, writeConfig } from '../../host/runtime/processes.ts';
import { scratchDir } from '../../support/scratch-dir.ts';

const scratch = scratchDir('viz-follow');

function collector() {
  const events: (TraceEvent & Record<string, unknown>)[] = [];
  return { events, sink: { emit: (e: TraceEvent) => void events.push(e as TraceEvent & Record<string, unknown>) } };
}

const line = (n: number, wall: number, extra: Record<string, unknown> = {}): string =>
  `${JSON.stringify({ n, proc: 'A/1', wall, kind: 'chart', t: n, node: 'A', machine: 'source:A->B', from: 'idle', to: 'lockPending', event: 'e', ...extra })}\n`;

describe('following telemetry files', () => {
  it('takes whole lines as they are appended, keeps a partial line until its end arrives, and re-times by wall stamp', () => {
    const dir = mkdtempSync(join(scratch.dir(), 'f-'));
    const path = join(dir, 'a.jsonl');
    writeFileSync(path, line(1, 1_000) + line(2, 1_250));
    const { events, sink } = collector();
    const follower = new TelemetryFollower([path], { sink, wallNow: () => 2_000 });
    follower.step();
    expect(events.map((e) => [e.n, e.t])).toEqual([[1, 0], [2, 250]]);
    const third = line(3, 1_300);
    appendFileSync(path, third.slice(0, 20));
    follower.step();
    expect(events).toHaveLength(2);
    appendFileSync(path, third.slice(20));
    follower.step();
    expect(events.map((e) => e.t)).toEqual([0, 250, 300]);
    // Between lines the page's clock moves with the wall clock, from the first line's stamp.
    expect(follower.now()).toBe(1_000);
    follower.stop();
  });

  it('merges several files by wall stamp, and never moves time backwards for a line that comes late', () => {
    const dir = mkdtempSync(join(scratch.dir(), 'f-'));
    const [a, b] = [join(dir, 'a.jsonl'), join(dir, 'b.jsonl')];
    writeFileSync(a, line(1, 100) + line(2, 300) + line(3, 500));
    writeFileSync(b, line(1, 200, { node: 'B' }) + line(2, 400, { node: 'B' }));
    const { events, sink } = collector();
    const follower = new TelemetryFollower([a, b], { sink });
    follower.step();
    expect(events.map((e) => `${e.node}${e.n}@${e.t}`)).toEqual(['A1@0', 'B1@100', 'A2@200', 'B2@300', 'A3@400']);
    // B's next line was stamped before A's last one but read after it: it is shown at A's time.
    appendFileSync(b, line(3, 450, { node: 'B' }));
    follower.step();
    expect(events.at(-1)).toMatchObject({ node: 'B', n: 3, t: 400 });
    follower.stop();
  });

  it('counts and skips lines that are not stamped telemetry, including one too long to keep, and goes on', () => {
    const dir = mkdtempSync(join(scratch.dir(), 'f-'));
    const path = join(dir, 'a.jsonl');
    const huge = `{"kind":"chart","wall":5,"pad":"${'x'.repeat(FOLLOW_LINE_BYTES_MAX + 10)}"}\n`;
    writeFileSync(path, `not json\n[1,2]\n{"kind":"chart"}\n{"wall":3}\n${line(1, 10)}${huge}${line(2, 20)}`);
    const { events, sink } = collector();
    const follower = new TelemetryFollower([path], { sink });
    while (follower.step()) { /* until caught up */ }
    expect(events.map((e) => e.n)).toEqual([1, 2]);
    expect(follower.stats().files[0]).toMatchObject({ badLines: 5, present: true });
    follower.stop();
  });

  it('waits for a file that does not exist yet, and reads a file that was started over from its beginning', () => {
    const dir = mkdtempSync(join(scratch.dir(), 'f-'));
    const path = join(dir, 'later.jsonl');
    const { events, sink } = collector();
    const follower = new TelemetryFollower([path], { sink });
    follower.step();
    expect(follower.stats().files[0]!.present).toBe(false);
    writeFileSync(path, line(1, 10) + line(2, 20) + line(3, 30));
    follower.step();
    expect(events).toHaveLength(3);
    writeFileSync(path, line(1, 40));
    follower.step();
    expect(events.map((e) => e.n)).toEqual([1, 2, 3, 1]);
    expect(follower.stats().files[0]!.truncations).toBe(1);
    follower.stop();
  });

  it('hands on a bounded number of lines per turn, so a long file is caught up with in several turns', () => {
    const dir = mkdtempSync(join(scratch.dir(), 'f-'));
    const path = join(dir, 'long.jsonl');
    const count = FOLLOW_LINES_PER_TURN_MAX + 500;
    writeFileSync(path, Array.from({ length: count }, (_, i) => line(i + 1, i)).join(''));
    const { events, sink } = collector();
    const follower = new TelemetryFollower([path], { sink });
    let turns = 1;
    while (follower.step()) turns++;
    expect(turns).toBeGreaterThan(1);
    expect(events).toHaveLength(count);
    follower.stop();
  });

  it('names what is wrong with a path it cannot follow', () => {
    const dir = mkdtempSync(join(scratch.dir(), 'f-'));
    expect(checkFollowPath(join(dir, 'not-yet.jsonl'))).toBeNull();
    expect(checkFollowPath(dir)).toMatch(/is not a regular file/);
    expect(checkFollowPath(join(dir, 'no-dir', 'x.jsonl'))).toMatch(/no such directory/);
  });
});

interface Tick {
  type: string;
  states: Record<string, { to: string }>;
  points: Record<string, number[]>;
  source?: string;
}

function runViz(args: string[]): { url: Promise<string>; stderr: () => string; exit: Promise<number | null>; kill: () => void } {
  const child = spawn(process.execPath, ['bin/mirrorlab.mjs', 'viz', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += String(d)));
  const url = new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += String(d);
      const m = /http:\/\/127\.0\.0\.1:\d+\/?/.exec(out);
      if (m) resolve(m[0]);
    });
    child.on('exit', () => reject(new Error(`viz exited before serving: ${err}`)));
  });
  url.catch(() => undefined); // a test that expects the refusal never asks for the address
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { url, stderr: () => err, exit, kill: () => child.kill('SIGTERM') };
}

describe('mirrorlab viz --follow', () => {
  it('refuses a path it cannot follow, and --follow with --trace, in one line with exit 2', async () => {
    const dir = mkdtempSync(join(scratch.dir(), 'c-'));
    const bad = runViz(['--follow', join(dir, 'none', 'a.jsonl'), '--port', '0']);
    expect(await bad.exit).toBe(2);
    expect(bad.stderr()).toMatch(/--follow .*no such directory/);
    const both = runViz(['--follow', join(dir, 'a.jsonl'), '--trace', join(dir, 't.jsonl'), '--port', '0']);
    expect(await both.exit).toBe(2);
    expect(both.stderr()).toMatch(/--follow and --trace cannot be given together/);
    expect(both.stderr()).not.toMatch(/\n\s+at /);
  });

  it('shows two controller processes live: their charts move and their throughput is plotted as they mirror', async () => {
    const dir = mkdtempSync(join(scratch.dir(), 'p-'));
    const port = await freePort();
    const supervision = { heartbeatMs: 50, interruptionMs: 500, probationMs: 500, connectRetryMs: 100 };
    const [aTel, bTel] = [join(dir, 'a.jsonl'), join(dir, 'b.jsonl')];
    const a = await writeConfig(dir, 'a', {
      name: 'A', id: 1, luns: [{ lun: 0, volume: 'mem:8MiB', mirror: { peer: 'B', mode: 'speculative' } }],
      peers: [{ name: 'B', link: `tcp:127.0.0.1:${port}`, connections: 2 }], supervision, control: { path: join(dir, 'a.sock') }, telemetry: aTel,
    });
    const b = await writeConfig(dir, 'b', {
      name: 'B', id: 2, luns: [{ lun: 0, volume: 'mem:8MiB', replicaOf: 'A' }],
      peers: [{ name: 'A', link: `tcp-listen:127.0.0.1:${port}`, connections: 2 }], supervision, control: { path: join(dir, 'b.sock') }, telemetry: bTel,
    });
    // The page is started first: a file that does not exist yet is waited for.
    const viz = runViz(['--follow', aTel, '--follow', bTel, '--port', '0']);
    try {
      const url = await viz.url;
      const messages: Tick[] = [];
      const ws = new WebSocket(`${url.replace('http', 'ws').replace(/\/$/, '')}/live`);
      ws.on('message', (d) => messages.push(JSON.parse(String(d)) as Tick));
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      await startController({ configPath: b });
      await startController({ configPath: a });
      const client = await ControlClient.connect(join(dir, 'a.sock'));
      await waitFor('the link up', async () => (await client.status()).peers[0]!.link.state === 'up');
      const load = await runClientLoad(client, { lun: 0, writes: 200, writeBytes: 4096, queueDepth: 8, pattern: 'random', seed: 3, writer: 1, firstTag: 1 });
      expect(load.acknowledged).toBe(200);
      await waitFor('the page to see both charts and the throughput', () => {
        const last = messages.filter((m) => m.type === 'tick').at(-1);
        const applied = messages.some((m) => m.type === 'tick' && (m.points['applied|A->B']?.[3] ?? 0) > 0);
        return applied && last?.states['link:A->B']?.to === 'up' && last.states['source:A->B'] !== undefined && last.states['target:B->A'] !== undefined;
      });
      expect(messages[0]).toMatchObject({ type: 'hello', source: `${aTel}, ${bTel}` });
      ws.close();
      await client.close();
    } finally {
      viz.kill();
    }
    expect(await viz.exit).toBe(0);
  }, 60_000);
});
