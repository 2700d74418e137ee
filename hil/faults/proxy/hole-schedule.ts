import type { TimerHandle } from '../../../firmware/ports/clock.ts';
import type { Random } from '../../../firmware/ports/random.ts';
import type { HoleFaultEvent } from '../../trace/events.ts';
import type { LinkFaultPlan, OneWayCut } from '../link-fault-plan.ts';
import { CutList, FlapSchedule, PartitionSchedule, type EpisodeSource, type Partition } from '../partition-schedule.ts';
import { ProxyError } from './errors.ts';
import type { ProxyDirection } from './frame-decisions.ts';
import type { HoleCounters } from './proxy-stats.ts';

type HoleKind = 'partition' | 'silent' | 'oneway' | 'flap';

interface HoleStream {
  readonly kind: HoleKind;
  readonly source: EpisodeSource;
  readonly dirs: readonly ProxyDirection[];
  readonly from?: string;
  readonly to?: string;
  readonly cycles?: number;
  timer: TimerHandle | null;
  begun: number;
  active: boolean;
}

/** What the schedule needs from the proxy: its time since start, tracked timers, and where to tell things. */
export interface HoleScheduleHost {
  nowMs(): number;
  later(fn: () => void, delayMs: number): TimerHandle;
  cancel(handle: TimerHandle): void;
  emit(event: HoleFaultEvent | { kind: 'link.fault'; t: number; node: 'link'; fault: 'bandwidth'; mbps: number }): void;
  /** A direction's black hole began or ended. */
  holesChanged(): void;
  setBandwidth(mbps: number): void;
}

const BOTH: readonly ProxyDirection[] = ['ab', 'ba'];

/**
 * The plan's black holes and bandwidth changes on the proxy's clock (docs/fault-proxy.md 4),
 * scheduled as the simulator's injector does: one stream per kind of hole (one-way cuts: per
 * direction), one episode armed at a time, episodes of a kind that overlap merged into one, holes
 * counted per direction so that overlapping kinds add up. Times are ms since the proxy started.
 * Drawn partitions come from a stream of their own (`random`), so they depend on the seed alone.
 */
export class HoleSchedule {
  readonly counters: HoleCounters;
  private readonly streams: HoleStream[];
  private readonly holes = { ab: 0, ba: 0 };
  private readonly bandwidth: readonly { atMs: number; mbps: number }[];
  private bandwidthNext = 0;
  private bandwidthTimer: TimerHandle | null = null;

  private readonly host: HoleScheduleHost;

  /** `random` draws the partitions; `names` are the ends (A connects, B listens) that `oneway=` items name. */
  constructor(o: { plan: LinkFaultPlan; random: Random; names: { a: string; b: string }; counters: HoleCounters; host: HoleScheduleHost }) {
    this.counters = o.counters;
    this.host = o.host;
    this.streams = holeStreams(o.plan, o.random, o.names);
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

  /** True while a black hole covers `dir`. */
  blocked(dir: ProxyDirection): boolean {
    return this.holes[dir] > 0;
  }

  /** The directions covered now, as `ab`/`ba`. */
  active(): ProxyDirection[] {
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
    this.host.holesChanged();
  }

  private end(s: HoleStream): void {
    s.active = false;
    this.emitEdge(s, 'end', 0);
    for (const d of s.dirs) this.holes[d]--;
    this.host.holesChanged();
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
      this.host.setBandwidth(b.mbps);
      this.host.emit({ kind: 'link.fault', t: this.host.nowMs(), node: 'link', fault: 'bandwidth', mbps: b.mbps });
      this.armBandwidth();
    });
  }

  private at(ms: number, fn: () => void): TimerHandle {
    return this.host.later(fn, Math.max(0, ms - this.host.nowMs()));
  }
}

function holeStreams(plan: LinkFaultPlan, random: Random, names: { a: string; b: string }): HoleStream[] {
  const stream = (kind: HoleKind, source: EpisodeSource, dirs: readonly ProxyDirection[], extra: Partial<HoleStream> = {}): HoleStream =>
    ({ kind, source, dirs, timer: null, begun: 0, active: false, ...extra });
  const streams = [stream('partition', new PartitionSchedule(plan, random), BOTH), stream('silent', new CutList(plan.silent), BOTH)];
  const byDir = new Map<ProxyDirection, OneWayCut[]>();
  for (const c of plan.oneway) {
    const dir = c.from === names.a && c.to === names.b ? 'ab' : c.from === names.b && c.to === names.a ? 'ba' : null;
    if (dir === null) {
      throw new ProxyError('ML_ERR_PROXY_PLAN',
        `--faults: oneway=${c.from}>${c.to}: the proxy's ends are ${names.a} (the connect side) and ${names.b} (the listen side); `
        + `write ${names.a}>${names.b} or ${names.b}>${names.a}, or name the ends with --names`);
    }
    byDir.set(dir, [...(byDir.get(dir) ?? []), c]);
  }
  for (const [dir, cuts] of [...byDir].sort(([x], [y]) => x.localeCompare(y))) {
    streams.push(stream('oneway', new CutList(cuts), [dir], { from: cuts[0]!.from, to: cuts[0]!.to }));
  }
  for (const f of plan.flaps) streams.push(stream('flap', new FlapSchedule(f), BOTH, { cycles: f.cycles }));
  return streams;
}
