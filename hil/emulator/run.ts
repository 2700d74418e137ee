import type { StorageController } from '../../firmware/controller/storage-controller.ts';
import { defaultLockRegionSectors } from '../../firmware/controller/config.ts';
import type { BlockDevice } from '../../firmware/ports/block-device.ts';
import { ConsistencyChecker } from '../checker/consistency-checker.ts';
import { checkLatest, checkPrefix, firstDifference, type VolumeImage } from '../checker/content-checks.ts';
import type { Violation } from '../checker/violation.ts';
import { LinkFaultInjector, type LinkFaultCounters } from '../faults/link-fault-injector.ts';
import { formatLinkFaults } from '../faults/link-fault-plan.ts';
import { FanoutTelemetry, TraceRecorder } from '../trace/trace.ts';
import { HostWorkload } from '../workload/host-workload.ts';
import type { LatencySummary } from '../workload/latency.ts';
import { ServerWorkload } from '../workload/server-workload.ts';
import type { EmulateOptions } from './options.ts';
import { reproduceCommand } from './reproduce.ts';
import { buildTopology, DEFAULT_TOPOLOGY, type MirrorPair, type Topology } from './topology.ts';
import { VolumeSet, type VolumeReport } from './volumes.ts';
import { VirtualClock } from '../../host/clock/virtual.ts';
import { SeededRandom } from '../../host/random.ts';
import { UsageError } from '../plan-error.ts';

export interface EmulationCounters {
  locksSent: number;
  locksGranted: number;
  locksRejected: number;
  halts: number;
  resumes: number;
  rollbacks: number;
  entriesRetransmitted: number;
  ackTimeouts: number;
  framesDropped: number;
  framesCorrupted: number;
  framesDuplicated: number;
}

export interface EmulationReport {
  seed: number;
  mode: string;
  onLockReject: string;
  bidirectional: boolean;
  faults: string;
  verdict: 'consistent' | 'inconsistent';
  violations: Violation[];
  violationsDropped: number;
  writes: { issued: number; acknowledged: number; errors: number; reads: number };
  latencyMs: LatencySummary;
  /** Virtual time at which the run was quiescent after healing (the final disk checks come after). */
  virtualTimeMs: number;
  /** Virtual time at which the hosts' last request completed. */
  workloadMs: number;
  throughputMBps: number;
  counters: EmulationCounters;
  faultsInjected: LinkFaultCounters;
  chartEvents: number;
  chartEventsPerWrite: number;
  traceEvents: number;
  traceHash: string;
  reproduce: string;
  volumes: VolumeReport[];
}

export interface Progress {
  phase: 'faults' | 'healing' | 'checking';
  virtualMs: number;
  writesIssued: number;
  writesAcknowledged: number;
  writesTotal: number;
}

export interface RunHooks {
  onProgress?: (p: Progress) => void;
  /** Also write every event to this JSONL file. */
  tracePath?: string;
}

/** The clock runs in slices this long between progress reports and checkpoints. */
const SLICE_MS = 5;
const CHECKPOINTS_MAX = 8;

/**
 * One emulation run (issue 3): two controllers on the simulated link, host workloads, the target's
 * server workload, link faults for a fault phase, then a healing phase in which the system must
 * converge on its own (a VOPR-style run), then the disk checks. A pure function of `opts`.
 */
