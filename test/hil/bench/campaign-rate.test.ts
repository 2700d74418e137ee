import { describe, expect, it, vi } from 'vitest';
import { measureCampaignRate } from '../../../hil/bench/campaign-rate.ts';
import { benchCommand, renderBench } from '../../../hil/cli/bench-command.ts';
import { createLogger } from '../../../hil/log.ts';

/** Benchmarks are not tests (docs/conventions.md 11): these check what the bench reports, never how fast. */
describe('the campaign-speed measurement', () => {
  it('runs drawn seeds on worker threads and reports seeds per minute, CPU per seed and the load', async () => {
    const r = await measureCampaignRate({ seeds: 2, from: 300, writes: 40, workers: 1 });
    expect(r).toMatchObject({ seeds: 2, from: 300, writes: 40, workers: 1, consistent: 2 });
    for (const x of [r.wallSeconds, r.seedsPerMinute, r.cpuSecondsPerSeed]) expect(Number.isFinite(x) && x > 0).toBe(true);
    expect(r.loadAverage).toBeGreaterThanOrEqual(0);
    const text = renderBench({ only: 'mirror', rows: [], campaign: r, targets: [] });
    expect(text).toMatch(/^campaign: +[\d.]+ seeds per minute: 2 drawn seeds from 300 at 40 writes per host on 1 worker threads, [\d.]+ s wall, [\d.]+ CPU s per seed, 2 consistent \(load average [\d.]+\)$/m);
  });

  it('refuses a campaign size outside its limits, naming them', async () => {
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const cases = [['--campaign-seeds', '0', /--campaign-seeds takes an integer from 1 to 10000, got "0"/], ['--campaign-writes', '2.5', /--campaign-writes takes an integer from 1 to 1000000, got "2.5"/]] as const;
    for (const [flag, value, message] of cases) {
      const cmd = benchCommand(createLogger('silent'), () => {}).exitOverride();
      await expect(cmd.parseAsync(['--only', 'mirror', flag, value], { from: 'user' })).rejects.toThrow(message);
    }
    vi.restoreAllMocks();
  });
});
