import { assert } from '../../../firmware/errors.ts';
import { DeviceFailedError, OutOfRangeError, checkRange, sectorsOf, type BlockDevice } from '../../../firmware/ports/block-device.ts';
import type { HostClock } from '../../clock/clock.ts';
import { rejectLater } from '../later.ts';
import { RangeLock } from '../range-lock.ts';
import { ArrayFailedError, ArrayStoppedError, RaidConfigError } from './errors.ts';
import { Members } from './members.ts';
import {
  addCheck, emptyCheck,
  type ArrayState, type CheckOptions, type CheckResult, type MemberState, type RaidArray, type RaidLevel, type RaidStatus,
  type RaidSuperblock, type RebuildOptions, type RebuildProgress,
} from './types.ts';

/** Member sectors per rebuild or check step unless told otherwise. */
export const RAID_STEP_SECTORS_DEFAULT = 1024;
/** Most members an array may have (md allows more; nobody tests that many). */
export const RAID_MEMBERS_MAX = 32;

export interface RaidOptions {
  name: string;
  members: readonly BlockDevice[];
  clock: HostClock;
  /** Reassemble from a stopped array's superblock (member states, rebuild checkpoint). */
  superblock?: RaidSuperblock;
}

/**
 * What RAID-0, -1 and -5 share: members and their states, the array state, the region lock,
 * and the rebuild and check drivers, which walk the members in steps and leave the work of one
 * region to the layout (`rebuildRegion`, `checkRegion`).
 */
export abstract class RaidBase implements RaidArray {
  abstract readonly level: RaidLevel;
  readonly name: string;
  readonly sectorSize: number;
  abstract readonly sectorCount: number;
  protected readonly members: Members;
  protected readonly clock: HostClock;
  /** Locks regions in the layout's own unit (RAID-1: sectors; RAID-5: stripes). */
  protected readonly locks = new RangeLock();
  /** Member failures tolerated. */
  protected abstract readonly tolerance: number;
  /** Member sectors the layout uses (what a rebuild copies). */
  protected abstract readonly memberSectorsUsed: number;
  private failedFor: string | null = null;
  private progress: RebuildProgress | null = null;
  private readErrorsRepaired = 0;
  private readErrorsUnrepaired = 0;
  private lastCheck: CheckResult | null = null;

  constructor(options: RaidOptions, membersMin: number) {
    const { name, members } = options;
    if (members.length < membersMin || members.length > RAID_MEMBERS_MAX) {
      throw new RaidConfigError('ML_ERR_RAID_CONFIG', `${name}: needs ${membersMin} to ${RAID_MEMBERS_MAX} members, got ${members.length}`);
    }
    const sectorSize = members[0]!.sectorSize;
    if (members.some((m) => m.sectorSize !== sectorSize)) {
      throw new RaidConfigError('ML_ERR_RAID_CONFIG', `${name}: members have different sector sizes (${members.map((m) => m.sectorSize).join(', ')})`);
    }
    this.name = name;
    this.sectorSize = sectorSize;
    this.clock = options.clock;
    this.members = new Members(name, members, options.clock, options.superblock);
  }

  get memberCount(): number {
    return this.members.count;
  }

  get state(): ArrayState {
    if (this.failedFor !== null || this.members.missing() > this.tolerance) return 'failed';
    if (this.members.has('rebuilding')) return 'rebuilding';
    return this.members.has('failed') ? 'degraded' : 'optimal';
  }

  member(index: number): BlockDevice {
    return this.members.device(index);
  }

  memberState(index: number): MemberState {
    return this.members.state(index);
  }

  failMember(index: number): BlockDevice {
    assert(Number.isInteger(index) && index >= 0 && index < this.members.count, `${this.name}: no member ${index}`);
    this.members.markFailed(index);
    return this.members.device(index);
  }

  status(): RaidStatus {
    return {
      level: this.level,
      state: this.state,
      members: Array.from({ length: this.members.count }, (_, i) => this.members.state(i)),
      rebuild: this.rebuildProgress(),
      readErrorsRepaired: this.readErrorsRepaired,
      readErrorsUnrepaired: this.readErrorsUnrepaired,
      lastCheck: this.lastCheck === null ? null : { ...this.lastCheck },
    };
  }

  superblock(): RaidSuperblock {
    return this.members.superblock();
  }

  rebuildProgress(): RebuildProgress | null {
    return this.progress === null ? null : { ...this.progress };
  }

  powerCut(): void {
    this.members.powerCut();
  }

  abstract read(lba: number, count: number): Promise<Uint8Array>;
  abstract write(lba: number, data: Uint8Array): Promise<void>;

  flush(): Promise<void> {
    const refusal = this.refusal(0, 1);
    if (refusal !== null) return rejectLater(this.clock, refusal);
    return this.members.flushAll().then(() => this.throwIfFailed());
  }

  async rebuild(index: number, spare: BlockDevice | null, options: RebuildOptions = {}): Promise<void> {
    this.throwIfUnusable();
    if (this.tolerance === 0) throw new RaidConfigError('ML_ERR_RAID_NO_REDUNDANCY', `${this.name}: a ${this.level} array has no redundancy to rebuild from`);
    if (this.progress !== null) throw new RaidConfigError('ML_ERR_RAID_BUSY', `${this.name}: member ${this.progress.member} is being rebuilt already`);
    const total = this.memberSectorsUsed;
    const start = this.startRebuild(index, spare, options.fromSector);
    const step = options.stepSectors ?? RAID_STEP_SECTORS_DEFAULT;
    assert(Number.isSafeInteger(step) && step >= 1, `${this.name}: stepSectors must be a positive integer`);
    this.progress = { member: index, doneSectors: start, totalSectors: total };
    const target = this.members.device(index);
    try {
      for (let done = start; done < total; ) {
        this.throwIfRebuildStopped(index, target);
        const n = Math.min(step, total - done);
        await this.rebuildRegion(index, done, n);
        await this.members.flush(index); // the checkpoint must not run ahead of what is durable
        this.throwIfRebuildStopped(index, target);
        done += n;
        this.members.advance(index, done);
        this.progress = { member: index, doneSectors: done, totalSectors: total };
        options.onProgress?.({ ...this.progress });
      }
      this.members.markInSync(index);
    } finally {
      this.progress = null;
    }
  }

