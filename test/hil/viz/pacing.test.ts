import { describe, expect, it } from 'vitest';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { PacedClock, PACE_STEP_WALL_MS } from '../../../hil/viz/pacing.ts';
import { VirtualClock, type RunLimits } from '../../../host/clock/virtual.ts';
import { FAULTY } from './fixtures.ts';

/** A wall clock that moves only when slept on, so pacing is measured exactly and tests never wait. */
function fakeWall() {
  const w = { now: 0, slept: 0, sleeps: 0, onSleep: (_n: number): void => {} };
  return {
    w,
    wallNow: () => w.now,
    sleep: (ms: number) => {
      w.now += ms;
      w.slept += ms;
      w.onSleep(++w.sleeps);
      return new Promise<void>((resolve) => setImmediate(resolve));
    },
  };
}

/** The same timers on a clock: each fires and records when, some set more timers. */
function schedule(clock: VirtualClock, log: string[]): void {
  for (const [name, at] of [['a', 3], ['b', 0.5], ['c', 40], ['d', 40]] as const) {
    clock.setTimeout(() => {
      log.push(`${name}@${clock.now()}`);
      if (name === 'b') clock.setTimeout(() => log.push(`b2@${clock.now()}`), 100);
    }, at);
  }
}

describe('paced clock', () => {
  it('runs the same run as a plain clock: same trace, same verdict, through pauses and speed changes', async () => {
    const plain = await runEmulation(FAULTY);
    const { w, wallNow, sleep } = fakeWall();
    const clock = new PacedClock({ speed: 0.05, wallNow, sleep });
    w.onSleep = (n) => {
      if (n === 10) clock.setSpeed(0.5);
      if (n === 20) {
        clock.pause();
        setTimeout(() => clock.resume(), 5);
      }
    };
    const paced = await runEmulation(FAULTY, { clock });
    expect(paced.traceHash).toBe(plain.traceHash);
    expect(paced.verdict).toBe(plain.verdict);
    expect(w.sleeps).toBeGreaterThan(20);
  });

  it('keeps pace: virtual time passes at `speed` virtual ms per wall ms', async () => {
    const { w, wallNow, sleep } = fakeWall();
    const clock = new PacedClock({ speed: 0.01, wallNow, sleep });
    const log: string[] = [];
    schedule(clock, log);
    await clock.run({ untilMs: 100 });
    expect(clock.now()).toBe(100);
    expect(log).toEqual(['b@0.5', 'a@3', 'c@40', 'd@40']);
    // 100 virtual ms at 0.01: 10 wall seconds, slept in steps of PACE_STEP_WALL_MS.
    expect(w.slept).toBeCloseTo(100 / 0.01, 6);
    expect(w.sleeps).toBe(Math.ceil(100 / (0.01 * PACE_STEP_WALL_MS)));
  });

  it('ends every run as a plain clock would: time, events and conditions, and idle', async () => {
    const cases: RunLimits[] = [{ untilMs: 100 }, { untilMs: 20 }, { untilMs: 1000 }, { maxEvents: 2 }, { maxEvents: 2, untilMs: 1000 }, { maxEvents: 3, untilMs: 41 }, { maxEvents: 9, untilMs: 50 }, { until: () => false }, {}];
    for (const limits of cases) {
      const plainLog: string[] = [];
      const plain = new VirtualClock();
      schedule(plain, plainLog);
      const plainOutcome = await plain.run(limits);
      const { wallNow, sleep } = fakeWall();
      const pacedLog: string[] = [];
      const paced = new PacedClock({ speed: 0.1, wallNow, sleep });
      schedule(paced, pacedLog);
      const pacedOutcome = await paced.run(limits);
      expect([pacedOutcome, paced.now(), pacedLog], JSON.stringify(limits)).toEqual([plainOutcome, plain.now(), plainLog]);
    }
  });

  it('stands still while paused', async () => {
    const { wallNow, sleep } = fakeWall();
    const clock = new PacedClock({ speed: 1, wallNow, sleep });
    const log: string[] = [];
    schedule(clock, log);
    clock.pause();
    const done = clock.run({ untilMs: 1000 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect([clock.now(), log]).toEqual([0, []]);
    expect(clock.paused).toBe(true);
    clock.resume();
    await done;
    expect(log).toEqual(['b@0.5', 'a@3', 'c@40', 'd@40', 'b2@100.5']);
  });

  it('refuses a speed it cannot keep', () => {
    expect(() => new PacedClock({ speed: 0 })).toThrow(RangeError);
    expect(() => new PacedClock({ speed: Number.NaN })).toThrow(/speed NaN is outside/);
    expect(() => new PacedClock({ speed: 1 }).setSpeed(1e9)).toThrow(RangeError);
  });
});
