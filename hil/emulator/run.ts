import type { ControllerLimits } from '../../firmware/controller/config.ts';
import { VirtualClock } from '../../host/clock/virtual.ts';
import { DiskImageError } from '../../host/disks/errors.ts';
import { holdsPriorData } from '../../host/disks/volume-spec.ts';
import { SeededRandom } from '../../host/random.ts';
import { BLANK_BASELINE, type Baseline } from '../checker/content-checks.ts';
import { ConsistencyChecker } from '../checker/consistency-checker.ts';
import { LinkChecker } from '../checker/link-checker.ts';
import { LinkFaultInjector } from '../faults/link-fault-injector.ts';
import { UsageError } from '../plan-error.ts';
import type { TraceSink } from '../trace/events.ts';
import { runStartEvent, violationEvent } from '../trace/run-events.ts';
import { FanoutTelemetry, TraceRecorder } from '../trace/trace.ts';
import { HostWorkload } from '../workload/host-workload.ts';
import { ResyncChecker } from '../checker/resync-checker.ts';
import { CrashSchedule, crashedName, type MirrorWorkloads } from './crashes.ts';
import { MemoryDisk } from '../../host/disks/memory.ts';
import { CountedDevice } from './counted-device.ts';
import { copiesDiffer } from './divergence.ts';
import { RecoveryWatch } from './recovery-watch.ts';
import { ServerWorkload } from '../workload/server-workload.ts';
import { drive } from './chunks.ts';
import { CheckpointSchedule } from './checkpoints.ts';
import { finalContentChecks } from './final-checks.ts';
import { HandoverClock } from '../../host/clock/handover.ts';
import { initialSync, type InitialSyncReport } from './initial-sync.ts';
import { lockRegionFor, validateAgainstVolumes, validateEmulateOptions, type EmulateOptions } from './options.ts';
import { faultPhase, failed, healingPhase, liveness, type Phase, type PhaseContext } from './phases.ts';
import { assembleReport, type EmulationReport } from './report.ts';
import { RunTally } from './tally.ts';
import { buildTopology, DEFAULT_TOPOLOGY, METADATA_VOLUME_SECTORS, type MirrorPair, type Topology, type TopologyOptions } from './topology.ts';
import { POWER_CUT_CACHE_BYTES, VolumeSet, type VolumeReport } from './volumes.ts';

export type { EmulationCounters, EmulationReport } from './report.ts';

export interface Progress {
  phase: Phase;
  virtualMs: number;
  writesIssued: number;
  writesAcknowledged: number;
  writesTotal: number;
  /** Mirrors not in sync now, and how far their resyncs have come (docs/tag-tables.md, "Resync"); null when every mirror is in sync. */
  resync: { mirrors: number; doneSectors: number; totalSectors: number } | null;
}

/** The resyncs of both controllers, summed, for the progress line. */
function resyncProgress(topo: Topology): Progress['resync'] {
  let mirrors = 0;
  let doneSectors = 0;
  let totalSectors = 0;
  for (const c of [topo.source, topo.target]) {
    for (const m of c.status().flatMap((p) => p.mirrors)) {
      if (m.state === 'in-sync') continue;
      mirrors++;
      if (m.state !== 'resyncing') continue;
      doneSectors += m.doneSectors;
      totalSectors += m.totalSectors;
    }
  }
  return mirrors === 0 ? null : { mirrors, doneSectors, totalSectors };
}

export interface RunHooks {
  onProgress?: (p: Progress) => void;
  /** Also write every event to this JSONL file. */
  tracePath?: string;
  /** Also hand every trace event to this subscriber as it happens (the visualizer's live feed). */
  tap?: TraceSink;
  /** Run on this fresh clock instead of a new VirtualClock (the visualizer paces it to wall time). */
  clock?: VirtualClock;
  /**
   * Test-only (no flag or file reaches it, docs/conventions.md 15): called with the built
   * topology before anything starts, so a test can break the firmware on purpose.
   */
  beforeStart?: (topo: Topology) => void;
}

/** The mirrors of a run by volume name: source (primary) and target (secondary). */
const MIRRORS: readonly (readonly [string, string])[] = [['A/lun0', 'B/lun0'], ['B/lun1', 'A/lun1']];

