import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Violation } from '../checker/violation.ts';
import type { EmulateOptions } from '../emulator/options.ts';
import { reproduceCommand } from '../emulator/reproduce.ts';
import { runEmulation } from '../emulator/run.ts';
import { formatLinkFaults } from '../faults/link-fault-plan.ts';
import { newLinkFaultCounters, type LinkFaultCounters } from '../faults/link-fault-injector.ts';
import type { Logger } from '../log.ts';
import { drawRun, type CampaignSettings } from './draw-run.ts';
import { SHRINK_FAILURES_MAX, SHRINK_RUNS_DEFAULT, shrinkFailure } from './shrink.ts';
import { reproduceWith, type ResyncSummary, type RunSummary } from './summary.ts';
import type { WorkerMessage, WorkerReply, WorkerRequest } from './worker.ts';

/** Worker threads that may die and be replaced over one campaign; then the remaining seeds are not run. */
export const WORKER_RESTARTS_MAX = 16;

/** Testing aids, never set by the CLI: they plant failures so that tests can watch a campaign report them. */
export interface CampaignTestingAids {
  /** Seeds whose worker thread dies of an uncaught exception instead of running them. */
  crashThreadSeeds?: readonly number[];
  /** Options laid over these seeds' drawn ones (an impossible one makes the run throw). */
  overrides?: Readonly<Record<number, Partial<EmulateOptions>>>;
  /**
   * A module (a file URL from a test) that every worker thread imports before running: it plants
   * deliberate firmware bugs, so that tests can watch a campaign find and report failures. The
   * label names them in reproduce commands (as a trailing shell comment, since no flag can set them).
   */
  plant?: { module: string; label: string };
  /** Seeds whose worker thread spins for ever instead of running them (a hang no watchdog in the run can see). */
  hangThreadSeeds?: readonly number[];
}

/**
 * A run's wall-clock budget unless `--run-budget-s` says otherwise: a minute, plus 2 ms per write
 * (both hosts of a bidirectional run counted), about ten times what a run with heavy faults takes
 * on the development machine. It is the last line of defence: the watchdog inside the run ends
 * stalls and runaways in virtual time, so a run over this budget is a bug in mirrorlab or a
 * machine far slower than expected, and the worker thread is terminated and replaced.
 */
export function runWallBudgetMs(writes: number): number {
  return 60_000 + 2 * 2 * writes;
}

export interface CampaignOptions extends CampaignSettings {
  seeds: number;
  from: number;
  /** Worker threads (default: one per core). */
  workers?: number;
  /** Worker threads that may die and be replaced (default {@link WORKER_RESTARTS_MAX}). */
  workerRestartsMax?: number;
  /** Search for a smaller reproduction of each inconsistent run (default true; `--no-shrink`). */
  shrink?: boolean;
  /** Candidate runs the search may spend per failure (default {@link SHRINK_RUNS_DEFAULT}; `--shrink-runs`). */
  shrinkRuns?: number;
  /** Wall-clock budget of one run (default {@link runWallBudgetMs}); over it a run is a `stuck` failure. */
  runBudgetMs?: number;
  /** Progress milestones at info, each failure at warn (a child logger: `log.child({ module: 'campaign' })`). */
  log?: Logger;
  testing?: CampaignTestingAids;
}

/** A seed that failed: its run was inconsistent, or it crashed (threw, or killed its worker thread). */
export interface CampaignFailure {
  seed: number;
  mode: string;
  onLockReject: string;
  verdict: 'inconsistent' | 'crashed' | 'stuck';
  violations: Violation[];
  /** What the crash said (crashed runs), or how long the run had been going (stuck runs). */
  error?: string;
  /** The one command that runs this seed again. */
  reproduce: string;
  /** The run's trace hash (inconsistent runs only), which running `reproduce` gives again. */
  traceHash?: string;
  /** The smallest reproduction shrinking found (inconsistent runs, when shrinking is on). */
  shrunk?: ShrunkFailure;
}

/** What shrinking found for one failure (docs/simulator.md 8). */
export interface ShrunkFailure {
  reproduce: string;
  /** Its first violations. */
  violations: Violation[];
  runs: number;
  writes: { from: number; to: number };
  faults: { from: number; to: number };
}

