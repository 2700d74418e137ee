import type { InvariantName, Violation } from '../checker/violation.ts';
import type { EmulateOptions } from '../emulator/options.ts';
import { reproduceCommand } from '../emulator/reproduce.ts';
import type { EmulationReport } from '../emulator/run.ts';
import type { DiskFaultItem } from '../faults/disk-fault-plan.ts';
import type { LinkFaultPlan } from '../faults/link-fault-plan.ts';

/** Runs a shrink may spend on one failure unless told otherwise (`--shrink-runs`). */
export const SHRINK_RUNS_DEFAULT = 32;
/** Largest `--shrink-runs`. */
export const SHRINK_RUNS_MAX = 10_000;
/** Failures of one campaign that are shrunk (the first ones, in seed order); the rest keep their original command. */
export const SHRINK_FAILURES_MAX = 5;

/** What shrinking found for one failure. */
export interface ShrinkResult {
  /** The smallest options found that still fail the same way. */
  options: EmulateOptions;
  /** Its reproduce command. */
  reproduce: string;
  /** Its violations. */
  violations: Violation[];
  /** Candidate runs spent (at most the budget). */
  runs: number;
  /** Writes per host, before and after. */
  writes: { from: number; to: number };
  /** Fault items (link and disk) before and after. */
  faults: { from: number; to: number };
}

/** Runs one candidate: its report, or the error it threw (a candidate that cannot run does not fail "the same way"). */
export type RunCandidate = (o: EmulateOptions) => Promise<Pick<EmulationReport, 'violations'>>;

/**
 * Searches for a smaller reproduction of a failed run (docs/simulator.md 8): fewer writes, fewer
 * and shorter faults, lower probabilities, a plainer workload. Delta debugging, greedy: each
 * step proposes a smaller candidate; one that still fails the same way (its violations include
 * the original's first invariant) becomes the new current, else the next step is tried. The
 * search is bounded by `runsMax` candidate runs, never by wall time, so its result is the same
 * on every machine. Every candidate is a pure function of its options, like any run.
 */
export async function shrinkFailure(
  original: EmulateOptions,
  violations: readonly Violation[],
  { run, runsMax = SHRINK_RUNS_DEFAULT }: { run: RunCandidate; runsMax?: number },
): Promise<ShrinkResult | null> {
  const target = violations[0]?.invariant;
  if (target === undefined) return null;
  let current = original;
  let currentViolations = [...violations];
  let runs = 0;
  const fails = async (candidate: EmulateOptions): Promise<boolean> => {
    runs++;
    try {
      const r = await run(candidate);
      if (!sameFailure(r.violations, target)) return false;
      currentViolations = r.violations;
      return true;
    } catch {
      return false;
    }
  };
  for (let progress = true; progress && runs < runsMax; ) {
    progress = false;
    for (const step of steps(current)) {
      if (runs >= runsMax) break;
      if (await fails(step)) {
        current = step;
        progress = true;
        break; // propose again from the smaller one: earlier steps are the biggest cuts
      }
    }
  }
  if (current === original) return { options: original, reproduce: reproduceCommand(original), violations: [...violations], runs, writes: { from: original.writes, to: original.writes }, faults: { from: faultCount(original), to: faultCount(original) } };
  return {
    options: current, reproduce: reproduceCommand(current), violations: currentViolations, runs,
    writes: { from: original.writes, to: current.writes }, faults: { from: faultCount(original), to: faultCount(current) },
  };
}

function sameFailure(violations: readonly Violation[], invariant: InvariantName): boolean {
  return violations.some((v) => v.invariant === invariant);
}

/** Link and disk fault items, drawn partitions counted one each. */
export function faultCount(o: EmulateOptions): number {
  const f = o.faults;
  return f.drop.length + f.corrupt.length + f.duplicate.length + f.reorder.length + f.delay.length + f.partitions.length + f.partitionsDrawn + f.bandwidth.length
    + f.crashes.length + o.diskFaults.length;
}

/**
 * The candidates smaller than `o`, biggest cuts first: half the writes; every fault gone, then
 * half of them, then each one (ddmin over the fault schedule); a plainer workload; then each
 * fault weakened (half the probability, half the partition, one drawn partition fewer, a power
 * cut as a plain crash, half a crash's down time, a lesser slow-down or sector count). Only candidates that differ from `o` are proposed.
 */