export async function runEmulation(opts: EmulateOptions, hooks: RunHooks = {}): Promise<EmulationReport> {
  checkVolumes(opts);
  const checker = new ConsistencyChecker();
  const trace = new TraceRecorder(hooks.tracePath);
  const clock = new VirtualClock();
  const volumes = await VolumeSet.build({ source: opts.sourceVolume, target: opts.targetVolume }, opts.bidirectional, opts.diskFaults, {
    clock, random: new SeededRandom(opts.seed).fork('volumes'), service: DEFAULT_TOPOLOGY.diskService,
  });
  const smallest = Math.min(...['A/lun0', 'B/lun0'].map((n) => volumes.device(n).sectorCount)) * opts.sourceVolume.sectorSize;
  if (opts.writeBytes > smallest) {
    await volumes.close();
    throw new UsageError(`--write-bytes (${opts.writeBytes}) is larger than the smaller volume (${smallest} bytes)`);
  }
  const topo = buildTopology({
    seed: opts.seed, mode: opts.mode, onLockReject: opts.onLockReject, bidirectional: opts.bidirectional, rttMs: opts.rttMs,
    bandwidthMbps: opts.bandwidthMbps, sectorSize: opts.sourceVolume.sectorSize, lockRegionSectors: opts.lockRegionSectors,
    limits: opts.limits, telemetry: new FanoutTelemetry([checker, trace]), clock, makeVolume: (name) => volumes.device(name), mutations: opts.mutations,
  });
  const injector = new LinkFaultInjector(opts.faults, topo.random.fork('link-faults'), topo.link, topo.clock, opts.bandwidthMbps);
  topo.start();
  injector.start();
  const hosts = topo.pairs.map((pair) => startHost(topo, pair, opts));
  const total = hosts.length * opts.writes;
  const progress = (phase: Progress['phase']): void => {
    const s = hosts.map((h) => h.stats());
    hooks.onProgress?.({ phase, virtualMs: topo.clock.now(), writesIssued: sum(s, (x) => x.issued), writesAcknowledged: sum(s, (x) => x.acknowledged), writesTotal: total });
  };

  await faultPhase(topo, hosts, injector, volumes, opts, checker, progress);
  injector.heal();
  await healingPhase(topo, hosts, volumes, opts, checker, progress);
  const workloadMs = Math.max(...hosts.map((h) => h.lastCompletionMs));
  const quiescedMs = topo.clock.now();
  progress('checking');
  await finalChecks(topo, checker);
  const volumeReports = await volumes.report((p) => drive(topo, p));
  checkRedundancy(volumeReports, volumes, checker, topo.clock.now());
  topo.source.publishCounters();
  topo.target.publishCounters();
  topo.stop();
  await volumes.close();
  await trace.close();
  return { ...report(opts, topo, hosts, checker, injector, trace, workloadMs, quiescedMs), volumes: volumeReports };
}

function startHost(topo: Topology, pair: MirrorPair, opts: EmulateOptions): HostWorkload {
  // Writes stay within the smaller copy: a mirror is only as big as its smaller side.
  const geometry = { sectorSize: pair.primaryVolume.sectorSize, sectorCount: Math.min(pair.primaryVolume.sectorCount, pair.secondaryVolume.sectorCount) };
  const server = new ServerWorkload(pair.secondary, pair.lun, {
    perMillion: opts.lockContentionPerMillion,
    regionSectors: opts.lockRegionSectors ?? defaultLockRegionSectors(geometry.sectorSize),
    sectorCount: geometry.sectorCount,
    holdMinMs: opts.rttMs / 2,
    holdMaxMs: opts.rttMs * 4,
  }, topo.random.fork(`server-${pair.secondary.name}`), topo.clock);
  const host = new HostWorkload(pair.primary, pair.lun, geometry, {
    writes: opts.writes, durationMs: opts.durationMs, writeBytes: opts.writeBytes, queueDepth: opts.queueDepth,
    pattern: opts.pattern, readPercent: opts.readPercent,
  }, topo.random.fork(`host-${pair.primary.name}`), topo.clock, (lba, count) => server.onHostWrite(lba, count));
  host.start();
  return host;
}

/**
 * The fault phase: the hosts work and the faults strike, until the hosts are done, the mirrors
 * have caught up and every timed fault (partition, bandwidth change) has happened, or until
 * `faultPhaseMaxMs`. In async mode the copies are checked for write-order fidelity on the way.
 */
async function faultPhase(
  topo: Topology, hosts: HostWorkload[], injector: LinkFaultInjector, volumes: VolumeSet, opts: EmulateOptions, checker: ConsistencyChecker,
  progress: (p: Progress['phase']) => void,
): Promise<void> {
  const { clock } = topo;
  let nextCheckpoint = opts.checkpointEveryMs;
  let checkpoints = 0;
  const over = (): boolean =>
    failed(topo) || (hosts.every((h) => h.done) && clock.now() >= Math.max(injector.timedFaultsEndMs, volumes.timedFaultsEndMs) && topo.source.quiescent() && topo.target.quiescent());
  while (!over() && clock.now() < opts.faultPhaseMaxMs) {
    volumes.supervise();
    const outcome = await clock.run({ untilMs: Math.min(opts.faultPhaseMaxMs, clock.now() + SLICE_MS), until: over });
    if (outcome === 'idle' && !over()) {
      checker.report(liveness(topo, 'nothing is scheduled, yet work is outstanding (a lost wake-up)'));
      return;
    }
    if (opts.mode === 'async' && clock.now() >= nextCheckpoint && checkpoints < CHECKPOINTS_MAX) {
      checkpoints++;
      nextCheckpoint += opts.checkpointEveryMs;
      writeOrderCheckpoint(topo, checker);
    }
    progress('faults');
  }
}

/**
 * Faults have stopped: the hosts must finish and everything drain (every log empty, every lock
 * session closed) within `healMs`, or the run is not live.
 */