export interface CampaignResult {
  seeds: number;
  from: number;
  /** Seeds that ran to a verdict. */
  runs: number;
  consistent: number;
  /** Every inconsistent or crashed seed, in seed order. */
  failures: CampaignFailure[];
  /** How many of the failures are crashes (a bug in mirrorlab, not a verdict). */
  crashed: number;
  /** How many runs went over their wall-clock budget (their worker thread was replaced). */
  stuck: number;
  /** Seeds never run, because more worker threads died than `workerRestartsMax` allows. */
  notRun: number;
  workerRestarts: number;
  faultsInjected: LinkFaultCounters;
  byMode: Record<string, number>;
  writes: number;
  /** Crashes and power cuts struck, and the resyncs that followed them and the partitions, over every run. */
  crashes: number;
  powerCuts: number;
  resync: ResyncSummary;
  wallSeconds: number;
}

/** A seed whose run threw or killed whatever ran it, with the command that runs it again. */
export function crashFailure(options: EmulateOptions, error: string, planted?: string): CampaignFailure {
  return { seed: options.seed, mode: options.mode, onLockReject: options.onLockReject, verdict: 'crashed', violations: [], error, reproduce: reproduceWith(reproduceCommand(options), planted) };
}

/** What the worker slots share: the seed queue, the restart budget, and where outcomes go. */
interface Shared {
  queue: number[];
  restartsLeft: number;
  restarts: number;
  runBudgetMs: number;
  optionsFor(seed: number): EmulateOptions;
  crashThread(seed: number): boolean;
  plant: { module: string; label: string } | undefined;
  hangThread(seed: number): boolean;
  onReply(reply: WorkerReply, options: EmulateOptions): void;
  onCrash(options: EmulateOptions, error: string): void;
  onStuck(options: EmulateOptions): void;
}

/**
 * Run seeds `from .. from + seeds - 1`, each with its own drawn configuration (swarm testing), on
 * worker threads (one per core by default). Results come back in any order and are reported in
 * seed order; every failure, a crash included, carries its seed and the one command that
 * reproduces it. A run that throws is recorded as a crash of its seed; a worker thread that dies
 * likewise, and a fresh one takes its place, at most `workerRestartsMax` times per campaign.
 */
export async function runCampaign(opts: CampaignOptions, onRun?: (s: RunSummary, done: number) => void): Promise<CampaignResult> {
  return (await runCampaignOutcome(opts, onRun)).result;
}

/**
 * A campaign's result with every seed's summary beside it (the result keeps only the failures):
 * what the history records (docs/queue.md 5). Local and queued campaigns both produce one.
 */
export interface CampaignOutcome {
  result: CampaignResult;
  /** Every seed that ran to a verdict, in seed order. */
  runs: RunSummary[];
}

/** {@link runCampaign}, keeping every seed's summary. */
export async function runCampaignOutcome(opts: CampaignOptions, onRun?: (s: RunSummary, done: number) => void): Promise<CampaignOutcome> {
  const started = performance.now();
  const log = opts.log;
  const workers = Math.max(1, Math.min(opts.workers ?? availableParallelism(), opts.seeds));
  log?.info({ seeds: opts.seeds, from: opts.from, workers, writes: opts.writes, faults: opts.faults ? formatLinkFaults(opts.faults) : 'drawn per seed' }, 'campaign starting');
  const summaries: RunSummary[] = [];
  const crashes: CampaignFailure[] = [];
  const done = (): number => summaries.length + crashes.length;
  const crashThreadSeeds = new Set(opts.testing?.crashThreadSeeds ?? []);
  const hangThreadSeeds = new Set(opts.testing?.hangThreadSeeds ?? []);
  const runBudgetMs = opts.runBudgetMs ?? runWallBudgetMs(opts.writes);
  const shared: Shared = {
    queue: Array.from({ length: opts.seeds }, (_, i) => opts.from + i),
    restartsLeft: opts.workerRestartsMax ?? WORKER_RESTARTS_MAX,
    restarts: 0,
    runBudgetMs,
    optionsFor: (seed) => ({ ...drawRun(seed, opts), ...opts.testing?.overrides?.[seed] }),
    crashThread: (seed) => crashThreadSeeds.has(seed),
    plant: opts.testing?.plant,
    hangThread: (seed) => hangThreadSeeds.has(seed),
    onReply: (reply, options) => {
      if ('error' in reply) return shared.onCrash(options, reply.error);
      summaries.push(reply.summary);
      const s = reply.summary;
      if (s.verdict !== 'consistent') log?.warn({ seed: s.seed, mode: s.mode, onLockReject: s.onLockReject, invariants: [...new Set(s.violations.map((v) => v.invariant))], reproduce: s.reproduce }, 'inconsistent run');
      onRun?.(s, done());
    },
    onCrash: (options, error) => {
      const failure = crashFailure(options, error, shared.plant?.label);
      crashes.push(failure);
      log?.warn({ seed: failure.seed, error: error.split('\n')[0], reproduce: failure.reproduce }, 'run crashed');
    },
    onStuck: (options) => {
      const error = `still running after its wall-clock budget of ${runBudgetMs} ms (--run-budget-s); its worker thread was terminated and replaced`;
      const failure: CampaignFailure = { seed: options.seed, mode: options.mode, onLockReject: options.onLockReject, verdict: 'stuck', violations: [], error, reproduce: reproduceWith(reproduceCommand(options), shared.plant?.label) };
      crashes.push(failure);
      log?.warn({ seed: failure.seed, budgetMs: runBudgetMs, reproduce: failure.reproduce }, 'run stuck');
    },
  };
  await Promise.all(Array.from({ length: workers }, () => drive(shared, log)));
  const result = campaignResult(opts, summaries, crashes, { notRun: shared.queue.length, workerRestarts: shared.restarts, wallSeconds: (performance.now() - started) / 1000 });
  if (opts.shrink !== false) await shrinkFailures(result, shared, opts, log);
  result.wallSeconds = Math.round(((performance.now() - started) / 1000) * 10) / 10;
  const verdict = result.crashed > 0 || result.notRun > 0 ? 'crashed' : result.failures.length > 0 ? 'inconsistent' : 'consistent';
  log?.info({ verdict, runs: result.runs, failures: result.failures.length, crashed: result.crashed, stuck: result.stuck, notRun: result.notRun, workerRestarts: result.workerRestarts, wallSeconds: result.wallSeconds }, 'campaign finished');
  return { result, runs: [...summaries].sort((a, b) => a.seed - b.seed) };
}

