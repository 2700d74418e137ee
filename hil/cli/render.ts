import { describeViolation } from '../checker/violation.ts';
import type { EmulationReport } from '../emulator/run.ts';
import { describeLinkFaultCounters } from '../faults/link-fault-injector.ts';

const ms = (x: number): string => `${x.toFixed(3)} ms`;

/** The readable summary of one emulation run. */
export function renderReport(r: EmulationReport): string {
  const c = r.counters;
  const f = r.faultsInjected;
  const l = r.latencyMs;
  const w = r.writes;
  const lines = [
    `${r.verdict === 'consistent' ? 'CONSISTENT' : 'INCONSISTENT'}: seed ${r.seed}, ${r.mode} mirroring${r.bidirectional ? ' both ways' : ''}, on lock reject: ${r.onLockReject}`,
    `  writes        ${w.acknowledged}/${w.issued} acknowledged${w.issued < w.requested ? ` (${w.requested} requested)` : ''}${w.errors ? `, ${w.errors} failed` : ''}${w.reads ? `, ${w.reads} reads` : ''}`,
    `  throughput    ${r.throughputMBps.toFixed(2)} MB/s mirrored, ${r.hostThroughputMBps.toFixed(2)} MB/s acknowledged to the hosts over ${ms(r.workloadMs)} (fault phase ${ms(r.faultPhaseMs)}, quiescent at ${ms(r.virtualTimeMs)})`,
    `  host latency  mean ${l.meanMs.toFixed(3)} ms, p50 ${l.p50Ms.toFixed(3)}, p99 ${l.p99Ms.toFixed(3)}, max ${l.maxMs.toFixed(3)}${r.bidirectional ? ' (both hosts)' : ''}`,
    `  locks         ${r.locks}${r.batch ? ', batched' : ''}: ${c.locksSent} LOCKs sent, ${c.impliedLocks} implied; ${c.locksGranted} granted by the target (${c.locksGrantedAfterRejection} after a refusal), ${c.locksRejected} refusals; ${c.halts} halts, ${c.resumes} resumes${c.batches ? `; ${c.batches} BATCH frames carried ${c.entriesBatched} entries` : ''}`,
    `  recovery      ${c.rollbacks} rollbacks, ${c.entriesRetransmitted} entries retransmitted, ${c.ackTimeouts} ack timeouts`,
    `  link faults   ${r.faults}: ${describeLinkFaultCounters(f)}`,
    `  disk faults   ${r.diskFaults}`,
    `  initial sync  ${renderSync(r)}`,
    ...r.volumes.map((v, i) => `  ${i === 0 ? 'volumes      ' : '             '} ${v.name} ${v.layout}: ${v.state}, ${v.checked ? `${v.mismatches} mismatches` : 'not checked'}${v.rebuilds ? `, ${v.rebuilds} rebuilds` : ''}${v.unreadableSectors ? `, ${v.unreadableSectors} unreadable sectors` : ''}`),
  ];
  const md = r.metadata;
  if (md.writes > 0) {
    const per = w.acknowledged > 0 ? ` (${(md.bytesWritten / w.acknowledged).toFixed(1)} bytes per host write)` : '';
    lines.push(`  metadata      ${md.writes} device writes of ${md.bytesWritten} bytes${per}, ${md.flushes} flushes, both controllers`);
  }
  if (r.crashes > 0) lines.push(`  crashes       ${r.crashes} (${r.powerCuts} with a power cut); ${w.interrupted} host writes interrupted (never completed)`);
  const rs = r.resync;
  if (rs.runs > 0) {
    const ratio = rs.bytesDivergent > 0 ? ` (${(rs.bytesCopied / rs.bytesDivergent).toFixed(3)} of what differed)` : '';
    lines.push(`  resync        ${rs.runs} runs (${rs.fullRuns} full, ${rs.aborted} aborted): ${rs.bytesCopied} bytes copied${ratio}, ${rs.bytesDivergent} differed at the starts`
      + `${rs.unmeasured ? ` (${rs.unmeasured} starts not measured)` : ''}; ${rs.entriesMatched} of ${rs.entriesCompared} tag entries matched; ${ms(rs.virtualMs)}`);
  }
  if (r.mode === 'async') {
    const cp = r.writeOrderCheckpointsMs;
    lines.push(`  write order   ${cp.length} checkpoints${cp.length > 0 ? `, first at ${ms(cp[0]!)}, last at ${ms(cp[cp.length - 1]!)}` : ''}`);
  }
  for (const [i, [name, l]] of Object.entries(r.linkSupervision).entries()) {
    const detect = l.detectMs ? `, silence at detection ${l.detectMs.min.toFixed(1)}-${l.detectMs.max.toFixed(1)} ms` : '';
    const restarts = l.peerRestarts ? `, ${l.peerRestarts} peer restarts` : '';
    lines.push(`  ${i === 0 ? 'link         ' : '             '} ${name}: ${l.suspicions} suspicions, ${l.downs} downs, ${l.reconnects} reconnects (${l.probationsPassed} probations passed, ${l.probationsRestarted} restarted), down ${ms(l.downMs)}${detect}${restarts}; heartbeats ${(l.heartbeatShare * 100).toFixed(2)}% of bytes sent`);
  }
  lines.push(
    `  charts        ${r.chartEvents} events (${r.chartEventsPerWrite.toFixed(4)} per write)`,
    `  trace         ${r.traceEvents} events, sha256 ${r.traceHash}`,
  );
  for (const n of r.notes) lines.push(`  NOTE          ${n}`);
  for (const v of r.violations) lines.push(`  VIOLATION     ${describeViolation(v)}`);
  if (r.violationsDropped > 0) lines.push(`  ... and ${r.violationsDropped} more violations`);
  lines.push(`  reproduce     ${r.reproduce}`);
  return lines.join('\n');
}

function renderSync(r: EmulationReport): string {
  const s = r.initialSync;
  if (s.bytesCompared === 0) return 'none needed (blank memory volumes)';
  return `${s.bytesCopied} of ${s.bytesCompared} bytes copied to the target before the run (${ms(s.virtualMs)} of disk time)`;
}
