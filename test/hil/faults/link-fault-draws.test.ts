import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { drawRun } from '../../../hil/campaign/draw-run.ts';
import { DEFAULT_EMULATE } from '../../../hil/emulator/options.ts';
import { formatLinkFaults, lateLinkFault, parseLinkFaults, timedFaultsEndMsMax, type LinkFaultPlan } from '../../../hil/faults/link-fault-plan.ts';

const SEEDS = 1000;
const plans = Array.from({ length: SEEDS }, (_, seed) => drawRun(seed, { writes: 1000, faults: null }).faults);

/** The plan without what link supervision added: what a seed drew before. */
const olderItems = (p: LinkFaultPlan): string => formatLinkFaults({ ...p, silent: [], oneway: [], hblossPerMillion: 0, flaps: [], resetPerMillion: 0, crashes: [] });
const newItems = (p: LinkFaultPlan): number => p.silent.length + p.oneway.length + p.flaps.length + (p.hblossPerMillion > 0 ? 1 : 0) + (p.resetPerMillion > 0 ? 1 : 0);

describe('campaign draws of link faults', () => {
  it('keep every seed\'s older items exactly as they were drawn before link supervision', () => {
    // Taken from the draws as they were before the link-supervision items existed. Per-frame faults
    // target one of the eight kinds that existed then: drawing from a list with HEARTBEAT in it
    // would change the kind drawn for most seeds.
    expect(plans.slice(0, 6).map(olderItems)).toEqual([
      'corrupt=0.0005,duplicate=0.01,reorder=0.002,partition=1',
      'drop=0.02,partition=2,bandwidth=500@14ms',
      'duplicate=0.02,reorder=0.005:NAK,delay=0.01@2ms:NAK,partition=2',
      'drop=0.001:HELLO,corrupt=0.002:UNLOCK,reorder=0.02,partition=2',
      'drop=0.002,corrupt=0.0005,duplicate=0.05,partition=1,bandwidth=10@14ms',
      'drop=0.01:LOCK_GRANTED,duplicate=0.0005:LOCK_REJECTED,delay=0.005@0.5ms:UNLOCK',
    ]);
    const digest = createHash('sha256').update(plans.map(olderItems).join('\n')).digest('hex');
    expect(digest, `the older items of seeds 0..${SEEDS - 1}`).toBe('b6dab28de4b5e68c017b2f542c7691c03803c07e93e845495ffce01b5dfcdfec');
  });

  it('draw every new item, within the ranges meant: cuts of 0.2-6 s starting in the first 50 ms, flaps, heartbeat loss, resets', () => {
    const count = { silent: 0, oneway: 0, hbloss: 0, flap: 0, reset: 0, unchanged: 0 };
    for (const p of plans) {
      count.silent += p.silent.length > 0 ? 1 : 0;
      count.oneway += p.oneway.length;
      count.hbloss += p.hblossPerMillion > 0 ? 1 : 0;
      count.flap += p.flaps.length;
      count.reset += p.resetPerMillion > 0 ? 1 : 0;
      count.unchanged += newItems(p) === 0 ? 1 : 0;
      for (const c of [...p.silent, ...p.oneway]) {
        expect(c.forMs).toBeGreaterThanOrEqual(200);
        expect(c.forMs).toBeLessThanOrEqual(6000);
      }
      if (p.silent[0]) expect(p.silent[0].atMs).toBeLessThanOrEqual(51);
      for (const c of p.oneway) expect([c.from, c.to].sort()).toEqual(['A', 'B']);
      for (const f of p.flaps) expect([f.cycles >= 2 && f.cycles <= 5, [300, 1000, 2500, 3500].includes(f.periodMs), f.atMs <= 51]).toEqual([true, true, true]);
    }
    // Each is drawn with a chance of 1/3, 1/6, 1/4, 1/6, 1/5: about 72% of seeds gain at least one.
    expect(count.silent).toBeGreaterThan(280);
    expect(count.oneway).toBeGreaterThan(120);
    expect(count.hbloss).toBeGreaterThan(200);
    expect(count.flap).toBeGreaterThan(120);
    expect(count.reset).toBeGreaterThan(150);
    expect(count.unchanged).toBeGreaterThan(230);
    expect(count.unchanged).toBeLessThan(330);
  });

  it('draw crashes and power cuts in every mode, from a stream of their own, never striking a side while it is down', () => {
    const runs = Array.from({ length: SEEDS }, (_, seed) => drawRun(seed, { writes: 1000, faults: null }));
    const byMode = new Map<string, { crash: number; power: number }>();
    for (const r of runs) {
      const m = byMode.get(r.mode) ?? { crash: 0, power: 0 };
      byMode.set(r.mode, m);
      for (const c of r.faults.crashes) {
        if (c.power) m.power++;
        else m.crash++;
        expect([5, 30, 100, 500, 2000]).toContain(c.downForMs);
        expect(c.atMs).toBeGreaterThanOrEqual(1);
      }
      const [a, b] = r.faults.crashes;
      if (a && b && a.side === b.side) expect(b.atMs).toBeGreaterThan(a.atMs + a.downForMs);
      if (a) expect(a.atMs).toBeLessThanOrEqual(60);
    }
    // A crash on one seed in three, a power cut on one in four, spread over the three modes.
    expect([...byMode.keys()].sort()).toEqual(['async', 'speculative', 'sync']);
    for (const m of byMode.values()) {
      expect(m.crash).toBeGreaterThan(80);
      expect(m.power).toBeGreaterThan(60);
    }
    expect(runs.filter((r) => r.faults.crashes.some((c) => c.side === 'source')).length).toBeGreaterThan(200);
    expect(runs.filter((r) => r.faults.crashes.some((c) => c.side === 'target')).length).toBeGreaterThan(200);
  });

  it('draw plans that the CLI accepts as they are printed, and that fit the default fault phase', () => {
    for (const p of plans) {
      expect(parseLinkFaults(formatLinkFaults(p))).toEqual(p);
      expect(lateLinkFault(p, DEFAULT_EMULATE.faultPhaseMsMax)).toBeNull();
      expect(timedFaultsEndMsMax(p)).toBeLessThan(DEFAULT_EMULATE.faultPhaseMsMax);
    }
  });
});
