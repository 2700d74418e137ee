import { Writable } from 'node:stream';
import { Command } from 'commander';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { runCampaign } from '../../../hil/campaign/campaign.ts';
import { drawRun } from '../../../hil/campaign/draw-run.ts';
import { campaignExitCode, renderCampaign } from '../../../hil/cli/campaign-command.ts';
import { addEmulateFlags, emulateOptionsFrom, type EmulateFlags } from '../../../hil/cli/emulate-command.ts';
import { reproduceCommand } from '../../../hil/emulator/reproduce.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { emptyLinkFaultPlan, parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { plantInWorkers, withPlantedBugs } from '../../support/planted-bugs.ts';

/** Read a reproduce command back into run options, as `mirrorlab emulate` would (up to a trailing comment). */
function parseReproduce(command: string) {
  const [shell] = command.split(' # ');
  const words = [...shell!.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
  expect(words.slice(0, 3)).toEqual(['npx', 'mirrorlab', 'emulate']);
  const cmd = addEmulateFlags(new Command('emulate')).exitOverride();
  cmd.parse(words.slice(3), { from: 'user' });
  return emulateOptionsFrom(cmd.opts() as EmulateFlags);
}

/** A pino logger into an array of parsed JSON lines. */
function memoryLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { log: pino({ level: 'info', base: undefined }, stream).child({ module: 'campaign' }), lines };
}