/**
 * One emulation run (issue 3): the volumes are built and the mirrors established (an initial
 * synchronisation, out of band), then two controllers on the simulated link, host workloads, the
 * target's server workload, link and disk faults for a fault phase, then a healing phase in which
 * the system must converge on its own (a VOPR-style run), then the disk checks. A pure function of
 * `opts`. Whatever happens, every volume (and image lock) and the trace file are closed.
 */
export async function runEmulation(opts: EmulateOptions, hooks: RunHooks = {}): Promise<EmulationReport> {
  validateEmulateOptions(opts);
  const clock = hooks.clock ?? new VirtualClock();
  const syncClock = [opts.sourceVolume, opts.targetVolume].some(holdsPriorData) ? new VirtualClock() : null;
  const volumeClock = syncClock ? new HandoverClock(syncClock) : clock;
  // The trace file first: a path that cannot be written fails the run before any image is opened.
  const trace = new TraceRecorder(hooks.tracePath);
  let opened: VolumeSet | null = null;
  let topo: Topology | null = null;
  let finished = false;
  try {
    const volumes = (opened = await buildVolumes(opts, volumeClock));
    const mirrors = MIRRORS.slice(0, opts.bidirectional ? 2 : 1);
    const sectors = Math.min(...mirrors.flat().map((n) => volumes.device(n).sectorCount));
    validateAgainstVolumes(opts, sectors);
    const sync = await establishMirrors(volumes, mirrors, syncClock);
    if (volumeClock instanceof HandoverClock) volumeClock.handOver(clock);
    volumes.strike();
    const report = await runPhases(opts, hooks, { clock, volumes, trace, sync, lockRegionSectors: lockRegionFor(opts, sectors), setTopology: (t) => (topo = t) });
    finished = true;
    return report;
  } finally {
    (topo as Topology | null)?.stop();
    await closeAll([() => (opened as VolumeSet | null)?.close(), () => trace.close()], finished);
  }
}

/**
 * Each controller's metadata device (docs/tag-tables.md, "Metadata"): a memory disk that survives
 * its crashes, with a volatile write cache (lost in a power cut) on a side the run power-cuts,
 * like that side's volumes.
 */
function metadataVolumes(opts: EmulateOptions, built: CountedDevice[]): TopologyOptions['metadataVolume'] {
  const powered = new Set(opts.faults.crashes.filter((c) => c.power).map((c) => crashedName(c)));
  return (name, clock, random) => {
    const disk = new MemoryDisk({
      name: `${name}/metadata`, sectorCount: METADATA_VOLUME_SECTORS, clock, service: DEFAULT_TOPOLOGY.diskService, random: random.fork(`${name}/metadata`),
      ...(powered.has(name) ? { writeCacheBytesMax: POWER_CUT_CACHE_BYTES } : {}),
    });
    // Counted, for the report's `metadata` (what the metadata costs per host write).
    const counted = new CountedDevice(disk);
    built.push(counted);
    return counted;
  };
}

/** Builds the volumes; an image that cannot be used (wrong size, in use, missing directory) is the user's to fix: exit 2. */
async function buildVolumes(opts: EmulateOptions, clock: VirtualClock | HandoverClock): Promise<VolumeSet> {
  try {
    return await VolumeSet.build({ source: opts.sourceVolume, target: opts.targetVolume }, opts.bidirectional, opts.diskFaults, {
      clock, random: new SeededRandom(opts.seed).fork('volumes'), service: DEFAULT_TOPOLOGY.diskService, reorder: opts.diskReorder === true,
      cachedSides: opts.faults.crashes.filter((c) => c.power).map((c) => c.side),
    });
  } catch (error) {
    if (error instanceof DiskImageError) throw new UsageError(error.message, error.code);
    throw error;
  }
}

/**
 * The initial synchronisation of every mirror with an image file on either side (memory volumes
 * are blank when built: nothing to copy, zeros to expect), and each mirror's baseline: what its
 * untouched sectors must still hold at the end.
 */
