import type { ConsistencyChecker } from '../checker/consistency-checker.ts';
import type { ResyncTotals } from '../checker/resync-checker.ts';
import type { DeviceCounts } from './counted-device.ts';
import type { Violation } from '../checker/violation.ts';
import { formatDiskFaults } from '../faults/disk-fault-plan.ts';
import type { LinkFaultCounters, LinkFaultInjector } from '../faults/link-fault-injector.ts';
import { formatLinkFaults } from '../faults/link-fault-plan.ts';
import type { TraceRecorder } from '../trace/trace.ts';
import type { HostWorkload } from '../workload/host-workload.ts';
import { LatencyRecorder, type LatencySummary } from '../workload/latency.ts';
import type { InitialSyncReport } from './initial-sync.ts';
import type { EmulateOptions } from './options.ts';
import { reproduceCommand } from './reproduce.ts';
import type { RunTally } from './tally.ts';
import type { Topology } from './topology.ts';
import type { VolumeReport } from './volumes.ts';

export interface EmulationCounters {
  /** LOCKs sent by the sources (first transmissions). */
  locksSent: number;
  /** Mirror locks granted by the targets, as they granted them. */
  locksGranted: number;
  /** Refusals by the targets (a lock refused twice counts twice). */
  locksRejected: number;
  /** Locks granted after at least one refusal. */
  locksGrantedAfterRejection: number;
  halts: number;
  resumes: number;
  rollbacks: number;
  entriesRetransmitted: number;
  ackTimeouts: number;
  framesDropped: number;
  framesCorrupted: number;
  framesDuplicated: number;
  /** WRITEs the sources sent carrying their own lock (docs/implied-locks.md), and the BATCH frames they sent, with the entries in them. */
  impliedLocks: number;
  batches: number;
  entriesBatched: number;
}

export interface LinkSupervisionReport {
  suspicions: number;
  downs: number;
  probationsPassed: number;
  probationsRestarted: number;
  reconnects: number;
  peerRestarts: number;
  downMs: number;
  detectMs: { min: number; mean: number; max: number } | null;
  /** Share of the bytes this controller sent to the peer that were heartbeats. */
  heartbeatShare: number;
}

export interface EmulationReport {
  seed: number;
  mode: string;
  onLockReject: string;
  /** How the mirrors locked (`--locks`) and whether they batched (`--batch`). */
  locks: string;
  batch: boolean;
  bidirectional: boolean;
  /** The link fault plan, in `--faults` syntax. */
  faults: string;
  /** The disk fault plan, in `--disk-faults` syntax. */
  diskFaults: string;
  verdict: 'consistent' | 'inconsistent';
  violations: Violation[];
  violationsDropped: number;
  /** What the reader should know that is not a violation (e.g. the fault phase reached its cap). */
  notes: string[];
  /** Per run, all hosts together: writes asked for (`--writes` per host), issued, acknowledged, failed; reads done; writes a crash interrupted (never completed). */
  writes: { requested: number; issued: number; acknowledged: number; errors: number; reads: number; interrupted: number };
  /** Host write latency, all hosts together. */
  latencyMs: LatencySummary;
  /** Host write latency per host (by controller name). */
  latencyMsByHost: Record<string, LatencySummary>;
  /** Virtual time at which the run was quiescent after healing (the final disk checks come after). */
  virtualTimeMs: number;
  /** Virtual time at which the hosts' last request completed. */
  workloadMs: number;
  /** Virtual time at which the fault phase ended. */
  faultPhaseMs: number;
  /** Mirrored throughput: bytes of host writes applied on the targets, over the time the last was applied. */
  throughputMBps: number;
  /** Host-side throughput: bytes acknowledged to the hosts over `workloadMs` (above the mirrored rate in async mode). */
  hostThroughputMBps: number;
  counters: EmulationCounters;
  faultsInjected: LinkFaultCounters;
  /** The mirrors' initial synchronisation (before the run's time 0). */
  initialSync: InitialSyncReport;
  /** Async mode: when write-order checkpoints were taken (virtual ms). */
  writeOrderCheckpointsMs: number[];
  /**
   * Per controller and peer (`A->B`), what its link supervisor saw: suspicions, links declared
   * down, probations passed and restarted, reconnections, how long the link was down in all (ms),
   * and the silence at each detection (ms since the peer was last heard, when it was declared down
   * for silence; null when there was none).
   */
  linkSupervision: Record<string, LinkSupervisionReport>;
  /**
   * The resyncs of the run, all mirrors together (docs/tag-tables.md, "What the checker checks"):
   * started, of them full copies, aborted; bytes copied, and bytes that differed between the copies
   * at each start (writes in the stream left out); tag table entries compared and matched; the
   * finished ones' virtual time added up; starts whose divergence could not be measured.
   */
  resync: ResyncTotals;
  /** Controller crashes (`crash=` and `power=` items), and of them power cuts. */
  crashes: number;
  powerCuts: number;
  /** What both controllers asked of their metadata devices (docs/tag-tables.md, "Metadata"): writes, bytes written, flushes. */
  metadata: DeviceCounts;
  chartEvents: number;
  chartEventsPerWrite: number;
  traceEvents: number;
  traceHash: string;
  reproduce: string;
  volumes: VolumeReport[];
}