export function* steps(o: EmulateOptions): Generator<EmulateOptions> {
  if (o.writes > 1) yield { ...o, writes: Math.max(1, Math.floor(o.writes / 2)) };
  const atoms = faultAtoms(o);
  if (atoms.length > 0) yield without(o, atoms);
  if (atoms.length > 2) {
    const half = Math.ceil(atoms.length / 2);
    yield without(o, atoms.slice(0, half));
    yield without(o, atoms.slice(half));
  }
  if (atoms.length > 1) for (const a of atoms) yield without(o, [a]);
  if (o.bidirectional) yield { ...o, bidirectional: false };
  if (o.lockContentionPerMillion > 0) yield { ...o, lockContentionPerMillion: 0 };
  if (o.readPercent > 0) yield { ...o, readPercent: 0 };
  if (o.queueDepth > 1) yield { ...o, queueDepth: Math.max(1, Math.floor(o.queueDepth / 2)) };
  if (o.writes > 1) yield { ...o, writes: o.writes - Math.max(1, Math.floor(o.writes / 8)) };
  yield* weakened(o);
}

/** One removable fault: which list, and its index (drawn partitions: the whole count). */
type Atom = { list: keyof Pick<LinkFaultPlan, 'drop' | 'corrupt' | 'duplicate' | 'reorder' | 'delay' | 'partitions' | 'bandwidth' | 'crashes'>; index: number } | { list: 'partitionsDrawn' } | { list: 'disk'; index: number };

const FRAME_LISTS = ['drop', 'corrupt', 'duplicate', 'reorder', 'delay'] as const;

function faultAtoms(o: EmulateOptions): Atom[] {
  const out: Atom[] = [];
  for (const list of [...FRAME_LISTS, 'partitions', 'bandwidth', 'crashes'] as const) o.faults[list].forEach((_, index) => out.push({ list, index }));
  if (o.faults.partitionsDrawn > 0) out.push({ list: 'partitionsDrawn' });
  o.diskFaults.forEach((_, index) => out.push({ list: 'disk', index }));
  return out;
}

function without(o: EmulateOptions, atoms: readonly Atom[]): EmulateOptions {
  const gone = (list: string, index: number): boolean => atoms.some((a) => a.list === list && 'index' in a && a.index === index);
  const f = o.faults;
  const faults: LinkFaultPlan = {
    ...f,
    drop: f.drop.filter((_, i) => !gone('drop', i)),
    corrupt: f.corrupt.filter((_, i) => !gone('corrupt', i)),
    duplicate: f.duplicate.filter((_, i) => !gone('duplicate', i)),
    reorder: f.reorder.filter((_, i) => !gone('reorder', i)),
    delay: f.delay.filter((_, i) => !gone('delay', i)),
    partitions: f.partitions.filter((_, i) => !gone('partitions', i)),
    bandwidth: f.bandwidth.filter((_, i) => !gone('bandwidth', i)),
    crashes: f.crashes.filter((_, i) => !gone('crashes', i)),
    partitionsDrawn: atoms.some((a) => a.list === 'partitionsDrawn') ? 0 : f.partitionsDrawn,
  };
  return { ...o, faults, diskFaults: o.diskFaults.filter((_, i) => !gone('disk', i)) };
}

/** Each fault a little weaker, one at a time. */
function* weakened(o: EmulateOptions): Generator<EmulateOptions> {
  const f = o.faults;
  for (const list of FRAME_LISTS) {
    for (let i = 0; i < f[list].length; i++) {
      const item = f[list][i]!;
      if (item.perMillion <= 1) continue;
      const next = [...f[list]];
      next[i] = { ...item, perMillion: Math.floor(item.perMillion / 2) };
      yield { ...o, faults: { ...f, [list]: next } };
    }
  }
  if (f.partitionsDrawn > 1) yield { ...o, faults: { ...f, partitionsDrawn: f.partitionsDrawn - 1 } };
  for (let i = 0; i < f.partitions.length; i++) {
    const p = f.partitions[i]!;
    if (p.forMs <= 1) continue;
    const next = [...f.partitions];
    next[i] = { ...p, forMs: Math.max(1, Math.floor(p.forMs / 2)) };
    yield { ...o, faults: { ...f, partitions: next } };
  }
  // A power cut becomes a plain crash; a crash keeps its controller down half as long.
  for (let i = 0; i < f.crashes.length; i++) {
    const c = f.crashes[i]!;
    if (!c.power && c.downForMs <= 1) continue;
    const next = [...f.crashes];
    next[i] = c.power ? { ...c, power: false } : { ...c, downForMs: Math.max(1, Math.floor(c.downForMs / 2)) };
    yield { ...o, faults: { ...f, crashes: next } };
  }
  for (let i = 0; i < o.diskFaults.length; i++) {
    const d = weaker(o.diskFaults[i]!);
    if (d === null) continue;
    const next = [...o.diskFaults];
    next[i] = d;
    yield { ...o, diskFaults: next };
  }
}

function weaker(d: DiskFaultItem): DiskFaultItem | null {
  switch (d.kind) {
    case 'slow': return d.factor > 2 ? { ...d, factor: Math.max(2, Math.floor(d.factor / 2)) } : null;
    case 'bad':
    case 'corrupt': return d.count > 1 ? { ...d, count: Math.max(1, Math.floor(d.count / 2)) } : null;
    default: return null;
  }
}
