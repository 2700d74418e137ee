import { MediaError } from '../../../firmware/ports/block-device.ts';
import { rejectLater } from '../later.ts';
import type { RangeLease } from '../range-lock.ts';
import { RaidBase, type RaidOptions } from './array.ts';
import { CHUNK_BYTES_DEFAULT, chunkSectorsOf, splitIntoChunks } from './chunks.ts';
import { isMemberFault, type MemberWrite } from './members.ts';
import { settleAll } from './settle.ts';
import { addCheck, CHECK_MISMATCH_PLACES_MAX, emptyCheck, type CheckResult, type MismatchPlace } from './types.ts';
import { isZero, xorAll, xorInto } from './xor.ts';

export interface Raid5Options extends RaidOptions {
  chunkBytes?: number;
}

/** The part of a request in one chunk of one stripe. */
interface StripePiece {
  member: number;
  /** First row (sector within the chunk) and row count. */
  offset: number;
  count: number;
  data: Uint8Array;
  arrayLba: number;
}

/**
 * RAID-5 with md's default layout, left-symmetric: with n members, stripe s keeps its parity on
 * member n-1 - (s mod n) and its n-1 data chunks on the members after it, wrapping around. Row r
 * of a stripe is member sector s*chunk + r on every member; parity is the XOR of the row.
 * Capacity: (n-1) x the smallest member, in whole chunks.
 *
 * Writes lock their stripes (so concurrent updates of one stripe cannot corrupt its parity, and
 * overlapping writes land in issue order) and per stripe:
 * - a full-stripe write computes parity from the new data and reads nothing;
 * - a partial one reads the old data it replaces and the old parity (read-modify-write);
 * - degraded, or when one of those reads fails, it reads the whole row range of the stripe,
 *   reconstructs the missing member, and writes (reconstruct-write); a member whose read failed
 *   with a MediaError is rewritten on the way (md's read-error repair).
 * Reads go to the data chunk; a chunk on a missing member, or one that returns a MediaError, is
 * rebuilt from the rest of its row under the stripe lock, and a MediaError is repaired by
 * rewriting the rebuilt data.
 *
 * The write hole. A stripe update is several member writes, issued together and not atomic. A
 * power cut can land some and lose others (in flight, or unflushed in a disk's cache): the data
 * then no longer XORs to the parity. Nothing notices while every member is present, since reads
 * take data chunks as they are, so each sector holds its old or its new data. But `check()`
 * counts the rows as mismatches, and if a member is lost before they are repaired, its sectors in
 * those rows are rebuilt from the stale parity: garbage, neither old nor new. md closes the hole
 * with a journal or a partial parity log; this model leaves it open, on purpose: after an
 * unclean shutdown run `check({ repair: true })` (md's resync: parity recomputed from data)
 * before relying on redundancy, and a power cut while degraded may corrupt exactly those rows.
 */
export class Raid5 extends RaidBase {
  readonly level = 'raid5' as const;
  readonly sectorCount: number;
  readonly chunkSectors: number;
  readonly stripeCount: number;
  protected readonly tolerance = 1;
  protected readonly memberSectorsUsed: number;

  constructor(options: Raid5Options) {
    super(options, 3);
    const memberSectors = Math.min(...options.members.map((m) => m.sectorCount));
    this.chunkSectors = chunkSectorsOf(options.name, options.chunkBytes ?? CHUNK_BYTES_DEFAULT, this.sectorSize, memberSectors);
    this.stripeCount = Math.floor(memberSectors / this.chunkSectors);
    this.memberSectorsUsed = this.stripeCount * this.chunkSectors;
    this.sectorCount = this.memberSectorsUsed * (options.members.length - 1);
  }

  parityMember(stripe: number): number {
    const n = this.members.count;
    return n - 1 - (stripe % n);
  }

  /** Where array sector `lba` lives, and its stripe's parity. */
  locate(lba: number): { stripe: number; row: number; member: number; memberLba: number; parityMember: number } {
    const chunk = Math.floor(lba / this.chunkSectors);
    const stripe = Math.floor(chunk / (this.members.count - 1));
    const parityMember = this.parityMember(stripe);
    const member = (parityMember + 1 + (chunk % (this.members.count - 1))) % this.members.count;
    const row = lba - chunk * this.chunkSectors;
    return { stripe, row, member, memberLba: stripe * this.chunkSectors + row, parityMember };
  }

