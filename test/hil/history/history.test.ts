import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import initSqlJs from 'sql.js';
import { describe, expect, it, vi } from 'vitest';
import { runCampaignOutcome, type CampaignOptions } from '../../../hil/campaign/campaign.ts';
import { parseSince, renderHistory } from '../../../hil/cli/history-command.ts';
import { main } from '../../../hil/cli/main.ts';
import { ImageLock } from '../../../host/disks/file-lock.ts';
import { readHistory, writeHistory } from '../../../hil/history/history-db.ts';
import { queryHistory, story, type HistoryRun } from '../../../hil/history/query.ts';
import { campaignRuns, campaignSummary, newRecordId, recordHistory, runKey, VIOLATIONS_KEPT_MAX, type RecordedRun } from '../../../hil/history/record.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { plantInWorkers } from '../../support/planted-bugs.ts';

const scratch = scratchDir('history');
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const identity = { version: '0.1.0', sourceHash: 'a'.repeat(64) };

/** Runs a campaign and records it as the CLI does, on the given commit. */
async function campaign(path: string, opts: CampaignOptions, commit: string, at: Date): Promise<string> {
  const o = await runCampaignOutcome(opts);
  const id = newRecordId('campaign');
  await recordHistory(path, {
    id, kind: 'campaign', startedAt: at, finishedAt: at, settings: { seeds: opts.seeds, from: opts.from, writes: opts.writes }, summary: campaignSummary(o.result),
    runs: campaignRuns(o.runs, o.result.failures), identity, commit,
  });
  return id;
}

function run(seed: number, verdict: RecordedRun['verdict'], extra: Partial<RecordedRun> = {}): RecordedRun {
  return { seed, mode: 'sync', onLockReject: 'retransmit', verdict, violations: [], reproduce: `npx mirrorlab emulate --seed ${seed}`, ...extra };
}

async function record(path: string, id: string, at: string, runs: RecordedRun[], commit: string | null = 'c'.repeat(40)): Promise<void> {
  await recordHistory(path, { id, kind: 'campaign', startedAt: new Date(at), finishedAt: new Date(at), settings: {}, summary: {}, runs, identity, commit });
}

