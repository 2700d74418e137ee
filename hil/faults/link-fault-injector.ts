import { FRAME_TYPE_NAMES, type FrameType } from '../../firmware/protocol/frame.ts';
import type { Random } from '../../firmware/ports/random.ts';
import type { HostClock } from '../../host/clock/clock.ts';
import type { LinkDirection, LinkFaultHook, Transmission } from '../../host/transports/link.ts';
import type { SimLink } from '../../host/transports/sim.ts';
import { silentTraceSink, type FrameFaultName, type TraceSink } from '../trace/events.ts';
import type { DelayFault, FrameFault, LinkFaultPlan } from './link-fault-plan.ts';
import { PartitionSchedule, type Partition } from './partition-schedule.ts';

export function newLinkFaultCounters() {
  return { framesDropped: 0, framesCorrupted: 0, framesDuplicated: 0, framesReordered: 0, framesDelayed: 0, partitions: 0, bandwidthChanges: 0 };
}
export type LinkFaultCounters = ReturnType<typeof newLinkFaultCounters>;

/** A reordered frame is held back by up to this much, enough for several later frames to overtake. */
const REORDER_MAX_MS = 0.5;
/** Frame type codes are one byte. */
const FRAME_TYPES = 256;

/** A per-frame fault as a table by frame type code: parts per million (0: never), and a delay maximum. */
interface Rates {
  perMillion: Uint32Array;
  maxMs: Float64Array;
}

function rates(rules: readonly FrameFault[]): Rates {
  const r: Rates = { perMillion: new Uint32Array(FRAME_TYPES), maxMs: new Float64Array(FRAME_TYPES) };
  for (const rule of rules) {
    for (const [code, name] of Object.entries(FRAME_TYPE_NAMES)) {
      if (rule.kinds.length > 0 && !rule.kinds.includes(name)) continue;
      r.perMillion[Number(code)] = rule.perMillion;
      r.maxMs[Number(code)] = (rule as Partial<DelayFault>).maxMs ?? 0;
    }
  }
  return r;
}

/**
 * Applies a {@link LinkFaultPlan} to a simulated link: per-frame faults through the link's fault
 * hook, partitions and bandwidth changes as timers. Every draw comes from `random` (a fork of the
 * run's seed), so the same plan and seed strike the same frames. `heal()` ends the fault phase:
 * nothing more is struck, a cut link comes back, the original bandwidth returns.
 *
 * Timed faults are armed one at a time: when a partition heals, the next is drawn (from a fork of
 * its own, {@link PartitionSchedule}) and armed; likewise the bandwidth changes, in time order. So a
 * plan of thousands of partitions costs two timers and constant memory. Partitions of the plan
 * that overlap make one cut, lasting until the last of them ends: the link is down while any is.
 *
 * Every fault struck is published to `trace` as a `link.fault` event (see trace/events.ts); per
 * frame, the rule tables are indexed by the frame's type byte, so an unstruck frame costs five
 * array reads and no allocation.
 */
export class LinkFaultInjector implements LinkFaultHook {
  readonly counters = newLinkFaultCounters();
  /** When the last timed fault (partition heal, bandwidth change) happens; 0 if the plan has none. Known from construction. */
  readonly timedFaultsEndMs: number;
  private active = true;
  private readonly drop: Rates;
  private readonly corrupt: Rates;
  private readonly duplicate: Rates;
  private readonly reorder: Rates;
  private readonly delay: Rates;
  private readonly partitions: PartitionSchedule;
  private readonly bandwidthChanges: readonly { atMs: number; mbps: number }[];
  private bandwidthNext = 0;
  private bandwidthChanged = false;
  private partitionTimer: unknown = null;
  private bandwidthTimer: unknown = null;
  private cut = false;

  constructor(
    plan: LinkFaultPlan,
    private readonly random: Random,
    private readonly link: SimLink,
    private readonly clock: HostClock,
    private readonly bandwidthMbps: number,
    private readonly trace: TraceSink = silentTraceSink,
  ) {
    this.drop = rates(plan.drop);
    this.corrupt = rates(plan.corrupt);
    this.duplicate = rates(plan.duplicate);
    this.reorder = rates(plan.reorder);
    this.delay = rates(plan.delay);
    this.partitions = new PartitionSchedule(plan, random.fork('partitions'));
    this.bandwidthChanges = [...plan.bandwidth].sort((a, b) => a.atMs - b.atMs);
    const bandwidthEndMs = this.bandwidthChanges.at(-1)?.atMs ?? 0;
    this.timedFaultsEndMs = Math.max(PartitionSchedule.endMs(plan, random.fork('partitions')), bandwidthEndMs);
  }

  /** Install the hook and arm the first partition and the first bandwidth change. */
  start(): void {
    this.link.setFaults(this);
    this.armPartition(this.partitions.next());
    this.armBandwidth();
  }

  /** The fault phase ends: the system must now converge on its own. */
  heal(): void {
    this.active = false;
    for (const t of [this.partitionTimer, this.bandwidthTimer]) if (t !== null) this.clock.clearTimeout(t);
    this.partitionTimer = this.bandwidthTimer = null;
    this.link.setFaults(null);
    if (this.bandwidthChanged) this.setBandwidth(this.bandwidthMbps);
    if (this.cut) this.healPartition();
    else this.link.heal();
  }

