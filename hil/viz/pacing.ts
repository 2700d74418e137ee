import { VirtualClock, type RunLimits, type RunOutcome } from '../../host/clock/virtual.ts';

/** Wall time between two looks at the pace: the virtual clock runs this long's worth of virtual time, then waits. */
export const PACE_STEP_WALL_MS = 40;
/** When the simulation falls this far behind the wall clock, the pace starts afresh instead of racing to catch up. */
const BEHIND_WALL_MS_MAX = 250;
/** Slowest and fastest `--speed`: virtual time per wall time. */
export const SPEED_MIN = 1e-5;
export const SPEED_MAX = 1000;

/** What the page may ask of a live run. */
export interface LiveControl {
  readonly speed: number;
  readonly paused: boolean;
  /** Virtual ms: the run's clock, which moves on between events too. */
  now(): number;
  setSpeed(speed: number): void;
  pause(): void;
  resume(): void;
}

export interface PaceOptions {
  /** Virtual milliseconds per wall millisecond (0.01: a hundred times slower than real time). */
  speed: number;
  /** The wall clock and a wall-clock sleep; tests may pass their own. */
  wallNow?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * A virtual clock that keeps pace with the wall clock, so a person can watch a run (docs/viz.md,
 * "Live mode"). It only splits each `run()` into slices of `speed x PACE_STEP_WALL_MS` virtual ms
 * and sleeps between them until the wall clock has caught up: the timers fire in exactly the same
 * order at exactly the same virtual instants as on a plain VirtualClock, so a paced run is the same
 * run (same trace, same `traceHash`). It can be paused and its speed changed while it runs.
 */
export class PacedClock extends VirtualClock implements LiveControl {
  private pace: number;
  private isPaused = false;
  private wake: (() => void) | null = null;
  private anchorWall: number;
  private anchorVirtual = 0;
  private readonly wallNow: () => number;
  private readonly sleepWall: (ms: number) => Promise<void>;

  constructor(opts: PaceOptions) {
    super();
    this.pace = checkSpeed(opts.speed);
    this.wallNow = opts.wallNow ?? (() => performance.now());
    this.sleepWall = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.anchorWall = this.wallNow();
  }

  get speed(): number {
    return this.pace;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  setSpeed(speed: number): void {
    this.pace = checkSpeed(speed);
    this.reanchor();
  }

  pause(): void {
    this.isPaused = true;
  }

  resume(): void {
    this.isPaused = false;
    this.reanchor();
    this.wake?.();
  }

  /**
   * Each slice gets what is left of the run's event budget, so a run bounded by a count ends at
   * the same timer as a plain one (the clock ends a spent budget without moving time).
   */
  override async run(limits: RunLimits = {}): Promise<RunOutcome> {
    const outerUntil = limits.untilMs ?? Infinity;
    const budgetEnd = limits.maxEvents === undefined ? Infinity : this.eventsRun + limits.maxEvents;
    const rest = (): RunLimits => (budgetEnd === Infinity ? limits : { ...limits, maxEvents: Math.max(0, budgetEnd - this.eventsRun) });
    // A slice also stops where a plain run would find nothing left to fire, before its own time
    // limit could move the clock past the last event.
    const until = (): boolean => limits.until?.() === true || this.pendingTimers === 0;
    for (;;) {
      await this.whilePaused();
      // Nothing left to fire: let the plain clock end the run exactly as it would (and move time as it would).
      if (this.pendingTimers === 0) return super.run(rest());
      const stepUntil = Math.min(outerUntil, this.now() + this.pace * PACE_STEP_WALL_MS);
      const outcome = await super.run({ ...rest(), untilMs: stepUntil, until });
      await this.keepPace();
      if (outcome === 'events') return outcome;
      if (outcome === 'condition') return limits.until?.() === true ? outcome : super.run(rest());
      if (stepUntil >= outerUntil) return outcome;
    }
  }

  private async whilePaused(): Promise<void> {
    while (this.isPaused) await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = null;
  }

  /** Sleep until the wall clock reaches the virtual clock's place on the pace line. */
  private async keepPace(): Promise<void> {
    const due = this.anchorWall + (this.now() - this.anchorVirtual) / this.pace;
    const ahead = due - this.wallNow();
    if (ahead > 0) await this.sleepWall(Math.min(ahead, 1000));
    else if (-ahead > BEHIND_WALL_MS_MAX) this.reanchor();
  }

  private reanchor(): void {
    this.anchorWall = this.wallNow();
    this.anchorVirtual = this.now();
  }
}

function checkSpeed(speed: number): number {
  if (!(Number.isFinite(speed) && speed >= SPEED_MIN && speed <= SPEED_MAX)) {
    throw new RangeError(`speed ${speed} is outside ${SPEED_MIN} to ${SPEED_MAX} (virtual ms per wall ms)`);
  }
  return speed;
}