  read(lba: number, count: number): Promise<Uint8Array> {
    const refusal = this.refusal(lba, count);
    if (refusal !== null) return rejectLater(this.clock, refusal);
    const pieces = splitIntoChunks(lba, count, this.chunkSectors);
    if (pieces.length === 1) return this.readPiece(lba, count);
    const out = new Uint8Array(count * this.sectorSize);
    return settleAll(pieces.map(async (p) => out.set(await this.readPiece(p.arrayLba, p.count), p.at * this.sectorSize))).then(() => out);
  }

  write(lba: number, data: Uint8Array): Promise<void> {
    const refusal = this.refusal(lba, 0, data);
    if (refusal !== null) return rejectLater(this.clock, refusal);
    const stripes = this.piecesByStripe(lba, data);
    const first = stripes.keys().next().value!;
    return this.writeLocked(this.locks.acquire(first, first + stripes.size), stripes);
  }

  protected async rebuildRegion(index: number, start: number, count: number): Promise<void> {
    const [s0, s1] = this.stripesOf(start, count);
    await this.locks.with(s0, s1, async () => {
      const others = this.othersOf(index);
      const rows = await this.readRows(others, start, count, start);
      await this.members.write(index, start, xorAll(rows));
    });
  }

  protected checkRegion(start: number, count: number, repair: boolean): Promise<CheckResult> {
    const [s0, s1] = this.stripesOf(start, count);
    return this.locks.with(s0, s1, () => this.checkRows(start, count, repair));
  }

  /**
   * One check region, its stripes locked: reads every member's rows and compares the parity. One
   * member's media error is rewritten from the others (check and repair alike, as md does); with
   * more than one member failing, row by row, since each may have its bad sectors elsewhere.
   * Degraded regions are skipped: there is nothing to compare against.
   */
  private async checkRows(start: number, count: number, repair: boolean): Promise<CheckResult> {
    const result = emptyCheck();
    const all = this.othersOf(-1);
    if (!all.every((i) => this.members.readable(i, start, count))) return result;
    const reads = await Promise.allSettled(all.map((i) => this.members.read(i, start, count)));
    const rotten: number[] = [];
    for (let i = 0; i < reads.length; i++) {
      const r = reads[i]!;
      if (r.status === 'fulfilled') continue;
      if (!isMemberFault(r.reason)) throw r.reason;
      result.readErrors++;
      if (r.reason instanceof MediaError) rotten.push(i);
    }
    if (result.readErrors === 0) {
      const rows = reads.map((r) => (r as PromiseFulfilledResult<Uint8Array>).value);
      result.mismatches = await this.compareParity(rows, start, count, repair, result.mismatchPlaces);
      result.sectorsChecked = count;
      return result;
    }
    if (result.readErrors > 1 && rotten.length === result.readErrors && count > 1) {
      const total = emptyCheck();
      for (let row = start; row < start + count; row++) addCheck(total, await this.checkRows(row, 1, repair));
      return total;
    }
    const member = rotten[0];
    if (result.readErrors === 1 && member !== undefined && this.members.writable(member)) {
      const rest = reads.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const failed = await this.members.writeAll([{ member, lba: start, data: xorAll(rest) }]);
      result.readErrorsRepaired = failed.length === 0 ? 1 : 0;
    }
    result.readErrorsUnrepaired = rotten.length - result.readErrorsRepaired;
    return result;
  }

  /** Counts rows whose XOR is not zero; with `repair`, rewrites their parity from the data. */
  private async compareParity(rows: Uint8Array[], start: number, count: number, repair: boolean, places: MismatchPlace[]): Promise<number> {
    const ss = this.sectorSize;
    const syndrome = xorAll(rows);
    let mismatches = 0;
    const fixes: MemberWrite[] = [];
    for (let seg = start; seg < start + count; ) {
      const stripe = Math.floor(seg / this.chunkSectors);
      const end = Math.min(start + count, (stripe + 1) * this.chunkSectors);
      const bytes = syndrome.subarray((seg - start) * ss, (end - start) * ss);
      let bad = 0;
      for (let r = 0; r < end - seg; r++) {
        if (isZero(bytes.subarray(r * ss, (r + 1) * ss))) continue;
        bad++;
        if (places.length < CHECK_MISMATCH_PLACES_MAX) places.push({ lba: seg + r, members: rows.map((_, i) => i) });
      }
      mismatches += bad;
      const parity = this.parityMember(stripe);
      if (repair && bad > 0 && this.members.writable(parity)) {
        const fixed = rows[parity]!.slice((seg - start) * ss, (end - start) * ss);
        xorInto(fixed, bytes);
        fixes.push({ member: parity, lba: seg, data: fixed });
      }
      seg = end;
    }
    await this.members.writeAll(fixes);
    return mismatches;
  }

