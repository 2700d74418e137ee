import { LOCK_REJECT_POLICIES, MIRROR_MODES } from '../../firmware/mirror/types.ts';
import type { Random } from '../../firmware/ports/random.ts';
import { SeededRandom } from '../../host/random.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from '../emulator/options.ts';
import { FRAME_KINDS, emptyLinkFaultPlan, type FrameFault, type LinkFaultPlan } from '../faults/link-fault-plan.ts';
import { ACCESS_PATTERNS } from '../workload/host-workload.ts';

export interface CampaignSettings {
  /** Writes each host issues per run. */
  writes: number;
  /** Use this fault plan for every seed instead of drawing one. */
  faults: LinkFaultPlan | null;
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
    volumeSectors: 16 * 2048,
    faults: settings.faults ?? drawFaults(r),
    lockContentionPerMillion: r.chance(1, 2) ? pick(r, [10_000, 50_000, 100_000, 200_000]) : 0,
  };
}

function drawFaults(r: Random): LinkFaultPlan {
  const plan = emptyLinkFaultPlan();
  const maybe = (): FrameFault | null => {
    if (!r.chance(1, 2)) return null;
    return { perMillion: pick(r, PER_MILLION), kinds: r.chance(1, 4) ? [pick(r, FRAME_KINDS)] : [] };
  };
  plan.drop = maybe();
  plan.corrupt = maybe();
  plan.duplicate = maybe();
  plan.reorder = maybe();
  plan.delay = maybe();
  plan.delayMaxMs = plan.delay ? pick(r, [0.5, 2, 5]) : 0;
  plan.partitionsDrawn = r.int(3);
  if (r.chance(1, 4)) plan.bandwidth.push({ atMs: 1 + r.int(20), mbps: pick(r, [10, 100, 500]) });
  return plan;
}
