import { describe, expect, it } from 'vitest';
import { runCampaign } from '../../../hil/campaign/campaign.ts';
import { drawRun } from '../../../hil/campaign/draw-run.ts';

describe('campaign', () => {
  it('draws a different configuration per seed and rotates through every mode and policy', () => {
    const runs = Array.from({ length: 12 }, (_, i) => drawRun(i + 1, { writes: 100, faults: null }));
    expect(new Set(runs.map((r) => `${r.mode}/${r.onLockReject}`)).size).toBe(6);
    expect(new Set(runs.map((r) => JSON.stringify(r.faults))).size).toBeGreaterThan(6);
    expect(drawRun(5, { writes: 100, faults: null })).toEqual(drawRun(5, { writes: 100, faults: null }));
  });

  it('runs seeds on worker threads and finds every run consistent', async () => {
    const seen: number[] = [];
    const r = await runCampaign({ seeds: 6, from: 1, writes: 200, faults: null, workers: 2 }, (s) => seen.push(s.seed));
    expect(r.errors).toEqual([]);
    expect(r.failures).toEqual([]);
    expect(r.runs).toBe(6);
    expect(seen.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Object.keys(r.byMode).length).toBe(6);
    const f = r.faultsInjected;
    expect(f.framesDropped + f.framesCorrupted + f.framesDuplicated + f.framesReordered + f.framesDelayed + f.partitions).toBeGreaterThan(0);
  });
});
