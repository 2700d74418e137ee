import type { Violation } from '../checker/violation.ts';
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

export function summarise(r: EmulationReport, wallMs: number): RunSummary {
  return {
    seed: r.seed, mode: r.mode, onLockReject: r.onLockReject, verdict: r.verdict, violations: r.violations,
    faultsInjected: r.faultsInjected, writes: r.writes.acknowledged, traceHash: r.traceHash, reproduce: r.reproduce,
    wallMs: Math.round(wallMs),
  };
}
