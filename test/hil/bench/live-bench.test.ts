import { describe, expect, it } from 'vitest';
import { LIVE_BENCH, LIVE_RATIO_MIN, measureLive } from '../../../hil/bench/live-bench.ts';
import { liveTargets, renderLive } from '../../../hil/bench/live-render.ts';

/**
 * The live bench at its smallest: every row measured and rendered, the targets read off the
 * ratios. Wall-clock figures are only checked for being figures (docs/conventions.md 11).
 */
describe('the live bench', () => {
  it('measures every row and the latency at a small scale, and reads its targets off the ratios', async () => {
    const r = await measureLive({ scale: 0.01, volumeBytes: 4 * 1024 * 1024 });
    expect(r.serialSkipped).toBeNull();
    expect(r.loadAverage).toHaveLength(3);
    expect(r.rows.map((x) => `${x.what} ${x.transport} ${x.writeBytes} ${x.processes}`)).toEqual([
      ...LIVE_BENCH.tcpWriteBytes.map((b) => `mirrored tcp ${b} 1`), ...LIVE_BENCH.tcpWriteBytes.map((b) => `mirrored tcp ${b} 2`),
      `link tcp ${LIVE_BENCH.tcpWriteBytes[0]} 1`, ...LIVE_BENCH.serialWriteBytes.map((b) => `mirrored serial ${b} 1`),
    ]);
    for (const x of r.rows) {
      expect(x.ratios).toHaveLength(LIVE_BENCH.rounds);
      expect([x.MBps, x.rawMBps, x.ratio, x.cpuMsPerMB].every((v) => Number.isFinite(v) && v > 0)).toBe(true);
    }
    expect(r.latency.p50Ms).toBeLessThanOrEqual(r.latency.p99Ms);
    expect(r.latency.writes).toBe(100);
    const targets = liveTargets(r);
    expect(targets.map((t) => t.met)).toEqual(r.rows.filter((x) => x.what === 'mirrored').map((x) => x.ratio >= LIVE_RATIO_MIN));
    expect(new Set(targets.map((t) => t.name)).size).toBe(targets.length);
    expect(renderLive(r).join('\n')).toMatch(/one process .*\n.*one process.*\n.*two processes.*\n.*two processes.*\n.*TCP link alone[^]*PTY pair[^]*host write latency .* p50 /);
  });
});
