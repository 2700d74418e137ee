import type { Random } from '../../firmware/ports/random.ts';
import { DRAWN_PARTITIONS, type Flap, type LinkFaultPlan, type TimedCut } from './link-fault-plan.ts';

/** A stretch of time during which a black hole is in effect. */
export interface Partition {
  atMs: number;
  forMs: number;
}

/**
 * Black holes of one kind, in start order, handed out one at a time, so that a plan of thousands
 * costs one timer and constant memory while it runs (docs/simulated-link.md 5).
 */
export interface EpisodeSource {
  /** The episode that starts next, or null when there are no more. */
  next(): Partition | null;
}

/** When the last episode of `source` ends: O(episodes) time, constant memory. `source` is used up. */
export function lastEndMs(source: EpisodeSource): number {
  let end = 0;
  for (let p = source.next(); p !== null; p = source.next()) end = Math.max(end, p.atMs + p.forMs);
  return end;
}

/**
 * A plan's partitions in start order: the explicit ones (`AT+FOR`, sorted) merged with the
 * `partitionsDrawn` drawn from the seed. A drawn partition is drawn only when it is asked for, so
 * memory stays constant however many the plan names; and the draws come from a stream of their
 * own (`random` should be a fork used for nothing else), so the schedule depends on the seed
 * alone, never on how much traffic the per-frame faults have seen.
 */
export class PartitionSchedule implements EpisodeSource {
  private readonly explicit: CutList;
  private drawnLeft: number;
  private drawnAtMs: number;
  private drawn: Partition | null = null;

  constructor(plan: LinkFaultPlan, private readonly random: Random) {
    this.explicit = new CutList(plan.partitions);
    this.drawnLeft = plan.partitionsDrawn;
    this.drawnAtMs = this.drawnLeft > 0 ? this.draw(DRAWN_PARTITIONS.firstMs) : 0;
  }

  /**
   * When the last partition of the plan heals, drawn from an identical stream (`random` must be
   * a fork made the same way as the schedule's own).
   */
  static endMs(plan: LinkFaultPlan, random: Random): number {
    return lastEndMs(new PartitionSchedule(plan, random));
  }

  next(): Partition | null {
    if (this.drawn === null && this.drawnLeft > 0) this.drawn = this.drawOne();
    const e = this.explicit.peek();
    const d = this.drawn;
    if (e !== null && (d === null || e.atMs <= d.atMs)) return this.explicit.next();
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

/** Explicit cuts (`silent=`, `oneway=`, explicit partitions) in start order, shortest first among equal starts. */
export class CutList implements EpisodeSource {
  private readonly cuts: readonly TimedCut[];
  private at = 0;

  constructor(cuts: readonly TimedCut[]) {
    this.cuts = [...cuts].sort((a, b) => a.atMs - b.atMs || a.forMs - b.forMs);
  }

  peek(): Partition | null {
    const c = this.cuts[this.at];
    return c === undefined ? null : { atMs: c.atMs, forMs: c.forMs };
  }

  next(): Partition | null {
    const c = this.peek();
    if (c !== null) this.at++;
    return c;
  }
}

/** A flap's down halves: cycle i is a black hole from `atMs + i * periodMs` for `periodMs / 2`. */
export class FlapSchedule implements EpisodeSource {
  private cycle = 0;

  constructor(private readonly flap: Flap) {}

  /** The cycle the last episode handed out belongs to, counted from 1. */
  get cycleNumber(): number {
    return this.cycle;
  }

  next(): Partition | null {
    const f = this.flap;
    if (this.cycle >= f.cycles) return null;
    return { atMs: f.atMs + this.cycle++ * f.periodMs, forMs: f.periodMs / 2 };
  }
}
