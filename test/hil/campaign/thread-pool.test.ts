import { describe, expect, it } from 'vitest';
import { drawRun } from '../../../hil/campaign/draw-run.ts';
import { summarise } from '../../../hil/campaign/summary.ts';
import { ThreadPool } from '../../../hil/campaign/thread-pool.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';

describe("a queue worker's thread pool", () => {
  it('runs a seed as this thread would, reports a run that throws as an error, and says nothing for runs cut off by close', async () => {
    const pool = new ThreadPool(2);
    const options = drawRun(3, { writes: 100, faults: null });
    const [reply, thrown] = await Promise.all([pool.run(options), pool.run({ ...options, seed: 4, writeBytes: 1000 })]);
    const here = summarise(await runEmulation(options), 0);
    expect(reply).toMatchObject({ seed: 3, summary: { seed: 3, verdict: here.verdict, traceHash: here.traceHash, reproduce: here.reproduce } });
    expect(thrown).toMatchObject({ seed: 4, error: expect.stringMatching(/multiple of the 512-byte sector/) });

    // Threads are reused: a third run needs no new one, and the pool never holds more than its size in flight.
    const again = pool.run(options);
    expect(() => pool.run(options)).not.toThrow();
    expect(() => pool.run(options)).toThrow(/at most 2 runs in flight/);
    await pool.close();
    expect(await again).toBeNull();
    expect(() => pool.run(options)).toThrow(/thread pool is closed/);
  });
});
