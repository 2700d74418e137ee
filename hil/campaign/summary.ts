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
  /** Controller crashes and power cuts the run's plan struck (docs/tag-tables.md, "Crash and power cut in the simulator"). */
  crashes: number;
  powerCuts: number;
  /** The run's resyncs: started, full copies among them, bytes copied, bytes that differed at their starts. */
  resync: ResyncSummary;
  traceHash: string;
  reproduce: string;
  wallMs: number;
}

/** What a campaign keeps of a run's resyncs. */
export interface ResyncSummary {
  runs: number;
  fullRuns: number;
  bytesCopied: number;
  bytesDivergent: number;
}

export function summarise(r: EmulationReport, wallMs: number, planted?: string): RunSummary {
  const { runs, fullRuns, bytesCopied, bytesDivergent } = r.resync;
  return {
    seed: r.seed, mode: r.mode, onLockReject: r.onLockReject, verdict: r.verdict, violations: r.violations,
    faultsInjected: r.faultsInjected, writes: r.writes.acknowledged, crashes: r.crashes, powerCuts: r.powerCuts, resync: { runs, fullRuns, bytesCopied, bytesDivergent },
    traceHash: r.traceHash, reproduce: reproduceWith(r.reproduce, planted),
    wallMs: Math.round(wallMs),
  };
}

/**
 * The reproduce command, honest about bugs planted in the firmware by a test (a testing aid no
 * flag can reach): they follow as a shell comment, so the command still runs, and whoever reads it
 * knows that the run had them.
 */
export function reproduceWith(command: string, planted?: string): string {
  return planted === undefined ? command : `${command} # planted firmware bugs (testing aid, no flag): ${planted}`;
}