describe('campaign', () => {
  it('draws a different configuration per seed and rotates through every mode and policy', () => {
    const runs = Array.from({ length: 12 }, (_, i) => drawRun(i + 1, { writes: 100, faults: null }));
    expect(new Set(runs.map((r) => `${r.mode}/${r.onLockReject}`)).size).toBe(6);
    expect(new Set(runs.map((r) => JSON.stringify(r.faults))).size).toBeGreaterThan(6);
    expect(drawRun(5, { writes: 100, faults: null })).toEqual(drawRun(5, { writes: 100, faults: null }));
  });

  it('draws implied and explicit locks, batched and not (sync always explicit), and the reproduce command carries them', () => {
    const runs = Array.from({ length: 40 }, (_, i) => drawRun(i + 1, { writes: 100, faults: null }));
    const wire = new Set(runs.map((r) => `${r.mode === 'sync' ? 'sync' : 'other'}/${r.locks ?? 'explicit'}/${r.batch === true}`));
    expect([...wire].sort()).toEqual(['other/explicit/false', 'other/explicit/true', 'other/implied/false', 'other/implied/true', 'sync/explicit/false', 'sync/explicit/true']);
    for (const r of runs) expect(parseReproduce(reproduceCommand(r))).toEqual(r);
  });

  it('runs seeds on worker threads and finds every run consistent', async () => {
    const seen: number[] = [];
    const r = await runCampaign({ seeds: 6, from: 1, writes: 200, faults: null, workers: 2 }, (s) => seen.push(s.seed));
    expect(r.failures).toEqual([]);
    expect([r.runs, r.crashed, r.notRun, r.workerRestarts]).toEqual([6, 0, 0, 0]);
    expect(seen.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Object.keys(r.byMode).length).toBe(6);
    const f = r.faultsInjected;
    expect(f.framesDropped + f.framesCorrupted + f.framesDuplicated + f.framesReordered + f.framesDelayed + f.partitions).toBeGreaterThan(0);
    // Crashes and power cuts are drawn too (docs/tag-tables.md), each followed by a resync that resync-exact followed.
    expect(r.crashes).toBeGreaterThan(r.powerCuts);
    expect(r.powerCuts).toBeGreaterThan(0);
    expect(r.resync.runs).toBeGreaterThan(0);
    expect(r.resync.bytesCopied).toBeGreaterThanOrEqual(r.resync.bytesDivergent);
    expect(renderCampaign(r)).toMatch(new RegExp(`crashes and resyncs  ${r.crashes} crashes \\(${r.powerCuts} power cuts\\); ${r.resync.runs} resyncs`));
    expect(campaignExitCode(r)).toBe(0);
  });

  it('reports an inconsistent run with its seed, violations and a reproduce command that gives the same trace, and logs it', async () => {
    const { log, lines } = memoryLogger();
    const bugs = ['source-drops-entry-before-ack'] as const;
    const r = await runCampaign({ seeds: 2, from: 7, writes: 200, faults: parseLinkFaults('drop=0.02:WRITE'), workers: 1, log, shrink: false, testing: { plant: plantInWorkers(bugs) } });
    expect(r.failures.map((f) => [f.seed, f.verdict])).toEqual([[7, 'inconsistent'], [8, 'inconsistent']]);
    expect(campaignExitCode(r)).toBe(1);
    const fail = r.failures[0]!;
    expect(fail.violations.map((v) => v.invariant)).toContain('rollback-after-confirm');
    expect(fail.reproduce).toMatch(/^npx mirrorlab emulate --seed 7 .* # planted firmware bugs \(testing aid, no flag\): source-drops-entry-before-ack$/);
    const again = await withPlantedBugs(bugs, () => runEmulation(parseReproduce(fail.reproduce)));
    expect(again.verdict).toBe('inconsistent');
    expect(again.traceHash).toBe(fail.traceHash);
    expect(renderCampaign(r)).toMatch(/2 INCONSISTENT, 0 CRASHED[^]*FAIL seed 7 [^]*reproduce: npx mirrorlab emulate --seed 7/);
    const said = lines.map((l) => [l.level, l.module, l.msg, l.seed ?? l.verdict ?? null]);
    expect(said).toEqual([
      [30, 'campaign', 'campaign starting', null],
      [40, 'campaign', 'inconsistent run', 7],
      [40, 'campaign', 'inconsistent run', 8],
      [30, 'campaign', 'campaign finished', 'inconsistent'],
    ]);
    expect(lines[0]).toMatchObject({ seeds: 2, from: 7, workers: 1, writes: 200, faults: 'drop=0.02:WRITE' });
  });

  it('records a run that throws and a worker thread that dies as crashes of their seeds, with reproduce commands, and carries on', async () => {
    const r = await runCampaign({
      seeds: 4, from: 1, writes: 100, faults: null, workers: 1, workerRestartsMax: 1,
      testing: { crashThreadSeeds: [2], overrides: { 3: { writeBytes: 1000 } } },
    });
    expect([r.runs, r.crashed, r.notRun, r.workerRestarts]).toEqual([2, 2, 0, 1]);
    expect(r.failures.map((f) => [f.seed, f.verdict])).toEqual([[2, 'crashed'], [3, 'crashed']]);
    const [thread, thrown] = r.failures as [typeof r.failures[0], typeof r.failures[0]];
    expect(thread.error).toMatch(/worker thread died: .*planted worker crash at seed 2/);
    expect(thread.reproduce).toMatch(/^npx mirrorlab emulate --seed 2 /);
    expect(parseReproduce(thread.reproduce)).toEqual(drawRun(2, { writes: 100, faults: null }));
    expect(thrown.error).toMatch(/multiple of the 512-byte sector/);
    expect(thrown.reproduce).toMatch(/--seed 3 .*--write-bytes 1000/);
    expect(campaignExitCode(r)).toBe(70);
    expect(renderCampaign(r)).toMatch(/0 INCONSISTENT, 2 CRASHED[^]*CRASH seed 2 [^]*reproduce: npx mirrorlab emulate --seed 2/);
  });

  it('stops replacing worker threads once the restart budget is spent, and counts the seeds left unrun', async () => {
    const r = await runCampaign({ seeds: 5, from: 1, writes: 100, faults: null, workers: 1, workerRestartsMax: 1, testing: { crashThreadSeeds: [1, 2] } });
    expect(r.failures.map((f) => [f.seed, f.verdict])).toEqual([[1, 'crashed'], [2, 'crashed']]);
    expect([r.runs, r.notRun, r.workerRestarts]).toEqual([0, 3, 1]);
    expect(campaignExitCode(r)).toBe(70);
    expect(renderCampaign(r)).toMatch(/0 INCONSISTENT, 2 CRASHED, 3 NOT RUN/);
  });
});

describe('campaign wall-clock budget', () => {
  it('a run over its budget is a stuck failure with its reproduce command; its worker is replaced and the campaign goes on', async () => {
    // No faults: the other seeds' runs must stay well within the short budget (a drawn crash keeps a run going for seconds).
    const faults = emptyLinkFaultPlan();
    const r = await runCampaign({ seeds: 3, from: 1, writes: 100, faults, workers: 1, workerRestartsMax: 0, runBudgetMs: 1_500, testing: { hangThreadSeeds: [2] } });
    expect(r.failures.map((f) => [f.seed, f.verdict])).toEqual([[2, 'stuck']]);
    expect([r.runs, r.stuck, r.crashed, r.notRun]).toEqual([2, 1, 0, 0]);
    expect(r.failures[0]!.reproduce).toMatch(/^npx mirrorlab emulate --seed 2 /);
    expect(parseReproduce(r.failures[0]!.reproduce)).toEqual(drawRun(2, { writes: 100, faults }));
    expect(campaignExitCode(r)).toBe(1);
    expect(renderCampaign(r)).toMatch(/0 INCONSISTENT, 0 CRASHED, 1 STUCK[^]*STUCK seed 2 [^]*wall-clock budget of 1500 ms[^]*reproduce: npx mirrorlab emulate --seed 2/);
  });
});

describe('campaign shrinking', () => {
  it('finds a smaller failing reproduction, within its run budget, and prints it beside the original', async () => {
    const bugs = ['source-drops-entry-before-ack'] as const;
    const r = await runCampaign({ seeds: 1, from: 7, writes: 300, faults: parseLinkFaults('drop=0.02:WRITE,duplicate=0.01,partition=1'), workers: 1, shrinkRuns: 12, testing: { plant: plantInWorkers(bugs) } });
    const fail = r.failures[0]!;
    const s = fail.shrunk!;
    expect(s.runs).toBeLessThanOrEqual(12);
    expect(s.writes.to).toBeLessThan(s.writes.from);
    expect(s.faults.to).toBeLessThan(s.faults.from);
    expect(s.reproduce).toMatch(/^npx mirrorlab emulate --seed 7 .* # planted firmware bugs/);
    // The smaller command fails the same way when run again.
    const again = await withPlantedBugs(bugs, () => runEmulation(parseReproduce(s.reproduce)));
    expect(again.violations.map((v) => v.invariant)).toContain(fail.violations[0]!.invariant);
    expect(renderCampaign(r)).toMatch(/reproduce: npx mirrorlab emulate --seed 7 [^]*smallest: {2}npx mirrorlab emulate --seed 7 [^]*writes 300 -> \d+/);
  });
});
