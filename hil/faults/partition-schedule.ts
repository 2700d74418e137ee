import type { Random } from '../../firmware/ports/random.ts';
import { DRAWN_PARTITIONS, type LinkFaultPlan } from './link-fault-plan.ts';

export interface Partition {
  atMs: number;
  forMs: number;
}

/**
 * A plan's partitions in start order, handed out one at a time: the explicit ones (`AT+FOR`,
 * sorted) merged with the `partitionsDrawn` drawn from the seed. A drawn partition is drawn only
 * when it is asked for, so memory stays constant however many the plan names; and the draws come
 * from a stream of their own (`random` should be a fork used for nothing else), so the schedule
 * depends on the seed alone, never on how much traffic the per-frame faults have seen.
 */
export class PartitionSchedule {
  private readonly explicit: readonly Partition[];
  private explicitNext = 0;
  private drawnLeft: number;
  private drawnAtMs: number;
  private drawn: Partition | null = null;

  constructor(plan: LinkFaultPlan, private readonly random: Random) {
    this.explicit = [...plan.partitions].sort((a, b) => a.atMs - b.atMs || a.forMs - b.forMs);
    this.drawnLeft = plan.partitionsDrawn;
    this.drawnAtMs = this.drawnLeft > 0 ? this.draw(DRAWN_PARTITIONS.firstMs) : 0;
  }

  /**
   * When the last partition of the plan heals, drawn from an identical stream (`random` must be
   * a fork made the same way as the schedule's own): O(partitions) time, constant memory.
   */
  static endMs(plan: LinkFaultPlan, random: Random): number {
    const s = new PartitionSchedule(plan, random);
    let end = 0;
    for (let p = s.next(); p !== null; p = s.next()) end = Math.max(end, p.atMs + p.forMs);
    return end;
  }

  /** The partition that starts next, or null when there are no more. */
  next(): Partition | null {
    if (this.drawn === null && this.drawnLeft > 0) this.drawn = this.drawOne();
    const e = this.explicit[this.explicitNext];
    const d = this.drawn;
    if (e !== undefined && (d === null || e.atMs <= d.atMs)) {
      this.explicitNext++;
      return e;
    }
    this.drawn = null;
    return d;
  }

  private drawOne(): Partition {
    this.drawnLeft--;
    const p = { atMs: this.drawnAtMs, forMs: this.draw(DRAWN_PARTITIONS.lengthMs) };
    this.drawnAtMs += p.forMs + this.draw(DRAWN_PARTITIONS.gapMs);
    return p;
  }

  private draw([lo, hi]: readonly [number, number]): number {
    return lo + this.random.int(hi - lo + 1);
  }
}
