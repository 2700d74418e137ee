import { frameTypeName } from '../../firmware/protocol/frame.ts';
import type { Random } from '../../firmware/ports/random.ts';
import type { HostClock } from '../../host/clock/clock.ts';
import type { LinkDirection, LinkFaultHook, Transmission } from '../../host/transports/link.ts';
import type { SimLink } from '../../host/transports/sim.ts';
import type { FrameFault, LinkFaultPlan } from './link-fault-plan.ts';

export function newLinkFaultCounters() {
  return { framesDropped: 0, framesCorrupted: 0, framesDuplicated: 0, framesReordered: 0, framesDelayed: 0, partitions: 0, bandwidthChanges: 0 };
}
export type LinkFaultCounters = ReturnType<typeof newLinkFaultCounters>;

/** A reordered frame is held back by up to this much, enough for several later frames to overtake. */
const REORDER_MAX_MS = 0.5;
/** Partitions drawn from the seed: first after 1-20 ms, then gaps of 5-50 ms, each 1-30 ms long. */
const DRAWN = { firstMs: [1, 20], gapMs: [5, 50], lengthMs: [1, 30] } as const;

/**
 * Applies a {@link LinkFaultPlan} to a simulated link: per-frame faults through the link's fault
 * hook, partitions and bandwidth changes as timers. Every draw comes from `random` (a fork of the
 * run's seed), so the same plan and seed strike the same frames. `heal()` ends the fault phase:
 * nothing more is struck, a cut link comes back, the original bandwidth returns.
 */
export class LinkFaultInjector implements LinkFaultHook {
  readonly counters = newLinkFaultCounters();
  private active = true;
  private readonly timers: unknown[] = [];
  private readonly bandwidthMbps: number;
  private lastTimedMs = 0;

  constructor(
    private readonly plan: LinkFaultPlan,
    private readonly random: Random,
    private readonly link: SimLink,
    private readonly clock: HostClock,
    bandwidthMbps: number,
  ) {
    this.bandwidthMbps = bandwidthMbps;
  }

  /** Install the hook and schedule the plan's timed faults. */
  start(): void {
    this.link.setFaults(this);
    for (const p of this.partitionTimes()) {
      this.at(p.atMs, () => {
        this.counters.partitions++;
        this.link.cut('partition');
      });
      this.at(p.atMs + p.forMs, () => this.link.heal());
    }
    for (const b of this.plan.bandwidth) {
      this.at(b.atMs, () => {
        this.counters.bandwidthChanges++;
        this.link.setBandwidth(b.mbps);
      });
    }
  }

  /** When the last partition heals or bandwidth change happens (0 if the plan has none). */
  get timedFaultsEndMs(): number {
    return this.lastTimedMs;
  }

  /** The fault phase ends: the system must now converge on its own. */
  heal(): void {
    this.active = false;
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.length = 0;
    this.link.setFaults(null);
    this.link.setBandwidth(this.bandwidthMbps);
    this.link.heal();
  }

  onSend(_dir: LinkDirection, bytes: Uint8Array): readonly Transmission[] | null {
    if (!this.active || bytes.length < 4) return null;
    const kind = frameTypeName(bytes[3]!);
    const plan = this.plan;
    if (this.strikes(plan.drop, kind)) {
      this.counters.framesDropped++;
      return [];
    }
    let out = bytes;
    let extraDelayMs = 0;
    if (this.strikes(plan.corrupt, kind)) {
      this.counters.framesCorrupted++;
      out = this.flipBits(bytes);
    }
    if (this.strikes(plan.reorder, kind)) {
      this.counters.framesReordered++;
      extraDelayMs += (REORDER_MAX_MS * (1 + this.random.int(1000))) / 1000;
    }
    if (this.strikes(plan.delay, kind)) {
      this.counters.framesDelayed++;
      extraDelayMs += (plan.delayMaxMs * this.random.int(1001)) / 1000;
    }
    const copies: Transmission[] = [{ bytes: out, extraDelayMs }];
    if (this.strikes(plan.duplicate, kind)) {
      this.counters.framesDuplicated++;
      copies.push({ bytes: out, extraDelayMs: extraDelayMs + (this.random.int(100) + 1) / 1000 });
    }
    return extraDelayMs === 0 && copies.length === 1 && out === bytes ? null : copies;
  }

  private strikes(fault: FrameFault | null, kind: string): boolean {
    if (fault === null || fault.perMillion === 0) return false;
    if (fault.kinds.length > 0 && !fault.kinds.includes(kind)) return false;
    return this.random.chance(fault.perMillion, 1_000_000);
  }

  /** A copy with one to three bits flipped at drawn places (the sender keeps its bytes intact). */
  private flipBits(bytes: Uint8Array): Uint8Array {
    const copy = bytes.slice();
    const flips = 1 + this.random.int(3);
    for (let i = 0; i < flips; i++) copy[this.random.int(copy.length)]! ^= 1 << this.random.int(8);
    return copy;
  }

  private partitionTimes(): { atMs: number; forMs: number }[] {
    const all = [...this.plan.partitions];
    const draw = ([lo, hi]: readonly [number, number]): number => lo + this.random.int(hi - lo + 1);
    let t = draw(DRAWN.firstMs);
    for (let i = 0; i < this.plan.partitionsDrawn; i++) {
      const forMs = draw(DRAWN.lengthMs);
      all.push({ atMs: t, forMs });
      t += forMs + draw(DRAWN.gapMs);
    }
    return all;
  }

  private at(ms: number, fn: () => void): void {
    this.lastTimedMs = Math.max(this.lastTimedMs, ms);
    this.timers.push(this.clock.setTimeout(() => {
      if (this.active) fn();
    }, Math.max(0, ms - this.clock.now())));
  }
}
