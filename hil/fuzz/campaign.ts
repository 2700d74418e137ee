import { runBlockCase, type MakeBlockDecoder } from './block-target.ts';
import { runControllerCase } from './controller-target.ts';
import { runDecoderCase, type MakeDecoder } from './decoder-target.ts';
import { FUZZ_TARGETS, Maxima, Tally, type CaseOutcome, type FuzzFailure, type FuzzTargetName } from './outcome.ts';

/**
 * A fuzz run (docs/fuzzing.md 4): cases of each target, interleaved so that every target gets its
 * share of the inputs however the run is cut short. A case is a pure function of (target, seed,
 * case index); which cases a run reaches depends only on its budget, so a run bounded by frames is
 * the same on every machine, and one bounded by minutes still names each failing case exactly.
 */
export interface FuzzRunOptions {
  seed: number;
  targets?: readonly FuzzTargetName[];
  /** Inputs in all, shared by the targets by {@link TARGET_SHARES}; the run stops when each has its share. */
  frames: number;
  /** Wall-clock budget: the run stops at the first case boundary past it (the script's --minutes). */
  deadlineMs?: number;
  /** `now` for the deadline (performance.now by default; tests pass their own). */
  now?: () => number;
  /** Replay one case of one target (the run's other bounds are ignored). */
  only?: { target: FuzzTargetName; caseIndex: number };
  /** Inputs per controller case (default: drawn by the case). A shorter case for `npm test`. */
  controllerCaseFrames?: number;
  /** Deliberately broken decoders, for tests that show the checks failing. */
  makeDecoder?: MakeDecoder;
  makeBlockDecoder?: MakeBlockDecoder;
  /** A replay's round-by-round detail (controller cases). */
  log?: (line: string) => void;
  /** Called after every case. */
  onProgress?: (p: FuzzProgress) => void;
  /** Stop at the first failing case (default true). */
  stopOnFailure?: boolean;
}

/** How the inputs of a run are shared: the decoders are fast, a live controller is not. */
export const TARGET_SHARES: Readonly<Record<FuzzTargetName, number>> = { decoder: 2, block: 1, controller: 1 };

/** Frames a run may be asked for: enough for a day of fuzzing, few enough to count exactly. */
export const FUZZ_FRAMES_MAX = 1_000_000_000;

export interface TargetSummary {
  cases: number;
  frames: number;
  bytes: number;
  /** Wall time spent in this target's cases. */
  elapsedMs: number;
  failures: FuzzFailure[];
  maxima: Maxima;
  coverage: Tally;
  kinds: Tally;
  notes: Tally;
}

export interface FuzzProgress {
  readonly byTarget: ReadonlyMap<FuzzTargetName, TargetSummary>;
  readonly frames: number;
  readonly goal: number;
  readonly elapsedMs: number;
}

export interface FuzzReport extends FuzzProgress {
  readonly seed: number;
  readonly failures: readonly FuzzFailure[];
  /** Why the run ended. */
  readonly ended: 'frames' | 'deadline' | 'failure' | 'replayed';
}

function emptySummary(): TargetSummary {
  return { cases: 0, frames: 0, bytes: 0, elapsedMs: 0, failures: [], maxima: new Maxima(), coverage: new Tally(), kinds: new Tally(), notes: new Tally() };
}

async function runCase(target: FuzzTargetName, seed: number, caseIndex: number, opts: FuzzRunOptions): Promise<CaseOutcome> {
  switch (target) {
    case 'decoder':
      return runDecoderCase(seed, caseIndex, { makeDecoder: opts.makeDecoder });
    case 'block':
      return runBlockCase(seed, caseIndex, { makeDecoder: opts.makeBlockDecoder });
    case 'controller':
      return runControllerCase(seed, caseIndex, { frames: opts.controllerCaseFrames, log: opts.log });
  }
}

function add(s: TargetSummary, o: CaseOutcome, elapsedMs: number): void {
  s.cases++;
  s.frames += o.frames;
  s.bytes += o.bytes;
  s.elapsedMs += elapsedMs;
  s.failures.push(...o.failures);
  s.maxima.merge(o.maxima);
  s.coverage.merge(o.coverage);
  s.kinds.merge(o.kinds);
  s.notes.merge(o.notes);
}

export async function runFuzz(opts: FuzzRunOptions): Promise<FuzzReport> {
  const now = opts.now ?? (() => performance.now());
  const started = now();
  const targets = opts.only ? [opts.only.target] : (opts.targets ?? FUZZ_TARGETS);
  const byTarget = new Map(targets.map((t) => [t, emptySummary()] as const));
  const weight = targets.reduce((n, t) => n + TARGET_SHARES[t], 0);
  const share = new Map(targets.map((t) => [t, Math.ceil((opts.frames * TARGET_SHARES[t]) / weight)] as const));
  const nextCase = new Map<FuzzTargetName, number>(targets.map((t) => [t, 0]));
  const stopOnFailure = opts.stopOnFailure ?? true;
  const report = (ended: FuzzReport['ended']): FuzzReport => {
    const failures = [...byTarget.values()].flatMap((s) => s.failures);
    return { seed: opts.seed, byTarget, frames: total(), goal: opts.frames, elapsedMs: now() - started, failures, ended };
  };
  const total = (): number => [...byTarget.values()].reduce((n, s) => n + s.frames, 0);

  if (opts.only) {
    const t0 = now();
    const o = await runCase(opts.only.target, opts.seed, opts.only.caseIndex, opts);
    add(byTarget.get(opts.only.target)!, o, now() - t0);
    return report('replayed');
  }
  let casesRun = 0;
  for (;;) {
    // The target furthest behind its share goes next: every target keeps pace, however the run ends.
    let target: FuzzTargetName | null = null;
    let behind = Infinity;
    for (const t of targets) {
      const done = byTarget.get(t)!.frames / share.get(t)!;
      if (done < 1 && done < behind) {
        behind = done;
        target = t;
      }
    }
    // Every case feeds at least one input, so this bounds the loop even if some fed none.
    if (target === null || casesRun >= opts.frames + targets.length) return report('frames');
    if (opts.deadlineMs !== undefined && now() - started >= opts.deadlineMs) return report('deadline');
    casesRun++;
    const caseIndex = nextCase.get(target)!;
    nextCase.set(target, caseIndex + 1);
    const t0 = now();
    const o = await runCase(target, opts.seed, caseIndex, opts);
    add(byTarget.get(target)!, o, now() - t0);
    opts.onProgress?.({ byTarget, frames: total(), goal: opts.frames, elapsedMs: now() - started });
    if (o.failures.length > 0 && stopOnFailure) return report('failure');
  }
}
