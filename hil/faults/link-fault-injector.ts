import { UsageError } from '../plan-error.ts';
import type { Random } from '../../firmware/ports/random.ts';
import type { HostClock } from '../../host/clock/clock.ts';
import type { LinkChannel, LinkDirection, LinkFaultHook, Transmission } from '../../host/transports/link.ts';
import type { SimLink } from '../../host/transports/sim.ts';
import { silentTraceSink, type FrameFaultName, type TraceSink } from '../trace/events.ts';
import { LINK_FRAME_TYPE_NAMES, flapEndMs, frameFaultTables, type FrameFaultRates as Rates, type FrameFaultTables, type LinkFaultPlan } from './link-fault-plan.ts';
import { HoleSchedule } from './hole-schedule.ts';
import { CutList, PartitionSchedule, lastEndMs } from './partition-schedule.ts';

export function newLinkFaultCounters() {
  return {
    framesDropped: 0, framesCorrupted: 0, framesDuplicated: 0, framesReordered: 0, framesDelayed: 0, partitions: 0, bandwidthChanges: 0,
    silentCuts: 0, onewayCuts: 0, flapCycles: 0, heartbeatsLost: 0, resets: 0,
  };
}
export type LinkFaultCounters = ReturnType<typeof newLinkFaultCounters>;

/** What each counter counts, in words, in the order reports list them. */
export const LINK_FAULT_COUNTER_LABELS: Readonly<Record<keyof LinkFaultCounters, string>> = {
  framesDropped: 'dropped', framesCorrupted: 'corrupted', framesDuplicated: 'duplicated', framesReordered: 'reordered',
  framesDelayed: 'delayed', partitions: 'partitions', silentCuts: 'silent cuts', onewayCuts: 'one-way cuts',
  flapCycles: 'flap cycles', heartbeatsLost: 'heartbeats lost', resets: 'connection resets', bandwidthChanges: 'bandwidth changes',
};

/** `f` as one line: "12 dropped, 3 corrupted, ...". */
export function describeLinkFaultCounters(f: LinkFaultCounters): string {
  return Object.entries(LINK_FAULT_COUNTER_LABELS).map(([k, label]) => `${f[k as keyof LinkFaultCounters]} ${label}`).join(', ');
}

/** A reordered frame is held back by up to this much, enough for several later frames to overtake. */
const REORDER_MAX_MS = 0.5;


/**
 * Applies a {@link LinkFaultPlan} to a simulated link: per-frame faults, heartbeat loss and
 * connection resets through the link's fault hook; partitions, silent and one-way cuts, flaps and
 * bandwidth changes as timers. Every draw comes from `random` (a fork of the run's seed), so the
 * same plan and seed strike the same frames. `heal()` ends the fault phase: nothing more is
 * struck, every black hole ends, the original bandwidth returns.
 *
 * Every link-wide failure is a black hole that tells nobody (docs/simulated-link.md 5): the
 * firmware has to notice the silence. Black holes are counted per direction, so cuts of
 * different kinds that overlap simply add up; within one kind, episodes are armed one at a time
 * (partitions drawn lazily by {@link PartitionSchedule}), so a plan of thousands costs one timer
 * per kind and constant memory. Episodes of one kind that overlap make one, lasting until the last
 * of them ends.
 *
 * Every fault struck is published to `trace` as a `link.fault` event (see trace/events.ts); per
 * frame, the rule tables are indexed by the frame's type byte, so an unstruck frame costs five
 * array reads and no allocation. A send carrying several frames is struck as one, by its first
 * frame's type.
 */
export class LinkFaultInjector implements LinkFaultHook {
  readonly counters = newLinkFaultCounters();
  /** When the last timed fault (a black hole ending, a bandwidth change) happens; 0 if the plan has none. Known from construction. */
  readonly timedFaultsEndMs: number;
  private active = true;
  private readonly rates: FrameFaultTables;
  private readonly holes: HoleSchedule;

  constructor(
    plan: LinkFaultPlan,
    private readonly random: Random,
    private readonly link: SimLink,
    private readonly clock: HostClock,
    private readonly bandwidthMbps: number,
    private readonly trace: TraceSink = silentTraceSink,
  ) {
    this.rates = frameFaultTables(plan);
    const [a, b] = [link.a.name, link.b.name];
    this.holes = new HoleSchedule({
      plan, random: random.fork('partitions'), names: { a, b }, counters: this.counters,
      badOneway: (c) => new UsageError(`--faults: oneway=${c.from}>${c.to}: the link's controllers are ${a} and ${b}; write ${a}>${b} or ${b}>${a}`),
      host: {
        nowMs: () => clock.now(),
        later: (fn, delayMs) => clock.setTimeout(() => {
          if (this.active) fn();
        }, delayMs),
        cancel: (h) => clock.clearTimeout(h),
        emit: (e) => {
          if (trace.enabled) trace.emit(e);
        },
        holesChanged: (dirs) => {
          for (const d of dirs) link.blackhole(d, this.holes.blocked(d));
        },
        setBandwidth: (mbps) => link.setBandwidth(mbps),
      },
    });
    this.timedFaultsEndMs = Math.max(
      PartitionSchedule.endMs(plan, random.fork('partitions')),
      lastEndMs(new CutList(plan.silent)),
      ...plan.oneway.map((c) => c.atMs + c.forMs),
      ...plan.flaps.map(flapEndMs),
      ...plan.bandwidth.map((c) => c.atMs),
    );
  }

