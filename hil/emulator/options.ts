import { resolve } from 'node:path';
import { defaultLockRegionSectors } from '../../firmware/controller/config.ts';
import type { VolumeSpec } from '../../host/disks/volume-spec.ts';
import type { DiskFaultItem } from '../faults/disk-fault-plan.ts';
import { emptyLinkFaultPlan, lateLinkFault, timedFaultsEndMsMax, type LinkFaultPlan } from '../faults/link-fault-plan.ts';
import { UsageError } from '../plan-error.ts';
import type { HostWorkloadSpec } from '../workload/host-workload.ts';
import type { TopologyOptions } from './topology.ts';
import { lunSpec, volumeNames } from './volumes.ts';
import { STALL_MS_MAX } from './watchdog.ts';

/**
 * Everything an emulation run depends on; a run is a pure function of this object. The host
 * workload's own fields (writes, durationMs, writeBytes, queueDepth, pattern, readPercent) apply to
 * each host.
 */
export interface EmulateOptions
  extends HostWorkloadSpec,
    Pick<TopologyOptions, 'seed' | 'mode' | 'onLockReject' | 'bidirectional' | 'rttMs' | 'bandwidthMbps' | 'lockRegionSectors' | 'limits' | 'locks' | 'batch'> {
  /** Data connections of the link (docs/link-supervision.md): 1 or more. */
  connections: number;
  /** Link supervision: heartbeat interval, interruption timeout, probationary interval (virtual ms). */
  heartbeatMs: number;
  interruptionMs: number;
  probationMs: number;
  /** Controller A's volumes (its LUN 0, and LUN 1 in a bidirectional run). */
  sourceVolume: VolumeSpec;
  /** Controller B's volumes. The host writes within the smaller of the two. */
  targetVolume: VolumeSpec;
  faults: LinkFaultPlan;
  diskFaults: DiskFaultItem[];
  /** Chance (parts per million) that a mirrored write finds its region locked by the target's server. */
  lockContentionPerMillion: number;
  /** After the faults stop, everything must drain within this much virtual time (liveness). */
  healMs: number;
  /**
   * The fault phase lasts until the hosts are done, the mirrors caught up and every timed fault
   * happened, but at most this much virtual time (`--fault-phase-max-ms`). When it is reached the
   * hosts stop issuing new writes (the report notes it; it is not a violation), the faults stop,
   * and the run must converge within `healMs` as usual. Every timed fault must fall within it.
   */
  faultPhaseMsMax: number;
  /**
   * Async mode: the mean gap before the first write-order checkpoint; later gaps grow (see
   * `CheckpointSchedule`), so a bounded number of checkpoints spans the whole fault phase.
   */
  checkpointEveryMs: number;
  /**
   * The progress watchdog (`--stall-ms`, docs/simulator.md 1): while work is pending and no fault
   * is active, this much virtual time without a host write completing or a log entry confirmed
   * ends the run with a liveness violation. Default 30,000 (`STALL_MS_DEFAULT`).
   */
  stallMs?: number;
  /**
   * Memory disks (plain, RAID members, hot spares) reorder their writes' completions
   * (`--disk-reorder`, docs/simulator.md 2). Off by default in `emulate`, on in campaigns.
   */
  diskReorder?: boolean;
  /** Scheduler events the run may fire before it is a runaway; default scaled from the workload (`schedulerEventsBudget`). */
  schedulerEventsMax?: number;
}

/** Largest `--fault-phase-max-ms` accepted: a day of virtual time. */
export const FAULT_PHASE_MS_MAX_LIMIT = 86_400_000;
/** Longest `--think-ms`: a minute of virtual time between one request of a lane and the next. */
export const THINK_MS_MAX = 60_000;
/** Largest `--read-percent`: at 100 no write would ever be issued, and the run would only end at the fault phase's cap. */
export const READ_PERCENT_MAX = 99;