/**
 * Shrinks the first {@link SHRINK_FAILURES_MAX} inconsistent runs, one after another, in this
 * thread: each candidate is an ordinary run, bounded by its own watchdog, and the search by a
 * number of runs.
 */
async function shrinkFailures(result: CampaignResult, shared: Shared, opts: CampaignOptions, log?: Logger): Promise<void> {
  const runs = opts.shrinkRuns ?? SHRINK_RUNS_DEFAULT;
  for (const failure of result.failures.filter((f) => f.verdict === 'inconsistent').slice(0, SHRINK_FAILURES_MAX)) {
    const options = shared.optionsFor(failure.seed);
    // Bugs planted by a test live in the worker threads' firmware: their candidates run in one too.
    const worker = shared.plant ? new RunWorker(shared.plant) : null;
    let found;
    try {
      found = await shrinkFailure(options, failure.violations, { run: (o) => (worker ? worker.run(o) : runEmulation(o)), runsMax: runs });
    } finally {
      await worker?.close();
    }
    if (found === null) continue;
    failure.shrunk = {
      reproduce: reproduceWith(found.reproduce, shared.plant?.label), violations: found.violations.slice(0, 3), runs: found.runs, writes: found.writes, faults: found.faults,
    };
    log?.info({ seed: failure.seed, runs: found.runs, writes: found.writes, faults: found.faults, reproduce: failure.shrunk.reproduce }, 'failure shrunk');
  }
}

/** One worker thread that runs one emulation at a time for whoever asks (shrinking with planted bugs). */
class RunWorker {
  private readonly worker = new Worker(new URL('./worker-entry.mjs', import.meta.url));
  private pending: { resolve(r: RunSummary): void; reject(e: Error): void } | null = null;
  constructor(private readonly plant: { module: string; label: string }) {
    this.worker.on('message', (m: WorkerMessage) => {
      if ('started' in m || this.pending === null) return;
      const p = this.pending;
      this.pending = null;
      if ('error' in m) p.reject(new Error(m.error));
      else p.resolve(m.summary);
    });
    this.worker.on('error', (e) => this.pending?.reject(e));
  }