async function establishMirrors(volumes: VolumeSet, mirrors: readonly (readonly [string, string])[], clock: VirtualClock | null) {
  const baselines = new Map<string, Baseline>(mirrors.map(([p]) => [p, BLANK_BASELINE]));
  const report: InitialSyncReport = { bytesCopied: 0, bytesCompared: 0, virtualMs: 0 };
  const notes: string[] = [...volumes.notes];
  const pairs = mirrors.filter(([p, s]) => !volumes.memoryBacked(p) || !volumes.memoryBacked(s)).map(([p, s]) => ({ name: p, source: volumes.device(p).inner, target: volumes.device(s).inner }));
  if (clock === null || pairs.length === 0) return { report, baselines, notes };
  const done = await initialSync(pairs, clock);
  for (const [name, baseline] of done.baselines) {
    baselines.set(name, baseline);
    if (baseline.chunksUnknown > 0) notes.push(`${name}: ${baseline.chunksUnknown} chunks of pre-existing data were past the fingerprint budget; their untouched sectors were checked for mirror identity only`);
  }
  return { report: done.report, baselines, notes };
}

interface RunParts {
  clock: VirtualClock;
  volumes: VolumeSet;
  trace: TraceRecorder;
  sync: Awaited<ReturnType<typeof establishMirrors>>;
  lockRegionSectors: number;
  setTopology: (t: Topology) => void;
}

/** The run proper: controllers and hosts, the fault phase, healing, the final checks, the report. */
async function runPhases(opts: EmulateOptions, hooks: RunHooks, parts: RunParts): Promise<EmulationReport> {
  const { clock, volumes, trace, sync } = parts;
  const checker = new ConsistencyChecker();
  const tally = new RunTally(opts.sourceVolume.sectorSize);
  const taps = hooks.tap ? [hooks.tap] : [];
  // The harness's own record (what the run is, what the checks found) goes to the trace, not to the checker.
  const record = new FanoutTelemetry([trace, ...taps]);
  record.emit(runStartEvent(opts));
  const links = new LinkChecker({ heartbeatMs: opts.heartbeatMs, interruptionMs: opts.interruptionMs, probationMs: opts.probationMs, report: (v) => checker.report(v) });
  const mirrors = MIRRORS.slice(0, opts.bidirectional ? 2 : 1).map(([p, s], lun) => ({ source: p.slice(0, 1), target: s.slice(0, 1), lun, primary: p, secondary: s }));
  const resyncs = new ResyncChecker(mirrors.map((m) => ({
    ...m, sectorSize: opts.sourceVolume.sectorSize,
    differing: () => copiesDiffer({ primary: volumes.device(m.primary), secondary: volumes.device(m.secondary), sparse: volumes.memoryBacked(m.primary) && volumes.memoryBacked(m.secondary) }),
  })), checker, (v) => checker.report(v));
  const recovery = new RecoveryWatch(mirrors);
  const telemetry = new FanoutTelemetry([checker, resyncs, recovery, links, trace, tally, ...taps]);
  const metadataDevices: CountedDevice[] = [];
  const topo = buildTopology({
    seed: opts.seed, mode: opts.mode, onLockReject: opts.onLockReject, bidirectional: opts.bidirectional, rttMs: opts.rttMs,
    bandwidthMbps: opts.bandwidthMbps, sectorSize: opts.sourceVolume.sectorSize, lockRegionSectors: parts.lockRegionSectors,
    connections: opts.connections, limits: supervisionLimits(opts), telemetry, clock, makeVolume: (name) => volumes.device(name),
    locks: opts.locks, batch: opts.batch, metadataVolume: metadataVolumes(opts, metadataDevices),
  });
  parts.setTopology(topo);
  hooks.beforeStart?.(topo);
  const injector = new LinkFaultInjector(opts.faults, topo.random.fork('link-faults'), topo.link, topo.clock, opts.bandwidthMbps, telemetry);
  topo.start();
  injector.start();
  const workloads = topo.pairs.map((pair) => startHost(topo, pair, opts, parts.lockRegionSectors));
  const hosts = workloads.map((w) => w.host);
  const crashes = new CrashSchedule(opts.faults.crashes, topo, clock, workloads, (side) => volumes.crashPowerCut(side));
  crashes.start();
  const checkpoints = opts.mode === 'async' ? new CheckpointSchedule(opts.checkpointEveryMs, topo.random.fork('checkpoints')) : null;
  const ctx: PhaseContext = { topo, hosts, injector, volumes, opts, checker, checkpoints, crashes, recovery, progress: (phase) => report(phase) };
  const report = (phase: Phase): void => {
    if (!hooks.onProgress) return;
    const issued = hosts.reduce((n, h) => n + h.writesIssued, 0);
    const acknowledged = hosts.reduce((n, h) => n + h.writesAcknowledged, 0);
    hooks.onProgress({
      phase, virtualMs: clock.now(), writesIssued: issued, writesAcknowledged: acknowledged, writesTotal: hosts.length * opts.writes, resync: resyncProgress(topo),
    });
  };
  const notes = [...sync.notes];
  const quiesced = await runToQuiescence(ctx, notes);
  const faultPhaseMs = quiesced.faultPhaseMs;
  const quiescedMs = clock.now();
  links.finish(quiescedMs);
  report('checking');
  const volumeReports = await finalChecks(ctx, quiesced.ok, sync.baselines);
  topo.source.publishCounters();
  topo.target.publishCounters();
  for (const v of checker.violations) record.emit(violationEvent(v, clock.now()));
  return assembleReport({
    opts, topo, hosts, checker, injector, trace, tally, quiescedMs, faultPhaseMs, notes,
    initialSync: sync.report, checkpointsMs: checkpoints?.takenMs ?? [], volumes: volumeReports,
    resync: resyncs.totals, crashes: { crashes: crashes.crashes, powerCuts: crashes.powerCuts },
    metadata: metadataDevices.reduce((n, d) => ({ writes: n.writes + d.counts.writes, bytesWritten: n.bytesWritten + d.counts.bytesWritten, flushes: n.flushes + d.counts.flushes }), { writes: 0, bytesWritten: 0, flushes: 0 }),
  });
}