async function healingPhase(
  topo: Topology, hosts: HostWorkload[], volumes: VolumeSet, opts: EmulateOptions, checker: ConsistencyChecker, progress: (p: Progress['phase']) => void,
): Promise<void> {
  const { clock } = topo;
  const deadline = clock.now() + opts.healMs;
  const settled = (): boolean => failed(topo) || (hosts.every((h) => h.done) && topo.source.settled() && topo.target.settled() && !volumes.rebuilding);
  while (!settled() && clock.now() < deadline) {
    volumes.supervise();
    const outcome = await clock.run({ untilMs: Math.min(deadline, clock.now() + SLICE_MS), until: settled });
    if (outcome === 'idle' && !settled()) break;
    progress('healing');
  }
  if (!settled()) checker.report(liveness(topo, `not quiescent ${opts.healMs} ms after the faults stopped`));
}

/** Async mode: the targets must hold a prefix of their sources' writes, at this very instant. */
function writeOrderCheckpoint(topo: Topology, checker: ConsistencyChecker): void {
  for (const pair of topo.pairs) {
    const image = peekImage(pair.secondaryVolume);
    if (!image) continue;
    const v = checkPrefix(checker.history(pair.primary.name, pair.lun), image, { node: pair.secondary.name, lun: pair.lun, writer: pair.primary.id, tMs: topo.clock.now() });
    if (v) checker.report(v);
  }
}

/** Once quiescent: each copy equals its source, and both hold every write's data. */
async function finalChecks(topo: Topology, checker: ConsistencyChecker): Promise<void> {
  if (failed(topo)) return;
  for (const pair of topo.pairs) {
    const sectors = Math.min(pair.primaryVolume.sectorCount, pair.secondaryVolume.sectorCount);
    const images = await readImages(topo, [pair.primaryVolume, pair.secondaryVolume], sectors);
    const t = topo.clock.now();
    if (typeof images === 'string') {
      checker.report({ invariant: 'data-intact', node: pair.secondary.name, lun: pair.lun, lba: 0, seq: 0, tMs: t, message: `the volumes could not be read back: ${images}` });
      continue;
    }
    const [primary, secondary] = images;
    const diff = firstDifference(primary, secondary);
    if (diff >= 0) {
      checker.report({ invariant: 'mirror-identical', node: pair.secondary.name, lun: pair.lun, lba: diff, seq: 0, tMs: t, message: `${pair.secondaryVolume.name} differs from ${pair.primaryVolume.name} at LBA ${diff} after the run quiesced` });
    }
    const history = checker.history(pair.primary.name, pair.lun);
    for (const [node, image] of [[pair.primary.name, primary], [pair.secondary.name, secondary]] as const) {
      const v = checkLatest(history, image, { node, lun: pair.lun, writer: pair.primary.id, tMs: t });
      if (v) checker.report(v);
    }
  }
}

/**
 * Read the first `sectors` of two devices through the clock (the run is quiescent, so nothing
 * changes meanwhile); a read error (a bad sector nobody repaired) comes back as its message.
 */
async function readImages(topo: Topology, devs: [BlockDevice, BlockDevice], sectors: number): Promise<[VolumeImage, VolumeImage] | string> {
  const results: (Uint8Array | Error | undefined)[] = devs.map(() => undefined);
  devs.forEach((dev, i) => {
    dev.read(0, sectors).then(
      (b) => (results[i] = b),
      (e: unknown) => (results[i] = e instanceof Error ? e : new Error(`reading ${dev.name}: ${String(e)}`)),
    );
  });
  await topo.clock.run({ until: () => results.every((r) => r !== undefined) });
  const [a, b] = results;
  if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array)) {
    return [a, b].map((r) => (r instanceof Error ? r.message : r === undefined ? 'read did not complete' : '')).filter(Boolean).join('; ');
  }
  return [{ bytes: a, sectorSize: devs[0].sectorSize }, { bytes: b, sectorSize: devs[1].sectorSize }];
}

/** The volume's contents at this instant, if the device can show them without I/O. */
function peekImage(dev: BlockDevice): VolumeImage | null {
  const peek = (dev as { peek?: (lba: number, count: number) => Uint8Array }).peek;
  return typeof peek === 'function' ? { bytes: peek.call(dev, 0, dev.sectorCount), sectorSize: dev.sectorSize } : null;
}

/** Run the clock until `p` settles (the run is quiescent: nothing else is going on). */
async function drive<T>(topo: Topology, p: Promise<T>): Promise<T> {
  let settled = false;
  const watched = p.finally(() => (settled = true));
  await topo.clock.run({ until: () => settled });
  return watched;
}

