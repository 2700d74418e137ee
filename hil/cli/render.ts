import { describeViolation } from '../checker/violation.ts';
import type { EmulationReport } from '../emulator/run.ts';

/** The readable summary of one emulation run. */
export function renderReport(r: EmulationReport): string {
  const c = r.counters;
  const f = r.faultsInjected;
  const l = r.latencyMs;
  const lines = [
    `${r.verdict === 'consistent' ? 'CONSISTENT' : 'INCONSISTENT'}: seed ${r.seed}, ${r.mode} mirroring${r.bidirectional ? ' both ways' : ''}, on lock reject: ${r.onLockReject}`,
    `  writes        ${r.writes.acknowledged}/${r.writes.issued} acknowledged${r.writes.errors ? `, ${r.writes.errors} failed` : ''}${r.writes.reads ? `, ${r.writes.reads} reads` : ''}`,
    `  throughput    ${r.throughputMBps.toFixed(2)} MB/s over ${r.workloadMs.toFixed(3)} ms of virtual time (quiescent at ${r.virtualTimeMs.toFixed(3)} ms)`,
    `  host latency  mean ${l.meanMs.toFixed(3)} ms, p50 ${l.p50Ms.toFixed(3)}, p99 ${l.p99Ms.toFixed(3)}, max ${l.maxMs.toFixed(3)}`,
    `  locks         ${c.locksSent} sent, ${c.locksGranted} granted, ${c.locksRejected} rejected; ${c.halts} halts, ${c.resumes} resumes`,
    `  recovery      ${c.rollbacks} rollbacks, ${c.entriesRetransmitted} entries retransmitted, ${c.ackTimeouts} ack timeouts`,
    `  faults        ${r.faults}: ${f.framesDropped} dropped, ${f.framesCorrupted} corrupted, ${f.framesDuplicated} duplicated, ${f.framesReordered} reordered, ${f.framesDelayed} delayed, ${f.partitions} partitions`,
    `  charts        ${r.chartEvents} events (${r.chartEventsPerWrite.toFixed(4)} per write)`,
    `  trace         ${r.traceEvents} events, sha256 ${r.traceHash}`,
  ];
  for (const v of r.violations) lines.push(`  VIOLATION     ${describeViolation(v)}`);
  if (r.violationsDropped > 0) lines.push(`  ... and ${r.violationsDropped} more violations`);
  lines.push(`  reproduce     ${r.reproduce}`);
  return lines.join('\n');
}