  private piecesByStripe(lba: number, data: Uint8Array): Map<number, StripePiece[]> {
    const ss = this.sectorSize;
    const stripes = new Map<number, StripePiece[]>();
    for (const p of splitIntoChunks(lba, data.length / ss, this.chunkSectors)) {
      const { stripe, row, member } = this.locate(p.arrayLba);
      const piece = { member, offset: row, count: p.count, data: data.subarray(p.at * ss, (p.at + p.count) * ss), arrayLba: p.arrayLba };
      const list = stripes.get(stripe);
      if (list) list.push(piece);
      else stripes.set(stripe, [piece]);
    }
    return stripes;
  }

  private async writeLocked(lease: RangeLease, stripes: Map<number, StripePiece[]>): Promise<void> {
    try {
      if (lease.ready !== null) await lease.ready;
      // Every stripe's member I/O must be over before the lock goes (settleAll, not Promise.all).
      await settleAll([...stripes].map(([stripe, pieces]) => this.writeStripe(stripe, pieces)));
      this.throwIfFailed();
    } finally {
      lease.release();
    }
  }

  private async writeStripe(stripe: number, pieces: StripePiece[]): Promise<void> {
    const c = this.chunkSectors;
    const base = stripe * c;
    const parity = this.parityMember(stripe);
    if (pieces.length === this.members.count - 1 && pieces.every((q) => q.offset === 0 && q.count === c)) {
      // Full stripe: the parity comes from the new data alone; nothing to read.
      const writes = pieces.map((q) => ({ member: q.member, lba: base, data: q.data }));
      writes.push({ member: parity, lba: base, data: xorAll(pieces.map((q) => q.data)) });
      await this.members.writeAll(writes.filter((w) => this.members.writable(w.member)));
      return;
    }
    const lo = Math.min(...pieces.map((q) => q.offset));
    const hi = Math.max(...pieces.map((q) => q.offset + q.count));
    const rmwReadable = this.members.readable(parity, base + lo, hi - lo) && pieces.every((q) => this.members.readable(q.member, base + q.offset, q.count));
    if (rmwReadable && (await this.readModifyWrite(stripe, pieces, lo, hi))) return;
    await this.reconstructWrite(stripe, pieces, lo, hi);
  }

  /** new parity = old parity ^ old data ^ new data. False (nothing written) if a read failed. */
  private async readModifyWrite(stripe: number, pieces: StripePiece[], lo: number, hi: number): Promise<boolean> {
    const ss = this.sectorSize;
    const base = stripe * this.chunkSectors;
    const parityMember = this.parityMember(stripe);
    const reads = await Promise.allSettled([
      this.members.read(parityMember, base + lo, hi - lo),
      ...pieces.map((q) => this.members.read(q.member, base + q.offset, q.count)),
    ]);
    for (const r of reads) {
      if (r.status === 'rejected') {
        if (!isMemberFault(r.reason)) throw r.reason;
        return false;
      }
    }
    const [parity, ...old] = reads.map((r) => (r as PromiseFulfilledResult<Uint8Array>).value);
    pieces.forEach((q, k) => {
      const delta = old[k]!;
      xorInto(delta, q.data);
      xorInto(parity!.subarray((q.offset - lo) * ss, (q.offset - lo + q.count) * ss), delta);
    });
    const writes = pieces.map((q) => ({ member: q.member, lba: base + q.offset, data: q.data }));
    writes.push({ member: parityMember, lba: base + lo, data: parity! });
    await this.members.writeAll(writes.filter((w) => this.members.writable(w.member)));
    return true;
  }

