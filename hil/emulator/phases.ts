import type { StorageController } from '../../firmware/controller/storage-controller.ts';
import type { ConsistencyChecker } from '../checker/consistency-checker.ts';
import type { Violation } from '../checker/violation.ts';
import type { LinkFaultInjector } from '../faults/link-fault-injector.ts';
import type { HostWorkload } from '../workload/host-workload.ts';
import { writeOrderCheckpoint, type CheckpointSchedule } from './checkpoints.ts';
import type { EmulateOptions } from './options.ts';
import type { Topology } from './topology.ts';
import type { VolumeSet } from './volumes.ts';

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
  progress: (phase: Phase) => void;
}

/**
 * How a phase ended. `done`: its goal was reached. `capped`: the fault phase reached
 * `faultPhaseMsMax`. `timeout`: healing did not settle within `healMs`. `stuck`: nothing was left
 * on the clock, yet work was outstanding (a lost wake-up).
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
  const timedEndMs = Math.max(ctx.injector.timedFaultsEndMs, volumes.timedFaultsEndMs);
  // Whether the wire carries frames both ways (no black hole): a checkpoint follows each heal.
  const wireUp = (): boolean => !link.isBlackholed('ab') && !link.isBlackholed('ba');
  let linkUp = wireUp();
  const over = (): boolean =>
    failed(topo) || (hosts.every((h) => h.done) && clock.now() >= timedEndMs && topo.source.quiescent() && topo.target.quiescent() && !volumes.pending);
  const pause = (): boolean => over() || wireUp() !== linkUp;
  while (!over()) {
    if (clock.now() >= opts.faultPhaseMsMax) return 'capped';
    volumes.supervise();
    const untilMs = Math.min(opts.faultPhaseMsMax, clock.now() + SLICE_MS, checkpoints?.nextMs ?? Infinity);
    const outcome = await clock.run({ untilMs, until: pause });
    const healed = !linkUp && wireUp();
    linkUp = wireUp();
    if (outcome === 'idle' && !over()) return 'stuck';
    if (checkpoints?.due(clock.now(), healed)) {
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
    const outcome = await clock.run({ untilMs: Math.min(deadline, clock.now() + SLICE_MS), until: settled });
    if (outcome === 'idle' && !settled()) return 'stuck';
    ctx.progress('healing');
  }
  return 'done';
}

/** A controller stopped on a firmware error (the checker has flagged it). */
export function failed(topo: Topology): boolean {
  return topo.source.failure !== null || topo.target.failure !== null;
}

/** The liveness violation for a phase that did not end well, saying what was still going on. */
export function liveness(ctx: PhaseContext, phase: 'faults' | 'healing', outcome: 'timeout' | 'stuck'): Violation {
  const { topo, hosts, volumes, opts } = ctx;
  const why = outcome === 'stuck'
    ? `nothing is scheduled, yet work is outstanding (a lost wake-up) ${phase === 'faults' ? 'during the fault phase' : 'after the faults stopped'}`
    : `not quiescent ${opts.healMs} ms after the faults stopped`;
  const status = [topo.source, topo.target].map((c) => describeStatus(c)).join('; ');
  const busy = hosts.filter((h) => !h.done).length;
  const extra = [busy > 0 ? `${busy} host(s) still waiting for writes` : '', volumes.pending ? 'an array rebuild still running or due' : ''].filter(Boolean);
  // The checker names the place: the oldest unconfirmed rollback entry, else a commit log, else a
  // host still waiting for an acknowledgement.
  return ctx.checker.liveness(
    `${why} (${status}${extra.length > 0 ? `; ${extra.join('; ')}` : ''}); the content checks (mirror-identical, data-intact) and the arrays' final check were skipped: the run did not quiesce, so the copies may still be changing`,
    topo.clock.now(), topo.source.name,
  );
}

function describeStatus(c: StorageController): string {
  return c.status().map((s) => `${c.name}->${s.peer}: ${s.source ? `source ${s.source.state}, rollback ${s.source.rollbackLog.entries} entries` : 'no source'}, target ${s.target.state}, commit ${s.target.commitLog.entries} entries`).join(', ');
}
