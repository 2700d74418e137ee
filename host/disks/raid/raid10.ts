import { assert } from '../../../firmware/errors.ts';
import type { BlockDevice } from '../../../firmware/ports/block-device.ts';
import type { HostClock } from '../../clock/clock.ts';
import { RaidConfigError } from './errors.ts';
import { Raid0 } from './raid0.ts';
import { Raid1 } from './raid1.ts';
import {
  addCheck, emptyCheck,
  type ArrayState, type CheckOptions, type CheckResult, type MemberState, type RaidArray, type RaidStatus, type RaidSuperblock,
  type RebuildOptions, type RebuildProgress,
} from './types.ts';

export interface Raid10Options {
  name: string;
  members: readonly BlockDevice[];
  clock: HostClock;
  chunkBytes?: number;
  /** Copies of each chunk (md's near copies); the member count must be a multiple. Default 2. */
  copies?: number;
  superblock?: RaidSuperblock;
}

/**
 * RAID-10 as md's "near" layout with a member count that is a multiple of the copies: chunk k is
 * on every member of set k mod (n / copies). That is RAID-0 over RAID-1 sets of adjacent members
 * (members 0-1, 2-3, ... with two copies), and it is built so: each set a {@link Raid1}, striped
 * by a {@link Raid0}. It survives any failures that leave each set a member; a failed set fails
 * the array (the RAID-0 sees the set's ArrayFailedError as a failed member).
 */
export class Raid10 implements RaidArray {
  readonly level = 'raid10' as const;
  readonly name: string;
  readonly sectorSize: number;
  readonly sectorCount: number;
  readonly copies: number;
  private readonly sets: Raid1[];
  private readonly stripe: Raid0;
  private lastCheck: CheckResult | null = null;

  constructor(options: Raid10Options) {
    const copies = options.copies ?? 2;
    const n = options.members.length;
    if (!Number.isInteger(copies) || copies < 2 || n < 2 * copies || n % copies !== 0) {
      throw new RaidConfigError('ML_ERR_RAID_CONFIG', `${options.name}: raid10 with ${copies} copies needs a multiple of ${copies} members, at least ${2 * copies}; got ${n}`);
    }
    this.name = options.name;
    this.copies = copies;
    this.sets = [];
    for (let k = 0; k < n / copies; k++) {
      const slice = options.superblock?.members.slice(k * copies, (k + 1) * copies);
      this.sets.push(new Raid1({
        name: `${options.name}.set${k}`,
        members: options.members.slice(k * copies, (k + 1) * copies),
        clock: options.clock,
        superblock: slice ? { members: slice } : undefined,
      }));
    }
    this.stripe = new Raid0({ name: options.name, members: this.sets, clock: options.clock, chunkBytes: options.chunkBytes });
    this.sectorSize = this.stripe.sectorSize;
    this.sectorCount = this.stripe.sectorCount;
  }

  get memberCount(): number {
    return this.sets.length * this.copies;
  }

  get chunkSectors(): number {
    return this.stripe.chunkSectors;
  }

  get state(): ArrayState {
    const states = this.sets.map((s) => s.state);
    if (this.stripe.state === 'failed' || states.includes('failed')) return 'failed';
    if (states.includes('rebuilding')) return 'rebuilding';
    return states.includes('degraded') ? 'degraded' : 'optimal';
  }

  /** Where array sector `lba` lives: its mirror set, and the sector in each of the set's members. */
  locate(lba: number): { set: number; members: number[]; memberLba: number } {
    const { member: set, memberLba } = this.stripe.locate(lba);
    return { set, members: Array.from({ length: this.copies }, (_, c) => set * this.copies + c), memberLba };
  }

  member(index: number): BlockDevice {
    return this.setOf(index).member(index % this.copies);
  }

  memberState(index: number): MemberState {
    return this.setOf(index).memberState(index % this.copies);
  }

  failMember(index: number): BlockDevice {
    return this.setOf(index).failMember(index % this.copies);
  }

  /** The sets' statuses added up, members in array order. */
  status(): RaidStatus {
    const sets = this.sets.map((s) => s.status());
    return {
      level: this.level,
      state: this.state,
      members: sets.flatMap((s) => s.members),
      rebuild: this.rebuildProgress(),
      readErrorsRepaired: sets.reduce((n, s) => n + s.readErrorsRepaired, 0),
      readErrorsUnrepaired: sets.reduce((n, s) => n + s.readErrorsUnrepaired, 0),
      lastCheck: this.lastCheck === null ? null : { ...this.lastCheck },
    };
  }

  read(lba: number, count: number): Promise<Uint8Array> {
    return this.stripe.read(lba, count);
  }

  write(lba: number, data: Uint8Array): Promise<void> {
    return this.stripe.write(lba, data);
  }

  flush(): Promise<void> {
    return this.stripe.flush();
  }

  powerCut(): void {
    this.stripe.powerCut(); // cuts the sets, which cut their members
  }

  rebuild(index: number, spare: BlockDevice | null, options: RebuildOptions = {}): Promise<void> {
    const set = Math.floor(index / this.copies);
    const onProgress = options.onProgress;
    return this.setOf(index).rebuild(index % this.copies, spare, {
      ...options,
      onProgress: onProgress && ((p) => onProgress({ ...p, member: set * this.copies + p.member })),
    });
  }

  rebuildProgress(): RebuildProgress | null {
    for (let k = 0; k < this.sets.length; k++) {
      const p = this.sets[k]!.rebuildProgress();
      if (p !== null) return { ...p, member: k * this.copies + p.member };
    }
    return null;
  }

  /** Checks each mirror set in turn (each repairs its read errors); the counts add up. */
  async check(options: CheckOptions = {}): Promise<CheckResult> {
    const total = emptyCheck();
    for (let k = 0; k < this.sets.length; k++) {
      const set = this.sets[k]!;
      if (set.state === 'failed') continue;
      const r = await set.check(options);
      // The set's member slots, as the array numbers them.
      r.mismatchPlaces = r.mismatchPlaces.map((p) => ({ lba: p.lba, members: p.members.map((m) => k * this.copies + m) }));
      addCheck(total, r);
    }
    this.lastCheck = { ...total };
    return total;
  }

  superblock(): RaidSuperblock {
    return { members: this.sets.flatMap((s) => s.superblock().members) };
  }

  private setOf(index: number): Raid1 {
    assert(Number.isInteger(index) && index >= 0 && index < this.memberCount, `${this.name}: no member ${index}`);
    return this.sets[Math.floor(index / this.copies)]!;
  }
}
