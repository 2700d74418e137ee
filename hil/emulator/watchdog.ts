import type { StorageController } from '../../firmware/controller/storage-controller.ts';

/**
 * Whether a planned fault is holding the system back right now (a partition, a controller's down
 * time, a silent cut): stall time does not count then (docs/simulator.md 1). The link fault
 * injector says so itself (`faultActive`).
 */
export interface FaultActivity {
  readonly faultActive: boolean;
}

/** Default `--stall-ms`: virtual time without progress, while work is pending and no fault is active. */
export const STALL_MS_DEFAULT = 30_000;
/** Largest `--stall-ms` accepted: a day of virtual time, like the fault phase's maximum. */
export const STALL_MS_MAX = 86_400_000;

/**
 * The scheduler-event budget of one run (docs/simulator.md 1.2): a base, plus an allowance per
 * host operation (a mirrored write costs about 5 events without faults and a few dozen with
 * heavy ones; 2,000 leaves room for any honest recovery), plus an allowance per millisecond of
 * planned timed faults (timers keep ticking through a long partition). Past it the run is a
 * runaway: it ends with a liveness violation, like a stall.
 */
export const SCHEDULER_EVENTS_BASE = 5_000_000;
export const SCHEDULER_EVENTS_PER_OPERATION = 2_000;
export const SCHEDULER_EVENTS_PER_FAULT_MS = 1_000;

export function schedulerEventsBudget(w: { operations: number; timedFaultsMs: number }): number {
  return SCHEDULER_EVENTS_BASE + SCHEDULER_EVENTS_PER_OPERATION * w.operations + SCHEDULER_EVENTS_PER_FAULT_MS * Math.ceil(w.timedFaultsMs);
}

/** Why the watchdog stopped a run. */
export type WatchdogVerdict = { kind: 'stall'; stalledMs: number; lastProgressMs: number } | { kind: 'events'; events: number; budget: number };

export interface WatchdogOptions {
  stallMs: number;
  eventsBudget: number;
  faults: FaultActivity;
}

/**
 * The progress watchdog (docs/simulator.md 1), in virtual time. The phases sample it after every
 * slice of the clock with a progress count (host writes completed, log entries confirmed: it
 * only ever grows) and whether work is pending. A slice counts towards the stall only when work
 * was pending, no fault was active at either end of it, and the count did not move; any
 * progress starts the count again. It never reads wall-clock time, so its verdict is a pure
 * function of the run.
 */
export class ProgressWatchdog {
  private lastProgress = -1;
  private lastSampleMs = 0;
  private lastProgressMs = 0;
  private stalledMs = 0;
  private faultAtLastSample = false;

  constructor(private readonly opts: WatchdogOptions) {}

  /** Events the clock may still fire before the budget is spent (for `RunLimits.maxEvents`). */
  eventsLeft(eventsRun: number): number {
    return Math.max(0, this.opts.eventsBudget - eventsRun);
  }

  /** Takes a sample at `nowMs`; returns why the run must stop, or null. */
  sample(s: { nowMs: number; progress: number; pending: boolean; eventsRun: number }): WatchdogVerdict | null {
    if (s.eventsRun >= this.opts.eventsBudget) return { kind: 'events', events: s.eventsRun, budget: this.opts.eventsBudget };
    const fault = this.opts.faults.faultActive;
    const elapsed = s.nowMs - this.lastSampleMs;
    if (s.progress !== this.lastProgress || !s.pending) {
      this.lastProgress = s.progress;
      this.lastProgressMs = s.nowMs;
      this.stalledMs = 0;
    } else if (!fault && !this.faultAtLastSample) {
      this.stalledMs += elapsed;
    }
    this.lastSampleMs = s.nowMs;
    this.faultAtLastSample = fault;
    if (this.stalledMs >= this.opts.stallMs) return { kind: 'stall', stalledMs: this.stalledMs, lastProgressMs: this.lastProgressMs };
    return null;
  }
}

/**
 * The link fault injector's own `faultActive` when it has one; otherwise the link being down,
 * which on the simulated link only a partition does. (A temporary adapter until every injector
 * reports its faults itself.)
 */

/** Most `state`/`entries`-like fields named per controller in a liveness message. */
const STATUS_FIELDS_MAX = 64;
/** Depth to which a status object is walked. */
const STATUS_DEPTH_MAX = 4;

/**
 * Every chart state and log depth in `controller.status()`, read generically: any string field
 * named `state` (or ending in `State`) and any numeric `entries`, `waiting` or `openSessions`
 * field, by its path. The status shape belongs to the firmware and may change; this keeps the
 * message truthful whatever it becomes.
 */
export function describeControllerStatus(controller: Pick<StorageController, 'name' | 'status'>): string {
  const out: string[] = [];
  const walk = (value: unknown, path: string, depth: number): void => {
    if (out.length >= STATUS_FIELDS_MAX || depth > STATUS_DEPTH_MAX || value === null || typeof value !== 'object') return;
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      if (key === 'counters') continue;
      const at = path === '' ? key : `${path}.${key}`;
      if (typeof v === 'string' && (key === 'state' || key.endsWith('State'))) out.push(`${at}=${v}`);
      else if (typeof v === 'number' && (key === 'entries' || key === 'waiting' || key === 'openSessions')) out.push(`${at}=${v}`);
      else if (typeof v === 'object') walk(v, at, depth + 1);
    }
  };
  for (const s of controller.status() as unknown[]) {
    const peer = (s as { peer?: unknown }).peer;
    walk(s, `${controller.name}->${typeof peer === 'string' ? peer : '?'}`, 0);
  }
  return out.join(' ');
}