  run(options: EmulateOptions): Promise<RunSummary> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage({ seed: options.seed, options, plant: this.plant } satisfies WorkerRequest);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** One worker slot: a thread taking seeds from the shared queue until it is empty, replaced when it dies while the budget lasts. */
async function drive(shared: Shared, log?: Logger): Promise<void> {
  while (shared.queue.length > 0) {
    const ended = await runWorker(shared);
    if (ended === 'drained') return;
    // A stuck run's thread was terminated on purpose: replacing it costs no restart (each stuck
    // run is bounded by its budget, so the campaign stays bounded).
    if (ended === 'stuck') continue;
    if (shared.restartsLeft <= 0) {
      log?.warn({ restarts: shared.restarts, seedsLeft: shared.queue.length }, 'worker thread died and the restart budget is spent; this slot stops');
      return;
    }
    shared.restartsLeft--;
    shared.restarts++;
    log?.warn({ restarts: shared.restarts }, 'worker thread died; starting a fresh one');
  }
}

/**
 * One worker thread's life: seeds out, replies in, until the queue is empty ('drained') or the
 * thread dies ('crashed': the seed it was running is recorded as a crash). A thread dies by an
 * uncaught exception ('error') or by exiting while it had a seed.
 */
function runWorker(shared: Shared): Promise<'drained' | 'crashed' | 'stuck'> {
  const worker = new Worker(new URL('./worker-entry.mjs', import.meta.url));
  let inflight: EmulateOptions | null = null;
  let over = false;
  let budget: ReturnType<typeof setTimeout> | null = null;
  const disarm = (): void => {
    if (budget !== null) clearTimeout(budget);
    budget = null;
  };
  return new Promise((resolve) => {
    const end = (how: 'crashed' | 'stuck', why: string): void => {
      if (over) return;
      over = true;
      disarm();
      if (inflight && how === 'stuck') shared.onStuck(inflight);
      else if (inflight) shared.onCrash(inflight, why);
      inflight = null;
      void worker.terminate();
      resolve(how);
    };
    const crash = (why: string): void => end('crashed', why);
    const next = (): void => {
      const seed = shared.queue.shift();
      inflight = seed === undefined ? null : shared.optionsFor(seed);
      const msg: WorkerRequest = inflight === null
        ? { stop: true }
        : { seed: inflight.seed, options: inflight, crashThread: shared.crashThread(inflight.seed), hangThread: shared.hangThread(inflight.seed), announceStart: true, plant: shared.plant };
      disarm();
      worker.postMessage(msg);
    };
    worker.on('message', (reply: WorkerMessage) => {
      if (over || inflight === null) return;
      if ('started' in reply) {
        budget = setTimeout(() => end('stuck', ''), shared.runBudgetMs);
        return;
      }
      disarm();
      shared.onReply(reply, inflight);
      next();
    });
    worker.on('error', (err) => crash(`worker thread died: ${err.stack ?? err.message}`));
    worker.on('exit', (code) => {
      if (inflight !== null) crash(`worker thread exited with status ${code} while running seed ${inflight.seed}`);
      else if (!over) {
        over = true;
        resolve('drained');
      }
    });
    next();
  });
}

/** What a campaign's result says beyond its runs: seeds left unrun, worker restarts, wall time (s). */
export interface CampaignTally {
  notRun: number;
  workerRestarts: number;
  wallSeconds: number;
}

/**
 * The campaign's result from its runs and crashes, in any order: one summary for local and queued
 * campaigns alike, so both print the same report and the same `--json` document.
 */
export function campaignResult(opts: Pick<CampaignOptions, 'seeds' | 'from'>, runs: readonly RunSummary[], crashes: readonly CampaignFailure[], tally: CampaignTally): CampaignResult {
  const faults = newLinkFaultCounters();
  const byMode: Record<string, number> = {};
  // In seed order, so that `byMode` lists its keys the same way however the runs finished.
  for (const r of [...runs].sort((a, b) => a.seed - b.seed)) {
    for (const k of Object.keys(faults) as (keyof LinkFaultCounters)[]) faults[k] += r.faultsInjected[k];
    const key = `${r.mode}/${r.onLockReject}`;
    byMode[key] = (byMode[key] ?? 0) + 1;
  }
  const inconsistent = runs.filter((r) => r.verdict !== 'consistent').map((r): CampaignFailure => ({
    seed: r.seed, mode: r.mode, onLockReject: r.onLockReject, verdict: 'inconsistent', violations: r.violations, reproduce: r.reproduce, traceHash: r.traceHash,
  }));
  const failures = [...inconsistent, ...crashes].sort((a, b) => a.seed - b.seed);
  const add = (f: (r: RunSummary) => number): number => runs.reduce((n, r) => n + f(r), 0);
  const resync: ResyncSummary = {
    runs: add((r) => r.resync.runs), fullRuns: add((r) => r.resync.fullRuns), bytesCopied: add((r) => r.resync.bytesCopied), bytesDivergent: add((r) => r.resync.bytesDivergent),
  };
  return {
    seeds: opts.seeds, from: opts.from, runs: runs.length, consistent: runs.length - inconsistent.length, failures,
    crashed: crashes.filter((c) => c.verdict === 'crashed').length, stuck: crashes.filter((c) => c.verdict === 'stuck').length,
    notRun: tally.notRun, workerRestarts: tally.workerRestarts,
    faultsInjected: faults, byMode, writes: add((r) => r.writes), crashes: add((r) => r.crashes), powerCuts: add((r) => r.powerCuts), resync,
    wallSeconds: Math.round(tally.wallSeconds * 10) / 10,
  };
}
