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

/** One call of {@link VirtualClock.run} in progress. */
interface ActiveRun {
  readonly limits: RunLimits;
  readonly untilNs: number;
  readonly maxEvents: number;
  /** Timers fired by this run. */
  count: number;
  readonly resolve: (outcome: RunOutcome) => void;
  readonly reject: (error: unknown) => void;
}

const SETTLED = Promise.resolve();

/**
 * A virtual clock and discrete-event scheduler (docs/design.md 2.5). Implements the firmware's Clock
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
  private active: ActiveRun | null = null;
  /** The run loop's continuations, made once: they are queued after every event. */
  private readonly continueRun = (): void => this.runEvents();
  private readonly secondTurn = (): void => void SETTLED.then(this.continueRun);
  /**
   * Queued as a microtask: a tick queued from inside the microtask queue runs once that queue is
   * empty, continuations of continuations included (Node drains every microtask before it runs
   * the next tick), which is all a whole macrotask gave, at a fraction of an event-loop turn.
   */
  private readonly afterMicrotasks = (): void => process.nextTick(this.continueRun);

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

  /**
   * The run loop: fire due timers one at a time and, after each, let the microtask queue run
   * before the next (two turns; after sleep/settle, until the queue is empty; a whole macrotask
   * every YIELD_EVERY_EVENTS timers), until a limit ends the run.
   *
   * It continues itself through callbacks on settled promises rather than as an async function
   * with `await null; await null` after every timer: each `then` queues exactly one microtask,
   * as each `await` does, so continuations interleave with timers exactly as they would there,
   * but a turn costs less than half as much and leaves far less garbage. That matters because
   * a simulation spends a turn pair on every one of its events.
   */
  private loop(limits: RunLimits): Promise<RunOutcome> {
    return new Promise<RunOutcome>((resolve, reject) => {
      const untilNs = limits.untilMs === undefined ? Infinity : Math.round(limits.untilMs * 1e6);
      this.active = { limits, untilNs, maxEvents: limits.maxEvents ?? Infinity, count: 0, resolve, reject };
      this.runEvents();
    });
  }

  /** The loop from its top: fire the next timer and yield, or end the run. */
  private runEvents(): void {
    const run = this.active!;
    try {
      for (;;) {
        const next = this.takeNext(run);
        if (typeof next === 'string') {
          this.active = null;
          run.resolve(next);
          return;
        }
        if (next.wait) {
          next.wait.then(() => this.fireAfterWait(next), (error: unknown) => this.failRun(error));
          return;
        }
        if (this.fire(next, run)) return this.yieldAfterEvent();
      }
    } catch (error) {
      this.failRun(error);
    }
  }

  /** The next timer, taken off the heap, or why the run ends. */
  private takeNext(run: ActiveRun): TimerEntry | RunOutcome {
    if (run.limits.until?.()) return 'condition';
    const entry = this.nextLive();
    // A spent budget with work left ends the run where it stands, even when the next timer lies
    // past the time limit: the clock is not moved, so a run cut into slices ends where one whole run would.
    if (entry && run.count >= run.maxEvents) return 'events';
    if (!entry || entry.at > run.untilNs) {
      if (run.untilNs !== Infinity && run.untilNs > this.timeNs) this.timeNs = run.untilNs;
      return entry ? 'time' : 'idle';
    }
    this.heap.pop();
    return entry;
  }

  /** A settle() timer whose I/O has finished: fire it unless it was cancelled while we waited. */
  private fireAfterWait(entry: TimerEntry): void {
    try {
      if (this.fire(entry, this.active!)) this.yieldAfterEvent();
      else this.runEvents();
    } catch (error) {
      this.failRun(error);
    }
  }

  /** Fire a timer taken off the heap; false if it was cancelled. */
  private fire(entry: TimerEntry, run: ActiveRun): boolean {
    const fn = entry.fn;
    if (fn === null) return false;
    entry.fn = null;
    this.live--;
    this.timeNs = entry.at;
    run.count++;
    this.fired++;
    fn();
    return true;
  }

  private yieldAfterEvent(): void {
    if (this.fired % YIELD_EVERY_EVENTS === 0) {
      // Let Node's event loop (I/O, real timers, other work) have a turn; promise continuations
      // of what just happened run first, at this virtual instant.
      this.drainNeeded = false;
      void nextMacrotask().then(this.continueRun);
    } else if (this.drainNeeded) {
      // Let promise continuations of what just happened, however deep, run at this virtual instant.
      this.drainNeeded = false;
      void SETTLED.then(this.afterMicrotasks);
    } else {
      // Cheap: continuations up to two promise hops deep (`await x.write()` on a promise the
      // timer resolved) still run at this instant. Deeper chains should go through sleep/settle.
      void SETTLED.then(this.secondTurn);
    }
  }

  private failRun(error: unknown): void {
    const run = this.active!;
    this.active = null;
    run.reject(error);
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
