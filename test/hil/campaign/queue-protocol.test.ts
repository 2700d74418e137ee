import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { drawRun } from '../../../hil/campaign/draw-run.ts';
import { JobDataSchema, OutcomeSchema, QUEUE_LIMITS, parseStored, settingsOf, faultsText } from '../../../hil/campaign/queue-protocol.ts';
import { parseQueueUrl } from '../../../hil/campaign/queue-url.ts';
import { computeIdentity } from '../../../hil/campaign/source-identity.ts';
import { main } from '../../../hil/cli/main.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { ROOT } from './queue-support.ts';

const scratch = scratchDir('queue-units');

/** Runs `mirrorlab` in a child process (several at once: each mostly waits for tsx to load). */
async function mirrorlab(...args: string[]) {
  const p = spawn(process.execPath, ['bin/mirrorlab.mjs', ...args], { cwd: ROOT, env: { ...process.env, MIRRORLAB_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (c: Buffer) => (stdout += String(c)));
  p.stderr.on('data', (c: Buffer) => (stderr += String(c)));
  const [code] = await once(p, 'exit');
  return { code: code as number | null, stdout, stderr };
}

/** Runs the command in this process, as bin/mirrorlab.mjs would, gathering what it writes to stderr. */
async function inProcess(args: string[]) {
  const write = process.stderr.write;
  let stderr = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, stdout: '', stderr };
  } finally {
    process.stderr.write = write;
  }
}

describe('queue URL', () => {
  it('takes redis://HOST:PORT[/DB] with defaults, and keeps passwords out of what it shows', () => {
    expect(parseQueueUrl('redis://10.0.0.5:6380/3')).toEqual({ host: '10.0.0.5', port: 6380, db: 3, shown: 'redis://10.0.0.5:6380/3' });
    expect(parseQueueUrl('redis://queue.lab')).toEqual({ host: 'queue.lab', port: 6379, db: 0, shown: 'redis://queue.lab' });
    expect(parseQueueUrl('redis://:s3cret@[::1]:7000')).toEqual({ host: '::1', port: 7000, db: 0, shown: 'redis://[::1]:7000', password: 's3cret' });
  });

  it('says what was wrong and what is allowed', () => {
    const cases: [string, RegExp][] = [
      ['localhost:6379', /uses localhost, not redis/],
      ['http://h:1', /uses http, not redis/],
      ['redis://h:99999', /not a URL/],
      ['redis://h:6379/x', /has "\/x" where a database number belongs/],
      ['redis://h:6379/1?tls=1', /has a query or fragment/],
      ['not a url', /is not a URL/],
    ];
    for (const [text, why] of cases) {
      expect(() => parseQueueUrl(text), text).toThrow(why);
      expect(() => parseQueueUrl(text), text).toThrow(/write redis:\/\/HOST:PORT\[\/DB\]/);
    }
  });
});