/** The fault phase, then healing; false if the run did not quiesce (a liveness violation says why). */
async function runToQuiescence(ctx: PhaseContext, notes: string[]): Promise<{ ok: boolean; faultPhaseMs: number }> {
  const { topo, hosts, opts, checker, injector } = ctx;
  const outcome = await faultPhase(ctx);
  const faultPhaseMs = topo.clock.now();
  if (outcome === 'capped') {
    for (const h of hosts) h.stop();
    const issued = hosts.reduce((n, h) => n + h.writesIssued, 0);
    notes.push(`the fault phase reached its maximum of ${opts.faultPhaseMsMax} ms (--fault-phase-max-ms): the hosts stopped issuing after ${issued} of ${opts.writes * hosts.length} writes, then healing began`);
  }
  if (outcome === 'stuck' || outcome === 'timeout') {
    checker.report(liveness(ctx, 'faults', outcome));
    return { ok: false, faultPhaseMs };
  }
  injector.heal();
  const healed = await healingPhase(ctx);
  if (healed === 'stuck' || healed === 'timeout') {
    checker.report(liveness(ctx, 'healing', healed));
    return { ok: false, faultPhaseMs };
  }
  return { ok: !failed(topo), faultPhaseMs };
}

/**
 * Once quiescent: the content checks and md's check of every array, then the redundancy check.
 * If the run did not quiesce, the content checks and the arrays' check are skipped (the liveness
 * violation says so): copies still changing would only produce misleading violations.
 */
