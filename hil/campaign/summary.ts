import type { Violation } from '../checker/violation.ts';
import type { EmulateOptions } from '../emulator/options.ts';
import type { EmulationReport } from '../emulator/run.ts';
import type { LinkFaultCounters } from '../faults/link-fault-injector.ts';

/** What a campaign keeps of one run. */
export interface RunSummary {
  seed: number;
  mode: string;
  onLockReject: string;
  verdict: 'consistent' | 'inconsistent';
  violations: Violation[];
  faultsInjected: LinkFaultCounters;
  writes: number;
  traceHash: string;
  reproduce: string;
  wallMs: number;
}

export function summarise(r: EmulationReport, wallMs: number, options?: Pick<EmulateOptions, 'mutations'>): RunSummary {
  return {
    seed: r.seed, mode: r.mode, onLockReject: r.onLockReject, verdict: r.verdict, violations: r.violations,
    faultsInjected: r.faultsInjected, writes: r.writes.acknowledged, traceHash: r.traceHash, reproduce: reproduceWith(r.reproduce, options),
    wallMs: Math.round(wallMs),
  };
}

/**
 * The reproduce command, honest about planted firmware mutations (a testing aid no flag can set):
 * they follow as a shell comment, so the command still runs, and whoever reads it knows that the
 * run had them.
 */
export function reproduceWith(command: string, options?: Pick<EmulateOptions, 'mutations'>): string {
  const m = options?.mutations ?? [];
  return m.length === 0 ? command : `${command} # planted firmware mutations (testing aid, no flag): ${m.join(',')}`;
}
