import { describe, expect, it } from 'vitest';
import { withPlantedBugs, type PlantedBug } from '../../support/planted-bugs.ts';
import { crashRun, type CrashRunOptions, type CrashRunResult } from './crash-harness.ts';

/**
 * Power cuts at every point of a commit sequence (docs/tag-tables.md, "Crash safety"): each case
 * runs the workload once to learn how long it takes, then again with the power cut at evenly
 * spaced instants across it, and every recovery must give a state some commit produced, no older
 * than the last one acknowledged. The disks draw which cached sectors survive and where a write
 * tears from the run's seed, so each cut instant meets a different mix.
 */
const CUTS = 40;
const AREA = { areaSectors: 256, ringSectors: 16 }; // a small ring: the runs wrap it and write checkpoints often

const CACHED: Partial<CrashRunOptions> = {
  disk: { writeCacheBytesMax: 16 * 512, unflushedLoss: { numerator: 1, denominator: 2 }, service: { fixedMs: 0.1, perByteMs: 0.0002 } },
};
const TORN: Partial<CrashRunOptions> = { disk: { tornWrites: true, service: { fixedMs: 0.05, perByteMs: 0.001 } } };
const REORDERING: Partial<CrashRunOptions> = {
  disk: { writeCacheBytesMax: 32 * 512, reorder: true, unflushedLoss: { numerator: 1, denominator: 3 }, service: { fixedMs: 0.1, perByteMs: 0.0002 } },
};

async function sweep(base: Omit<CrashRunOptions, 'cutAtMs'>): Promise<CrashRunResult[]> {
  const whole = await crashRun(base);
  expect(whole.violation).toBeNull();
  const out: CrashRunResult[] = [];
  for (let k = 1; k <= CUTS; k++) out.push(await crashRun({ ...base, cutAtMs: (whole.endedMs * k) / (CUTS + 1) }));
  return out;
}

function summary(runs: CrashRunResult[]) {
  return {
    violations: runs.filter((r) => r.violation !== null).map((r) => r.violation),
    /** Recoveries that found something torn or unflushed and refused it. */
    refused: runs.filter((r) => r.recovered.discarded > 0).length,
  };
}

const single = (seed: number, kind: Partial<CrashRunOptions>): Omit<CrashRunOptions, 'cutAtMs'> => ({
  seed, sectorCount: 256, store: AREA, writers: 1, steps: 80, batchMax: 6, ...kind,
} as Omit<CrashRunOptions, 'cutAtMs'>);

describe('metadata store under power cuts (docs/tag-tables.md, "Crash safety")', () => {
  it('a cached disk that loses unflushed sectors at random: every recovery is a committed state, never older than the last acknowledged', async () => {
    let refused = 0;
    for (const seed of [1, 2, 3]) {
      const s = summary(await sweep(single(seed, CACHED)));
      expect(s.violations).toEqual([]);
      refused += s.refused;
    }
    const whole = await crashRun(single(1, CACHED));
    expect(whole.stats.checkpoints).toBeGreaterThan(1); // the runs wrap the ring
    expect(refused).toBeGreaterThan(0); // the cuts did land on torn records
  });

  it('a write-through disk that tears the write under the head: the torn record or checkpoint is refused, never trusted', async () => {
    let refused = 0;
    for (const seed of [4, 5, 6]) {
      const s = summary(await sweep(single(seed, TORN)));
      expect(s.violations).toEqual([]);
      refused += s.refused;
    }
    expect(refused).toBeGreaterThan(0);
  });

  it('eight writers sharing group commits on a disk that reorders and caches: a prefix of the batches, no older than any acknowledged', async () => {
    for (const seed of [7, 8]) {
      const runs = await sweep({ seed, sectorCount: 256, store: AREA, writers: 8, steps: 12, batchMax: 3, ...REORDERING } as Omit<CrashRunOptions, 'cutAtMs'>);
      expect(summary(runs).violations).toEqual([]);
    }
  });

  it('crash, recover, go on, crash again: three cycles per seed, each recovery exact', async () => {
    for (const seed of [9, 10, 11, 12]) {
      let resume: CrashRunOptions['resume'];
      for (let cycle = 0; cycle < 3; cycle++) {
        const base = { ...single(seed * 10 + cycle, CACHED), ...(resume ? { resume } : {}) };
        const r = await crashRun({ ...base, cutAtMs: 3 + 2.3 * cycle + (seed % 3) });
        expect(r.violation).toBeNull();
        resume = { clock: r.clock, disk: r.disk, recovered: r.recovered };
      }
    }
  });
});

describe('the power-cut check fails on a broken store (planted bugs, docs/conventions.md 10)', () => {
  const cases: { bug: PlantedBug; kind: Partial<CrashRunOptions>; seeds: number[] }[] = [
    // Acknowledging before the flush: a cut loses acknowledged commits from the cache.
    { bug: 'metadata-acks-before-flush', kind: CACHED, seeds: [1] },
    // Every checkpoint into slot 0: a torn checkpoint overwrites the only one there was.
    { bug: 'metadata-checkpoint-one-slot', kind: TORN, seeds: [4, 5, 6] },
  ];
  for (const { bug, kind, seeds } of cases) {
    it(`${bug}: some cut recovers a state older than acknowledged or never committed`, async () => {
      const violations = await withPlantedBugs([bug], async () => {
        const out: string[] = [];
        for (const seed of seeds) out.push(...summary(await sweep(single(seed, kind))).violations.map(String));
        return out;
      });
      expect(violations.length).toBeGreaterThan(0);
    });
  }
});
