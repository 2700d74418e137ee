import { LOCK_REJECT_POLICIES, MIRROR_MODES } from '../../firmware/mirror/types.ts';
import type { Random } from '../../firmware/ports/random.ts';
import { parseVolumeSpec, type VolumeSpec } from '../../host/disks/volume-spec.ts';
import { SeededRandom } from '../../host/random.ts';
import type { DiskFaultItem, Side } from '../faults/disk-fault-plan.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from '../emulator/options.ts';
import { emptyLinkFaultPlan, type FrameFault, type LinkFaultPlan } from '../faults/link-fault-plan.ts';
import { ACCESS_PATTERNS } from '../workload/host-workload.ts';

export interface CampaignSettings {
  /** Writes each host issues per run. */
  writes: number;
  /** Use this fault plan for every seed instead of drawing one. */
  faults: LinkFaultPlan | null;
  /** Memory disks reorder their completions (docs/simulator.md 2); default true (`--no-disk-reorder` turns it off). */
  diskReorder?: boolean;
}

const pick = <T>(r: Random, items: readonly T[]): T => items[r.int(items.length)]!;
const PER_MILLION = [500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000] as const;

/**
 * Swarm testing (Groce et al.): every seed draws its own configuration, so that each run stresses
 * a different mix and rare combinations get their turn. Mode and lock-reject policy rotate with the
 * seed, so every consecutive six seeds cover all six combinations; everything else (fault kinds and
 * probabilities, targeted frame kinds, partitions, bandwidth drops, crashes and power cuts,
 * contention, direction, queue depth, access pattern, RTT) is drawn from the seed.
 */
export function drawRun(seed: number, settings: CampaignSettings): EmulateOptions {
  const r = new SeededRandom(seed).fork('campaign');
  const mode = MIRROR_MODES[seed % MIRROR_MODES.length]!;
  const onLockReject = LOCK_REJECT_POLICIES[Math.floor(seed / MIRROR_MODES.length) % LOCK_REJECT_POLICIES.length]!;
  return withCrashes({
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
    ...drawLinkShape(new SeededRandom(seed).fork('link-shape')),
    ...(settings.diskReorder === false ? {} : { diskReorder: true }),
    ...drawWire(new SeededRandom(seed).fork('wire'), mode),
  });
}

/**
 * The disk faults a run's crashes leave room for: with any crash, no silent corruption (a resync
 * that copies everything reads the rotten sectors and carries the rot to the copy, the double
 * fault of docs/simulator.md 3); on a side a power cut strikes, no member failure and no bad
 * sectors (a cut while an array is degraded or rebuilding opens the RAID-5 write hole and cuts the
 * rebuild short: double faults no layout here survives). The link plan stays as drawn or given.
 */
function withCrashes(o: EmulateOptions): EmulateOptions {
  const crashes = o.faults.crashes;
  if (crashes.length === 0) return o;
  const powered = new Set(crashes.filter((c) => c.power).map((c) => c.side));
  const diskFaults = o.diskFaults.filter((f) => f.kind !== 'corrupt' && !(powered.has(f.side) && (f.kind === 'fail' || f.kind === 'bad')));
  return { ...o, diskFaults };
}

/**
 * How the writes' locks travel and whether entries batch (docs/implied-locks.md), from a stream of
 * their own so that every other draw of a seed keeps its value: implied locks on half the
 * speculative and async seeds (sync always locks explicitly), batching on half of all seeds. The
 * defaults (explicit, no batching) are left out, as the reproduce command leaves them out.
 */
function drawWire(s: Random, mode: EmulateOptions['mode']): Pick<EmulateOptions, 'locks' | 'batch'> {
  const implied = s.chance(1, 2) && mode !== 'sync';
  const batch = s.chance(1, 2);
  return { ...(implied ? { locks: 'implied' as const } : {}), ...(batch ? { batch: true } : {}) };
}

/**
 * How many data connections the link has (1, as on a serial line, to 3), and now and then a faster
 * heartbeat (the interruption timeout and probation scale with it), from a stream of their own so
 * that every other draw of a seed keeps its value.
 */
function drawLinkShape(s: Random): Pick<EmulateOptions, 'connections' | 'heartbeatMs' | 'interruptionMs' | 'probationMs'> {
  const connections = 1 + s.int(3);
  if (!s.chance(1, 4)) return { connections, heartbeatMs: DEFAULT_EMULATE.heartbeatMs, interruptionMs: DEFAULT_EMULATE.interruptionMs, probationMs: DEFAULT_EMULATE.probationMs };
  const heartbeatMs = pick(s, [10, 20, 50]);
  return { connections, heartbeatMs, interruptionMs: heartbeatMs * 10, probationMs: heartbeatMs * 20 };
}

/** Volumes of 16 MiB each, plain or RAID; all the same capacity, so the mirror is whole. */
const VOLUMES = ['mem:16MiB', 'mem:16MiB', 'raid1:2x16MiB', 'raid5:3x8MiB:chunk=16KiB', 'raid10:4x8MiB:chunk=16KiB'] as const;

