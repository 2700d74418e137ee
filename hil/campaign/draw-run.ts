import { LOCK_REJECT_POLICIES, MIRROR_MODES } from '../../firmware/mirror/types.ts';
import type { FirmwareMutation } from '../../firmware/mutations.ts';
import type { Random } from '../../firmware/ports/random.ts';
import { parseVolumeSpec, type VolumeSpec } from '../../host/disks/volume-spec.ts';
import { SeededRandom } from '../../host/random.ts';
import type { DiskFaultItem, Side } from '../faults/disk-fault-plan.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from '../emulator/options.ts';
import { FRAME_KINDS, emptyLinkFaultPlan, type FrameFault, type LinkFaultPlan } from '../faults/link-fault-plan.ts';
import { ACCESS_PATTERNS } from '../workload/host-workload.ts';

export interface CampaignSettings {
  /** Writes each host issues per run. */
  writes: number;
  /** Use this fault plan for every seed instead of drawing one. */
  faults: LinkFaultPlan | null;
  /**
   * Testing aid, never set by the CLI: plant these deliberate firmware bugs in every run, so that
   * tests can watch a campaign find and report failures. A reproduce command names them in a
   * trailing shell comment, since no flag can set them.
   */
  mutations?: readonly FirmwareMutation[];
}

const pick = <T>(r: Random, items: readonly T[]): T => items[r.int(items.length)]!;
const PER_MILLION = [500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000] as const;

/**
 * Swarm testing (Groce et al.): every seed draws its own configuration, so that each run stresses
 * a different mix and rare combinations get their turn. Mode and lock-reject policy rotate with the
 * seed, so every consecutive six seeds cover all six combinations; everything else (fault kinds and
 * probabilities, targeted frame kinds, partitions, bandwidth drops, contention, direction, queue
 * depth, access pattern, RTT) is drawn from the seed.
 */
export function drawRun(seed: number, settings: CampaignSettings): EmulateOptions {
  const r = new SeededRandom(seed).fork('campaign');
  const mode = MIRROR_MODES[seed % MIRROR_MODES.length]!;
  const onLockReject = LOCK_REJECT_POLICIES[Math.floor(seed / MIRROR_MODES.length) % LOCK_REJECT_POLICIES.length]!;
  return {
    ...DEFAULT_EMULATE,
    seed, mode, onLockReject,
    writes: settings.writes,
    bidirectional: r.chance(1, 4),
    queueDepth: pick(r, [1, 4, 16, 32]),
    pattern: pick(r, ACCESS_PATTERNS),
    rttMs: pick(r, [0.2, 1, 2, 5]),
    faults: settings.faults ?? drawFaults(r),
    ...drawVolumes(r),
    lockContentionPerMillion: r.chance(1, 2) ? pick(r, [10_000, 50_000, 100_000, 200_000]) : 0,
    ...(settings.mutations && settings.mutations.length > 0 ? { mutations: settings.mutations } : {}),
  };
}

/** Volumes of 16 MiB each, plain or RAID; all the same capacity, so the mirror is whole. */
const VOLUMES = ['mem:16MiB', 'mem:16MiB', 'raid1:2x16MiB', 'raid5:3x8MiB:chunk=16KiB', 'raid10:4x8MiB:chunk=16KiB'] as const;

/**
 * Volumes and disk faults, never beyond what a layout tolerates: at most one member failure per
 * redundant array (rebuilt onto a hot spare), bad sectors only on an array that keeps its
 * redundancy (a bad sector under a failed member's stripe would be a double fault), a slow member
 * anywhere. Silent corruption is not drawn: no RAID level here can tell which copy is right.
 */
function drawVolumes(r: Random): { sourceVolume: VolumeSpec; targetVolume: VolumeSpec; diskFaults: DiskFaultItem[] } {
  const specs = { source: parseVolumeSpec(pick(r, VOLUMES)), target: parseVolumeSpec(pick(r, VOLUMES)) };
  const diskFaults: DiskFaultItem[] = [];
  for (const side of ['source', 'target'] as Side[]) {
    const spec = specs[side];
    const members = 'members' in spec ? spec.members : 1;
    const redundant = members > 1 && spec.kind !== 'raid0';
    const failing = redundant && r.chance(1, 3);
    if (failing) diskFaults.push({ kind: 'fail', side, member: r.int(members), atMs: 1 + r.int(30) });
    if (redundant && !failing && r.chance(1, 4)) diskFaults.push({ kind: 'bad', side, member: r.int(members), count: 1 + r.int(16) });
    if (r.chance(1, 6)) diskFaults.push({ kind: 'slow', side, member: r.int(members), factor: 2 + r.int(7) });
  }
  return { sourceVolume: specs.source, targetVolume: specs.target, diskFaults };
}

function drawFaults(r: Random): LinkFaultPlan {
  const plan = emptyLinkFaultPlan();
  const maybe = (): FrameFault[] => {
    if (!r.chance(1, 2)) return [];
    return [{ perMillion: pick(r, PER_MILLION), kinds: r.chance(1, 4) ? [pick(r, FRAME_KINDS)] : [] }];
  };
  plan.drop = maybe();
  plan.corrupt = maybe();
  plan.duplicate = maybe();
  plan.reorder = maybe();
  // The draws stay in the order they always had (the delay's maximum last), so a seed keeps its plan.
  const delay = maybe();
  plan.delay = delay.map((d) => ({ ...d, maxMs: pick(r, [0.5, 2, 5]) }));
  plan.partitionsDrawn = r.int(3);
  if (r.chance(1, 4)) plan.bandwidth.push({ atMs: 1 + r.int(20), mbps: pick(r, [10, 100, 500]) });
  return plan;
}