describe('what travels through Redis', () => {
  it('carries a fixed fault plan as text that gives back the same runs', () => {
    const faults = parseLinkFaults('drop=0.02:LOCK,drop=0.1:ACK|NAK,delay=0.01@2ms,partition=3,partition=5ms+10ms,bandwidth=100@4ms');
    const back = settingsOf({ writes: 300, faults: faultsText({ writes: 300, faults }) });
    for (const seed of [1, 2, 3, 4, 5, 6]) expect(drawRun(seed, back)).toEqual(drawRun(seed, { writes: 300, faults }));
    expect(settingsOf({ writes: 300, faults: null })).toEqual({ writes: 300, faults: null });
  });

  it('refuses job data and outcomes that mirrorlab did not write, saying where and what', () => {
    const good = { campaignId: 'cabc123def', seed: 4, writes: 10, faults: null, version: '0.1.0', sourceHash: 'a'.repeat(64) };
    expect(JobDataSchema.safeParse(good).success).toBe(true);
    for (const bad of [{ ...good, seed: -1 }, { ...good, campaignId: 'x:y' }, { ...good, writes: 0 }, { ...good, code: 'process.exit(1)' }, { ...good, sourceHash: 'zz' }, null, 'seed']) {
      expect(JobDataSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
    const outcome = { seed: 4, worker: 'h:1', attempt: 1, error: 'boom' };
    expect(parseStored(OutcomeSchema, JSON.stringify(outcome), 'seed 4')).toEqual({ ok: true, value: outcome });
    expect(parseStored(OutcomeSchema, '{"seed":4', 'the stored outcome of seed 4')).toEqual({ ok: false, error: 'the stored outcome of seed 4 is not JSON' });
    const both = parseStored(OutcomeSchema, JSON.stringify({ ...outcome, summary: {} }), 'seed 4');
    expect(both.ok).toBe(false);
    const neither = parseStored(OutcomeSchema, JSON.stringify({ seed: 4, worker: 'h', attempt: 1 }), 'seed 4');
    expect(neither).toEqual({ ok: false, error: 'seed 4 is not what mirrorlab wrote: value: an outcome has a summary or an error, not both' });
    const wrongType = parseStored(OutcomeSchema, JSON.stringify({ ...outcome, attempt: 'many' }), 'seed 4');
    expect(wrongType).toMatchObject({ ok: false, error: expect.stringMatching(/^seed 4 is not what mirrorlab wrote: attempt: /) });
    expect(QUEUE_LIMITS.outcomeBytesMax).toBeGreaterThan(100 * 500);
  });
});

describe('source identity', () => {
  it('changes with any file that decides a run, and not with the CLI, bench or history', async () => {
    const root = scratch.dir();
    const put = async (path: string, text: string) => {
      await mkdir(join(root, path, '..'), { recursive: true });
      await writeFile(join(root, path), text);
    };
    await put('package.json', '{"version":"1.2.3"}');
    await put('firmware/a.ts', 'export const a = 1;');
    await put('host/b.ts', 'export const b = 1;');
    await put('hil/emulator/c.ts', 'export const c = 1;');
    await put('hil/cli/d.ts', 'export const d = 1;');
    await put('hil/history/e.ts', 'export const e = 1;');
    await put('node_modules/xstate/package.json', '{"version":"5.0.0"}');
    const base = await computeIdentity(root);
    expect(base.version).toBe('1.2.3');
    expect(base.sourceHash).toMatch(/^[0-9a-f]{64}$/);
    expect((await computeIdentity(root)).sourceHash).toBe(base.sourceHash);

    await put('hil/cli/d.ts', 'export const d = 2;');
    await put('hil/history/e.ts', 'export const e = 2;');
    await put('README.md', 'words');
    expect((await computeIdentity(root)).sourceHash).toBe(base.sourceHash);

    for (const [path, text] of [['firmware/a.ts', 'export const a = 2;'], ['hil/emulator/c.ts', 'export const c = 2;'], ['host/new.ts', ''], ['node_modules/xstate/package.json', '{"version":"5.0.1"}'], ['package.json', '{"version":"1.2.4"}']]) {
      const before = (await computeIdentity(root)).sourceHash;
      await put(path!, text!);
      expect((await computeIdentity(root)).sourceHash, path).not.toBe(before);
    }
  });
});

describe('queue commands at the boundary', () => {
  it('reject bad usage with one line and exit 2, and an unreachable Redis likewise', async () => {
    const cases: [string[], RegExp][] = [
      [['worker'], /--queue <url>' not specified/],
      [['worker', '--queue', 'http://x:1'], /--queue: "http:\/\/x:1" uses http, not redis/],
      [['worker', '--queue', 'redis://127.0.0.1:1', '--concurrency', '0'], /--concurrency takes an integer from 1 to 256/],
      [['campaign', '--resume', 'cabcdefgh'], /--resume needs --queue URL/],
      [['campaign', '--queue', 'redis://127.0.0.1:1', '--resume', 'c!'], /--resume takes a campaign id/],
      [['campaign', '--queue', 'redis://127.0.0.1:1', '--resume', 'cabcdefgh', '--seeds', '3'], /--resume takes the campaign's seeds and settings from Redis/],
      [['campaign', '--queue', 'redis://127.0.0.1:1', '--seeds', '3', '--workers', '2'], /--workers sets local worker threads/],
      [['history', '--seed', 'x'], /--seed takes an integer/],
      [['emulate', '--history', '/tmp/x.db'], /--history names where --record writes; add --record/],
      [['campaign', '--queue', 'redis://127.0.0.1:1', '--seeds', '1', '--no-history'], /^error: ML_ERR_QUEUE_REDIS: cannot reach Redis at redis:\/\/127\.0\.0\.1:1: connect ECONNREFUSED/m],
      [['worker', '--queue', 'redis://127.0.0.1:1'], /^error: ML_ERR_QUEUE_REDIS: cannot reach Redis at redis:\/\/127\.0\.0\.1:1: connect ECONNREFUSED/m],
    ];
    // In this process (fast), then the two that reach the network through the real command.
    const results = [];
    for (const [args] of cases.slice(0, -2)) results.push(await inProcess(args));
    results.push(...(await Promise.all(cases.slice(-2).map(([args]) => mirrorlab(...args)))));
    for (const [i, [args, message]] of cases.entries()) {
      const r = results[i]!;
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('history, campaign and emulate --record on a file that is not a history exit 2 with one line, before running anything', async () => {
    const path = scratch.path('junk', '.db');
    await writeFile(path, 'junk'.repeat(100));
    const r = await inProcess(['history', '--history', path]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^error: ML_ERR_HISTORY_FORMAT: .* is not a mirrorlab history database/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    // Checked before anything runs: a million seeds would take hours.
    for (const args of [['campaign', '--seeds', '1000000', '--history', path], ['emulate', '--writes', '100000000', '--record', '--history', path]]) {
      const c = await inProcess(args);
      expect([c.code, c.stderr.trim()], args.join(' ')).toEqual([2, expect.stringMatching(/^error: ML_ERR_HISTORY_FORMAT: /)]);
    }
  });
});