async function finalChecks(ctx: PhaseContext, quiesced: boolean, baselines: Map<string, Baseline>): Promise<VolumeReport[]> {
  const { topo, volumes, checker } = ctx;
  if (quiesced) {
    // The content checks read what should be there (docs/simulator.md 3): injected silent corruption
    // is the arrays' check's to find and attribute, below.
    volumes.showCorruption(false);
    await finalContentChecks(topo.clock, checker, topo.pairs.map((pair) => {
      const [primary, secondary] = [pair.primaryVolume, pair.secondaryVolume].map((d) => volumes.device(d.name));
      const sparse = volumes.memoryBacked(primary!.name) && volumes.memoryBacked(secondary!.name);
      const extraLbas = [...volumes.faultSectors(primary!.name), ...volumes.faultSectors(secondary!.name)];
      return { pair, primary: primary!, secondary: secondary!, sparse, extraLbas, baseline: baselines.get(primary!.name) ?? BLANK_BASELINE };
    }));
  }
  volumes.showCorruption(true);
  const reports = await volumes.report((p) => drive(topo.clock, p), quiesced);
  checkRedundancy(reports, volumes, checker, topo.clock.now(), quiesced);
  return reports;
}

/** The run's firmware limits: its own, with the link supervision flags laid over them. */
export function supervisionLimits(opts: EmulateOptions): Partial<ControllerLimits> {
  return { ...opts.limits, heartbeatMs: opts.heartbeatMs, interruptionMs: opts.interruptionMs, probationMs: opts.probationMs };
}

function startHost(topo: Topology, pair: MirrorPair, opts: EmulateOptions, regionSectors: number): MirrorWorkloads {
  // Writes stay within the smaller copy: a mirror is only as big as its smaller side.
  const geometry = { sectorSize: pair.primaryVolume.sectorSize, sectorCount: Math.min(pair.primaryVolume.sectorCount, pair.secondaryVolume.sectorCount) };
  const server = new ServerWorkload(pair.secondary, pair.lun, {
    perMillion: opts.lockContentionPerMillion,
    regionSectors,
    sectorCount: geometry.sectorCount,
    holdMinMs: opts.rttMs / 2,
    holdMaxMs: opts.rttMs * 4,
  }, topo.random.fork(`server-${pair.secondary.name}`), topo.clock);
  const host = new HostWorkload(pair.primary, pair.lun, geometry, {
    writes: opts.writes, durationMs: opts.durationMs, writeBytes: opts.writeBytes, queueDepth: opts.queueDepth,
    pattern: opts.pattern, readPercent: opts.readPercent, thinkMs: opts.thinkMs,
  }, topo.random.fork(`host-${pair.primary.name}`), topo.clock, (lba, count) => server.onHostWrite(lba, count));
  host.start();
  return { host, server };
}

/**
 * Every volume must end as it should: not failed, not degraded (while spares lasted), copies and
 * parity in agreement (md's check), and no sector left unreadable. Rebuild errors are reported
 * with a volume that did not end optimal (they explain it); a rebuild stopped by a spare that was
 * itself failed on purpose, and then redone, is no error. Unquiesced: only failed volumes.
 */
function checkRedundancy(reports: VolumeReport[], volumes: VolumeSet, checker: ConsistencyChecker, tMs: number, quiesced: boolean): void {
  const errors = volumes.rebuildErrors();
  for (const v of reports) {
    const node = v.name.split('/')[0]!;
    const lun = Number(v.name.slice(-1));
    const flag = (lba: number, message: string): void => checker.report({ invariant: 'volume-redundancy', node, lun, lba, seq: 0, tMs, message });
    if (!quiesced && v.state !== 'failed') continue;
    if (v.state !== 'optimal' || v.mismatches > 0) {
      const why = errors.filter((e) => e.name === v.name).map((e) => `; rebuild failed: ${e.message}`).join('');
      flag(0, `${v.name} (${v.layout}) ended ${v.state} with ${v.mismatches} mismatches and ${v.readErrors} read errors${why}`);
    }
    if (quiesced && v.unreadableSectors > 0) {
      const first = v.firstUnreadable!;
      flag(first.lba, `${v.name} (${v.layout}) has ${v.unreadableSectors} sectors left unreadable at the end (no write or repair fixed them); the first on member ${first.member}, at its LBA ${first.lba}`);
    }
  }
}

/** Runs every closer; rethrows the first failure only when nothing else is being thrown already. */
async function closeAll(closers: (() => Promise<void> | undefined)[], rethrow: boolean): Promise<void> {
  let first: unknown = null;
  for (const close of closers) {
    try {
      await close();
    } catch (error) {
      first ??= error;
    }
  }
  if (first !== null && rethrow) throw first;
}