/** The volumes' capacities and sector sizes must allow a mirror at all. */
function checkVolumes(opts: EmulateOptions): void {
  const [s, t] = [opts.sourceVolume, opts.targetVolume];
  if (s.sectorSize !== t.sectorSize) {
    throw new UsageError(`the source volume has ${s.sectorSize}-byte sectors and the target ${t.sectorSize}-byte ones; a mirror needs the same sector size on both`);
  }
  if (opts.writeBytes % s.sectorSize !== 0) throw new UsageError(`--write-bytes (${opts.writeBytes}) must be a multiple of the ${s.sectorSize}-byte sector`);
}

/** A volume that ended failed, or whose copies or parity disagree, has lost its redundancy. */
function checkRedundancy(reports: VolumeReport[], volumes: VolumeSet, checker: ConsistencyChecker, tMs: number): void {
  for (const v of reports) {
    if (v.state !== 'optimal' || v.mismatches > 0) {
      const node = v.name.split('/')[0]!;
      checker.report({ invariant: 'volume-redundancy', node, lun: Number(v.name.slice(-1)), lba: 0, seq: 0, tMs, message: `${v.name} (${v.layout}) ended ${v.state} with ${v.mismatches} mismatches and ${v.readErrors} read errors` });
    }
  }
  for (const e of volumes.rebuildErrors()) checker.report({ invariant: 'volume-redundancy', node: e.slice(0, 1), lun: 0, lba: 0, seq: 0, tMs, message: `rebuild failed: ${e}` });
}

function failed(topo: Topology): boolean {
  return topo.source.failure !== null || topo.target.failure !== null;
}

function liveness(topo: Topology, why: string): Violation {
  const status = [topo.source, topo.target].map((c) => describeStatus(c)).join('; ');
  return { invariant: 'liveness', node: topo.source.name, lun: 0, lba: 0, seq: 0, tMs: topo.clock.now(), message: `${why} (${status})` };
}

function describeStatus(c: StorageController): string {
  return c.status().map((s) => `${c.name}->${s.peer}: ${s.source ? `source ${s.source.state}, rollback ${s.source.rollbackLog.entries} entries` : 'no source'}, target ${s.target.state}, commit ${s.target.commitLog.entries} entries`).join(', ');
}

function report(
  opts: EmulateOptions, topo: Topology, hosts: HostWorkload[], checker: ConsistencyChecker, injector: LinkFaultInjector,
  trace: TraceRecorder, workloadMs: number, quiescedMs: number,
): Omit<EmulationReport, 'volumes'> {
  const stats = hosts.map((h) => h.stats());
  const acknowledged = sum(stats, (s) => s.acknowledged);
  const sources = [topo.source, topo.target].flatMap((c) => c.status().flatMap((s) => (s.source ? [s.source.counters] : [])));
  const chartEvents = topo.source.chartEvents() + topo.target.chartEvents();
  const f = injector.counters;
  return {
    seed: opts.seed, mode: opts.mode, onLockReject: opts.onLockReject, bidirectional: opts.bidirectional, faults: formatLinkFaults(opts.faults),
    verdict: checker.violations.length === 0 ? 'consistent' : 'inconsistent',
    violations: checker.violations, violationsDropped: checker.violationsDropped,
    writes: { issued: sum(stats, (s) => s.issued), acknowledged, errors: sum(stats, (s) => s.errors), reads: sum(stats, (s) => s.reads) },
    latencyMs: stats[0]!.writeLatency,
    virtualTimeMs: round(quiescedMs),
    workloadMs: round(workloadMs),
    throughputMBps: workloadMs > 0 ? round((acknowledged * opts.writeBytes) / 1e6 / (workloadMs / 1000)) : 0,
    counters: {
      locksSent: sum(sources, (c) => c.locksSent), locksGranted: sum(sources, (c) => c.locksGranted), locksRejected: sum(sources, (c) => c.locksRejected),
      halts: sum(sources, (c) => c.halts), resumes: sum(sources, (c) => c.resumes), rollbacks: sum(sources, (c) => c.rollbacks),
      entriesRetransmitted: sum(sources, (c) => c.entriesRetransmitted), ackTimeouts: sum(sources, (c) => c.ackTimeouts),
      framesDropped: f.framesDropped, framesCorrupted: f.framesCorrupted, framesDuplicated: f.framesDuplicated,
    },
    faultsInjected: { ...f },
    chartEvents,
    chartEventsPerWrite: acknowledged > 0 ? round(chartEvents / acknowledged) : 0,
    traceEvents: trace.count,
    traceHash: trace.digest(),
    reproduce: reproduceCommand(opts),
  };
}

function sum<T>(items: T[], f: (t: T) => number): number {
  return items.reduce((n, t) => n + f(t), 0);
}

const round = (x: number): number => Math.round(x * 1e6) / 1e6;
