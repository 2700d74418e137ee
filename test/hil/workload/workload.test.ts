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

describe('host workload: think time and crashes', () => {
  /** A controller stand-in that completes each write `ms` after it is submitted, and records when. */
  function fake(clock: VirtualClock, ms: number) {
    const submitted: number[] = [];
    const controller = {
      id: 1,
      submitWrite: (_lun: number, _lba: number, _data: Uint8Array, done: (err?: unknown) => void) => {
        submitted.push(clock.now());
        clock.setTimeout(() => done(), ms);
      },
    } as unknown as StorageController;
    return { controller, submitted };
  }
  const spec = { writes: 6, durationMs: 0, writeBytes: 4096, queueDepth: 2, pattern: 'sequential' as const, readPercent: 0 };

  it('a lane waits its think time after each completion before its next write', async () => {
    const clock = new VirtualClock();
    const { controller, submitted } = fake(clock, 1);
    const host = new HostWorkload(controller, 0, { sectorSize: 512, sectorCount: 1024 }, { ...spec, thinkMs: 4 }, new SeededRandom(1), clock);
    host.start();
    await clock.run({});
    // Two lanes: each write takes 1 ms, then 4 ms of thinking.
    expect(submitted).toEqual([0, 0, 5, 5, 10, 10]);
    expect([host.done, host.writesAcknowledged]).toEqual([true, 6]);
  });

  it('a crash loses the writes in flight (a late completion from the dead controller is ignored); the lanes go on after the restart', async () => {
    const clock = new VirtualClock();
    const dead = fake(clock, 3);
    const host = new HostWorkload(dead.controller, 0, { sectorSize: 512, sectorCount: 1024 }, spec, new SeededRandom(1), clock);
    host.start();
    await clock.run({ untilMs: 1 });
    host.crashed();
    expect(host.done).toBe(false);
    await clock.run({ untilMs: 10 });
    expect([host.writesIssued, host.writesAcknowledged]).toEqual([2, 0]);
    const live = fake(clock, 1);
    host.restarted(live.controller);
    await clock.run({});
    expect(live.submitted).toEqual([10, 10, 11, 11]);
    expect(host.stats()).toMatchObject({ issued: 6, acknowledged: 4, interrupted: 2, errors: 0 });
    expect(host.done).toBe(true);
  });
});