export const DEFAULT_EMULATE: Readonly<EmulateOptions> = {
  seed: 1,
  mode: 'speculative',
  onLockReject: 'halt-resume',
  bidirectional: false,
  writes: 5000,
  durationMs: 0,
  writeBytes: 4096,
  queueDepth: 16,
  pattern: 'random',
  readPercent: 0,
  rttMs: 1,
  bandwidthMbps: 1000,
  connections: 2,
  heartbeatMs: 100,
  interruptionMs: 1_000,
  probationMs: 2_000,
  sourceVolume: { kind: 'mem', bytes: 64 * 1024 * 1024, sectorSize: 512 },
  targetVolume: { kind: 'mem', bytes: 64 * 1024 * 1024, sectorSize: 512 },
  faults: emptyLinkFaultPlan(),
  diskFaults: [],
  lockContentionPerMillion: 0,
  healMs: 10_000,
  faultPhaseMsMax: 600_000,
  checkpointEveryMs: 20,
};

/**
 * What no single flag can check alone, checked before anything is built: a {@link UsageError}
 * (exit status 2) saying what was wrong and what is allowed.
 */
export function validateEmulateOptions(o: EmulateOptions): void {
  const [s, t] = [o.sourceVolume, o.targetVolume];
  if (s.sectorSize !== t.sectorSize) {
    throw new UsageError(`the source volume has ${s.sectorSize}-byte sectors and the target ${t.sectorSize}-byte ones; a mirror needs the same sector size on both`);
  }
  if (o.writeBytes % s.sectorSize !== 0) throw new UsageError(`--write-bytes (${o.writeBytes}) must be a multiple of the ${s.sectorSize}-byte sector`);
  if (!Number.isInteger(o.readPercent) || o.readPercent < 0 || o.readPercent > READ_PERCENT_MAX) {
    throw new UsageError(`--read-percent is ${o.readPercent}; allowed 0 to ${READ_PERCENT_MAX} (reads are mixed into a workload of --writes writes, so some share must be writes)`);
  }
  if (o.thinkMs !== undefined && !(o.thinkMs >= 0 && o.thinkMs <= THINK_MS_MAX)) throw new UsageError(`--think-ms is ${o.thinkMs}; allowed 0 to ${THINK_MS_MAX} ms of virtual time`);
  const r = o.lockRegionSectors;
  if (r !== undefined && (!Number.isSafeInteger(r) || r < 1 || (r & (r - 1)) !== 0 || r > 2 ** 30)) {
    throw new UsageError(`--lock-region-sectors is ${r}; allowed a power of two from 1 to 2^30 sectors, no larger than the volume (e.g. 2048: 1 MiB of 512-byte sectors)`);
  }
  if (!(o.faultPhaseMsMax > 0 && o.faultPhaseMsMax <= FAULT_PHASE_MS_MAX_LIMIT)) {
    throw new UsageError(`--fault-phase-max-ms is ${o.faultPhaseMsMax}; allowed above 0 to ${FAULT_PHASE_MS_MAX_LIMIT} ms of virtual time`);
  }
  for (const p of o.faults.partitions) {
    if (p.forMs >= o.healMs * 100) throw new UsageError(`a partition of ${p.forMs} ms would outlast any sensible run; keep partitions shorter than 100 x --heal-ms (${o.healMs * 100} ms)`);
  }
  checkLinkSupervision(o);
  if (o.locks === 'implied' && o.mode === 'sync') {
    throw new UsageError('--locks implied applies to speculative and async mirroring; a sync write waits for its grant, which only an explicit LOCK asks for (use --locks explicit, or another --mode)');
  }
  if (o.stallMs !== undefined && !(o.stallMs > 0 && o.stallMs <= STALL_MS_MAX)) {
    throw new UsageError(`--stall-ms is ${o.stallMs}; allowed above 0 to ${STALL_MS_MAX} ms of virtual time`);
  }
  checkTimedFaults(o);
  checkImagePaths(o);
}

/** Largest number of data connections a run may ask for (the simulated link's own limit). */
export const CONNECTIONS_MAX = 64;

