import type { WebSocket } from 'ws';
import type { TraceEvent, TraceSink } from '../trace/events.ts';
import { discoveredChart, machineIdOf, type ChartModel } from './charts.ts';
import { RunFold, SHAPE_OF, markerOf, type LooseEvent, type StateChange } from './fold.ts';
import type { LiveControl } from './pacing.ts';

/** How often the page hears from a live run (wall ms). */
export const TICK_MS = 100;
/** Bounds of what a live feed keeps and sends (docs/conventions.md 6). */
const HISTORY_TICKS_MAX = 3000;
const RECENT_EVENTS_MAX = 40;
const TRANSITIONS_PER_TICK_MAX = 200;
const MARKERS_MAX = 2000;
const VIOLATIONS_MAX = 1000;
const CLIENTS_MAX = 8;
/** A page that has not taken this much of what was sent is skipped until it catches up. */
const CLIENT_BUFFER_BYTES_MAX = 1 << 20;
/** Largest message a page may send (it only ever sends small control messages). */
export const CLIENT_MESSAGE_BYTES_MAX = 4096;

interface TickStats {
  min: number;
  max: number;
  sum: number;
  count: number;
  last: number;
}

/** One plotted point of a live series: the time, and per shape min/max/last (step, rate) or mean/max (points). */
type HistoryPoint = [t: number, a: number, b: number, c: number];

/** What a live run's page is told when it ends. */
export interface LiveEnd {
  verdict: string;
  violations: number;
  reproduce: string;
  summary: string;
}

/**
 * The live half of the visualizer (docs/viz.md, "Live mode"): a trace subscriber that folds every
 * event of a running emulation as the recorded-trace index does, and every {@link TICK_MS} sends
 * each connected page what changed: states and the transitions taken, series points, event counts,
 * the latest events, faults and violations. A page that connects late gets the whole picture so
 * far. Everything it keeps is bounded; a page that cannot keep up is skipped, never buffered for.
 */
export class LiveFeed implements TraceSink {
  readonly enabled = true;
  private readonly fold: RunFold;
  private readonly states = new Map<string, StateChange>();
  private readonly seen = new Map<string, Map<string, { from: string; to: string; event: string }>>();
  private readonly models = new Map<string, ChartModel>();
  private readonly changedModels = new Set<string>();
  private readonly counts = new Map<string, number>();
  private readonly history = new Map<string, HistoryPoint[]>();
  private readonly tick = new Map<string, TickStats>();
  private readonly recent: LooseEvent[] = [];
  private readonly markers: { t: number; type: string; name: string }[] = [];
  private readonly violations: LooseEvent[] = [];
  private transitions: StateChange[] = [];
  private transitionsDropped = 0;
  private newMarkers: { t: number; type: string; name: string }[] = [];
  private newViolations: LooseEvent[] = [];
  private readonly clients = new Set<WebSocket>();
  private now = 0;
  private run: Record<string, unknown> | null = null;
  private ended: LiveEnd | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private firstClient: Promise<void>;
  private resolveFirst!: () => void;
  private onEmpty: (() => void) | null = null;
  ignoredMessages = 0;

  /**
   * `control`: the pace of an emulation the page may pause and speed up; null for controller
   * processes on the real clock, whose time `opts.now` gives instead and whose `opts.source` (the
   * files followed) the page names.
   */
  constructor(
    private readonly definitions: ChartModel[],
    private readonly control: LiveControl | null,
    private readonly opts: { now?: () => number; source?: string } = {},
  ) {
    this.fold = new RunFold({ series: (k, v) => this.onSeries(k, v), state: (ch) => this.onState(ch) });
    for (const m of definitions) this.models.set(m.id, m);
    this.firstClient = new Promise((resolve) => (this.resolveFirst = resolve));
  }

