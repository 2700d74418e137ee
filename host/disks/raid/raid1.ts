import { MediaError } from '../../../firmware/ports/block-device.ts';
import { rejectLater } from '../later.ts';
import { RaidBase, type RaidOptions } from './array.ts';
import { isMemberFault } from './members.ts';
import { addCheck, CHECK_MISMATCH_PLACES_MAX, emptyCheck, type CheckResult } from './types.ts';

/**
 * RAID-1, n-way mirror (md raid1). Capacity: the smallest member.
 *
 * - Writes go to every writable member (a rebuilding spare included); they lock their sector
 *   range so that a rebuild, check or read repair of the same sectors cannot interleave.
 * - Reads go to the first member that can serve them (in member order: deterministic, so a
 *   sector read twice gives the same answer even where the mirrors differ after a power cut;
 *   read balancing is left for later). A member's MediaError is answered from the next member,
 *   and the bad sectors are rewritten with the good data, as md does.
 * - After an unclean shutdown the mirrors may differ where writes were unflushed: each holds whole
 *   sectors, old or new. `check({ repair: true })` (md's resync) copies the first readable
 *   member over the others.
 */
export class Raid1 extends RaidBase {
  readonly level = 'raid1' as const;
  readonly sectorCount: number;
  protected readonly tolerance: number;
  protected readonly memberSectorsUsed: number;

  constructor(options: RaidOptions) {
    super(options, 2);
    this.sectorCount = Math.min(...options.members.map((m) => m.sectorCount));
    this.tolerance = options.members.length - 1;
    this.memberSectorsUsed = this.sectorCount;
  }

  read(lba: number, count: number): Promise<Uint8Array> {
    const refusal = this.refusal(lba, count);
    if (refusal !== null) return rejectLater(this.clock, refusal);
    return this.readMirrors(lba, count);
  }

  write(lba: number, data: Uint8Array): Promise<void> {
    const refusal = this.refusal(lba, 0, data);
    if (refusal !== null) return rejectLater(this.clock, refusal);
    return this.writeLocked(lba, data);
  }

  protected async rebuildRegion(index: number, start: number, count: number): Promise<void> {
    await this.locks.with(start, start + count, async () => {
      const data = await this.readMirrors(start, count, index, true);
      await this.members.write(index, start, data);
    });
  }

  protected checkRegion(start: number, count: number, repair: boolean): Promise<CheckResult> {
    return this.locks.with(start, start + count, () => this.checkMirrors(start, count, repair));
  }

  /**
   * One check region, its lock held: reads every copy and counts sectors whose copies differ.
   * A copy that had a media error is rewritten from the first good one (check and repair alike,
   * as md does); with `repair`, so are copies that differ. Where no copy reads whole (each has a
   * bad sector somewhere in the region), it goes sector by sector.
   */
  private async checkMirrors(start: number, count: number, repair: boolean): Promise<CheckResult> {
    const ids = this.readableMembers(start, count);
    const reads = await Promise.allSettled(ids.map((i) => this.members.read(i, start, count)));
    const result = emptyCheck();
    const good: { member: number; data: Uint8Array }[] = [];
    const rotten: number[] = [];
    reads.forEach((r, k) => {
      if (r.status === 'fulfilled') good.push({ member: ids[k]!, data: r.value });
      else if (r.reason instanceof MediaError) rotten.push(ids[k]!);
      else if (!isMemberFault(r.reason)) throw r.reason;
    });
    result.readErrors = ids.length - good.length;
    const reference = good[0];
    if (reference === undefined) {
      if (rotten.length > 1 && count > 1) return this.checkSectorwise(start, count, repair);
      result.readErrorsUnrepaired = rotten.length;
      return result;
    }
    const differing = new Set<number>();
    if (good.length >= 2) result.sectorsChecked = count; // else nothing to compare against
    // Copies that agree whole (the rule) are told so by one native comparison each, not sector by sector.
    const agree = good.every((g) => Buffer.compare(g.data, reference.data) === 0);
    for (let s = 0; s < count && good.length >= 2 && !agree; s++) {
      const [from, to] = [s * this.sectorSize, (s + 1) * this.sectorSize];
      const ref = reference.data.subarray(from, to);
      const bad = good.slice(1).filter((g) => Buffer.compare(g.data.subarray(from, to), ref) !== 0);
      if (bad.length > 0) {
        result.mismatches++;
        if (result.mismatchPlaces.length < CHECK_MISMATCH_PLACES_MAX) result.mismatchPlaces.push({ lba: start + s, members: good.map((g) => g.member) });
      }
      for (const g of bad) differing.add(g.member);
    }
    const fixable = rotten.filter((i) => this.members.writable(i));
    const targets = repair ? [...fixable, ...[...differing].filter((i) => this.members.writable(i))] : fixable;
    const failed = await this.members.writeAll(targets.map((member) => ({ member, lba: start, data: reference.data })));
    result.readErrorsRepaired = fixable.filter((i) => !failed.includes(i)).length;
    result.readErrorsUnrepaired = rotten.length - result.readErrorsRepaired;
    return result;
  }