  onSend(dir: LinkDirection, bytes: Uint8Array): readonly Transmission[] | null {
    if (!this.active || bytes.length < 4) return null;
    const type = bytes[3]!;
    if (this.strikes(this.drop, type)) {
      this.counters.framesDropped++;
      this.publish('drop', dir, bytes, 0);
      return [];
    }
    let out = bytes;
    let extraDelayMs = 0;
    if (this.strikes(this.corrupt, type)) {
      this.counters.framesCorrupted++;
      this.publish('corrupt', dir, bytes, 0);
      out = this.flipBits(bytes);
    }
    if (this.strikes(this.reorder, type)) {
      this.counters.framesReordered++;
      const ms = (REORDER_MAX_MS * (1 + this.random.int(1000))) / 1000;
      this.publish('reorder', dir, bytes, ms);
      extraDelayMs += ms;
    }
    if (this.strikes(this.delay, type)) {
      this.counters.framesDelayed++;
      const ms = (this.delay.maxMs[type]! * this.random.int(1001)) / 1000;
      this.publish('delay', dir, bytes, ms);
      extraDelayMs += ms;
    }
    const copies: Transmission[] = [{ bytes: out, extraDelayMs }];
    if (this.strikes(this.duplicate, type)) {
      this.counters.framesDuplicated++;
      const ms = extraDelayMs + (this.random.int(100) + 1) / 1000;
      this.publish('duplicate', dir, bytes, ms);
      copies.push({ bytes: out, extraDelayMs: ms });
    }
    return extraDelayMs === 0 && copies.length === 1 && out === bytes ? null : copies;
  }

  private strikes(r: Rates, type: number): boolean {
    const ppm = r.perMillion[type]!;
    return ppm !== 0 && this.random.chance(ppm, 1_000_000);
  }

  /** A copy with one to three bits flipped at drawn places (the sender keeps its bytes intact). */
  private flipBits(bytes: Uint8Array): Uint8Array {
    const copy = bytes.slice();
    const flips = 1 + this.random.int(3);
    for (let i = 0; i < flips; i++) copy[this.random.int(copy.length)]! ^= 1 << this.random.int(8);
    return copy;
  }

  /** A per-frame fault, with what the sent frame's header says (type at 3, LUN at 6, seq at 8). */
  private publish(fault: FrameFaultName, dir: LinkDirection, bytes: Uint8Array, delayMs: number): void {
    if (!this.trace.enabled) return;
    const [node, peer] = dir === 'ab' ? [this.link.a.name, this.link.b.name] : [this.link.b.name, this.link.a.name];
    const header = bytes.length >= 16 ? new DataView(bytes.buffer, bytes.byteOffset, 16) : null;
    const seq = header ? header.getUint32(8) * 0x1_0000_0000 + header.getUint32(12) : 0;
    const type = FRAME_TYPE_NAMES[bytes[3] as FrameType] ?? `type ${bytes[3]}`;
    this.trace.emit({ kind: 'link.fault', t: this.clock.now(), node, fault, peer, type, seq, lun: header ? header.getUint16(6) : 0, delayMs });
  }

  /** Arm `p`; when it starts, fold in every partition that begins before it ends, then arm its heal. */
  private armPartition(p: Partition | null): void {
    this.partitionTimer = p === null ? null : this.at(p.atMs, () => {
      let untilMs = p.atMs + p.forMs;
      let next = this.partitions.next();
      while (next !== null && next.atMs <= untilMs) {
        untilMs = Math.max(untilMs, next.atMs + next.forMs);
        next = this.partitions.next();
      }
      this.counters.partitions++;
      this.cut = true;
      if (this.trace.enabled) this.trace.emit({ kind: 'link.fault', t: this.clock.now(), node: 'link', fault: 'partition.start', untilMs });
      this.link.cut('partition');
      this.partitionTimer = this.at(untilMs, () => {
        this.healPartition();
        this.armPartition(next);
      });
    });
  }

  private healPartition(): void {
    this.cut = false;
    if (this.trace.enabled) this.trace.emit({ kind: 'link.fault', t: this.clock.now(), node: 'link', fault: 'partition.heal' });
    this.link.heal();
  }

  private armBandwidth(): void {
    const b = this.bandwidthChanges[this.bandwidthNext++];
    this.bandwidthTimer = b === undefined ? null : this.at(b.atMs, () => {
      this.counters.bandwidthChanges++;
      this.bandwidthChanged = true;
      this.setBandwidth(b.mbps);
      this.armBandwidth();
    });
  }

  private setBandwidth(mbps: number): void {
    if (this.trace.enabled) this.trace.emit({ kind: 'link.fault', t: this.clock.now(), node: 'link', fault: 'bandwidth', mbps });
    this.link.setBandwidth(mbps);
  }

  private at(ms: number, fn: () => void): unknown {
    return this.clock.setTimeout(() => {
      if (this.active) fn();
    }, Math.max(0, ms - this.clock.now()));
  }
}
