import type { ConsistencyChecker } from '../checker/consistency-checker.ts';
import type { Violation } from '../checker/violation.ts';
import type { LinkFaultInjector } from '../faults/link-fault-injector.ts';
import type { HostWorkload } from '../workload/host-workload.ts';
import { writeOrderCheckpoint, type CheckpointSchedule } from './checkpoints.ts';
import type { EmulateOptions } from './options.ts';
import type { CrashSchedule } from './crashes.ts';
import type { RecoveryWatch } from './recovery-watch.ts';
import type { Topology } from './topology.ts';
import type { VolumeSet } from './volumes.ts';
import { describeControllerStatus, ProgressWatchdog, schedulerEventsBudget, STALL_MS_DEFAULT, type WatchdogVerdict } from './watchdog.ts';

/** The clock runs in slices this long (virtual ms) between progress reports and supervision. */
const SLICE_MS = 5;

export type Phase = 'faults' | 'healing' | 'checking';

/** What the phases of a run share. */
export interface PhaseContext {
  topo: Topology;
  hosts: readonly HostWorkload[];
  injector: LinkFaultInjector;
  volumes: VolumeSet;
  opts: EmulateOptions;
  checker: ConsistencyChecker;
  /** Async mode: when to check write-order fidelity; null otherwise. */
  checkpoints: CheckpointSchedule | null;
  /** The run's crashes and power cuts (none: an empty schedule). */
  crashes?: CrashSchedule;
  /** Whether the targets may be held to the prefix rule now (after a crash or during a resync they may not); absent: always. */
  recovery?: RecoveryWatch;
  progress: (phase: Phase) => void;
  /** The progress watchdog (docs/simulator.md 1); made on first use from `opts` when not given. */
  watchdog?: RunWatchdog;
}

/** The watchdog of one run and, once it fired, why. */
export interface RunWatchdog {
  readonly dog: ProgressWatchdog;
  verdict: WatchdogVerdict | null;
}

/** The run's watchdog: `--stall-ms` and a scheduler-event budget scaled from the workload. */
export function watchdogOf(ctx: PhaseContext): RunWatchdog {
  if (ctx.watchdog) return ctx.watchdog;
  const { opts, hosts, injector } = ctx;
  // Reads come on top of writes: a host issues about writes / (1 - readShare) operations.
  const operations = Math.ceil((opts.writes * hosts.length * 100) / (100 - opts.readPercent));
  const timedFaultsMs = timedFaultsEndMs(ctx);
  const dog = new ProgressWatchdog({
    stallMs: opts.stallMs ?? STALL_MS_DEFAULT,
    eventsBudget: opts.schedulerEventsMax ?? schedulerEventsBudget({ operations, timedFaultsMs }),
    // A planned fault holds the system back, and so does the recovery from one the link supervisor
    // is still going through (a link down, in probation, reconnecting): neither is a stall. A
    // supervisor that never brings the link back is caught by the healing phase's bound instead.
    // A crashed controller's down time is a planned fault too (docs/simulator.md 1.1).
    faults: { get faultActive() { return injector.faultActive || ctx.crashes?.down === true || !linksUp(ctx.topo); } },
  });
  return (ctx.watchdog = { dog, verdict: null });
}

/** When the run's last timed fault happens: link faults, member failures and power cuts, crashed controllers' restarts. */
function timedFaultsEndMs(ctx: PhaseContext): number {
  return Math.max(ctx.injector.timedFaultsEndMs, ctx.volumes.timedFaultsEndMs, ctx.crashes?.timedFaultsEndMs ?? 0);
}

/**
 * One slice of the clock under the watchdog, until `untilMs` or `until()`; `pending()` says whether
 * the firmware has work left. `stopped`: the watchdog ended the run; `idle`: nothing was scheduled.
 */
async function watchedSlice(ctx: PhaseContext, s: { untilMs: number; until: () => boolean; pending: () => boolean }): Promise<'idle' | 'ok' | 'stopped'> {
  const { untilMs, until, pending } = s;
  const w = watchdogOf(ctx);
  const { clock } = ctx.topo;
  const outcome = await clock.run({ untilMs, until, maxEvents: w.dog.eventsLeft(clock.eventsRun) });
  w.verdict = w.dog.sample({ nowMs: clock.now(), progress: ctx.checker.progress, pending: pending(), eventsRun: clock.eventsRun });
  if (w.verdict !== null) return 'stopped';
  return outcome === 'idle' ? 'idle' : 'ok';
}

/**
 * How a phase ended. `done`: its goal was reached. `capped`: the fault phase reached
 * `faultPhaseMsMax`. `timeout`: healing did not settle within `healMs`. `stuck`: nothing was left
 * on the clock, yet work was outstanding (a lost wake-up), or the watchdog stopped the run (no
 * progress for `--stall-ms`, or the event budget spent: docs/simulator.md 1).
 */
export type PhaseOutcome = 'done' | 'capped' | 'timeout' | 'stuck';

/**
 * The fault phase: the hosts work and the faults strike, until the hosts are done, the mirrors
 * have caught up, every timed fault (partition, bandwidth change, member failure) has happened and
 * no array has a rebuild running or due; or until `faultPhaseMsMax`. In async mode the copies are
 * checked for write-order fidelity on the way (see {@link CheckpointSchedule}).
 */
