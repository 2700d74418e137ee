import { assert } from '../../firmware/errors.ts';
import type { Random } from '../../firmware/ports/random.ts';
import type { Ratio } from './ratio.ts';

/** A cached sector leaving the cache for the media. */
export interface Destage {
  lba: number;
  data: Uint8Array;
}

/**
 * Writes up to this many bytes are copied once and their sectors cached as views of that copy
 * (one allocation per write instead of one per sector); a view keeps its whole write's copy alive,
 * so larger writes are copied sector by sector, and a cached sector never holds more than this.
 */
const SHARED_COPY_BYTES_MAX = 16 * 1024;

/**
 * A disk's volatile write cache: the newest data of each sector written since it was last
 * destaged, oldest first. Bounded by `writeCacheBytesMax`; when a write overflows it, the
 * oldest sectors go to the media at once (that is how a drive's cache frees room, and why some
 * unflushed writes survive a power cut and others do not).
 *
 * Per-sector entries, so that rewrites, destaging and power-cut losses are per sector as on a
 * drive. Campaigns give a cache to every side they power-cut, so `put` is on their write path.
 */
export class WriteCache {
  readonly bytesMax: number;
  private readonly sectorSize: number;
  private readonly sectors = new Map<number, Uint8Array>();

  constructor(writeCacheBytesMax: number, sectorSize: number) {
    assert(Number.isSafeInteger(writeCacheBytesMax) && writeCacheBytesMax >= sectorSize,
      `writeCacheBytesMax must hold at least one ${sectorSize}-byte sector, got ${writeCacheBytesMax}`);
    this.bytesMax = writeCacheBytesMax;
    this.sectorSize = sectorSize;
  }

  get bytes(): number {
    return this.sectors.size * this.sectorSize;
  }

  /** Caches `data` at `lba`; returns what had to be destaged to make room, oldest first. */
  put(lba: number, data: Uint8Array): Destage[] {
    const ss = this.sectorSize;
    const shared = data.length <= SHARED_COPY_BYTES_MAX ? data.slice() : null;
    for (let i = 0; i * ss < data.length; i++) {
      // Delete first so a rewritten sector moves to the young end.
      this.sectors.delete(lba + i);
      this.sectors.set(lba + i, shared === null ? data.slice(i * ss, (i + 1) * ss) : shared.subarray(i * ss, (i + 1) * ss));
    }
    const out: Destage[] = [];
    while (this.sectors.size * ss > this.bytesMax) out.push(this.shift());
    return out;
  }

  /** Lays the cached sectors of `[lba, lba + count)` over `out` (which holds the media's data). */
  overlay(lba: number, count: number, out: Uint8Array): void {
    if (this.sectors.size === 0) return;
    for (let i = 0; i < count; i++) {
      const sector = this.sectors.get(lba + i);
      if (sector !== undefined) out.set(sector, i * this.sectorSize);
    }
  }

  /** Everything, oldest first, leaving the cache empty (a flush). */
  drain(): Destage[] {
    const out: Destage[] = [];
    for (const [lba, data] of this.sectors) out.push({ lba, data });
    this.sectors.clear();
    return out;
  }

  /**
   * Power cut: each cached sector is lost with probability `loss` (drawn from `random`, or all
   * of them without one); the survivors are those the drive had destaged in time. Returns them.
   */
  cut(loss: Ratio, random: Random | undefined): Destage[] {
    const out: Destage[] = [];
    for (const [lba, data] of this.sectors) {
      const lost = random === undefined ? loss.numerator > 0 : random.chance(loss.numerator, loss.denominator);
      if (!lost) out.push({ lba, data });
    }
    this.sectors.clear();
    return out;
  }

  private shift(): Destage {
    const first = this.sectors.entries().next();
    assert(first.done !== true, 'write cache: shift from an empty cache');
    const [lba, data] = first.value;
    this.sectors.delete(lba);
    return { lba, data };
  }
}
