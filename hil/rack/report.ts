import { describeViolation, type Violation } from '../checker/violation.ts';
import type { LinkFaultCounters } from '../faults/link-fault-injector.ts';
import type { ProxyStats } from '../faults/proxy/index.ts';
import type { ControllerExit } from '../../host/runtime/spawn.ts';
import type { LatencySummary } from '../workload/latency.ts';
import type { ImageDigest } from './judge.ts';

/** One controller process of the rack, across its restarts. */
export interface RackProcessReport {
  name: string;
  /** Every incarnation's pid and session id, in order (a restart adds one of each). */
  pids: number[];
  sessions: number[];
  restarts: number;
  /** How each incarnation ended: SIGKILL for a killed one, code 0 for a clean stop. */
  exits: ControllerExit[];
}

/**
 * What `rack run --json` prints (docs/rack.md 4): the fields of `emulate --json` that apply to a live
 * run (seed, mode, faults, verdict, violations, writes, latency, fault counters, reproduce) and the
 * rack's own (link, kill, processes and sessions, restarts, image digests, telemetry, the proxy's stats).
 */
export interface RackReport {
  seed: number;
  link: 'tcp' | 'serial';
  mode: string;
  onLockReject: string;
  bidirectional: boolean;
  /** The fault plan in `--faults` syntax, and whether it was drawn from the seed. */
  faults: string;
  faultsDrawn: boolean;
  durationS: number;
  kill: { side: 'source' | 'target'; atS: number } | null;
  verdict: 'consistent' | 'inconsistent';
  violations: Violation[];
  violationsDropped: number;
  notes: string[];
  /** All hosts together; `uncertain`: writes whose outcome the host never learned (in flight at a kill) or that failed. */
  writes: { requested: number | null; issued: number; acknowledged: number; errors: number; uncertain: number };
  /** Host write latency, wall clock, all hosts together. */
  latencyMs: LatencySummary;
  faultsInjected: LinkFaultCounters;
  /** `faultsInjected` in words (describeLinkFaultCounters). */
  faultsDescribed: string;
  proxy: ProxyStats | null;
  processes: RackProcessReport[];
  restarts: number;
  images: ImageDigest[];
  telemetry: { events: number; edges: number; lostAtKill: number; ackedUnrecorded: number };
  /** Whether the pair drained within the bound after the heal. */
  drained: boolean;
  wallMs: number;
  reproduce: string;
  /** Where the run's files are, when they were kept (a failure, or --keep); null once removed. */
  dir: string | null;
}

/** The report for a terminal: a verdict line, what ran, what was injected, the violations, the reproduce line. */
export function renderRackReport(r: RackReport): string {
  const lines: string[] = [];
  const kill = r.kill === null ? 'no kill' : `${r.kill.side} killed at ${r.kill.atS} s`;
  const both = r.bidirectional ? ', bidirectional' : '';
  lines.push(`rack run: ${r.verdict.toUpperCase()} (seed ${r.seed}, ${r.link}, ${r.mode}${both}, ${r.durationS} s, ${kill})`);
  lines.push(`  faults: ${r.faults || 'none'}${r.faultsDrawn ? ' (drawn from the seed)' : ''}`);
  lines.push(`  injected: ${r.faultsDescribed}`);
  const w = r.writes;
  lines.push(`  writes: ${w.acknowledged} acknowledged of ${w.issued} issued, ${w.errors} failed, ${w.uncertain} uncertain; `
    + `latency p50 ${r.latencyMs.p50Ms.toFixed(2)} ms, p99 ${r.latencyMs.p99Ms.toFixed(2)} ms`);
  for (const p of r.processes) {
    lines.push(`  ${p.name}: sessions ${p.sessions.join(', ')}; exits ${p.exits.map((e) => e.signal ?? `code ${e.code}`).join(', ')}`);
  }
  const cut = r.telemetry.lostAtKill > 0 ? `, ${r.telemetry.lostAtKill} lines cut by the kill` : '';
  lines.push(`  telemetry: ${r.telemetry.events} events merged, ${r.telemetry.edges} send->receive edges${cut}`
    + `${r.telemetry.ackedUnrecorded > 0 ? `, ${r.telemetry.ackedUnrecorded} acknowledged writes unrecorded at the kill` : ''}`);
  for (const img of r.images) {
    const how = img.read === 'control socket' ? `${img.volume}, read through the control socket` : img.volume;
    lines.push(`  copy ${img.node} LUN ${img.lun} (${how}): sha256 ${img.sha256.slice(0, 16)}...`);
  }
  for (const n of r.notes) lines.push(`  note: ${n}`);
  for (const v of r.violations) lines.push(`  VIOLATION ${describeViolation(v)}`);
  if (r.violationsDropped > 0) lines.push(`  (${r.violationsDropped} more violations not shown)`);
  lines.push(`  wall time ${(r.wallMs / 1000).toFixed(1)} s`);
  if (r.dir !== null) lines.push(`  files kept in ${r.dir}`);
  if (r.verdict !== 'consistent') {
    lines.push(`  reproduce: ${r.reproduce}`);
    lines.push('  (a seed reproduces the proxy\'s fault decisions and the kill time; timing on real sockets and processes differs run to run)');
  }
  return lines.join('\n');
}