export async function faultPhase(ctx: PhaseContext): Promise<PhaseOutcome> {
  const { topo, hosts, volumes, opts, checkpoints } = ctx;
  const { clock, link } = topo;
  const timedEndMs = timedFaultsEndMs(ctx);
  // Whether the wire carries frames both ways (no black hole): a checkpoint follows each heal.
  const wireUp = (): boolean => !link.isBlackholed('ab') && !link.isBlackholed('ba');
  let linkUp = wireUp();
  const over = (): boolean =>
    failed(topo) || (hosts.every((h) => h.done) && clock.now() >= timedEndMs && topo.source.quiescent() && topo.target.quiescent() && !volumes.pending);
  const pause = (): boolean => over() || wireUp() !== linkUp;
  // The firmware's work only: an array rebuild is the disks' own and may rightly take long.
  const pending = (): boolean => !hosts.every((h) => h.done) || !topo.source.quiescent() || !topo.target.quiescent();
  while (!over()) {
    if (clock.now() >= opts.faultPhaseMsMax) return 'capped';
    volumes.supervise();
    // A checkpoint already due waits for recovery (below): the clock must move on meanwhile.
    const checkpointMs = checkpoints?.nextMs ?? Infinity;
    const untilMs = Math.min(opts.faultPhaseMsMax, clock.now() + SLICE_MS, checkpointMs > clock.now() ? checkpointMs : Infinity);
    const outcome = await watchedSlice(ctx, { untilMs, until: pause, pending });
    if (outcome === 'stopped') return 'stuck';
    const healed = !linkUp && wireUp();
    linkUp = wireUp();
    if (outcome === 'idle' && !over()) return 'stuck';
    // After a crash, or while a resync copies, a target is no prefix until it has recovered
    // (docs/tag-tables.md, "What the checker checks"); the checkpoint waits, and one follows recovery.
    const recovered = ctx.recovery?.recovered() === true;
    if (checkpoints?.due(clock.now(), healed || recovered) && ctx.recovery?.holds() !== false) {
      writeOrderCheckpoint(topo.pairs, ctx.checker, clock.now());
      checkpoints.taken(clock.now());
    }
    ctx.progress('faults');
  }
  return 'done';
}

/**
 * Faults have stopped: the hosts must finish and everything drain (every log empty, every lock
 * session closed, every rebuild done) within `healMs`, or the run is not live.
 */
export async function healingPhase(ctx: PhaseContext): Promise<PhaseOutcome> {
  const { topo, hosts, volumes, opts } = ctx;
  const { clock } = topo;
  const deadline = clock.now() + opts.healMs;
  const settled = (): boolean => failed(topo) || (hosts.every((h) => h.done) && topo.source.settled() && topo.target.settled() && !volumes.pending);
  while (!settled()) {
    if (clock.now() >= deadline) return 'timeout';
    volumes.supervise();
    const firmwareBusy = (): boolean => !(hosts.every((h) => h.done) && topo.source.settled() && topo.target.settled());
    const outcome = await watchedSlice(ctx, { untilMs: Math.min(deadline, clock.now() + SLICE_MS), until: settled, pending: firmwareBusy });
    if (outcome === 'stopped') return 'stuck';
    if (outcome === 'idle' && !settled()) return 'stuck';
    ctx.progress('healing');
  }
  return 'done';
}

/** Every controller's link to every peer is up. */
function linksUp(topo: Topology): boolean {
  for (const c of [topo.source, topo.target]) for (const p of c.status()) if (p.link.state !== 'up') return false;
  return true;
}

/** A controller stopped on a firmware error (the checker has flagged it). */
export function failed(topo: Topology): boolean {
  return topo.source.failure !== null || topo.target.failure !== null;
}

/** The liveness violation for a phase that did not end well, saying what was still going on. */
export function liveness(ctx: PhaseContext, phase: 'faults' | 'healing', outcome: 'timeout' | 'stuck'): Violation {
  const { topo, hosts, volumes, opts } = ctx;
  const when = phase === 'faults' ? 'during the fault phase' : 'after the faults stopped';
  const verdict = ctx.watchdog?.verdict ?? null;
  const why = verdict !== null
    ? watchdogWhy(verdict, when)
    : outcome === 'stuck'
      ? `nothing is scheduled, yet work is outstanding (a lost wake-up) ${when}`
      : `not quiescent ${opts.healMs} ms after the faults stopped`;
  const frames = ctx.checker.lastFramesSent();
  const status = [topo.source, topo.target].map((c) => describeControllerStatus(c)).join('; ') + `; last frames sent: ${frames.length > 0 ? frames.join(', ') : 'none'}`;
  const busy = hosts.filter((h) => !h.done).length;
  const extra = [busy > 0 ? `${busy} host(s) still waiting for writes` : '', volumes.pending ? 'an array rebuild still running or due' : ''].filter(Boolean);
  // The checker names the place: the oldest unconfirmed rollback entry, else a commit log, else a
  // host still waiting for an acknowledgement.
  return ctx.checker.liveness(
    `${why} (${status}${extra.length > 0 ? `; ${extra.join('; ')}` : ''}); the content checks (mirror-identical, data-intact) and the arrays' final check were skipped: the run did not quiesce, so the copies may still be changing`,
    topo.clock.now(), topo.source.name,
  );
}

function watchdogWhy(v: WatchdogVerdict, when: string): string {
  if (v.kind === 'events') {
    return `the run spent its budget of ${v.budget} scheduler events ${when} (a runaway: events that move virtual time little or not at all; the budget scales with --writes, see docs/simulator.md 1.2)`;
  }
  return `no host write completed and no log entry was confirmed for ${v.stalledMs} virtual ms while work was pending and no fault was active (--stall-ms), since ${v.lastProgressMs} ms, ${when}`;
}