  /**
   * md's `check` (or, with `repair`, its `repair`), region by region under each region's lock.
   * Member read errors are rewritten from redundancy in both modes (see {@link CheckOptions}),
   * and counted in the result and in {@link status}.
   */
  async check(options: CheckOptions = {}): Promise<CheckResult> {
    this.throwIfUnusable();
    const step = options.stepSectors ?? RAID_STEP_SECTORS_DEFAULT;
    assert(Number.isSafeInteger(step) && step >= 1, `${this.name}: stepSectors must be a positive integer`);
    const total = emptyCheck();
    for (let start = 0; start < this.memberSectorsUsed; ) {
      const n = this.regionAt(start, step);
      addCheck(total, await this.checkRegion(start, n, options.repair ?? false));
      start += n;
    }
    this.noteReadErrors(total.readErrorsRepaired, total.readErrorsUnrepaired);
    // A repair is done when it is durable: otherwise a second power cut could undo a resync.
    if (options.repair === true || total.readErrorsRepaired > 0) await this.members.flushAll();
    this.lastCheck = { ...total };
    return total;
  }

  /**
   * The check region starting at `start`: `step` sectors, but ending at a rebuilding member's
   * cursor if one falls inside, so that the part the member already has in sync is checked too.
   */
  private regionAt(start: number, step: number): number {
    let end = Math.min(start + step, this.memberSectorsUsed);
    for (let i = 0; i < this.members.count; i++) {
      const cursor = this.members.cursor(i);
      if (this.members.state(i) === 'rebuilding' && cursor > start && cursor < end) end = cursor;
    }
    return end - start;
  }

  /** Copies member sectors `[start, start + count)` of member `index` from redundancy, under the region's lock. */
  protected abstract rebuildRegion(index: number, start: number, count: number): Promise<void>;
  /** Compares (and with `repair`, fixes) member sectors `[start, start + count)`, under the region's lock. */
  protected abstract checkRegion(start: number, count: number, repair: boolean): Promise<CheckResult>;

  /** Counts member read errors (for {@link status}): rewritten from redundancy, or left in place. */
  protected noteReadErrors(repaired: number, unrepaired: number): void {
    this.readErrorsRepaired += repaired;
    this.readErrorsUnrepaired += unrepaired;
  }

  /**
   * A rebuild goes on only while its slot is still `rebuilding` onto the same spare: a member
   * failed meanwhile (`failMember`, or the spare died) must not be marked in sync at the end.
   */
  private throwIfRebuildStopped(index: number, spare: BlockDevice): void {
    if (this.members.isStopped) throw new ArrayStoppedError(this.name);
    if (this.members.state(index) !== 'rebuilding' || this.members.device(index) !== spare) {
      throw new DeviceFailedError(spare.name, `failed while being rebuilt as member ${index} of ${this.name}; the rebuild stopped`);
    }
  }

  /** The error a request must fail with now, or null: validation first, then array state. */
  protected refusal(lba: number, count: number, data?: Uint8Array): unknown {
    try {
      checkRange(this, lba, data === undefined ? count : sectorsOf(this, data));
    } catch (error) {
      return error;
    }
    if (this.members.isStopped) return new ArrayStoppedError(this.name);
    if (this.state === 'failed') return this.failure();
    return null;
  }

  protected throwIfUnusable(): void {
    if (this.members.isStopped) throw new ArrayStoppedError(this.name);
    if (this.state === 'failed') throw this.failure();
  }

  /** Called after member errors: fails the array (for good) if it lost more than it tolerates. */
  protected throwIfFailed(): void {
    if (this.members.isStopped) throw new ArrayStoppedError(this.name);
    if (this.members.missing() > this.tolerance) throw this.failure();
  }

  private failure(): ArrayFailedError {
    this.failedFor ??= `${this.members.missing()} of ${this.members.count} members missing, ${this.tolerance} tolerated`;
    return new ArrayFailedError(this.name, this.failedFor);
  }

  private startRebuild(index: number, spare: BlockDevice | null, fromSector = 0): number {
    assert(index >= 0 && index < this.members.count, `${this.name}: no member ${index}`);
    if (spare === null) {
      if (this.members.state(index) !== 'rebuilding') {
        throw new RaidConfigError('ML_ERR_RAID_CONFIG', `${this.name}: member ${index} is ${this.members.state(index)}, not rebuilding; pass a spare`);
      }
      return Math.max(fromSector, this.members.cursor(index));
    }
    if (this.members.state(index) === 'active') {
      throw new RaidConfigError('ML_ERR_RAID_CONFIG', `${this.name}: member ${index} is active; fail it before replacing it`);
    }
    if (spare.sectorSize !== this.sectorSize || spare.sectorCount < this.memberSectorsUsed) {
      throw new OutOfRangeError(
        `${this.name}: spare ${spare.name} (${spare.sectorCount} x ${spare.sectorSize} B) is smaller than a member (${this.memberSectorsUsed} x ${this.sectorSize} B)`,
        'ML_ERR_RAID_SPARE_SIZE',
      );
    }
    this.members.replace(index, spare, fromSector);
    return fromSector;
  }
}
