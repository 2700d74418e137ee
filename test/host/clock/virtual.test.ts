import { describe, expect, it } from 'vitest';
import { createActor, setup } from 'xstate';
import { VirtualClock } from '../../../host/clock/virtual.ts';

describe('VirtualClock', () => {
  it('fires timers in time order, equal times in the order set, and keeps exact nanoseconds', async () => {
    const clock = new VirtualClock();
    const seen: string[] = [];
    clock.setTimeout(() => seen.push('b@2'), 2);
    clock.setTimeout(() => seen.push('a@1'), 1);
    clock.setTimeout(() => seen.push('c@2'), 2);
    clock.setTimeout(() => seen.push('d@0.000033152'), 0.000033152);
    await clock.run();
    expect(seen).toEqual(['d@0.000033152', 'a@1', 'b@2', 'c@2']);
    expect(clock.nowNs()).toBe(2_000_000);
  });

  it('fires chained timers within one advance, and stops at the limit', async () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    const chain = (n: number): void => {
      seen.push(clock.now());
      if (n > 0) clock.setTimeout(() => chain(n - 1), 1);
    };
    clock.setTimeout(() => chain(10), 1);
    await clock.advance(5);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(clock.now()).toBe(5);
    await clock.advance(100);
    expect(seen.length).toBe(11);
    expect(clock.now()).toBe(105);
  });

  it('cancels timers', async () => {
    const clock = new VirtualClock();
    let fired = false;
    const h = clock.setTimeout(() => (fired = true), 1);
    expect(clock.pendingTimers).toBe(1);
    clock.clearTimeout(h);
    clock.clearTimeout(h);
    expect(clock.pendingTimers).toBe(0);
    expect(await clock.run()).toBe('idle');
    expect(fired).toBe(false);
  });

  it('lets promise continuations of sleep run at the instant they resolve', async () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    const worker = async (): Promise<void> => {
      for (let i = 0; i < 3; i++) {
        await clock.sleep(10);
        seen.push(clock.now());
        await Promise.resolve();
        await Promise.all([clock.sleep(1), clock.sleep(2)]);
        seen.push(clock.now());
      }
    };
    clock.setTimeout(() => {}, 1000); // unrelated later timer must not be reached first
    const done = worker();
    await clock.run({ untilMs: 500 });
    await done;
    expect(seen).toEqual([10, 12, 22, 24, 34, 36]);
  });

  it('settle() finishes real I/O at a definite virtual time', async () => {
    const clock = new VirtualClock();
    const slowReal = new Promise<string>((resolve) => setTimeout(() => resolve('data'), 20));
    let at = -1;
    const p = clock.settle(slowReal, 3).then((v) => {
      at = clock.now();
      return v;
    });
    clock.setTimeout(() => {}, 5);
    await clock.run();
    expect(await p).toBe('data');
    expect(at).toBe(3);
    expect(clock.now()).toBe(5);
  });

  it('stops on a condition or an event budget', async () => {
    const clock = new VirtualClock();
    let n = 0;
    const tick = (): void => {
      n++;
      clock.setTimeout(tick, 1);
    };
    clock.setTimeout(tick, 1);
    expect(await clock.run({ until: () => n >= 7 })).toBe('condition');
    expect(n).toBe(7);
    expect(await clock.run({ maxEvents: 3 })).toBe('events');
    expect(n).toBe(10);
    // A spent budget ends the run where it stands, even if the next timer lies past the time limit.
    const at = clock.now();
    expect(await clock.run({ maxEvents: 1, untilMs: at + 1.5 })).toBe('events');
    expect([n, clock.now()]).toEqual([11, at + 1]);
    // With nothing left to do, the run is idle, not out of budget.
    const idle = new VirtualClock();
    idle.setTimeout(() => {}, 1);
    expect(await idle.run({ maxEvents: 1 })).toBe('idle');
  });

  it('drives XState delayed transitions as a clock', async () => {
    const clock = new VirtualClock();
    const m = setup({}).createMachine({ initial: 'a', states: { a: { after: { 250: 'b' } }, b: {} } });
    const actor = createActor(m, { clock }).start();
    await clock.advance(249);
    expect(actor.getSnapshot().value).toBe('a');
    await clock.advance(1);
    expect(actor.getSnapshot().value).toBe('b');
  });

  it('after a sleep, lets continuations however deep run before the next timer, and still yields to the event loop', async () => {
    const clock = new VirtualClock();
    const seen: string[] = [];
    const deep = async (): Promise<void> => {
      await clock.sleep(1);
      let chain: Promise<unknown> = Promise.resolve();
      for (let hop = 1; hop <= 50; hop++) chain = chain.then(() => hop === 50 && seen.push(`hop50@${clock.now()}`));
      await chain;
      await new Promise<void>((resolve) => queueMicrotask(resolve));
      seen.push(`end@${clock.now()}`);
    };
    const done = deep();
    clock.setTimeout(() => seen.push(`B@${clock.now()}`), 1);
    await clock.run();
    await done;
    expect(seen).toEqual(['hop50@1', 'end@1', 'B@1']);
    // Node's own callbacks get turns during a long run (every 4,096 timers), not only once it ends.
    let turns = 0;
    const count = (): void => {
      turns++;
      if (clock.pendingTimers > 0) setImmediate(count);
    };
    let left = 20_000;
    const tick = (): void => void (--left > 0 && clock.setTimeout(tick, 1));
    clock.setTimeout(tick, 1);
    setImmediate(count);
    await clock.run();
    expect(turns).toBeGreaterThanOrEqual(4);
  });

  it('lets continuations two promise hops deep run before the next timer fires, deeper ones after it', async () => {
    // Pins the loop's microtask schedule: two turns after every timer, as `await null; await null`.
    const clock = new VirtualClock();
    const seen: string[] = [];
    let resolve!: () => void;
    let chain: Promise<unknown> = new Promise<void>((r) => (resolve = r));
    for (let hop = 1; hop <= 6; hop++) chain = chain.then(() => seen.push(`hop${hop}@${clock.now()}`));
    clock.setTimeout(() => resolve(), 1);
    clock.setTimeout(() => seen.push(`B@${clock.now()}`), 1);
    clock.setTimeout(() => seen.push(`C@${clock.now()}`), 2);
    await clock.run();
    expect(seen).toEqual(['hop1@1', 'hop2@1', 'B@1', 'hop3@1', 'hop4@1', 'C@2', 'hop5@2', 'hop6@2']);
  });

  it('a timer that throws rejects the run, and the clock can run again', async () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    clock.setTimeout(() => seen.push(1), 1);
    clock.setTimeout(() => {
      throw new Error('boom');
    }, 2);
    clock.setTimeout(() => seen.push(3), 3);
    await expect(clock.run()).rejects.toThrow('boom');
    expect(clock.now()).toBe(2);
    expect(await clock.run()).toBe('idle');
    expect(seen).toEqual([1, 3]);
  });

  it('refuses to run re-entrantly', async () => {
    const clock = new VirtualClock();
    clock.setTimeout(() => {}, 1);
    const first = clock.run();
    await expect(clock.run()).rejects.toThrow(/re-entrant/);
    await first;
  });
});
