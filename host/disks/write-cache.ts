import { assert } from '../../firmware/errors.ts';
import type { Random } from '../../firmware/ports/random.ts';
import type { Ratio } from './ratio.ts';

/** A cached sector leaving the cache for the media. */
export interface Destage {
  lba: number;
  data: Uint8Array;
}

/**
 * A disk's volatile write cache: the newest data of each sector written since it was last
 * destaged, oldest first. Bounded by `writeCacheBytesMax`; when a write overflows it, the
 * oldest sectors go to the media at once (that is how a drive's cache frees room, and why some
 * unflushed writes survive a power cut and others do not).
 *
 * Per-sector entries are fine here: the cache is off by default, so the hot path never sees it.
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
    for (let i = 0; i * ss < data.length; i++) {
      // Delete first so a rewritten sector moves to the young end.
      this.sectors.delete(lba + i);
      this.sectors.set(lba + i, data.slice(i * ss, (i + 1) * ss));
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