  /** Reads rows [lo, hi) of every member that can, rebuilds the one that cannot, lays the new data in, recomputes parity. */
  private async reconstructWrite(stripe: number, pieces: StripePiece[], lo: number, hi: number): Promise<void> {
    const ss = this.sectorSize;
    const base = stripe * this.chunkSectors;
    const n = this.members.count;
    const readable = this.othersOf(-1).filter((i) => this.members.readable(i, base + lo, hi - lo));
    const reads = await Promise.allSettled(readable.map((i) => this.members.read(i, base + lo, hi - lo)));
    const rows: (Uint8Array | null)[] = new Array<Uint8Array | null>(n).fill(null);
    const rotten: number[] = [];
    reads.forEach((r, k) => {
      if (r.status === 'fulfilled') rows[readable[k]!] = r.value;
      else if (!isMemberFault(r.reason)) throw r.reason;
      else if (r.reason instanceof MediaError) rotten.push(readable[k]!);
    });
    this.throwIfFailed();
    const missing = rows.flatMap((row, i) => (row === null ? [i] : []));
    if (missing.length > 1) throw new MediaError(this.name, pieces[0]!.arrayLba, `stripe ${stripe} lost two members' rows; cannot reconstruct`);
    if (missing.length === 1) rows[missing[0]!] = xorAll(rows.filter((row): row is Uint8Array => row !== null));
    for (const q of pieces) rows[q.member]!.set(q.data, (q.offset - lo) * ss);
    const parityMember = this.parityMember(stripe);
    rows[parityMember] = xorAll(rows.filter((row, i): row is Uint8Array => i !== parityMember && row !== null));
    const writes: MemberWrite[] = pieces.filter((q) => !rotten.includes(q.member)).map((q) => ({ member: q.member, lba: base + q.offset, data: q.data }));
    for (const i of new Set([...rotten, parityMember])) writes.push({ member: i, lba: base + lo, data: rows[i]! });
    const failed = await this.members.writeAll(writes.filter((w) => this.members.writable(w.member)));
    const fixed = rotten.filter((i) => this.members.writable(i) && !failed.includes(i)).length;
    this.noteReadErrors(fixed, rotten.length - fixed);
  }

  private async readPiece(lba: number, count: number): Promise<Uint8Array> {
    const { member, memberLba } = this.locate(lba);
    if (!this.members.readable(member, memberLba, count)) return this.reconstructRead(lba, count, -1);
    try {
      return await this.members.read(member, memberLba, count);
    } catch (error) {
      if (!isMemberFault(error)) throw error;
      this.throwIfFailed();
      if (!(error instanceof MediaError)) return this.reconstructRead(lba, count, -1);
      try {
        return await this.reconstructRead(lba, count, member);
      } catch (lost) {
        // Not rebuildable either: the caller learns the sector that was bad, not the piece's start.
        if (lost instanceof MediaError) throw new MediaError(this.name, lba + Math.max(0, error.lba - memberLba));
        throw lost;
      }
    }
  }

  /** A chunk piece rebuilt from the rest of its rows, under the stripe lock; rewritten to `repair` if >= 0. */
  private reconstructRead(lba: number, count: number, repair: number): Promise<Uint8Array> {
    const { stripe, member, memberLba } = this.locate(lba);
    return this.locks.with(stripe, stripe + 1, async () => {
      let data: Uint8Array;
      try {
        data = xorAll(await this.readRows(this.othersOf(member), memberLba, count, lba));
      } catch (error) {
        if (repair >= 0) this.noteReadErrors(0, 1);
        throw error;
      }
      if (repair >= 0) {
        const failed = this.members.writable(repair) ? await this.members.writeAll([{ member: repair, lba: memberLba, data }]) : [repair];
        this.noteReadErrors(failed.length === 0 ? 1 : 0, failed.length === 0 ? 0 : 1);
      }
      return data;
    });
  }

  /** Rows `[memberLba, +count)` of `members`, all of which must be readable; else the array's error. */
  private async readRows(members: number[], memberLba: number, count: number, arrayLba: number): Promise<Uint8Array[]> {
    if (!members.every((i) => this.members.readable(i, memberLba, count))) {
      this.throwIfFailed();
      throw new MediaError(this.name, arrayLba, 'two members missing in this row range');
    }
    const reads = await Promise.allSettled(members.map((i) => this.members.read(i, memberLba, count)));
    for (const r of reads) {
      if (r.status === 'fulfilled') continue;
      if (!isMemberFault(r.reason)) throw r.reason;
      this.throwIfFailed();
      const offset = r.reason instanceof MediaError ? Math.max(0, r.reason.lba - memberLba) : 0;
      throw new MediaError(this.name, arrayLba + offset);
    }
    return reads.map((r) => (r as PromiseFulfilledResult<Uint8Array>).value);
  }

  private othersOf(except: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.members.count; i++) if (i !== except) out.push(i);
    return out;
  }

  private stripesOf(start: number, count: number): [number, number] {
    return [Math.floor(start / this.chunkSectors), Math.floor((start + count - 1) / this.chunkSectors) + 1];
  }
}
