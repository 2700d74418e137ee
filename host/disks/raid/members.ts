import { assert } from '../../../firmware/errors.ts';
import { DeviceFailedError, MediaError, type BlockDevice } from '../../../firmware/ports/block-device.ts';
import type { HostClock } from '../../clock/clock.ts';
import { rejectLater } from '../later.ts';
import { powerCutIfAble } from '../power.ts';
import { ArrayStoppedError } from './errors.ts';
import type { MemberState, RaidSuperblock } from './types.ts';

/** One member write of an array update. */
export interface MemberWrite {
  member: number;
  lba: number;
  data: Uint8Array;
}

/**
 * An array's members and what it knows of them: state, rebuild cursor, and whether the array was
 * stopped by a power cut. All member I/O goes through here, so that
 * - a `DeviceFailedError` from a member marks it failed, whoever saw it;
 * - once stopped, no request of the old array object reaches a member again (a continuation
 *   waking up after the power cut must not write to disks that now belong to a new array).
 */
export class Members {
  readonly array: string;
  private readonly devices: BlockDevice[];
  private readonly states: MemberState[];
  /** For a rebuilding member: member sectors in sync, below which it may be read. */
  private readonly cursors: number[];
  private readonly clock: HostClock;
  private stopped = false;

  constructor(array: string, devices: readonly BlockDevice[], clock: HostClock, superblock?: RaidSuperblock) {
    assert(superblock === undefined || superblock.members.length === devices.length,
      `${array}: superblock has ${superblock?.members.length} members, the array ${devices.length}`);
    this.array = array;
    this.devices = [...devices];
    this.clock = clock;
    this.states = devices.map((_, i) => superblock?.members[i]?.state ?? 'active');
    this.cursors = devices.map((_, i) => superblock?.members[i]?.rebuiltSectors ?? 0);
  }

  get count(): number {
    return this.devices.length;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  device(i: number): BlockDevice {
    return this.devices[i]!;
  }

  state(i: number): MemberState {
    return this.states[i]!;
  }

  cursor(i: number): number {
    return this.cursors[i]!;
  }

  /** Members not in sync: failed, or still being rebuilt. */
  missing(): number {
    return this.states.filter((s) => s !== 'active').length;
  }

  has(state: MemberState): boolean {
    return this.states.includes(state);
  }

  readable(i: number, lba: number, count: number): boolean {
    const state = this.states[i];
    return state === 'active' || (state === 'rebuilding' && lba + count <= this.cursors[i]!);
  }

  writable(i: number): boolean {
    return this.states[i] !== 'failed';
  }

  markFailed(i: number): void {
    this.states[i] = 'failed';
  }

  /** Puts `spare` in slot `i`, in sync below `fromSector`. */
  replace(i: number, spare: BlockDevice, fromSector: number): void {
    this.devices[i] = spare;
    this.states[i] = 'rebuilding';
    this.cursors[i] = fromSector;
  }

  advance(i: number, cursor: number): void {
    this.cursors[i] = cursor;
  }

  markInSync(i: number): void {
    this.states[i] = 'active';
    this.cursors[i] = 0;
  }

  superblock(): RaidSuperblock {
    return {
      members: this.states.map((state, i) => (state === 'rebuilding' ? { state, rebuiltSectors: this.cursors[i]! } : { state })),
    };
  }

  /** Stops the array object and cuts its members' power. */
  powerCut(): void {
    this.stopped = true;
    for (const device of this.devices) powerCutIfAble(device);
  }

  read(i: number, lba: number, count: number): Promise<Uint8Array> {
    if (this.stopped) return rejectLater(this.clock, new ArrayStoppedError(this.array));
    return this.guard(i, this.devices[i]!.read(lba, count), false);
  }

  write(i: number, lba: number, data: Uint8Array): Promise<void> {
    if (this.stopped) return rejectLater(this.clock, new ArrayStoppedError(this.array));
    return this.guard(i, this.devices[i]!.write(lba, data), true);
  }

  flush(i: number): Promise<void> {
    if (this.stopped) return rejectLater(this.clock, new ArrayStoppedError(this.array));
    return this.guard(i, this.devices[i]!.flush(), true);
  }

  /**
   * Issues `writes` together and waits for all. A member whose write fails is marked failed (a
   * write error kicks a member out, as in md); the caller then decides whether the array can go
   * on. Anything else (a bug, a power cut) is rethrown, once every write has settled. Returns the
   * members whose write failed (a shared empty array when none did: no allocation).
   */
  async writeAll(writes: readonly MemberWrite[]): Promise<readonly number[]> {
    const outcomes = await Promise.allSettled(writes.map((w) => this.write(w.member, w.lba, w.data)));
    let failed: number[] | null = null;
    for (let k = 0; k < outcomes.length; k++) {
      const outcome = outcomes[k]!;
      if (outcome.status === 'fulfilled') continue;
      if (!isMemberFault(outcome.reason)) throw outcome.reason;
      (failed ??= []).push(writes[k]!.member);
    }
    return failed ?? NO_MEMBERS;
  }

  /** Flushes every writable member; failures mark members failed, as for writes. */
  async flushAll(): Promise<void> {
    const targets = this.states.map((_, i) => i).filter((i) => this.writable(i));
    const outcomes = await Promise.allSettled(targets.map((i) => this.flush(i)));
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected' && !isMemberFault(outcome.reason)) throw outcome.reason;
    }
  }

  private async guard<T>(i: number, op: Promise<T>, isWrite: boolean): Promise<T> {
    const device = this.devices[i];
    try {
      const result = await op;
      if (this.stopped) throw new ArrayStoppedError(this.array);
      return result;
    } catch (error) {
      if (this.stopped) throw new ArrayStoppedError(this.array);
      // Only if the slot still holds the device that failed (a spare may have replaced it).
      const kicks = error instanceof DeviceFailedError || (isWrite && error instanceof MediaError);
      if (kicks && this.devices[i] === device) this.states[i] = 'failed';
      throw error;
    }
  }
}

const NO_MEMBERS: readonly number[] = Object.freeze([]);

/** Errors that are a member's fault (it is marked failed or the sector is bad), not the caller's. */
export function isMemberFault(error: unknown): boolean {
  return error instanceof DeviceFailedError || error instanceof MediaError;
}
