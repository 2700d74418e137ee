import type { Random } from '../../firmware/ports/random.ts';

interface InflightWrite {
  lba: number;
  count: number;
  /** The sectors' contents before this write was applied. */
  undo: Uint8Array;
  startMs: number;
  serviceMs: number;
  /** 1 where a later write covered the sector: that write, not this one, decides it. */
  superseded: Uint8Array;
}

/** Restores `bytes` at byte offset `offset` of the media. */
export type Restore = (offset: number, bytes: Uint8Array) => void;

/**
 * What a power cut does to writes still in flight on the write-through path (the torn-write
 * option of {@link MemoryDisk}).
 *
 * A write is applied to the media when issued; this remembers what it replaced. At a power cut
 * each in-flight write is taken to have transferred its sectors in order at an even pace: the
 * sectors before the one under the head at that instant have landed, that one is torn (its
 * first bytes new, the rest old, the split drawn from the seed), the rest are put back.
 *
 * Overlapping writes in flight together: a sector is decided by the newest write that covers
 * it (older ones are then treated as landed). So each sector ends up holding the data of some
 * write to it (or, for the one torn sector of a write, a splice of two such), never anything
 * else.
 */
export class InflightWrites {
  private readonly writes = new Set<InflightWrite>();

  get size(): number {
    return this.writes.size;
  }

  begin(lba: number, count: number, undo: Uint8Array, startMs: number, serviceMs: number): object {
    for (const w of this.writes) markSuperseded(w, lba, count);
    const write: InflightWrite = { lba, count, undo, startMs, serviceMs, superseded: new Uint8Array(count) };
    this.writes.add(write);
    return write;
  }

  end(token: object): void {
    this.writes.delete(token as InflightWrite);
  }

  /** Apply the power cut at `nowMs`; forgets every in-flight write. */
  cut(nowMs: number, sectorSize: number, random: Random | undefined, restore: Restore): void {
    for (const w of this.writes) {
      const progress = w.serviceMs <= 0 ? 1 : Math.min(1, (nowMs - w.startMs) / w.serviceMs);
      const landed = Math.min(w.count, Math.floor(progress * w.count));
      for (let i = landed; i < w.count; i++) {
        if (w.superseded[i] === 1) continue;
        const keep = i === landed ? tearOffset(sectorSize, random) : 0;
        const from = i * sectorSize + keep;
        restore((w.lba + i) * sectorSize + keep, w.undo.subarray(from, (i + 1) * sectorSize));
      }
    }
    this.writes.clear();
  }
}

function markSuperseded(w: InflightWrite, lba: number, count: number): void {
  const start = Math.max(w.lba, lba);
  const end = Math.min(w.lba + w.count, lba + count);
  if (start < end) w.superseded.fill(1, start - w.lba, end - w.lba);
}

/** How many leading bytes of the torn sector are new: in [1, sectorSize). */
function tearOffset(sectorSize: number, random: Random | undefined): number {
  return random === undefined ? sectorSize / 2 : 1 + random.int(sectorSize - 1);
}
