import type { VolumeSpec } from '../../host/disks/volume-spec.ts';
import type { DiskFaultItem } from '../faults/disk-fault-plan.ts';
import { emptyLinkFaultPlan, type LinkFaultPlan } from '../faults/link-fault-plan.ts';
import type { HostWorkloadSpec } from '../workload/host-workload.ts';
import type { TopologyOptions } from './topology.ts';

/**
 * Everything an emulation run depends on; a run is a pure function of this object. The host
 * workload's own fields (writes, durationMs, writeBytes, queueDepth, pattern, readPercent) apply to
 * each host.
 */
export interface EmulateOptions
  extends HostWorkloadSpec,
    Pick<TopologyOptions, 'seed' | 'mode' | 'onLockReject' | 'bidirectional' | 'rttMs' | 'bandwidthMbps' | 'lockRegionSectors' | 'limits' | 'mutations'> {
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
   * The fault phase lasts until the hosts are done and the mirrors caught up, but at most this
   * long; then the faults stop and the run must converge within `healMs`.
   */
  faultPhaseMaxMs: number;
  /** Async mode: check write-order fidelity this often during the run (at most 8 checkpoints). */
  checkpointEveryMs: number;
}

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
  sourceVolume: { kind: 'mem', bytes: 64 * 1024 * 1024, sectorSize: 512 },
  targetVolume: { kind: 'mem', bytes: 64 * 1024 * 1024, sectorSize: 512 },
  faults: emptyLinkFaultPlan(),
  diskFaults: [],
  lockContentionPerMillion: 0,
  healMs: 10_000,
  faultPhaseMaxMs: 60_000,
  checkpointEveryMs: 20,
};