/**
 * Volumes and disk faults, never beyond what a layout tolerates: at most one member failure per
 * redundant array (rebuilt onto a hot spare), bad sectors only on an array that keeps its
 * redundancy (a bad sector under a failed member's stripe would be a double fault), a slow member
 * anywhere. Silent corruption only on a redundant array with no other fault on a member: the
 * final check finds it and the checker attributes each mismatch to the corrupted member
 * (docs/simulator.md 3); rebuilding or repairing a bad sector from a rotted copy would spread
 * the rot into the pristine data, a double fault no layout here survives.
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
    const bad = redundant && !failing && r.chance(1, 4);
    if (bad) diskFaults.push({ kind: 'bad', side, member: r.int(members), count: 1 + r.int(16) });
    if (r.chance(1, 6)) diskFaults.push({ kind: 'slow', side, member: r.int(members), factor: 2 + r.int(7) });
    if (redundant && !failing && !bad && r.chance(1, 3)) diskFaults.push({ kind: 'corrupt', side, member: r.int(members), count: 1 + r.int(32) });
  }
  return { sourceVolume: specs.source, targetVolume: specs.target, diskFaults };
}

/**
 * The frame kinds per-frame faults were drawn from before heartbeats, batches and the resync
 * exchange existed, written out so that no new frame type changes them: the same list keeps older
 * seeds' plans. (A fault drawn for every kind strikes the newer frames too.)
 */
const KINDS_DRAWN = ['HELLO', 'LOCK', 'WRITE', 'UNLOCK', 'ACK', 'LOCK_GRANTED', 'LOCK_REJECTED', 'NAK'] as const;

function drawFaults(r: Random): LinkFaultPlan {
  const plan = emptyLinkFaultPlan();
  const maybe = (): FrameFault[] => {
    if (!r.chance(1, 2)) return [];
    return [{ perMillion: pick(r, PER_MILLION), kinds: r.chance(1, 4) ? [pick(r, KINDS_DRAWN)] : [] }];
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
  drawSilentFailures(r.fork('link-supervision'), plan);
  drawCrashes(r.fork('crashes'), plan);
  return plan;
}

/** How long a drawn crash keeps its controller down (ms): shorter and longer than the interruption timeouts drawn. */
const CRASH_DOWN_MS = [5, 30, 100, 500, 2_000] as const;

/**
 * Crashes and power cuts (docs/tag-tables.md, "Crash and power cut in the simulator"), from a
 * stream of their own so that every other draw of a seed keeps its value, in every mode: a crash
 * on one seed in three, a power cut on one in four, each of a side drawn from both, striking in
 * the first 60 ms (while the hosts still write) and keeping the controller down for one of
 * {@link CRASH_DOWN_MS}. When both strike one side, the later waits until the side is back.
 */
function drawCrashes(s: Random, plan: LinkFaultPlan): void {
  for (const power of [false, true]) {
    if (!s.chance(1, power ? 4 : 3)) continue;
    const side = s.chance(1, 2) ? 'source' : 'target';
    const downForMs = pick(s, CRASH_DOWN_MS);
    let atMs = 1 + s.int(60);
    const earlier = plan.crashes.find((c) => c.side === side);
    if (earlier !== undefined) atMs = Math.max(atMs, earlier.atMs + earlier.downForMs + 1 + s.int(50));
    plan.crashes.push({ side, atMs, downForMs, power });
  }
}

/**
 * The failures a link supervisor has to notice for itself (docs/simulated-link.md 5), drawn from a
 * stream of their own so that every draw before them, and every draw of the run after them, keeps
 * its value: an older seed keeps its plan and gains these. They start in the first 50 ms, while
 * even the fastest run's writes still flow. Cuts last 0.2 s to 6 s, on both sides of the default
 * interruption timeout (1 s), so some are ridden out by retransmission and others take the link
 * down, through probation (2 s) and back. Flap periods run from well under to just under twice
 * the probation: each up half is too short to pass it. The controllers are the emulator's A and B.
 */
function drawSilentFailures(s: Random, plan: LinkFaultPlan): void {
  const startMs = (): number => 1 + s.int(50);
  const cutMs = (): number => 200 + s.int(5_801);
  if (s.chance(1, 3)) {
    const first = { atMs: startMs(), forMs: cutMs() };
    plan.silent.push(first);
    if (s.chance(1, 3)) plan.silent.push({ atMs: first.atMs + first.forMs + 500 + s.int(2_501), forMs: cutMs() });
  }
  if (s.chance(1, 6)) {
    const [from, to] = s.chance(1, 2) ? ['A', 'B'] : ['B', 'A'];
    plan.oneway.push({ from: from!, to: to!, atMs: startMs(), forMs: cutMs() });
  }
  if (s.chance(1, 4)) plan.hblossPerMillion = pick(s, [50_000, 200_000, 500_000]);
  if (s.chance(1, 6)) plan.flaps.push({ cycles: 2 + s.int(4), periodMs: pick(s, [300, 1_000, 2_500, 3_500]), atMs: startMs() });
  if (s.chance(1, 5)) plan.resetPerMillion = pick(s, [500, 2_000, 10_000]);
}