  private async checkSectorwise(start: number, count: number, repair: boolean): Promise<CheckResult> {
    const total = emptyCheck();
    for (let s = 0; s < count; s++) addCheck(total, await this.checkMirrors(start + s, 1, repair));
    return total;
  }

  private async writeLocked(lba: number, data: Uint8Array): Promise<void> {
    const count = data.length / this.sectorSize;
    const lease = this.locks.acquire(lba, lba + count);
    try {
      if (lease.ready !== null) await lease.ready;
      const writes = [];
      for (let i = 0; i < this.members.count; i++) if (this.members.writable(i)) writes.push({ member: i, lba, data });
      await this.members.writeAll(writes);
      this.throwIfFailed();
    } finally {
      lease.release();
    }
  }

  private readableMembers(lba: number, count: number, except = -1): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.members.count; i++) if (i !== except && this.members.readable(i, lba, count)) out.push(i);
    return out;
  }

  /**
   * Reads from the first member that can; repairs members that had media errors. `locked`: the
   * caller holds the range's lock already (a rebuild step), so the repair must not take it.
   */
  private async readMirrors(lba: number, count: number, except = -1, locked = false): Promise<Uint8Array> {
    const bad: number[] = [];
    let mediaError: MediaError | undefined;
    for (const i of this.readableMembers(lba, count, except)) {
      try {
        const data = await this.members.read(i, lba, count);
        if (bad.length > 0) await this.repair(bad, i, lba, count, locked);
        return data;
      } catch (error) {
        if (!isMemberFault(error)) throw error;
        if (error instanceof MediaError) {
          bad.push(i);
          mediaError ??= error;
        }
      }
    }
    this.throwIfFailed();
    if (bad.length > 1 && count > 1) return this.readSectorwise(lba, count, except, locked);
    this.noteReadErrors(0, bad.length);
    throw mediaError ? new MediaError(this.name, mediaError.lba) : new MediaError(this.name, lba, 'no member can serve the read');
  }

  /** Every mirror failed somewhere in the range: serve each sector from any mirror that has it. */
  private async readSectorwise(lba: number, count: number, except: number, locked: boolean): Promise<Uint8Array> {
    const out = new Uint8Array(count * this.sectorSize);
    for (let s = 0; s < count; s++) out.set(await this.readMirrors(lba + s, 1, except, locked), s * this.sectorSize);
    return out;
  }

  /** Rewrites `bad` members' copy of the range from member `good`, locked against concurrent writes. */
  private async repair(bad: number[], good: number, lba: number, count: number, locked: boolean): Promise<void> {
    const rewrite = async (): Promise<void> => {
      const data = await this.members.read(good, lba, count);
      const targets = bad.filter((i) => this.members.writable(i));
      const failed = await this.members.writeAll(targets.map((member) => ({ member, lba, data })));
      const fixed = targets.length - failed.length;
      this.noteReadErrors(fixed, bad.length - fixed);
    };
    await (locked ? rewrite() : this.locks.with(lba, lba + count, rewrite)).catch((error: unknown) => {
      if (!isMemberFault(error)) throw error; // a repair that fails leaves the sector bad; the read still succeeded
      this.noteReadErrors(0, bad.length);
    });
  }
}
