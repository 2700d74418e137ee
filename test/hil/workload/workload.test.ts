import { describe, expect, it } from 'vitest';
import { LatencyRecorder } from '../../../hil/workload/latency.ts';
import { HostWorkload } from '../../../hil/workload/host-workload.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { SeededRandom } from '../../../host/random.ts';
import type { StorageController } from '../../../firmware/controller/storage-controller.ts';

describe('latency summaries', () => {
  it('merged: the summary of every value of several recorders, as if recorded by one', () => {
    const [a, b, all] = [new LatencyRecorder(), new LatencyRecorder(), new LatencyRecorder()];
    for (let i = 0; i < 3000; i++) {
      const v = (i * 7919) % 1000 / 100;
      (i % 3 === 0 ? a : b).record(v);
      all.record(v);
    }
    expect(LatencyRecorder.merged([a, b])).toEqual(all.summary());
    expect(LatencyRecorder.merged([a, b]).count).toBe(3000);
    expect(LatencyRecorder.merged([])).toMatchObject({ count: 0, meanMs: 0 });
  });
});

describe('host workload', () => {
  const make = (readPercent: number) => new HostWorkload({} as StorageController, 0, { sectorSize: 512, sectorCount: 1024 },
    { writes: 10, durationMs: 0, writeBytes: 4096, queueDepth: 1, pattern: 'random', readPercent }, new SeededRandom(1), new VirtualClock());

  it('refuses 100% reads (it would never reach its writes); 0 to 99 are fine', () => {
    expect(() => make(100)).toThrow(/readPercent must be 0 to 99, got 100/);
    expect(() => make(99)).not.toThrow();
    expect(make(0).writesAcknowledged).toBe(0);
  });
});
