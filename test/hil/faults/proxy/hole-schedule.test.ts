import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../../host/clock/virtual.ts';
import { parseLinkFaults } from '../../../../hil/faults/link-fault-plan.ts';
import { ProxyCore } from '../../../../hil/faults/proxy/proxy-core.ts';
import { virtualCore } from './fixtures.ts';

describe('the proxy\'s black holes and bandwidth changes', () => {
  it('run on the proxy\'s clock from its start, per direction, in the simulator\'s vocabulary', async () => {
    const { clock, core, events } = virtualCore('silent=10ms+10ms,oneway=A>B@30ms+10ms,flap=2@10ms@50ms,bandwidth=5@60ms');
    const blocked: Record<number, string[]> = {};
    for (const t of [5, 15, 25, 35, 45, 52, 57, 62, 67, 80]) {
      await clock.run({ untilMs: t });
      blocked[t] = core.holes.active();
    }
    expect(blocked).toEqual({
      5: [], 15: ['ab', 'ba'], 25: [], 35: ['ab'], 45: [], 52: ['ab', 'ba'], 57: [], 62: ['ab', 'ba'], 67: [], 80: [],
    });
    expect(events.map((e) => [e.t, e.fault])).toEqual([
      [10, 'silent.start'], [20, 'silent.end'], [30, 'oneway.start'], [40, 'oneway.end'], [50, 'flap.down'], [55, 'flap.up'],
      [60, 'bandwidth'], [60, 'flap.down'], [65, 'flap.up'],
    ]);
    expect(events[2]).toEqual({ kind: 'link.fault', t: 30, node: 'link', fault: 'oneway.start', from: 'A', to: 'B', untilMs: 40 });
    expect(core.pacers.ab.mbps).toBe(5);
    expect(core.stats().holes).toMatchObject({ silentCuts: 1, onewayCuts: 1, flapCycles: 2, bandwidthChanges: 1, activeNow: [] });
  });

  it('draws partitions from the seed: the same seed, the same schedule; another seed, another', async () => {
    const schedule = async (seed: number) => {
      const { clock, events } = virtualCore('partition=5', { seed });
      await clock.run({ untilMs: 2000 });
      return events.map((e) => [e.t, e.fault]);
    };
    const first = await schedule(3);
    expect(first).toHaveLength(10);
    expect(await schedule(3)).toEqual(first);
    expect(await schedule(4)).not.toEqual(first);
  });

  it('refuses a one-way cut that names neither end, saying what the ends are', () => {
    expect(() => new ProxyCore('tcp', { plan: parseLinkFaults('oneway=X>Y@1s+1s'), seed: 1, clock: new VirtualClock(), names: { a: 'src', b: 'dst' } }))
      .toThrow(/^--faults: oneway=X>Y: the proxy's ends are src \(the connect side\) and dst \(the listen side\); write src>dst or dst>src/);
  });

  it('stops: no timer left, nothing emitted after', async () => {
    const { clock, core, events } = virtualCore('silent=10ms+10ms,flap=100@10ms');
    core.stop();
    await clock.run({ untilMs: 5000 });
    expect(events).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });
});
