import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FrameDecoder, FrameType, type Frame } from '../../../firmware/protocol/index.ts';
import { openSerialLine } from '../../../host/disks/serial-disk/line.ts';
import { renderStats } from '../../../hil/cli/proxy-command.ts';
import { framePiece, recordingPipe, streamFrame, virtualCore } from '../faults/proxy/fixtures.ts';
import { connectClient, FakeListener, waitFor } from '../faults/proxy/net-fixtures.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { mirrorlab } from '../../support/run-cli.ts';

const root = new URL('../../../', import.meta.url).pathname;
const scratch = scratchDir('proxy-cli');

afterEach(() => vi.restoreAllMocks());

describe('mirrorlab proxy: bad input is one line and exit 2', () => {
  it('says what was wrong and what is allowed', async () => {
    for (const [args, message] of [
      [['proxy', '--listen', '0.0.0.0:7400', '--to', '127.0.0.1:7401'], /--listen: 0.0.0.0 is not a loopback address; the fault proxy listens on loopback only/],
      [['proxy', '--listen', '127.0.0.1:7400'], /--listen and --to go together; --to is missing/],
      [['proxy'], /give --listen 127.0.0.1:PORT and --to HOST:PORT \(TCP and UDP\), --serial PATH_A,PATH_B, or --ptys DIR/],
      [['proxy', '--serial', 'a,b', '--listen', '127.0.0.1:0', '--to', '127.0.0.1:1'], /not several/],
      [['proxy', '--serial', 'a,b', '--ptys', '/tmp'], /not several/],
      [['proxy', '--ptys', '/nonexistent/dir'], /ML_ERR_PROXY_SERIAL: --ptys: cannot make the PTY pairs in \/nonexistent\/dir/],
      [['proxy', '--serial', 'onlyone'], /--serial takes the proxy's ends of two PTY pairs/],
      [['proxy', '--listen', '127.0.0.1:0', '--to', '127.0.0.1:9', '--faults', 'drop=2'], /--faults drop: "2" is not a probability/],
      [['proxy', '--listen', '127.0.0.1:0', '--to', '127.0.0.1:9', '--faults', 'oneway=X>Y@1s+1s'], /ML_ERR_PROXY_PLAN: --faults: oneway=X>Y: the proxy's ends are A \(the connect side\) and B/],
      [['proxy', '--listen', '127.0.0.1:0', '--to', '127.0.0.1:9', '--names', 'A,A'], /--names takes two different controller names/],
      [['proxy', '--listen', '127.0.0.1:0', '--to', '127.0.0.1:9', '--seed', '-1'], /--seed takes an integer from 0/],
      [['proxy', '--serial', '/nonexistent/a,/nonexistent/b'], /ML_ERR_PROXY_SERIAL: --serial: no serial port at \/nonexistent\/a/],
      [['proxy', '--listen', '127.0.0.1:0', '--to', '127.0.0.1:9', '--events', '/nonexistent/dir/e.jsonl'], /ML_ERR_PROXY_EVENTS: --events: cannot write/],
    ] as const) {
      const r = await mirrorlab([...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n').filter((l) => !l.startsWith('(run with --help')), r.stderr).toHaveLength(1);
    }
  });
});

describe('the stats a person reads', () => {
  it('say per direction what was seen and done, then connections, holes and events', () => {
    const { core } = virtualCore('drop=1:LOCK', { seed: 4 });
    const { pipe } = recordingPipe(core);
    pipe.accept(framePiece(streamFrame('LOCK', 1)));
    pipe.accept(framePiece(streamFrame('WRITE', 2)));
    pipe.accept({ kind: 'noise', bytes: new Uint8Array(3) });
    const text = renderStats(core.stats());
    expect(text).toMatch(/^fault proxy \(tcp\), seed 4, faults drop=1:LOCK, ran 0\.0 s\n/);
    expect(text).toContain('  A->B: 2 frames seen, 1 forwarded; dropped 1, corrupted 0,');
    expect(text).toContain('noise 3 bytes;');
    expect(text).toContain('  B->A: 0 frames seen');
    expect(text).toMatch(/ {2}holes: 0 partitions, .*\n {2}events: 1 emitted\n$/);
  });
});

describe('mirrorlab proxy, run as a process', () => {
  it('prints where it listens, relays with the plan\'s faults, writes the events, and prints its stats on SIGINT', async () => {
    const listener = await FakeListener.start();
    const events = scratch.path('events', '.jsonl');
    const child = spawn(process.execPath, [`${root}bin/mirrorlab.mjs`, 'proxy', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${listener.port}`,
      '--faults', 'drop=1:LOCK', '--seed', '3', '--events', events, '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MIRRORLAB_LOG: 'silent' } });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await waitFor(() => /^listening 127\.0\.0\.1:\d+ -> /.test(stdout), 'the address line', 20_000);
      const port = Number(/^listening 127\.0\.0\.1:(\d+)/.exec(stdout)![1]);
      const client = await connectClient(port);
      client.send(streamFrame('LOCK', 1), streamFrame('WRITE', 2), streamFrame('UNLOCK', 3));
      await waitFor(() => listener.peers[0]?.frames.length === 2, 'two frames at the listener');
      client.socket.destroy();
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      const stats = JSON.parse(stdout.slice(stdout.indexOf('\n') + 1)) as { seed: number; faults: string; directions: Record<string, { total: { framesDropped: number } }> };
      expect(stats).toMatchObject({ seed: 3, faults: 'drop=1:LOCK' });
      expect(stats.directions['A->B']!.total.framesDropped).toBe(1);
      const lines = (await readFile(events, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as object);
      expect(lines).toEqual([{ kind: 'link.fault', t: expect.any(Number), node: 'A', fault: 'drop', peer: 'B', type: 'LOCK', seq: 1, lun: 0, delayMs: 0, channel: 'conn0#0' }]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await listener.stop();
    }
  });

  it('--ptys makes the two PTY pairs, prints the ends the controllers open, relays between them, and ends socat on exit', async () => {
    const dir = scratch.dir();
    const child = spawn(process.execPath, [`${root}bin/mirrorlab.mjs`, 'proxy', '--ptys', dir, '--faults', 'drop=1:LOCK', '--json'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MIRRORLAB_LOG: 'silent' } });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await waitFor(() => /controller B opens \S+\n/.test(stdout), 'the lines naming the controllers\' ends', 20_000);
      const pathA = /controller A opens (\S+)\n/.exec(stdout)![1]!;
      const pathB = /controller B opens (\S+)\n/.exec(stdout)![1]!;
      expect([pathA, pathB]).toEqual([`${dir}/proxy-a-a`, `${dir}/proxy-b-b`]);
      const a = await openSerialLine(pathA, 115_200);
      const b = await openSerialLine(pathB, 115_200);
      const atB: Frame[] = [];
      const decoder = new FrameDecoder({ onFrame: (f) => atB.push(f), onError: () => {} });
      b.onData((chunk) => decoder.push(chunk.slice()));
      try {
        a.write(streamFrame('LOCK', 1));
        a.write(streamFrame('WRITE', 2));
        await waitFor(() => atB.length === 1, 'the WRITE at B');
        expect(atB.map((f) => f.type)).toEqual([FrameType.Write]);
      } finally {
        await a.close();
        await b.close();
      }
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      type Stats = { link: string; directions: Record<string, { total: { framesDropped: number } }> };
      const stats = JSON.parse(stdout.slice(stdout.lastIndexOf('\n{') + 1)) as Stats;
      expect(stats.link).toBe('serial');
      expect(stats.directions['A->B']!.total.framesDropped).toBe(1);
      // socat is gone with the proxy, and with it the links it made.
      await waitFor(() => !existsSync(pathA) && !existsSync(pathB), 'the PTY links removed');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
