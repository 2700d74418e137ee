import { describe, expect, it } from 'vitest';
import { measureCheckedRunSpeed, measureRow } from '../../../hil/bench/mirror-bench.ts';

/** Benchmarks are not tests (docs/conventions.md 11): this checks what the bench reports, never how fast. */
describe('the checked-run speed (a campaign\'s run: telemetry, trace hash, checker)', () => {
  it('measures a consistent run and reports its writes per second and trace events per write', async () => {
    const r = await measureCheckedRunSpeed(300);
    expect(Number.isFinite(r.writesPerSec) && r.writesPerSec > 0).toBe(true);
    // Every write is at least its host.write, host.ack, and a frame sent and received.
    expect(r.eventsPerWrite).toBeGreaterThan(4);
  });
});

/**
 * The headline rows with implied locks and batches (docs/implied-locks.md), in virtual time, so
 * exact: a short version of `mirrorlab bench --only mirror`, every 4 KiB write in its own lock region.
 */
describe('headline bench rows with implied locks', () => {
  it('speculative at 0.2 ms, where the link is the bottleneck: implied locks and batches reach 0.99 of it, several writes per frame', async () => {
    const batched = await measureRow('speculative', 0.2, { locks: 'implied', batch: true });
    expect(batched.ratioToLimit).toBeGreaterThanOrEqual(0.99);
    expect(batched.framesPerWrite).toBeLessThan(0.5);
    // Less than a frame header and CRC (52 bytes) per write: a sub-header each, the frame's shared.
    expect(batched.overheadBytesPerWrite).toBeLessThan(52);
    expect(batched.chartEventsPerWrite).toBeLessThanOrEqual(0.01);
  });

  it('speculative at 20 ms, where latency dominates: one frame per write instead of three, at the limit either way', async () => {
    const explicit = await measureRow('speculative', 20, { locks: 'explicit', batch: false });
    const implied = await measureRow('speculative', 20, { locks: 'implied', batch: true });
    for (const row of [explicit, implied]) {
      expect(row.ratioToLimit).toBeGreaterThanOrEqual(0.9995);
      expect(row.chartEventsPerWrite).toBeLessThanOrEqual(0.01);
    }
    expect(explicit.framesPerWrite).toBeCloseTo(3, 1);
    expect(implied.framesPerWrite).toBe(1);
    expect(implied.overheadBytesPerWrite).toBeLessThan(explicit.overheadBytesPerWrite / 2);
  });
});
