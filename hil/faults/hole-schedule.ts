import type { Random } from '../../firmware/ports/random.ts';
import type { HoleFaultEvent } from '../trace/events.ts';
import type { LinkFaultPlan, OneWayCut } from './link-fault-plan.ts';
import { CutList, FlapSchedule, PartitionSchedule, type EpisodeSource, type Partition } from './partition-schedule.ts';

/** A direction of a link between ends A and B. */
export type HoleDirection = 'ab' | 'ba';
/** A timer of the host's clock. */
type TimerHandle = unknown;

/** What a schedule counts (a subset of the link fault counters). */
export interface HoleCounters {
  partitions: number;
  silentCuts: number;
  onewayCuts: number;
  flapCycles: number;
  bandwidthChanges: number;
}

type HoleKind = 'partition' | 'silent' | 'oneway' | 'flap';

interface HoleStream {
  readonly kind: HoleKind;
  readonly source: EpisodeSource;
  readonly dirs: readonly HoleDirection[];
  readonly from?: string;
  readonly to?: string;
  readonly cycles?: number;
  timer: TimerHandle | null;
  begun: number;
  active: boolean;
}

/** What the schedule needs from its user (the simulator's injector, the proxy): its clock, its timers, where to tell things. */
export interface HoleScheduleHost {
  nowMs(): number;
  later(fn: () => void, delayMs: number): TimerHandle;
  cancel(handle: TimerHandle): void;
  emit(event: HoleFaultEvent | { kind: 'link.fault'; t: number; node: 'link'; fault: 'bandwidth'; mbps: number }): void;
  /** The black holes covering `dirs` changed (each direction: is it `blocked` now?). */
  holesChanged(dirs: readonly HoleDirection[]): void;
  setBandwidth(mbps: number): void;
}

const BOTH: readonly HoleDirection[] = ['ab', 'ba'];

/**
 * A fault plan's black holes and bandwidth changes on a clock, for the simulated link
 * (docs/simulated-link.md 5) and the fault proxy (docs/fault-proxy.md 4) alike: one stream per kind
 * of hole (one-way cuts: per direction), one episode armed at a time (partitions drawn lazily by
 * {@link PartitionSchedule}, so a plan of thousands costs one timer per kind and constant memory),
 * episodes of a kind that overlap merged into one lasting until the last of them ends, holes
 * counted per direction so that overlapping kinds add up. Times are the host's `nowMs()`. Drawn
 * partitions come from a stream of their own (`random`), so they depend on the seed alone.
 */
export class HoleSchedule {
  readonly counters: HoleCounters;
  private readonly streams: HoleStream[];
  private readonly holes = { ab: 0, ba: 0 };
  private readonly bandwidth: readonly { atMs: number; mbps: number }[];
  private bandwidthNext = 0;
  private bandwidthTimer: TimerHandle | null = null;
  private bandwidthChanged = false;

  private readonly host: HoleScheduleHost;

  /**
   * `random` draws the partitions; `names` are the ends A and B that `oneway=` items name, and
   * `badOneway` the error for an item naming anything else (what the user can write depends on the caller).
   */
  constructor(o: {
    plan: LinkFaultPlan; random: Random; names: { a: string; b: string }; counters: HoleCounters; host: HoleScheduleHost;
    badOneway: (cut: OneWayCut) => Error;
  }) {
    this.counters = o.counters;
    this.host = o.host;
    this.streams = holeStreams(o.plan, o.random, o.names, o.badOneway);
    this.bandwidth = [...o.plan.bandwidth].sort((x, y) => x.atMs - y.atMs);
  }

  /** Arm the first episode of every kind and the first bandwidth change. */
  start(): void {
    for (const s of this.streams) this.arm(s, s.source.next());
    this.armBandwidth();
  }

  /** Cancel every timer; nothing is emitted after this. */
  stop(): void {
    for (const s of this.streams) {
      if (s.timer !== null) this.host.cancel(s.timer);
      s.timer = null;
    }
    if (this.bandwidthTimer !== null) this.host.cancel(this.bandwidthTimer);
    this.bandwidthTimer = null;
  }

  /**
   * The fault phase ends: nothing more is scheduled, the bandwidth the plan changed goes back to
   * `originalMbps`, and every black hole in effect ends (each with its end event).
   */
  heal(originalMbps: number): void {
    if (this.bandwidthTimer !== null) this.host.cancel(this.bandwidthTimer);
    this.bandwidthTimer = null;
    if (this.bandwidthChanged) this.changeBandwidth(originalMbps);
    for (const s of this.streams) {
      if (s.timer !== null) this.host.cancel(s.timer);
      s.timer = null;
      if (s.active) this.end(s);
    }
  }

