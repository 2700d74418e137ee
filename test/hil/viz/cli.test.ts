import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { main } from '../../../hil/cli/main.ts';
import { scratchDir } from '../../support/scratch-dir.ts';

const root = new URL('../../../', import.meta.url).pathname;
const scratch = scratchDir('viz-cli');
const env = { ...process.env, MIRRORLAB_LOG: 'warn' };

function mirrorlab(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/mirrorlab.mjs', ...args], { cwd: root, encoding: 'utf8', env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The command run in this process (no second Node to start): its exit status and what it wrote to stderr. */
async function inProcess(...args: string[]): Promise<{ code: number; stderr: string }> {
  const writes: string[] = [];
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    writes.push(String(s));
    return true;
  });
  try {
    return { code: await main(args), stderr: writes.join('') };
  } finally {
    spy.mockRestore();
  }
}

/** Start the command and wait until `stream` says `pattern`; its match and the process. */
function start(args: string[], stream: 'stdout' | 'stderr', pattern: RegExp): Promise<{ child: ChildProcess; match: RegExpMatchArray; out: () => string }> {
  const child = spawn(process.execPath, ['bin/mirrorlab.mjs', ...args], { cwd: root, env });
  let text = '';
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    child[stream]!.on('data', (d) => {
      text += d;
      const m = pattern.exec(text);
      if (m) resolve({ child, match: m, out: () => out });
    });
    child.on('exit', (code) => reject(new Error(`exited ${code} before saying ${pattern}: ${text}`)));
  });
}

const exited = (child: ChildProcess): Promise<number | null> => new Promise((resolve) => child.on('exit', (code) => resolve(code)));

describe('mirrorlab viz and emulate --viz', () => {
  it('refuses what it cannot show in one line, exit 2', async () => {
    const notATrace = scratch.path('notes', '.txt');
    writeFileSync(notATrace, 'hello\nworld\n');
    const cases: [string[], RegExp][] = [
      [['viz', '--trace', scratch.path('missing', '.jsonl')], /^error: ENOENT: no such file or directory/],
      [['viz', '--trace', notATrace], /^error: ML_ERR_TRACE_FORMAT: .*notes\d+\.txt line 1: not JSON; a trace is one JSON event per line/],
      [['viz', '--port', '70000'], /--port takes an integer from 0 to 65535/],
      [['emulate', '--viz', '--speed', '0'], /--speed takes a number from 0.00001 to 1000/],
      [['emulate', '--viz', '--viz-port', '-1'], /--viz-port takes an integer from 0 to 65535/],
    ];
    for (const [args, message] of cases) {
      const r = await inProcess(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('viz --trace serves the trace on 127.0.0.1, prints where, and stops cleanly on SIGTERM', async () => {
    const trace = scratch.path('run', '.jsonl');
    expect(mirrorlab('emulate', '--writes', '100', '--trace', trace).code).toBe(0);
    const { child, match } = await start(['viz', '--trace', trace, '--port', '0'], 'stdout', /^(http:\/\/127\.0\.0\.1:\d+\/)\n/);
    const info = (await (await fetch(`${match[1]}api/info`)).json()) as { mode: string; trace: { run: { seed: number } } };
    expect(info.mode).toBe('replay');
    expect(info.trace.run.seed).toBe(1);
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
  });

  it('emulate --viz waits for a page, streams the run to it, prints the report, and exits with the verdict once the page goes', async () => {
    const { child, match, out } = await start(['emulate', '--viz', '--viz-port', '0', '--speed', '1000', '--writes', '100', '--json'], 'stderr', /open (http:\/\/127\.0\.0\.1:\d+\/)/);
    const ws = new WebSocket(`${match[1]!.replace('http', 'ws')}live`);
    const kinds: string[] = [];
    const ended = new Promise<{ verdict: string }>((resolve) => ws.on('message', (d) => {
      const m = JSON.parse(String(d));
      kinds.push(m.type);
      if (m.type === 'end') resolve(m);
    }));
    expect((await ended).verdict).toBe('consistent');
    expect(kinds[0]).toBe('hello');
    expect(kinds).toContain('tick');
    ws.close();
    expect(await exited(child)).toBe(0);
    expect(JSON.parse(out())).toMatchObject({ verdict: 'consistent', writes: { acknowledged: 100 } });
  });
});
