import { MirrorlabError } from '../../firmware/errors.ts';
import type { Random } from '../../firmware/ports/random.ts';
import { checkRatio, type Ratio } from './ratio.ts';

/** Bit rot in one sector: reads return byte `byte` XORed with `mask` (non-zero). */
export interface SectorCorruption {
  lba: number;
  byte: number;
  mask: number;
}

/**
 * The faults of one disk, as plain data (docs/conventions.md 7): set explicitly, or drawn from the run's
 * seed by {@link drawDiskFaultPlan}. A `FaultyDisk` lays them over a device without touching its
 * contents, so the device underneath always holds what *should* be there.
 *
 * Lost unflushed writes at a power cut are not here: they are a property of the disk's volatile
 * cache (`MemoryDisk`'s `writeCacheBytesMax` and `unflushedLoss`).
 */
export interface DiskFaultPlan {
  /** Reads touching these LBAs fail with a MediaError naming the first; a write remaps them (dm-dust). */
  badSectors?: number[];
  /** Silent corruption: reads return flipped bits; a write of the sector clears it. */
  corruptSectors?: SectorCorruption[];
  /** From this virtual time (ms) on, every request fails with DeviceFailedError. */
  failAtMs?: number;
  /** Service times are multiplied by this (>= 1): a slow disk. */
  slowFactor?: number;
}

/** What to draw: counts, a time window and chances as ratios. */
export interface DiskFaultDraw {
  badSectors?: number;
  corruptSectors?: number;
  /** With this chance the disk fails, at a time drawn uniformly in [0, failWithinMs). */
  fail?: { chance: Ratio; withinMs: number };
  /** With this chance the disk is slow, by an integer factor drawn in [2, factorMax]. */
  slow?: { chance: Ratio; factorMax: number };
}

/** Limit on faults of one kind in one plan, so a hostile plan cannot eat the memory. */
export const FAULTS_PER_KIND_MAX = 1_000_000;

export class DiskFaultPlanError extends MirrorlabError {
  constructor(message: string) {
    super('ML_ERR_DISK_FAULT_PLAN', message);
  }
}

/** Draws a plan from `random` (fork it per disk: `random.fork('disk:source.m1')`). */
export function drawDiskFaultPlan(random: Random, geometry: { sectorCount: number; sectorSize: number }, draw: DiskFaultDraw): DiskFaultPlan {
  const plan: DiskFaultPlan = {};
  const bad = new Set<number>();
  for (let i = 0; i < (draw.badSectors ?? 0); i++) bad.add(random.int(geometry.sectorCount));
  if (bad.size > 0) plan.badSectors = [...bad].sort((a, b) => a - b);
  const corrupt: SectorCorruption[] = [];
  for (let i = 0; i < (draw.corruptSectors ?? 0); i++) {
    corrupt.push({ lba: random.int(geometry.sectorCount), byte: random.int(geometry.sectorSize), mask: 1 + random.int(255) });
  }
  if (corrupt.length > 0) plan.corruptSectors = corrupt;
  if (draw.fail) {
    checkRatio(draw.fail.chance, 'fail.chance');
    if (random.chance(draw.fail.chance.numerator, draw.fail.chance.denominator)) plan.failAtMs = random.int(Math.max(1, Math.floor(draw.fail.withinMs)));
  }
  if (draw.slow) {
    checkRatio(draw.slow.chance, 'slow.chance');
    if (random.chance(draw.slow.chance.numerator, draw.slow.chance.denominator)) plan.slowFactor = 2 + random.int(Math.max(1, draw.slow.factorMax - 1));
  }
  return plan;
}

/** Checks a plan (public input: it may come from a file or the command line) against a disk. */
export function validateDiskFaultPlan(plan: DiskFaultPlan, geometry: { sectorCount: number; sectorSize: number }): void {
  const lbaOk = (lba: unknown) => Number.isSafeInteger(lba) && (lba as number) >= 0 && (lba as number) < geometry.sectorCount;
  const where = `(the disk has sectors 0..${geometry.sectorCount - 1})`;
  for (const lba of plan.badSectors ?? []) {
    if (!lbaOk(lba)) throw new DiskFaultPlanError(`bad sector ${String(lba)} is not an LBA of the disk ${where}`);
  }
  for (const c of plan.corruptSectors ?? []) {
    if (!lbaOk(c.lba)) throw new DiskFaultPlanError(`corrupt sector ${String(c.lba)} is not an LBA of the disk ${where}`);
    if (!Number.isInteger(c.byte) || c.byte < 0 || c.byte >= geometry.sectorSize) throw new DiskFaultPlanError(`corruption byte ${c.byte} must be in 0..${geometry.sectorSize - 1}`);
    if (!Number.isInteger(c.mask) || c.mask < 1 || c.mask > 255) throw new DiskFaultPlanError(`corruption mask ${c.mask} must be an integer in 1..255`);
  }
  if ((plan.badSectors?.length ?? 0) > FAULTS_PER_KIND_MAX || (plan.corruptSectors?.length ?? 0) > FAULTS_PER_KIND_MAX) {
    throw new DiskFaultPlanError(`at most ${FAULTS_PER_KIND_MAX} faults of one kind per disk`);
  }
  if (plan.failAtMs !== undefined && !(Number.isFinite(plan.failAtMs) && plan.failAtMs >= 0)) throw new DiskFaultPlanError(`failAtMs must be a time >= 0 in ms, got ${plan.failAtMs}`);
  if (plan.slowFactor !== undefined && !(Number.isFinite(plan.slowFactor) && plan.slowFactor >= 1)) throw new DiskFaultPlanError(`slowFactor must be a number >= 1, got ${plan.slowFactor}`);
}