/** What a run measured, for {@link assembleReport}. */
export interface RunResults {
  opts: EmulateOptions;
  topo: Topology;
  hosts: readonly HostWorkload[];
  checker: ConsistencyChecker;
  injector: LinkFaultInjector;
  trace: TraceRecorder;
  tally: RunTally;
  quiescedMs: number;
  faultPhaseMs: number;
  notes: string[];
  initialSync: InitialSyncReport;
  checkpointsMs: number[];
  volumes: VolumeReport[];
  resync: ResyncTotals;
  crashes: { crashes: number; powerCuts: number };
  metadata: DeviceCounts;
}

/** The report of a finished run (call once: it takes the trace's digest). */
export function assembleReport(r: RunResults): EmulationReport {
  const { opts, topo, hosts, checker, tally } = r;
  const stats = hosts.map((h) => h.stats());
  const acknowledged = sum(stats, (s) => s.acknowledged);
  const workloadMs = Math.max(0, ...hosts.map((h) => h.lastCompletionMs));
  const chartEvents = topo.source.chartEvents() + topo.target.chartEvents();
  return {
    seed: opts.seed, mode: opts.mode, onLockReject: opts.onLockReject, locks: opts.locks ?? 'explicit', batch: opts.batch === true, bidirectional: opts.bidirectional,
    faults: formatLinkFaults(opts.faults), diskFaults: formatDiskFaults(opts.diskFaults),
    verdict: checker.violations.length === 0 ? 'consistent' : 'inconsistent',
    violations: checker.violations, violationsDropped: checker.violationsDropped, notes: r.notes,
    writes: { requested: opts.writes * hosts.length, issued: sum(stats, (s) => s.issued), acknowledged, errors: sum(stats, (s) => s.errors), reads: sum(stats, (s) => s.reads), interrupted: sum(stats, (s) => s.interrupted) },
    latencyMs: LatencyRecorder.merged(hosts.map((h) => h.writeLatencies)),
    latencyMsByHost: Object.fromEntries(topo.pairs.map((p, i) => [p.primary.name, stats[i]!.writeLatency])),
    virtualTimeMs: round(r.quiescedMs), workloadMs: round(workloadMs), faultPhaseMs: round(r.faultPhaseMs),
    throughputMBps: rateMBps(tally.mirroredBytes, tally.lastApplyMs),
    hostThroughputMBps: rateMBps(acknowledged * opts.writeBytes, workloadMs),
    counters: counters(topo, r.injector, tally),
    faultsInjected: { ...r.injector.counters },
    initialSync: r.initialSync,
    writeOrderCheckpointsMs: r.checkpointsMs.map(round),
    linkSupervision: linkSupervision(topo),
    resync: { ...r.resync, virtualMs: round(r.resync.virtualMs) }, crashes: r.crashes.crashes, powerCuts: r.crashes.powerCuts, metadata: r.metadata,
    chartEvents, chartEventsPerWrite: acknowledged > 0 ? round(chartEvents / acknowledged) : 0,
    traceEvents: r.trace.count, traceHash: r.trace.digest(), reproduce: reproduceCommand(opts),
    volumes: r.volumes,
  };
}

/**
 * The run's counters: what the sources sent and did from their own counters, lock grants and
 * refusals from the targets (their telemetry), frame faults from the injector.
 */
function counters(topo: Topology, injector: LinkFaultInjector, tally: RunTally): EmulationCounters {
  const sources = [topo.source, topo.target].flatMap((c) => c.status().flatMap((s) => (s.source ? [s.source.counters] : [])));
  const f = injector.counters;
  return {
    locksSent: sum(sources, (c) => c.locksSent), locksGranted: tally.locksGranted, locksRejected: tally.locksRejected, locksGrantedAfterRejection: tally.locksGrantedAfterRejection,
    halts: sum(sources, (c) => c.halts), resumes: sum(sources, (c) => c.resumes), rollbacks: sum(sources, (c) => c.rollbacks),
    entriesRetransmitted: sum(sources, (c) => c.entriesRetransmitted), ackTimeouts: sum(sources, (c) => c.ackTimeouts),
    framesDropped: f.framesDropped, framesCorrupted: f.framesCorrupted, framesDuplicated: f.framesDuplicated,
    impliedLocks: sum(sources, (c) => c.impliedLocks), batches: sum(sources, (c) => c.batchesSent), entriesBatched: sum(sources, (c) => c.entriesBatched),
  };
}

function linkSupervision(topo: Topology): Record<string, LinkSupervisionReport> {
  const out: Record<string, LinkSupervisionReport> = {};
  for (const c of [topo.source, topo.target]) {
    for (const s of c.status()) {
      const k = s.link.counters;
      const d = s.link.supervision.detectMs;
      const dir = c.name === topo.link.a.name ? 'ab' : 'ba';
      const share = topo.link.heartbeatShare(dir);
      out[`${c.name}->${s.peer}`] = {
        suspicions: k.suspicions, downs: k.downs, probationsPassed: k.probationsPassed, probationsRestarted: k.probationsRestarted,
        reconnects: k.reconnects, peerRestarts: k.peerRestarts, downMs: round(s.link.supervision.downMs),
        detectMs: d.length === 0 ? null : { min: round(Math.min(...d)), mean: round(d.reduce((n, x) => n + x, 0) / d.length), max: round(Math.max(...d)) },
        heartbeatShare: round(share),
      };
    }
  }
  return out;
}

function rateMBps(bytes: number, ms: number): number {
  return ms > 0 ? round(bytes / 1e6 / (ms / 1000)) : 0;
}

function sum<T>(items: readonly T[], f: (t: T) => number): number {
  return items.reduce((n, t) => n + f(t), 0);
}

const round = (x: number): number => Math.round(x * 1e6) / 1e6;
