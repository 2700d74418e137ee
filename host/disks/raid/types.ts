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
  /** Rewrite what differs (md's `repair`); default false (md's `check`: changes nothing). */
  repair?: boolean;
  stepSectors?: number;
}

/** Outcome of a check (scrub). */
export interface CheckResult {
  /**
   * Like md's `mismatch_cnt`: sectors whose copies differ (RAID-1/10), or parity sectors that do
   * not match their data (RAID-5, one per mismatched row of a stripe).
   */
  mismatches: number;
  /**
   * Member regions that could not be read (a MediaError, or a member found dead); with `repair`,
   * a readable-again region is rewritten from redundancy (md fixes read errors even in `check`;
   * here `check` changes nothing at all, so that it can be trusted as a pure measurement).
   */
  readErrors: number;
  /** Member sectors compared (regions with nothing to compare against are skipped). */
  sectorsChecked: number;
}

export type RaidLevel = 'raid0' | 'raid1' | 'raid5' | 'raid10';

/** What every array offers beyond being a block device. */
export interface RaidArray extends BlockDevice, PowerCuttable {
  readonly level: RaidLevel;
  readonly state: ArrayState;
  readonly memberCount: number;
  member(index: number): BlockDevice;
  memberState(index: number): MemberState;
  /** Mark a member failed (mdadm --fail); the array goes on degraded if it can. */
  failMember(index: number): void;
  /**
   * Rebuild member `index` onto `spare` (which replaces it), or, with `null`, resume the rebuild
   * of a member assembled as `rebuilding`. I/O goes on meanwhile. Resolves when it is in sync.
   */
  rebuild(index: number, spare: BlockDevice | null, options?: RebuildOptions): Promise<void>;
  rebuildProgress(): RebuildProgress | null;
  check(options?: CheckOptions): Promise<CheckResult>;
  superblock(): RaidSuperblock;
}
