/** What a fuzz target reports (docs/fuzzing.md 4): failures with what replays them, measured maxima, coverage. */

export type FuzzTargetName = 'decoder' | 'block' | 'controller';
export const FUZZ_TARGETS: readonly FuzzTargetName[] = ['decoder', 'block', 'controller'];

/**
 * Which check failed: an exception escaped (`crash`), a chart stopped on an error
 * (`firmware-error`), a buffer, log or table passed its declared bound (`bound`), the streaming
 * decoder disagreed with the whole-stream reference or with itself under another cut
 * (`differential`), a single input was decoded otherwise than its construction demands
 * (`expectation`), an error was not the typed kind the decoder promises (`error-type`), or the
 * decoder or controller did not work cleanly after the hostile burst (`recovery`), or the controllers
 * spun through a round's scheduler-event budget without virtual time moving on (`liveness`).
 */
export type FuzzInvariant = 'crash' | 'firmware-error' | 'bound' | 'differential' | 'expectation' | 'error-type' | 'liveness' | 'recovery';

export interface FuzzFailure {
  readonly target: FuzzTargetName;
  readonly seed: number;
  readonly caseIndex: number;
  /** The generated input (0-based, within the case) that first showed it, when one did. */
  readonly frame?: number;
  readonly invariant: FuzzInvariant;
  readonly message: string;
}

/** The largest value seen of one bounded quantity, and the bound it was held to. */
export interface Maximum {
  readonly max: number;
  /** The declared bound in the case where the quantity came closest to its bound. */
  readonly bound: number;
  /** Largest max/bound ratio seen (a case's bound may differ from another's). */
  readonly ratio: number;
  readonly unit: string;
}

/** Measured maxima by quantity; `observe` says whether the value kept within its bound. */
export class Maxima {
  readonly byName = new Map<string, Maximum>();

  observe(name: string, value: number, bound: number, unit = 'bytes'): boolean {
    const prev = this.byName.get(name);
    const ratio = bound > 0 ? value / bound : value > 0 ? Infinity : 0;
    if (!prev || ratio > prev.ratio || (ratio === prev.ratio && value > prev.max)) {
      this.byName.set(name, { max: Math.max(value, prev?.max ?? 0), bound, ratio, unit });
    } else if (value > prev.max) {
      this.byName.set(name, { ...prev, max: value });
    }
    return value <= bound;
  }

  merge(other: Maxima): void {
    for (const [name, m] of other.byName) {
      const prev = this.byName.get(name);
      if (!prev || m.ratio > prev.ratio) this.byName.set(name, { ...m, max: Math.max(m.max, prev?.max ?? 0) });
      else if (m.max > prev.max) this.byName.set(name, { ...prev, max: m.max });
    }
  }
}

/** Counts by key (frames by type and flags, inputs by kind). */
export class Tally {
  readonly counts = new Map<string, number>();

  add(key: string, n = 1): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + n);
  }

  merge(other: Tally): void {
    for (const [k, n] of other.counts) this.add(k, n);
  }
}

/** One case's result. */
export interface CaseOutcome {
  readonly frames: number;
  readonly bytes: number;
  readonly failures: FuzzFailure[];
  readonly maxima: Maxima;
  /** Valid frames that decoded, by type and flags. */
  readonly coverage: Tally;
  /** Inputs by how they were made. */
  readonly kinds: Tally;
  /** Target-specific counts worth a line in the summary (frames reaching the controller, ...). */
  readonly notes: Tally;
}

export function emptyOutcome(): CaseOutcome {
  return { frames: 0, bytes: 0, failures: [], maxima: new Maxima(), coverage: new Tally(), kinds: new Tally(), notes: new Tally() };
}

/** The command that replays one case. */
export function replayCommand(target: FuzzTargetName, seed: number, caseIndex: number): string {
  return `npm run fuzz -- --target ${target} --seed ${seed} --case ${caseIndex}`;
}

/** An exception as one line for a report (its stack goes to the detailed replay, not the summary). */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}${'code' in error ? ` ${String((error as { code: unknown }).code)}` : ''}: ${error.message}`;
  return String(error);
}