describe('results history', () => {
  it('shows a seed made to fail and then pass as a fixed regression, and a seed that always crashed as such', async () => {
    const path = scratch.path('story', '.db');
    const base = { seeds: 2, from: 7, writes: 200, faults: null, workers: 1 };
    // One seed whose run throws (an impossible write size): a crash, in every campaign that has it.
    const crashing = { testing: { overrides: { 9: { writeBytes: 1000 } } }, seeds: 3 };
    const good = await campaign(path, base, '1'.repeat(40), new Date('2026-01-01T10:00:00Z'));
    const bad = await campaign(path, { ...base, ...crashing, testing: { ...crashing.testing, plant: plantInWorkers(['source-drops-entry-before-ack']) } }, '2'.repeat(40), new Date('2026-01-02T10:00:00Z'));

    const failing = await queryHistory(path, { failures: true });
    expect(failing.runs.map((s) => [s.seed, s.status])).toEqual([[7, 'regression'], [8, 'regression'], [9, 'always-failing']]);
    const seven = failing.runs[0]!;
    expect([seven.before?.recordId, seven.turned?.recordId, seven.turned?.commit]).toEqual([good, bad, '2'.repeat(40)]);
    expect(seven.latest.invariants).toContain('rollback-after-confirm');
    expect(failing.runs[2]!.latest).toMatchObject({ verdict: 'crashed', error: expect.stringMatching(/multiple of the 512-byte sector/) });
    expect(renderHistory(failing)).toMatch(/REGRESSION seed 7 \(speculative\/halt-resume\): inconsistent: [^]*fails since .* on commit 222222222222 [^]*passed in .* on commit 111111111111/);

    const fixed = await campaign(path, { ...base, ...crashing }, '3'.repeat(40), new Date('2026-01-03T10:00:00Z'));
    const now = await queryHistory(path, {});
    expect(now.runs.map((s) => [s.seed, s.status])).toEqual([[9, 'always-failing'], [7, 'fixed'], [8, 'fixed']]);
    const f7 = now.runs.find((s) => s.seed === 7)!;
    expect([f7.regressionFixed, f7.before?.recordId, f7.turned?.recordId, f7.records]).toEqual([true, bad, fixed, 3]);
    const text = renderHistory(now);
    expect(text).toMatch(/FIXED REGRESSION seed 7 \(speculative\/halt-resume\): passes since [^\n]* on commit 333333333333[^]*failed in [^\n]*222222222222[^\n]*: inconsistent: /);
    expect(text).toMatch(/ALWAYS FAILED seed 9 [^]*failed in all 2 records/);
    expect((await queryHistory(path, { failures: true })).runs.map((s) => s.seed)).toEqual([9]);

    const bySeed = await queryHistory(path, { seed: 7 });
    expect(bySeed.seedRuns.map((r) => [r.recordId, r.verdict])).toEqual([[good, 'consistent'], [bad, 'inconsistent'], [fixed, 'consistent']]);
    // The consistent runs reproduce the same trace: same run, same code.
    expect(bySeed.seedRuns[0]!.traceHash).toBe(bySeed.seedRuns[2]!.traceHash);
    expect((await queryHistory(path, { since: new Date('2026-01-02T12:00:00Z') })).records.map((r) => r.id)).toEqual([fixed]);
  });

  it('judges a run by its records in order: regression, always failing, fixed, passing', () => {
    const at = (i: number, verdict: HistoryRun['verdict']): HistoryRun => ({
      recordId: `r${i}`, kind: 'campaign', at: `2026-01-0${i}T00:00:00.000Z`, commit: null, version: '0', sourceHash: 'a', seed: 1, key: 'k', mode: 'sync', onLockReject: 'retransmit',
      verdict, invariants: [], violationsTotal: 0, error: null, traceHash: null, reproduce: 'x',
    });
    const judge = (...vs: HistoryRun['verdict'][]) => {
      const s = story(vs.map((v, i) => at(i + 1, v)));
      return [s.status, s.before?.recordId ?? null, s.turned?.recordId ?? null, s.regressionFixed];
    };
    expect(judge('consistent', 'consistent')).toEqual(['passing', null, null, false]);
    expect(judge('inconsistent', 'crashed')).toEqual(['always-failing', null, null, false]);
    expect(judge('consistent', 'consistent', 'inconsistent', 'inconsistent')).toEqual(['regression', 'r2', 'r3', false]);
    expect(judge('inconsistent', 'consistent')).toEqual(['fixed', 'r1', 'r2', false]);
    expect(judge('consistent', 'crashed', 'consistent')).toEqual(['fixed', 'r2', 'r3', true]);
    expect(judge('inconsistent', 'consistent', 'inconsistent')).toEqual(['regression', 'r2', 'r3', false]);
  });

  it('identifies a run by its reproduce command, without the comment that names planted mutations', () => {
    expect(runKey('npx mirrorlab emulate --seed 7 --mode sync # planted firmware mutations (testing aid, no flag): x')).toBe('npx mirrorlab emulate --seed 7 --mode sync');
    expect(runKey('npx mirrorlab emulate --seed 7')).toBe('npx mirrorlab emulate --seed 7');
  });

  it('keeps every record when several processes write at once', async () => {
    const path = scratch.path('concurrent', '.db');
    const child = fileURLToPath(new URL('./history-writer-child.ts', import.meta.url));
    const writers = [0, 1].map((w) => spawn(process.execPath, ['--import', 'tsx/esm', child, path, String(w), '8'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] }));
    const inProcess = Promise.all([0, 1, 2, 3].map((i) => record(path, `p${i}`, '2026-02-01T00:00:00Z', [run(100 + i, 'consistent')])));
    const codes = await Promise.all(writers.map(async (p) => {
      let err = '';
      p.stderr!.on('data', (c: Buffer) => (err += String(c)));
      const [code] = await once(p, 'exit');
      return [code, err];
    }));
    await inProcess;
    expect(codes).toEqual([[0, ''], [0, '']]);
    const a = await queryHistory(path, {});
    expect(a.records.length).toBe(2 * 8 + 4);
    expect(new Set(a.records.map((r) => r.id)).size).toBe(20);
    // Nothing left behind: no temporary file, no lock.
    expect((await readdir(scratch.dir())).filter((f) => f.startsWith('concurrent'))).toEqual([expect.stringMatching(/^concurrent\d+\.db$/)]);
  });

  it('waits for a live writer\'s lock, then gives up saying who holds it; takes over a dead writer\'s lock', async () => {
    const path = scratch.path('locked', '.db');
    await record(path, 'first', '2026-03-01T00:00:00Z', [run(1, 'consistent')]);
    const lock = await ImageLock.acquire(path);
    try {
      await expect(writeHistory(path, () => undefined, { lockWaitMsMax: 200 })).rejects.toMatchObject({
        code: 'ML_ERR_HISTORY_BUSY', message: expect.stringMatching(new RegExp(`stayed locked by process ${process.pid} on \\S+ for 0.2 s \\(lock file ${path}\\.lock\\)`)),
      });
    } finally {
      await lock.release();
    }
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    await writeFile(`${path}.lock`, `${dead}\n`);
    await record(path, 'second', '2026-03-02T00:00:00Z', [run(1, 'inconsistent')]);
    expect((await queryHistory(path, {})).runs.map((s) => s.status)).toEqual(['regression']);
  });

  it('refuses a file that is not a mirrorlab history, saying what to do, and reads a missing one as empty', async () => {
    const garbage = scratch.path('garbage', '.db');
    await writeFile(garbage, 'this is not SQLite at all, just some text that is long enough to be a header '.repeat(2));
    await expect(readHistory(garbage)).rejects.toMatchObject({ code: 'ML_ERR_HISTORY_FORMAT', message: expect.stringMatching(/is not a mirrorlab history database .*point --history elsewhere/) });
    await expect(record(garbage, 'x', '2026-01-01T00:00:00Z', [])).rejects.toMatchObject({ code: 'ML_ERR_HISTORY_FORMAT' });

    const other = scratch.path('other', '.db');
    const SQL = await initSqlJs();
    const db = new SQL.Database();
    db.run('CREATE TABLE customers (id INTEGER)');
    await writeFile(other, db.export());
    await expect(readHistory(other)).rejects.toMatchObject({ code: 'ML_ERR_HISTORY_FORMAT', message: expect.stringMatching(/SQLite database but not a mirrorlab history \(tables customers\)/) });

    const missing = await queryHistory(scratch.path('missing', '.db'), {});
    expect([missing.records, missing.runs]).toEqual([[], []]);
    expect(renderHistory(missing)).toMatch(/0 records\n {2}nothing recorded yet/);
  });

  it('never fails on a damaged file but with ML_ERR_HISTORY_FORMAT (hostile bytes)', async () => {
    const path = scratch.path('sound', '.db');
    for (let i = 0; i < 3; i++) await record(path, `r${i}`, `2026-01-0${i + 1}T00:00:00Z`, [run(i, 'consistent'), run(10 + i, 'inconsistent')]);
    const bytes = await readFile(path);
    let seed = 12345;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const outcomes = { read: 0, refused: 0 };
    for (let trial = 0; trial < 60; trial++) {
      const damaged = Buffer.from(trial % 3 === 0 ? bytes.subarray(0, 100 + next(bytes.length - 100)) : bytes);
      if (trial % 3 !== 0) for (let k = 0; k < 1 + next(40); k++) damaged[100 + next(damaged.length - 100)] = next(256);
      const p = scratch.path('damaged', '.db');
      await writeFile(p, damaged);
      try {
        await queryHistory(p, { failures: trial % 2 === 0 });
        outcomes.read++;
      } catch (err) {
        expect((err as { code?: string }).code, String(err)).toBe('ML_ERR_HISTORY_FORMAT');
        outcomes.refused++;
      }
    }
    expect(outcomes.refused).toBeGreaterThan(10);
  });

  it('keeps the first violations of a run and counts the rest', async () => {
    const path = scratch.path('violations', '.db');
    const violations = Array.from({ length: 30 }, (_, i) => ({ invariant: i % 2 ? 'lock-held' as const : 'data-intact' as const, node: 'B', lun: 0, lba: i, seq: i, tMs: i, message: 'm' }));
    await record(path, 'v', '2026-01-01T00:00:00Z', [run(3, 'inconsistent', { violations })]);
    const db = await readHistory(path);
    const [stored, total] = db.exec('SELECT violations, violations_total FROM runs')[0]!.values[0]!;
    db.close();
    expect([JSON.parse(String(stored)).length, total]).toEqual([VIOLATIONS_KEPT_MAX, 30]);
    expect((await queryHistory(path, {})).runs[0]!.latest.invariants).toEqual(['data-intact', 'lock-held']);
  });

  it('--since takes dates, instants and ages, and says what it takes otherwise', () => {
    const now = new Date('2026-05-10T12:00:00Z');
    expect(parseSince('2026-05-01', now).toISOString()).toBe('2026-05-01T00:00:00.000Z');
    expect(parseSince('2026-05-01T08:30:00+02:00', now).toISOString()).toBe('2026-05-01T06:30:00.000Z');
    expect(parseSince('7d', now).toISOString()).toBe('2026-05-03T12:00:00.000Z');
    expect(parseSince('90m', now).toISOString()).toBe('2026-05-10T10:30:00.000Z');
    for (const bad of ['yesterday', '2026-13-01', '2026-05-01 08:00', '-1d', '']) {
      expect(() => parseSince(bad, now)).toThrow(/--since takes a date \(2026-01-31, midnight UTC\), a date and time .* or an age \(7d, 12h, 30m\)/);
    }
  });

  it('campaign and emulate --record write to the history the CLI is given', async () => {
    const path = scratch.path('cli', '.db');
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    vi.stubEnv('MIRRORLAB_LOG', 'silent');
    try {
      expect(await main(['campaign', '--seeds', '2', '--from', '3', '--writes', '50', '--workers', '1', '--history', path, '--json'])).toBe(0);
      expect(await main(['emulate', '--seed', '4', '--writes', '50', '--record', '--history', path, '--json'])).toBe(0);
      expect(await main(['emulate', '--seed', '5', '--writes', '50', '--history', path])).toBe(2);
      expect(String(err.mock.calls.at(-1)?.[0])).toBe('error: --history names where --record writes; add --record\n');
    } finally {
      out.mockRestore();
      err.mockRestore();
      vi.unstubAllEnvs();
    }
    const a = await queryHistory(path, {});
    expect(a.records.map((r) => [r.kind, r.seeds, r.failures])).toEqual([['emulate', 1, 0], ['campaign', 2, 0]]);
    expect(a.records[0]!.sourceHash).toMatch(/^[0-9a-f]{64}$/);
    const four = await queryHistory(path, { seed: 4 });
    expect(four.seedRuns.map((r) => [r.kind, r.verdict, r.reproduce.split(' --')[1]])).toEqual([['campaign', 'consistent', 'seed 4'], ['emulate', 'consistent', 'seed 4']]);
    expect(four.seedRuns[1]!.traceHash).toMatch(/^[0-9a-f]{64}$/);
  });
});