  /**
   * True while a black hole of the plan is in effect (a partition, a silent or one-way cut, a
   * flap's down half): the link is failing on purpose, so a stall is expected, not a bug.
   */
  get faultActive(): boolean {
    return this.holes.blocked('ab') || this.holes.blocked('ba');
  }

  /** Install the hook and arm the first episode of every kind and the first bandwidth change. */
  start(): void {
    this.link.setFaults(this);
    this.holes.start();
  }

  /** The fault phase ends: the system must now converge on its own. */
  heal(): void {
    this.active = false;
    this.link.setFaults(null);
    this.holes.heal(this.bandwidthMbps);
    this.link.blackhole('both', false);
  }

  onSend(dir: LinkDirection, bytes: Uint8Array, channel: LinkChannel = 0): readonly Transmission[] | null {
    if (!this.active || bytes.length < 4) return null;
    if (channel === 'datagram' ? this.strikesHeartbeat(dir, bytes) : this.strikesConnection(dir, bytes, channel)) return [];
    const type = bytes[3]!;
    if (this.strikes(this.rates.drop, type)) {
      this.counters.framesDropped++;
      this.publish('drop', dir, bytes, 0);
      return [];
    }
    let out = bytes;
    let extraDelayMs = 0;
    if (this.strikes(this.rates.corrupt, type)) {
      this.counters.framesCorrupted++;
      this.publish('corrupt', dir, bytes, 0);
      out = this.flipBits(bytes);
    }
    if (this.strikes(this.rates.reorder, type)) {
      this.counters.framesReordered++;
      const ms = (REORDER_MAX_MS * (1 + this.random.int(1000))) / 1000;
      this.publish('reorder', dir, bytes, ms);
      extraDelayMs += ms;
    }
    if (this.strikes(this.rates.delay, type)) {
      this.counters.framesDelayed++;
      const ms = (this.rates.delay.maxMs[type]! * this.random.int(1001)) / 1000;
      this.publish('delay', dir, bytes, ms);
      extraDelayMs += ms;
    }
    const copies: Transmission[] = [{ bytes: out, extraDelayMs }];
    if (this.strikes(this.rates.duplicate, type)) {
      this.counters.framesDuplicated++;
      const ms = extraDelayMs + (this.random.int(100) + 1) / 1000;
      this.publish('duplicate', dir, bytes, ms);
      copies.push({ bytes: out, extraDelayMs: ms });
    }
    return extraDelayMs === 0 && copies.length === 1 && out === bytes ? null : copies;
  }

  /** `hbloss`: the heartbeat is lost, and nothing else is. */
  private strikesHeartbeat(dir: LinkDirection, bytes: Uint8Array): boolean {
    if (this.rates.hblossPerMillion === 0 || !this.random.chance(this.rates.hblossPerMillion, 1_000_000)) return false;
    this.counters.heartbeatsLost++;
    if (this.trace.enabled) {
      const { node, peer } = this.ends(dir);
      this.trace.emit({ kind: 'link.fault', t: this.clock.now(), node, fault: 'hbloss', peer, type: frameName(bytes) });
    }
    return true;
  }

  /** `reset`: the connection carrying the frame is reset, and the frame lost with it. */
  private strikesConnection(dir: LinkDirection, bytes: Uint8Array, conn: number): boolean {
    if (this.rates.resetPerMillion === 0 || !this.random.chance(this.rates.resetPerMillion, 1_000_000)) return false;
    this.counters.resets++;
    if (this.trace.enabled) {
      const h = header(bytes);
      const { node, peer } = this.ends(dir);
      this.trace.emit({ kind: 'link.fault', t: this.clock.now(), node, fault: 'reset', peer, conn, type: frameName(bytes), seq: h.seq, lun: h.lun });
    }
    this.link.reset(conn);
    return true;
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
    const h = header(bytes);
    const { node, peer } = this.ends(dir);
    this.trace.emit({ kind: 'link.fault', t: this.clock.now(), node, fault, peer, type: frameName(bytes), seq: h.seq, lun: h.lun, delayMs });
  }

  private ends(dir: LinkDirection): { node: string; peer: string } {
    const [node, peer] = dir === 'ab' ? [this.link.a.name, this.link.b.name] : [this.link.b.name, this.link.a.name];
    return { node, peer };
  }
}

/** What a sent frame's header says of it (LUN at 6, seq at 8), or zeros for a frame too short to have one. */
function header(bytes: Uint8Array): { seq: number; lun: number } {
  if (bytes.length < 16) return { seq: 0, lun: 0 };
  const v = new DataView(bytes.buffer, bytes.byteOffset, 16);
  return { seq: v.getUint32(8) * 0x1_0000_0000 + v.getUint32(12), lun: v.getUint16(6) };
}

function frameName(bytes: Uint8Array): string {
  return LINK_FRAME_TYPE_NAMES[bytes[3]!] ?? `type ${bytes[3]}`;
}
