import type { BlockDevice } from '../../../firmware/ports/block-device.ts';
import type { PowerCuttable } from '../power.ts';

/**
 * `optimal`: every member in sync. `degraded`: running on fewer members than it has, still
 * serving everything. `rebuilding`: a spare is being filled in. `failed`: more members lost than
 * the layout tolerates; every request fails.
 */
export type ArrayState = 'optimal' | 'degraded' | 'rebuilding' | 'failed';

/** `rebuilding`: a spare in sync below its rebuild cursor only. */
export type MemberState = 'active' | 'failed' | 'rebuilding';

/**
 * What md keeps in each member's superblock, as plain data: member states and how far a rebuild
 * got (its checkpoint: member sectors rebuilt and flushed). Take it from a stopped array
 * (`superblock()`) and pass it to a new one over the same members to reassemble it; a
 * `rebuilding` member then resumes from its checkpoint (`rebuild(i, null)`).
 */
export interface RaidSuperblock {
  members: { state: MemberState; rebuiltSectors?: number }[];
}

export interface RebuildProgress {
  member: number;
  /** Member sectors rebuilt and flushed (the checkpoint). */
  doneSectors: number;
  totalSectors: number;
}

export interface RebuildOptions {
  /** Resume from this checkpoint (member sectors already rebuilt on the spare). Default 0. */
  fromSector?: number;
  /** Member sectors per step; each step locks its region, copies it, flushes the spare. */
  stepSectors?: number;
  onProgress?: (progress: RebuildProgress) => void;
}

export interface CheckOptions {
  /**
   * Also rewrite what differs (md's `repair`); default false (md's `check`). Either way, a member
   * read error found by the scrub is repaired from redundancy, as md does in `check` too: a
   * latent bad sector is exactly what a scrub is for, and leaving it would turn the next member
   * failure into data loss. What `check` never changes is a mismatch: which copy is right is
   * not knowable, so only `repair` picks one.
   */
  repair?: boolean;
  stepSectors?: number;
}

/** Outcome of a check (scrub). Read errors count failed member reads (one per member per region read). */
export interface CheckResult {
  /**
   * Like md's `mismatch_cnt`: sectors whose copies differ (RAID-1/10), or parity sectors that do
   * not match their data (RAID-5, one per mismatched row of a stripe).
   */
  mismatches: number;
  /** Member reads that failed: a MediaError, or a member found dead (which then shows in the array's state). */
  readErrors: number;
  /** Media errors rewritten from redundancy (the rewrite succeeded: md's corrected errors). */
  readErrorsRepaired: number;
  /**
   * Media errors left in place: no redundancy to rebuild them from (every copy bad there, or a
   * second member missing), or the rewrite failed. Non-zero means data at risk or lost: flag it.
   */
  readErrorsUnrepaired: number;
  /** Member sectors compared (regions with nothing to compare against are skipped). */
  sectorsChecked: number;
  /**
   * Where the mismatches are: the member LBA of each mismatched sector (RAID-1/10) or row
   * (RAID-5) and the member slots compared there, so that a checker can say which member's fault
   * explains each (docs/simulator.md 3). At most {@link CHECK_MISMATCH_PLACES_MAX}; more are
   * counted in `mismatches` only.
   */
  mismatchPlaces: MismatchPlace[];
}

/** One mismatched member sector or row: its member LBA and the member slots that were compared there. */
export interface MismatchPlace {
  lba: number;
  members: number[];
}

/** Most mismatch places a check result names (the rest are only counted). */
export const CHECK_MISMATCH_PLACES_MAX = 4096;

/** A check that found nothing, to add results to. */
export function emptyCheck(): CheckResult {
  return { mismatches: 0, readErrors: 0, readErrorsRepaired: 0, readErrorsUnrepaired: 0, sectorsChecked: 0, mismatchPlaces: [] };
}

/** Adds `b` into `a`. */
export function addCheck(a: CheckResult, b: CheckResult): CheckResult {
  a.mismatches += b.mismatches;
  a.readErrors += b.readErrors;
  a.readErrorsRepaired += b.readErrorsRepaired;
  a.readErrorsUnrepaired += b.readErrorsUnrepaired;
  a.sectorsChecked += b.sectorsChecked;
  for (const p of b.mismatchPlaces) if (a.mismatchPlaces.length < CHECK_MISMATCH_PLACES_MAX) a.mismatchPlaces.push(p);
  return a;
}

/**
 * What an array reports about itself (md's /proc/mdstat and sysfs, as data). The read-error
 * counters are history since the array object was assembled, over every path that met one
 * (reads, writes, checks): `readErrorsUnrepaired` counts events, and a later write may have
 * remapped such a sector since. What is damaged *now* is what a fresh `check()` reports.
 */
export interface RaidStatus {
  level: RaidLevel;
  state: ArrayState;
  members: MemberState[];
  rebuild: RebuildProgress | null;
  readErrorsRepaired: number;
  readErrorsUnrepaired: number;
  /** The last completed check, or null. */
  lastCheck: CheckResult | null;
}

export type RaidLevel = 'raid0' | 'raid1' | 'raid5' | 'raid10';

/** What every array offers beyond being a block device. */
export interface RaidArray extends BlockDevice, PowerCuttable {
  readonly level: RaidLevel;
  readonly state: ArrayState;
  readonly memberCount: number;
  member(index: number): BlockDevice;
  memberState(index: number): MemberState;
  /**
   * Mark member slot `index` failed (mdadm --fail), whatever device sits there now: the original
   * disk, or a spare being rebuilt (whose rebuild then stops). The array goes on degraded if it
   * can. Returns the device that was failed. A failed slot gets no more I/O.
   */
  failMember(index: number): BlockDevice;
  /**
   * Rebuild member `index` onto `spare` (which replaces it), or, with `null`, resume the rebuild
   * of a member assembled as `rebuilding`. I/O goes on meanwhile. Resolves when it is in sync.
   */
  rebuild(index: number, spare: BlockDevice | null, options?: RebuildOptions): Promise<void>;
  rebuildProgress(): RebuildProgress | null;
  check(options?: CheckOptions): Promise<CheckResult>;
  status(): RaidStatus;
  superblock(): RaidSuperblock;
}
