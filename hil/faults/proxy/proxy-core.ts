import type { TimerHandle } from '../../../firmware/ports/clock.ts';
import type { HostClock } from '../../../host/clock/clock.ts';
import { RealClock } from '../../../host/clock/real.ts';
import { SeededRandom } from '../../../host/random.ts';
import type { Logger } from '../../log.ts';
import { formatLinkFaults, LINK_FRAME_TYPE_NAMES, type LinkFaultPlan } from '../link-fault-plan.ts';
import { FrameDecider, type ProxyDirection } from './frame-decisions.ts';
import { HoleSchedule } from '../hole-schedule.ts';
import { ProxyError } from './errors.ts';
import { PROXY_LIMITS, type ProxyLimits } from './limits.ts';
import { Pacer } from './pacer.ts';
import type { ProxyEvent, ProxyEventSink } from './proxy-events.ts';
import { DirectionTally, newConnectionCounters, newHoleCounters, type ProxyStats } from './proxy-stats.ts';

/** What every fault proxy is started with (docs/fault-proxy.md 6). */
export interface FaultProxyCommonOptions {
  plan: LinkFaultPlan;
  seed: number;
  /** The ends' names, as the plan's `oneway=` items name them: A the connect side, B the listen side (default `A`, `B`). */
  names?: { a: string; b: string };
  /** Wall time by default; tests may pass a virtual clock (the sockets stay real). */
  clock?: HostClock;
  logger?: Logger;
  /** Every fault committed, as it happens (the CLI writes them as JSON lines). */
  onEvent?: ProxyEventSink;
  limits?: Partial<ProxyLimits>;
}

/** The minimal logger the proxy needs; pino's satisfies it. */
type ProxyLogger = Pick<Logger, 'info' | 'warn' | 'debug'>;

const SILENT_LOGGER: ProxyLogger = { info: () => {}, warn: () => {}, debug: () => {} } as unknown as ProxyLogger;

/**
 * What the TCP/UDP proxy and the serial relay share: the clock and its time origin, tracked
 * timers, the fault decisions, the black holes and bandwidth, a pacer per direction, stats and
 * events. After `stop()` no timer fires and nothing is emitted.
 */
export class ProxyCore {
  readonly clock: HostClock;
  readonly limits: Readonly<ProxyLimits>;
  readonly names: { a: string; b: string };
  readonly decider: FrameDecider;
  readonly holes: HoleSchedule;
  readonly pacers: Readonly<Record<ProxyDirection, Pacer>> = { ab: new Pacer(), ba: new Pacer() };
  readonly tallies: Readonly<Record<ProxyDirection, DirectionTally>>;
  readonly connections = newConnectionCounters();
  readonly log: ProxyLogger;
  private readonly holeCounters = newHoleCounters();
  private readonly startMs: number;
  private readonly timers = new Set<TimerHandle>();
  private readonly holeListeners = new Set<() => void>();
  private readonly onEvent: ProxyEventSink | undefined;
  private readonly warned = new Set<string>();
  private eventsEmitted = 0;
  private stoppedFlag = false;
  private eventsDropped = 0;

  constructor(readonly link: 'tcp' | 'serial', private readonly opts: FaultProxyCommonOptions) {
    this.clock = opts.clock ?? new RealClock();
    this.startMs = this.clock.now();
    this.limits = { ...PROXY_LIMITS, ...opts.limits };
    this.names = opts.names ?? { a: 'A', b: 'B' };
    this.log = opts.logger ?? SILENT_LOGGER;
    this.onEvent = opts.onEvent;
    this.decider = new FrameDecider(opts.plan, opts.seed);
    this.tallies = { ab: new DirectionTally(this.limits.channelStatsMax), ba: new DirectionTally(this.limits.channelStatsMax) };
    const random = new SeededRandom(opts.seed).fork('fault-proxy').fork('partitions');
    this.holes = new HoleSchedule({ plan: opts.plan, random, names: this.names, counters: this.holeCounters, host: {
      nowMs: () => this.nowMs(),
      later: (fn, ms) => this.later(fn, ms),
      cancel: (h) => this.cancel(h),
      emit: (e) => this.emit(e),
      holesChanged: () => {
        this.log.info({ blocked: this.holes.active() }, 'black holes changed');
        for (const fn of [...this.holeListeners]) fn();
      },
      setBandwidth: (mbps) => {
        this.pacers.ab.set(mbps);
        this.pacers.ba.set(mbps);
      },
    }, badOneway: (c) => new ProxyError('ML_ERR_PROXY_PLAN',
      `--faults: oneway=${c.from}>${c.to}: the proxy's ends are ${this.names.a} (the connect side) and ${this.names.b} (the listen side); `
      + `write ${this.names.a}>${this.names.b} or ${this.names.b}>${this.names.a}, or name the ends with --names`) });
  }

  get stopped(): boolean {
    return this.stoppedFlag;
  }

  start(): void {
    this.holes.start();
  }

  /** Stop every timer; after this nothing fires and nothing is emitted. */
  stop(): void {
    if (this.stoppedFlag) return;
    this.stoppedFlag = true;
    this.holes.stop();
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
    this.holeListeners.clear();
  }

  /** Milliseconds since the proxy started, to the microsecond. */
  nowMs(): number {
    return Math.round((this.clock.now() - this.startMs) * 1000) / 1000;
  }

  later(fn: () => void, delayMs: number): TimerHandle {
    const handle: TimerHandle = this.clock.setTimeout(() => {
      this.timers.delete(handle);
      if (!this.stoppedFlag) fn();
    }, Math.max(0, delayMs));
    this.timers.add(handle);
    return handle;
  }

  cancel(handle: TimerHandle): void {
    if (this.timers.delete(handle)) this.clock.clearTimeout(handle);
  }

  /** Call `fn` whenever a black hole begins or ends; returns the way to stop. */
  onHolesChanged(fn: () => void): () => void {
    this.holeListeners.add(fn);
    return () => this.holeListeners.delete(fn);
  }

  /** Who sends in `dir`, and who receives. */
  ends(dir: ProxyDirection): { node: string; peer: string } {
    return dir === 'ab' ? { node: this.names.a, peer: this.names.b } : { node: this.names.b, peer: this.names.a };
  }

  typeName(type: number): string {
    return LINK_FRAME_TYPE_NAMES[type] ?? `type ${type}`;
  }

  emit(event: ProxyEvent): void {
    if (this.stoppedFlag) return;
    this.eventsEmitted++;
    if (this.onEvent?.(event) === false) this.eventsDropped++;
  }

  /** Log a limit reached, once per `key` (every hit is counted in the stats). */
  warnOnce(key: string, fields: object, message: string): void {
    if (this.warned.has(key)) return;
    if (this.warned.size < 1024) this.warned.add(key);
    this.log.warn(fields, message);
  }

  stats(): ProxyStats {
    const { a, b } = this.names;
    return {
      link: this.link,
      seed: this.opts.seed,
      faults: formatLinkFaults(this.opts.plan),
      uptimeMs: this.nowMs(),
      directions: { [`${a}->${b}`]: this.tallies.ab.snapshot(), [`${b}->${a}`]: this.tallies.ba.snapshot() },
      connections: { ...this.connections },
      holes: { ...this.holeCounters, activeNow: this.holes.active().map((d) => (d === 'ab' ? `${a}->${b}` : `${b}->${a}`)) },
      events: { emitted: this.eventsEmitted, dropped: this.eventsDropped },
    };
  }
}
