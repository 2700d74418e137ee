import { afterEach, describe, expect, it, vi } from 'vitest';
import { DISK_BENCH_LAYOUTS, measureDisks } from '../../../hil/bench/disk-bench.ts';
import { benchCommand, renderBench, type BenchResult } from '../../../hil/cli/bench-command.ts';
import { createLogger } from '../../../hil/log.ts';

/** Benchmarks are not tests (docs/conventions.md 11): these check what the bench reports, never how fast. */
const positive = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x > 0;

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the disk benchmark', () => {
  it('measures every layout and a memory-copy floor per block size, at a tiny scale', async () => {
    const r = await measureDisks(0.002);
    expect(r.rows.map((x) => x.layout)).toEqual([...DISK_BENCH_LAYOUTS]);
    for (const x of r.rows) expect([positive(x.random4kMBps), positive(x.sequential1mMBps)]).toEqual([true, true]);
    expect([r.memoryCopy4kMBps, r.memoryCopy1mMBps, r.memoryCopyMBps, r.raid5FullStripeMBps, r.raid5ReadModifyWriteMBps].every(positive)).toBe(true);
    expect(r.memoryCopyMBps).toBe(r.memoryCopy1mMBps);
    expect(r.scale).toBe(0.002);
    expect(renderBench({ only: 'disks', disks: r, targets: [] })).toMatch(/memory copy \(the floor\)\s+\d+\s+\d+/);
  });

  it('refuses a scale outside its limits', async () => {
    await expect(measureDisks(0)).rejects.toThrow(/scale must be in \[0.001, 100\], got 0/);
  });
});

describe('mirrorlab bench --only disks', () => {
  it('runs the block devices alone and prints one JSON document without the mirroring fields', async () => {
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    let code = -1;
    const cmd = benchCommand(createLogger('silent'), (c) => (code = c)).exitOverride();
    await cmd.parseAsync(['--only', 'disks', '--disk-scale', '0.001', '--json'], { from: 'user' });
    const doc = JSON.parse(out.join('')) as BenchResult;
    expect(code).toBe(0);
    expect(Object.keys(doc)).toEqual(['only', 'disks', 'targets']);
    expect(doc.only).toBe('disks');
    expect(doc.disks?.rows).toHaveLength(DISK_BENCH_LAYOUTS.length);
    expect(doc.targets).toEqual([]);
  });

  it('refuses an unknown part, naming the allowed ones', async () => {
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const cmd = benchCommand(createLogger('silent'), () => {}).exitOverride();
    await expect(cmd.parseAsync(['--only', 'network'], { from: 'user' })).rejects.toThrow(/--only must be one of all, mirror, disks, supervision, resync, queue, live, got "network"/);
  });
});
