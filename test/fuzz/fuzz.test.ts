import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { runFuzz } from '../../hil/fuzz/campaign.ts';
import { replayCommand } from '../../hil/fuzz/outcome.ts';
import { allCoverKeys, formatReport } from '../../hil/fuzz/report.ts';
import { LengthTrustingDecoder } from './broken-decoder.ts';
import { NEWEST_FLAG, plantFlagThrow } from './planted-fuzz-bugs.ts';

/** The short fuzz run of `npm test` (docs/fuzzing.md 6); `npm run fuzz` runs a million inputs. */
describe('the frame fuzzer, short run', () => {
  it('feeds every target tens of thousands of inputs: no failure, every type and flag combination decoded, every maximum within its bound', async () => {
    const r = await runFuzz({ seed: 1, frames: 24_000, controllerCaseFrames: 1500 });
    expect(r.failures.map((f) => formatReport({ ...r, failures: [f] }))).toEqual([]);
    expect(r.frames).toBeGreaterThanOrEqual(24_000);
    const decoder = r.byTarget.get('decoder')!;
    expect(allCoverKeys().filter((k) => !decoder.coverage.counts.has(k))).toEqual([]);
    for (const [t, s] of r.byTarget) {
      expect(s.frames, t).toBeGreaterThan(0);
      for (const [name, m] of s.maxima.byName) expect(m.ratio, `${t}: ${name}`).toBeLessThanOrEqual(1);
    }
    // The controller's bounded structures were measured, and its link saw the hostile input.
    expect([...r.byTarget.get('controller')!.maxima.byName.keys()]).toEqual(expect.arrayContaining(['rollback log entries', 'commit log bytes']));
    expect(r.byTarget.get('controller')!.notes.counts.get('B link frameErrors')).toBeGreaterThan(0);
  }, 120_000);
});

describe('the fuzzer catches planted bugs, with a case that replays', () => {
  it('a decoder that trusts the length field: reported, and the reported case fails again alone', async () => {
    const makeDecoder = (o: ConstructorParameters<typeof LengthTrustingDecoder>[0]): LengthTrustingDecoder => new LengthTrustingDecoder(o);
    const r = await runFuzz({ seed: 5, frames: 20_000, targets: ['decoder'], makeDecoder });
    expect(r.ended).toBe('failure');
    const f = r.failures[0]!;
    expect(['bound', 'differential']).toContain(f.invariant);
    expect(formatReport(r)).toContain(replayCommand('decoder', 5, f.caseIndex));
    const again = await runFuzz({ seed: 5, frames: 1, only: { target: 'decoder', caseIndex: f.caseIndex }, makeDecoder });
    expect(again.failures[0]).toEqual(f);
    // The firmware's decoder passes the same case.
    expect((await runFuzz({ seed: 5, frames: 1, only: { target: 'decoder', caseIndex: f.caseIndex } })).failures).toEqual([]);
  });

  it(`a controller that throws on a frame with flag 0x${NEWEST_FLAG.toString(16)}: reported as a crash, and the case replays`, async () => {
    const unplant = plantFlagThrow();
    try {
      const r = await runFuzz({ seed: 2, frames: 6000, targets: ['controller'], controllerCaseFrames: 1500 });
      expect(r.ended).toBe('failure');
      const f = r.failures[0]!;
      expect(f.invariant).toBe('crash');
      expect(f.message).toContain('planted bug');
      const again = await runFuzz({ seed: 2, frames: 1, only: { target: 'controller', caseIndex: f.caseIndex }, controllerCaseFrames: 1500 });
      expect(again.failures[0]).toEqual(f);
    } finally {
      unplant();
    }
  }, 60_000);
});

describe('npm run fuzz', () => {
  const run = (...args: string[]): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, ['--import', 'tsx', 'scripts/fuzz.ts', ...args], { encoding: 'utf8', timeout: 60_000 });

  it.each([
    [['--frames', 'lots'], /--frames must be an integer from 1/],
    [['--target', 'disk'], /--target must be one of decoder, block, controller, got "disk"/],
    [['--case', '3'], /give exactly one --target/],
    [['--bogus'], /allowed: --seed N/],
  ])('refuses %j with one line and exit 2', (args, message) => {
    const r = run(...args);
    expect(r.status).toBe(2);
    expect(String(r.stderr)).toMatch(message);
    expect(String(r.stderr).trim().split('\n')).toHaveLength(1);
  });

  it('runs a bounded, seeded run and prints its summary as JSON', () => {
    const r = run('--frames', '400', '--target', 'decoder', '--seed', '9', '--json');
    expect(r.status).toBe(0);
    const summary = JSON.parse(String(r.stdout)) as { seed: number; frames: number; failures: unknown[] };
    expect(summary.seed).toBe(9);
    expect(summary.frames).toBeGreaterThanOrEqual(400);
    expect(summary.failures).toEqual([]);
  });
});
