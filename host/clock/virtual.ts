import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { assert } from '../../firmware/errors.ts';
import type { TimerHandle } from '../../firmware/ports/clock.ts';
import type { HostClock } from './clock.ts';
import { TimerHeap, type TimerEntry } from './timer-heap.ts';

export interface RunLimits {
  /** Stop once virtual time would pass this instant (ms); the clock is then set to it. */
  untilMs?: number;
  /** Stop after this many timers have fired in this call. */
  maxEvents?: number;
  /** Stop as soon as this returns true (checked before every timer). */
  until?: () => boolean;
}

export type RunOutcome = 'idle' | 'time' | 'events' | 'condition';

/** Every this many timers the run loop yields to Node's event loop (a count, so runs stay deterministic). */
const YIELD_EVERY_EVENTS = 4096;

/**
 * A virtual clock and discrete-event scheduler (DESIGN 2.5). Implements the firmware's Clock
 * port, so XState actors take it as `createActor(machine, { clock })`, and the host's
 * {@link HostClock}.
 *
 * Time is kept in integer nanoseconds, so sums of latencies and serialisation delays are exact.
 * Nothing happens until {@link run} is called; timers due at the same instant fire in the order
 * they were set, and timers set while running fire within the same run if they fall due before
 * it ends. A run is a pure function of what was scheduled: no wall-clock time leaks in.
 *
 * Promises: a continuation runs at the virtual instant its promise resolved if the promise came
 * from {@link sleep} or {@link settle} (the loop then lets every pending continuation run before
 * moving time on), or if it is at most two promise hops from the timer that resolved it. Deeper
 * chains started elsewhere still run in a deterministic order, just possibly at a later instant;
 * hot paths use callbacks.
 */
export class VirtualClock implements HostClock {
  private timeNs = 0;
  private nextId = 1;
  private readonly heap = new TimerHeap();
  private live = 0;
  private drainNeeded = false;
  private running = false;
  private fired = 0;

  /** Virtual milliseconds since the start of the run. */
  now(): number {
    return this.timeNs / 1e6;
  }

  /** Virtual nanoseconds since the start of the run (exact). */
  nowNs(): number {
    return this.timeNs;
  }

  /** Timers that have fired since the clock was made. */
  get eventsRun(): number {
    return this.fired;
  }

  /** Timers set and not yet fired or cancelled. */
  get pendingTimers(): number {
    return this.live;
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    return this.schedule(fn, delayMs);
  }

  clearTimeout(handle: TimerHandle): void {
    const entry = handle as TimerEntry | undefined;
    if (entry && typeof entry === 'object' && entry.fn !== null && 'at' in entry) {
      entry.fn = null;
      entry.wait = null;
      this.live--;
    }
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.schedule(() => {
        this.drainNeeded = true;
        resolve();
      }, ms);
    });
  }

  settle<T>(op: Promise<T>, delayMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
      const done = op.then(
        (value) => void (outcome = { ok: true, value }),
        (error: unknown) => void (outcome = { ok: false, error }),
      );
      const entry = this.schedule(() => {
        this.drainNeeded = true;
        assert(outcome, 'settle: operation still running when its timer fired');
        if (outcome.ok) resolve(outcome.value);
        else reject(outcome.error);
      }, delayMs);
      entry.wait = done;
    });
  }

  /** Fire timers in time order until a limit is reached or nothing is left to do. */
  async run(limits: RunLimits = {}): Promise<RunOutcome> {
    assert(!this.running, 'VirtualClock.run is not re-entrant');
    this.running = true;
    try {
      return await this.loop(limits);
    } finally {
      this.running = false;
    }
  }

  /** Advance virtual time by `ms`, firing every timer that falls due (chained timers included). */
  async advance(ms: number): Promise<void> {
    await this.run({ untilMs: this.now() + ms });
  }

  private async loop(limits: RunLimits): Promise<RunOutcome> {
    const untilNs = limits.untilMs === undefined ? Infinity : Math.round(limits.untilMs * 1e6);
    const maxEvents = limits.maxEvents ?? Infinity;
    let count = 0;
    for (;;) {
      if (limits.until?.()) return 'condition';
      const entry = this.nextLive();
      if (!entry || entry.at > untilNs) {
        if (untilNs !== Infinity && untilNs > this.timeNs) this.timeNs = untilNs;
        return entry ? 'time' : 'idle';
      }
      if (count >= maxEvents) return 'events';
      this.heap.pop();
      if (entry.wait) await entry.wait;
      const fn = entry.fn;
      if (fn === null) continue; // cancelled while we waited for its I/O
      entry.fn = null;
      this.live--;
      this.timeNs = entry.at;
      count++;
      this.fired++;
      fn();
      if (this.drainNeeded || this.fired % YIELD_EVERY_EVENTS === 0) {
        // Let promise continuations of what just happened run at this virtual instant.
        this.drainNeeded = false;
        await nextMacrotask();
      } else {
        // Cheap: continuations up to two promise hops deep (`await x.write()` on a promise the
        // timer resolved) still run at this instant. Deeper chains should go through sleep/settle.
        await null;
        await null;
      }
    }
  }

  private nextLive(): TimerEntry | undefined {
    let top = this.heap.peek();
    while (top && top.fn === null) {
      this.heap.pop();
      top = this.heap.peek();
    }
    return top;
  }

  private schedule(fn: () => void, delayMs: number): TimerEntry {
    const delayNs = Number.isFinite(delayMs) && delayMs > 0 ? Math.round(delayMs * 1e6) : 0;
    const entry: TimerEntry = { at: this.timeNs + delayNs, id: this.nextId++, fn, wait: null };
    this.heap.push(entry);
    this.live++;
    return entry;
  }
}
