import { describe, expect, it } from 'vitest';
import { measureCheckedRunSpeed } from '../../../hil/bench/mirror-bench.ts';

/** Benchmarks are not tests (docs/conventions.md 11): this checks what the bench reports, never how fast. */
describe('the checked-run speed (a campaign\'s run: telemetry, trace hash, checker)', () => {
  it('measures a consistent run and reports its writes per second and trace events per write', async () => {
    const r = await measureCheckedRunSpeed(300);
    expect(Number.isFinite(r.writesPerSec) && r.writesPerSec > 0).toBe(true);
    // Every write is at least its host.write, host.ack, and a frame sent and received.
    expect(r.eventsPerWrite).toBeGreaterThan(4);
  });
});