function checkLinkSupervision(o: EmulateOptions): void {
  if (!Number.isInteger(o.connections) || o.connections < 1 || o.connections > CONNECTIONS_MAX) {
    throw new UsageError(`--connections is ${o.connections}; allowed 1 to ${CONNECTIONS_MAX} data connections`);
  }
  if (!(o.heartbeatMs > 0)) throw new UsageError(`--heartbeat-ms is ${o.heartbeatMs}; allowed above 0 ms`);
  if (!(o.interruptionMs >= 2 * o.heartbeatMs)) {
    throw new UsageError(`--interruption-ms (${o.interruptionMs}) must be at least twice --heartbeat-ms (${o.heartbeatMs}): one late heartbeat must not look like an interruption`);
  }
  if (!(o.probationMs >= 0)) throw new UsageError(`--probation-ms is ${o.probationMs}; allowed 0 ms or more`);
}

/** Every timed fault must happen within the fault phase: after it, faults have stopped. */
function checkTimedFaults(o: EmulateOptions): void {
  const max = o.faultPhaseMsMax;
  const late = (what: string): UsageError =>
    new UsageError(`${what}, after the fault phase's maximum of ${max} ms (--fault-phase-max-ms); raise --fault-phase-max-ms or move the fault earlier`);
  for (const f of o.diskFaults) if (f.kind === 'fail' && f.atMs > max) throw late(`--disk-faults: fail=${f.side}:${f.member}@${f.atMs}ms is at ${f.atMs} ms`);
  for (const f of o.diskFaults) if (f.kind === 'power' && f.atMs > max) throw late(`--disk-faults: power=${f.side}@${f.atMs}ms is at ${f.atMs} ms`);
  for (const p of o.faults.partitions) if (p.atMs + p.forMs > max) throw late(`--faults: partition=${p.atMs}ms+${p.forMs}ms ends at ${p.atMs + p.forMs} ms`);
  for (const b of o.faults.bandwidth) if (b.atMs > max) throw late(`--faults: bandwidth=${b.mbps}@${b.atMs}ms is at ${b.atMs} ms`);
  const lateItem = lateLinkFault(o.faults, max);
  if (lateItem !== null) throw late(lateItem);
  const end = timedFaultsEndMsMax(o.faults);
  if (end > max) throw late(`--faults: partition=${o.faults.partitionsDrawn} (drawn from the seed) may end as late as ${end} ms`);
}

/** An image file can back one volume only (it is locked while open): refuse a plan that names one twice. */
function checkImagePaths(o: EmulateOptions): void {
  const seen = new Map<string, string>();
  for (const [name, side] of volumeNames(o.bidirectional)) {
    const spec = lunSpec(side === 'source' ? o.sourceVolume : o.targetVolume, name);
    if (spec.kind !== 'file') continue;
    const path = resolve(spec.path);
    const other = seen.get(path);
    if (other !== undefined) {
      throw new UsageError(`volumes ${other} and ${name} would both use the image ${spec.path}; a mirror needs two copies: give --source-volume and --target-volume different image files`);
    }
    seen.set(path, name);
  }
}

/**
 * The lock region a run uses: `--lock-region-sectors`, or the firmware's default (1 MiB), but
 * never more than the largest power of two within the smaller volume (`sectors`): a region past
 * the end of a small volume would make every LOCK name sectors that do not exist.
 */
export function lockRegionFor(o: EmulateOptions, sectors: number): number {
  return o.lockRegionSectors ?? Math.min(defaultLockRegionSectors(o.sourceVolume.sectorSize), 2 ** Math.floor(Math.log2(sectors)));
}

/** Checks that need the built volumes' capacity (in sectors of the smaller copy). */
export function validateAgainstVolumes(o: EmulateOptions, sectors: number): void {
  const bytes = sectors * o.sourceVolume.sectorSize;
  if (o.writeBytes > bytes) throw new UsageError(`--write-bytes (${o.writeBytes}) is larger than the smaller volume (${bytes} bytes)`);
  if (o.lockRegionSectors !== undefined && o.lockRegionSectors > sectors) {
    throw new UsageError(`--lock-region-sectors (${o.lockRegionSectors}) is larger than the smaller volume (${sectors} sectors); allowed a power of two up to ${2 ** Math.floor(Math.log2(sectors))}`);
  }
}