  /** True while a black hole covers `dir`. */
  blocked(dir: HoleDirection): boolean {
    return this.holes[dir] > 0;
  }

  /** The directions covered now, as `ab`/`ba`. */
  active(): HoleDirection[] {
    return BOTH.filter((d) => this.holes[d] > 0);
  }

  private arm(s: HoleStream, p: Partition | null): void {
    s.timer = p === null ? null : this.at(p.atMs, () => {
      let untilMs = p.atMs + p.forMs;
      let next = s.source.next();
      while (next !== null && next.atMs <= untilMs) {
        untilMs = Math.max(untilMs, next.atMs + next.forMs);
        next = s.source.next();
      }
      this.begin(s, untilMs);
      s.timer = this.at(untilMs, () => {
        this.end(s);
        this.arm(s, next);
      });
    });
  }

  private begin(s: HoleStream, untilMs: number): void {
    s.active = true;
    s.begun++;
    const c = this.counters;
    if (s.kind === 'partition') c.partitions++;
    else if (s.kind === 'silent') c.silentCuts++;
    else if (s.kind === 'oneway') c.onewayCuts++;
    else c.flapCycles++;
    this.emitEdge(s, 'start', untilMs);
    for (const d of s.dirs) this.holes[d]++;
    this.host.holesChanged(s.dirs);
  }

  private end(s: HoleStream): void {
    s.active = false;
    this.emitEdge(s, 'end', 0);
    for (const d of s.dirs) this.holes[d]--;
    this.host.holesChanged(s.dirs);
  }

  private emitEdge(s: HoleStream, edge: 'start' | 'end', untilMs: number): void {
    const base = { kind: 'link.fault', t: this.host.nowMs(), node: 'link' } as const;
    const start = edge === 'start';
    let e: HoleFaultEvent;
    if (s.kind === 'partition') e = start ? { ...base, fault: 'partition.start', untilMs } : { ...base, fault: 'partition.heal' };
    else if (s.kind === 'silent') e = start ? { ...base, fault: 'silent.start', untilMs } : { ...base, fault: 'silent.end' };
    else if (s.kind === 'oneway') {
      const ends = { from: s.from!, to: s.to! };
      e = start ? { ...base, fault: 'oneway.start', ...ends, untilMs } : { ...base, fault: 'oneway.end', ...ends };
    } else {
      const cycle = { cycle: s.begun, cycles: s.cycles! };
      e = start ? { ...base, fault: 'flap.down', ...cycle, untilMs } : { ...base, fault: 'flap.up', ...cycle };
    }
    this.host.emit(e);
  }

  private armBandwidth(): void {
    const b = this.bandwidth[this.bandwidthNext++];
    this.bandwidthTimer = b === undefined ? null : this.at(b.atMs, () => {
      this.counters.bandwidthChanges++;
      this.bandwidthChanged = true;
      this.changeBandwidth(b.mbps);
      this.armBandwidth();
    });
  }

  private changeBandwidth(mbps: number): void {
    this.host.emit({ kind: 'link.fault', t: this.host.nowMs(), node: 'link', fault: 'bandwidth', mbps });
    this.host.setBandwidth(mbps);
  }

  private at(ms: number, fn: () => void): TimerHandle {
    return this.host.later(fn, Math.max(0, ms - this.host.nowMs()));
  }
}

function holeStreams(plan: LinkFaultPlan, random: Random, names: { a: string; b: string }, badOneway: (cut: OneWayCut) => Error): HoleStream[] {
  const stream = (kind: HoleKind, source: EpisodeSource, dirs: readonly HoleDirection[], extra: Partial<HoleStream> = {}): HoleStream =>
    ({ kind, source, dirs, timer: null, begun: 0, active: false, ...extra });
  const streams = [stream('partition', new PartitionSchedule(plan, random), BOTH), stream('silent', new CutList(plan.silent), BOTH)];
  const byDir = new Map<HoleDirection, OneWayCut[]>();
  for (const c of plan.oneway) {
    const dir = c.from === names.a && c.to === names.b ? 'ab' : c.from === names.b && c.to === names.a ? 'ba' : null;
    if (dir === null) throw badOneway(c);
    byDir.set(dir, [...(byDir.get(dir) ?? []), c]);
  }
  for (const [dir, cuts] of [...byDir].sort(([x], [y]) => x.localeCompare(y))) {
    streams.push(stream('oneway', new CutList(cuts), [dir], { from: cuts[0]!.from, to: cuts[0]!.to }));
  }
  for (const f of plan.flaps) streams.push(stream('flap', new FlapSchedule(f), BOTH, { cycles: f.cycles }));
  return streams;
}
