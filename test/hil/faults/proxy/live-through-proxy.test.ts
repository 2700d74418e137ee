import { describe, expect, it } from 'vitest';
import { parseLinkFaults, timedFaultsEndMsMax } from '../../../../hil/faults/link-fault-plan.ts';
import { runProxiedPair } from '../../../../hil/faults/proxy/proxied-pair.ts';

/**
 * End to end: two StorageControllers on live links (host/transports) through the fault proxy, on
 * the real clock. Drops, corruption, duplicates, reordering, heartbeat loss, resets and a silent cut
 * longer than the interruption timeout: the supervisors take the link down and bring it back
 * through the proxy, the source retransmits, and the copy ends identical. Writes go on until the
 * cut is over, so it always falls inside the run. Wall-clock budgets bound every wait; no duration
 * is asserted.
 */
async function run(link: 'tcp' | 'serial', planText: string, seed: number) {
  const plan = parseLinkFaults(planText);
  const r = await runProxiedPair({ link, plan, seed, writesMin: 300, faultsEndMs: timedFaultsEndMsMax(plan), budgetMs: 30_000 });
  expect(r.failure).toBeNull();
  expect(r.firstDifference, 'first byte where the copy differs from the source').toBe(-1);
  const ab = r.proxy.directions['A->B']!.total;
  const ba = r.proxy.directions['B->A']!.total;
  return { r, sum: (k: keyof typeof ab) => ab[k] + ba[k] };
}

describe('two controllers through the fault proxy', () => {
  it('over TCP with UDP heartbeats: drops, corruption, duplicates, reordering, heartbeat loss, resets and a 1.5 s silent cut; the copy ends identical', async () => {
    const { r, sum } = await run('tcp', 'drop=0.01,corrupt=0.01,duplicate=0.01,reorder=0.01,hbloss=0.2,reset=0.002,silent=1s+1500ms', 5);
    for (const k of ['framesDropped', 'framesCorrupted', 'framesDuplicated', 'framesReordered', 'heartbeatsLost', 'bytesSwallowed'] as const) {
      expect(sum(k), k).toBeGreaterThan(0);
    }
    expect(r.proxy.holes.silentCuts).toBe(1);
    // The cut outlasted the interruption timeout: both supervisors took the link down, and brought it back.
    expect(r.downs[0]).toBeGreaterThanOrEqual(1);
    expect(r.downs[1]).toBeGreaterThanOrEqual(1);
  });

  it('over a serial line between two PTY pairs: drops, corruption, heartbeat loss and a 1.5 s silent cut; the copy ends identical', async () => {
    const { r, sum } = await run('serial', 'drop=0.01,corrupt=0.01,hbloss=0.2,silent=1s+1500ms', 6);
    expect(sum('framesDropped') + sum('framesCorrupted')).toBeGreaterThan(0);
    expect(sum('heartbeatsLost')).toBeGreaterThan(0);
    expect(sum('bytesSwallowed')).toBeGreaterThan(0);
    expect(r.downs[0]).toBeGreaterThanOrEqual(1);
  });
});