  emit(event: TraceEvent): void {
    const e = event as unknown as LooseEvent;
    this.now = Math.max(this.now, e.t);
    if (e.kind === 'run.start') this.run = { ...e };
    this.fold.apply(e);
    const key = `${e.kind}@${typeof e.node === 'string' ? e.node : ''}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.recent.push(e);
    if (this.recent.length > RECENT_EVENTS_MAX) this.recent.shift();
    const marker = markerOf(e);
    if (marker === null) return;
    const m = { t: marker.type === 'violation' && typeof e.atMs === 'number' ? e.atMs : e.t, type: marker.type, name: marker.name };
    if (this.markers.length < MARKERS_MAX) this.markers.push(m);
    if (this.newMarkers.length < MARKERS_MAX) this.newMarkers.push(m);
    if (marker.type === 'violation' && this.violations.length < VIOLATIONS_MAX) {
      this.violations.push(e);
      this.newViolations.push(e);
    }
  }

  /** Resolves once a page has connected (a live run waits for one, so nobody misses its start). */
  waitForPage(): Promise<void> {
    return this.firstClient;
  }

  /** Resolves once every page has gone (after the run: nothing left to show). */
  waitForNoPages(): Promise<void> {
    if (this.clients.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.onEmpty = resolve));
  }

  get pages(): number {
    return this.clients.size;
  }

  start(): void {
    this.timer ??= setInterval(() => this.broadcast(), TICK_MS);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The run is over: send what is left, then the verdict. */
  end(result: LiveEnd): void {
    this.broadcast();
    this.ended = result;
    this.send({ type: 'end', ...result });
  }

  addClient(ws: WebSocket): void {
    if (this.clients.size >= CLIENTS_MAX) {
      ws.close(1013, `at most ${CLIENTS_MAX} pages may watch a live run`);
      return;
    }
    this.clients.add(ws);
    ws.on('message', (data, isBinary) => this.onMessage(isBinary ? null : String(data)));
    ws.on('close', () => {
      this.clients.delete(ws);
      if (this.clients.size === 0) this.onEmpty?.();
    });
    ws.on('error', () => ws.terminate());
    ws.send(JSON.stringify(this.hello()));
    this.resolveFirst();
  }

  /** A page's control message: `{"type":"pause"}`, `{"type":"resume"}`, `{"type":"speed","value":0.01}`; anything else is ignored. */
  private onMessage(text: string | null): void {
    let msg: unknown = null;
    try {
      msg = text === null ? null : JSON.parse(text);
    } catch {
      // Ignored below, like any other message that is not a control.
    }
    const m = (msg ?? {}) as { type?: unknown; value?: unknown };
    if (!this.control || this.ended) return void this.ignoredMessages++;
    if (m.type === 'pause') this.control.pause();
    else if (m.type === 'resume') this.control.resume();
    else if (m.type === 'speed' && typeof m.value === 'number' && m.value >= 1e-5 && m.value <= 1000) this.control.setSpeed(m.value);
    else return void this.ignoredMessages++;
    this.broadcast();
  }

  private onSeries(key: string, value: number): void {
    const s = this.tick.get(key);
    if (!s) this.tick.set(key, { min: value, max: value, sum: value, count: 1, last: value });
    else {
      s.min = Math.min(s.min, value);
      s.max = Math.max(s.max, value);
      s.sum += value;
      s.count++;
      s.last = value;
    }
  }

  private onState(ch: StateChange): void {
    this.states.set(ch.instance, ch);
    if (this.transitions.length < TRANSITIONS_PER_TICK_MAX) this.transitions.push(ch);
    else this.transitionsDropped++;
    const id = machineIdOf(ch.instance);
    const model = this.models.get(id);
    if (model && !model.discovered) return;
    // A machine this build has no definition for: draw what it has shown so far.
    let seen = this.seen.get(id);
    if (!seen) this.seen.set(id, (seen = new Map()));
    const key = `${ch.from}|${ch.event}|${ch.to}`;
    if (seen.size < 1024 && !seen.has(key)) {
      seen.set(key, { from: ch.from, to: ch.to, event: ch.event });
      this.models.set(id, discoveredChart(id, seen.values()));
      this.changedModels.add(id);
    }
  }

  private hello(): Record<string, unknown> {
    return {
      type: 'hello', t: this.now, run: this.run, source: this.opts.source ?? null, charts: this.charts(), states: Object.fromEntries(this.states),
      history: Object.fromEntries(this.history), shapes: Object.fromEntries(SHAPE_OF), counts: Object.fromEntries(this.counts),
      events: this.recent, markers: this.markers, violations: this.violations, control: this.controlState(), ended: this.ended,
    };
  }

  private charts(): { models: ChartModel[]; instances: { name: string; model: string }[] } {
    const models = [...this.models.values()];
    const instances = [...this.states.keys()].sort().map((name) => ({ name, model: this.models.get(machineIdOf(name))?.name ?? machineIdOf(name) }));
    return { models, instances };
  }

  private controlState(): { speed: number; paused: boolean } | null {
    return this.control ? { speed: this.control.speed, paused: this.control.paused } : null;
  }

  /** Send every page what changed since the last tick. */
  private broadcast(): void {
    // The clock moves on while the run waits for a timer; the page's clock should too.
    if (!this.ended) this.now = Math.max(this.now, this.control?.now() ?? this.opts.now?.() ?? 0);
    const points: Record<string, HistoryPoint> = {};
    for (const [key, s] of this.tick) {
      const shape = SHAPE_OF.get(key.split('|')[0]!) ?? 'step';
      const p: HistoryPoint = shape === 'points' ? [this.now, s.sum / s.count, s.max, s.last] : [this.now, s.min, s.max, s.last];
      points[key] = p;
      let h = this.history.get(key);
      if (!h) this.history.set(key, (h = []));
      h.push(p);
      if (h.length > HISTORY_TICKS_MAX) h.splice(0, h.length - HISTORY_TICKS_MAX);
      // A step series holds its value: the next tick starts from it.
      if (shape === 'points') this.tick.delete(key);
      else Object.assign(s, { min: s.last, max: s.last, sum: s.last, count: 1 });
    }
    const changed = [...this.changedModels].map((id) => this.models.get(id)!);
    this.changedModels.clear();
    this.send({
      type: 'tick', t: this.now, states: Object.fromEntries(this.states), transitions: this.transitions, transitionsDropped: this.transitionsDropped, points,
      counts: Object.fromEntries(this.counts), events: this.recent.slice(-25), markers: this.newMarkers, violations: this.newViolations,
      models: changed, instances: this.charts().instances, control: this.controlState(),
    });
    this.transitions = [];
    this.transitionsDropped = 0;
    this.newMarkers = [];
    this.newViolations = [];
  }

  private send(msg: Record<string, unknown>): void {
    if (this.clients.size === 0) return;
    const text = JSON.stringify(msg);
    for (const ws of this.clients) {
      if (ws.readyState !== ws.OPEN || ws.bufferedAmount > CLIENT_BUFFER_BYTES_MAX) continue;
      ws.send(text);
    }
  }
}
