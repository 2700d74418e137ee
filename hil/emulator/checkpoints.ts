import type { BlockDevice } from '../../firmware/ports/block-device.ts';
import type { Random } from '../../firmware/ports/random.ts';
import { PrefixCheck } from '../checker/content-checks.ts';
import type { ConsistencyChecker } from '../checker/consistency-checker.ts';
import { chunkSectors } from './chunks.ts';
import { FootprintDevice } from './footprint.ts';
import type { MirrorPair } from './topology.ts';

/**
 * Most write-order checkpoints in one run. With gaps growing by a quarter each (see
 * {@link CheckpointSchedule}), the seeded ones number about 12 in a 1 s fault phase, 30 in a
 * minute and 40 in ten minutes; partition heals take their share of the rest.
 */
export const WRITE_ORDER_CHECKPOINTS_MAX = 64;
/** Written sectors this close (sectors) are read in one piece, the unwritten ones between them included. */
const PEEK_GAP_SECTORS_MAX = 128;
/** Each gap between seeded checkpoints is this many quarters of the one before (5/4: a quarter longer). */
const GAP_GROWTH_QUARTERS = 5;

/**
 * When to check write-order fidelity during an async run's fault phase. The fault phase's length
 * is not known in advance (it ends when the hosts are done and the mirrors caught up), so the
 * seeded checkpoints are spaced geometrically: the first gap averages `firstGapMs`, each later one
 * is a quarter longer, every gap drawn uniformly between half and one and a half times its mean.
 * A bounded number of checkpoints thus reaches the end of any fault phase, dense early (where
 * start-up happens) and still present late. Besides those, one is taken right after each partition
 * heals, the moment a reconnecting target is most likely to show a hole. At most
 * {@link WRITE_ORDER_CHECKPOINTS_MAX} in all.
 */
export class CheckpointSchedule {
  /** Virtual times at which checkpoints were taken. */
  readonly takenMs: number[] = [];
  private meanGapMs: number;
  private dueMs: number;

  constructor(firstGapMs: number, private readonly random: Random) {
    this.meanGapMs = firstGapMs;
    this.dueMs = onNanosecond(this.drawGap());
  }

  /** When the next seeded checkpoint is due (Infinity once the budget is spent). */
  get nextMs(): number {
    return this.takenMs.length >= WRITE_ORDER_CHECKPOINTS_MAX ? Infinity : this.dueMs;
  }

  /** Whether to take a checkpoint now; `linkHealed`: the link came back up since the last slice. */
  due(nowMs: number, linkHealed: boolean): boolean {
    return this.takenMs.length < WRITE_ORDER_CHECKPOINTS_MAX && (linkHealed || nowMs >= this.dueMs);
  }

  /** A checkpoint was taken now: note it, and move the seeded one on if it was due. */
  taken(nowMs: number): void {
    this.takenMs.push(nowMs);
    while (this.dueMs <= nowMs) {
      this.meanGapMs = (this.meanGapMs * GAP_GROWTH_QUARTERS) / 4;
      this.dueMs = onNanosecond(this.dueMs + this.drawGap());
    }
  }

  private drawGap(): number {
    return (this.meanGapMs * (500 + this.random.int(1001))) / 1000;
  }
}

/**
 * A time on the virtual clock's grid (whole nanoseconds): the clock can stop exactly there, so
 * a checkpoint due then is found due (a time between two nanoseconds would never be reached).
 */
const onNanosecond = (ms: number): number => Math.round(ms * 1e6) / 1e6;

/**
 * Async mode: each target must hold a prefix of its source's writes, at this very instant. Only
 * volumes that can be read at an instant without I/O (plain memory disks) are checked, and only
 * their written sectors, in pieces of one content chunk: the cost is O(sectors written so far).
 */
export function writeOrderCheckpoint(pairs: readonly MirrorPair[], checker: ConsistencyChecker, nowMs: number): void {
  for (const pair of pairs) {
    const dev = pair.secondaryVolume instanceof FootprintDevice ? pair.secondaryVolume.inner : pair.secondaryVolume;
    const peek = (dev as BlockDevice & { peek?: (lba: number, count: number) => Uint8Array }).peek;
    if (typeof peek !== 'function') continue;
    const history = checker.history(pair.primary.name, pair.lun);
    const check = new PrefixCheck(history, { node: pair.secondary.name, lun: pair.lun, writer: pair.primary.id, tMs: nowMs });
    const written = history.writtenSectors();
    const step = chunkSectors(dev.sectorSize);
    for (let k = 0; k < written.length; ) {
      const first = written[k]!;
      let last = first;
      while (k < written.length && written[k]! < first + step && written[k]! - last <= PEEK_GAP_SECTORS_MAX) last = written[k++]!;
      const v = check.feed({ bytes: peek.call(dev, first, last - first + 1), sectorSize: dev.sectorSize, firstLba: first });
      if (v) {
        checker.report(v);
        break;
      }
    }
  }
}
