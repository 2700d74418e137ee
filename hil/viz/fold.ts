/**
 * What the visualizer derives from a stream of trace events (docs/viz.md, "What is plotted"): the
 * same fold serves a recorded trace (trace-index.ts) and a live run (live.ts), so both show the
 * same figures. It reads events defensively: a trace may come from another build, so unknown
 * kinds are only counted, and a field of the wrong type is ignored, never trusted.
 *
 * Series are keyed `group|name` (the page draws one plot per group):
 * - `rollback|A->B`: entries in A's rollback log for B (sent or queued, not yet confirmed);
 * - `commit|A->B`: entries in B's commit log for A's stream;
 * - `locks|A->B`: mirror locks B holds for A's stream;
 * - `inflight|A->B`: frames on the wire from A to B: sent (and duplicated) less received,
 *   rejected as corrupt, or dropped; a cut or a closed connection loses what was in flight;
 * - `applied|A->B`: bytes of A's writes applied on B so far (plotted as a rate: throughput);
 * - `latency|A`: each host write's latency at A, from `host.write` to `host.ack`, in ms;
 * - `link|A->B`: 1 while A's source channel for B has the link, 0 in `linkDown`;
 * - `supervision|A->B`: A's link supervisor's view of B: 1 up, 0.5 suspect or on probation, 0 down.
 */

/** A trace event as read from a file or a feed: only `kind` and `t` are promised. */
export type LooseEvent = { readonly kind: string; readonly t: number } & Readonly<Record<string, unknown>>;

/** How a series is summarised over an interval (see trace-index.ts `plot`). */
export type SeriesShape = 'step' | 'rate' | 'points';

export const SERIES_GROUPS: readonly { group: string; shape: SeriesShape; title: string; unit: string }[] = [
  { group: 'rollback', shape: 'step', title: 'rollback log depth', unit: 'entries' },
  { group: 'commit', shape: 'step', title: 'commit log depth', unit: 'entries' },
  { group: 'applied', shape: 'rate', title: 'throughput', unit: 'MB/s applied' },
  { group: 'latency', shape: 'points', title: 'host write latency', unit: 'ms' },
  { group: 'inflight', shape: 'step', title: 'frames in flight', unit: 'frames' },
  { group: 'locks', shape: 'step', title: 'mirror locks held', unit: 'locks' },
  { group: 'link', shape: 'step', title: 'link (source channel)', unit: 'up' },
  { group: 'supervision', shape: 'step', title: 'link supervisor', unit: 'up' },
];

export const SHAPE_OF: ReadonlyMap<string, SeriesShape> = new Map(SERIES_GROUPS.map((g) => [g.group, g.shape]));

/** At most this many distinct series (a hostile trace could name endless nodes). */
export const SERIES_MAX = 512;
/** Host writes remembered while they wait for their ack (for latency); the oldest are forgotten beyond it. */
export const PENDING_WRITES_MAX = 1 << 18;

/** The sector size assumed until a `run.start` event says otherwise (the emulator's default). */
const DEFAULT_SECTOR_BYTES = 512;

const SUPERVISION_LEVEL: Readonly<Record<string, number>> = {
  up: 1, 'probation.passed': 0.5, 'probation.start': 0.5, 'probation.restart': 0.5, suspect: 0.5, down: 0, incompatible: 0, 'peer.restarted': 0.5,
};

/** A state change of one machine instance, as the fold saw it. */
export interface StateChange {
  instance: string;
  from: string;
  to: string;
  event: string;
  t: number;
}

export interface FoldSink {
  /** A series took a new value at the event being folded. */
  series(key: string, value: number): void;
  /** A machine instance changed state. */
  state(change: StateChange): void;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * The fold itself: feed events in order with {@link apply}; it keeps the current value of every
 * series and reports each change to its sink. Constant work per event.
 */
export class RunFold {
  readonly values = new Map<string, number>();
  sectorBytes = DEFAULT_SECTOR_BYTES;
  seriesDropped = 0;
  private readonly pendingWrites = new Map<string, number>();

  constructor(private readonly sink: FoldSink) {}

  apply(e: LooseEvent): void {
    const node = str(e.node) ?? '';
    const peer = str(e.peer) ?? '';
    switch (e.kind) {
      case 'run.start': {
        const bytes = num(e.sectorSize);
        if (bytes !== null && bytes > 0) this.sectorBytes = bytes;
        return;
      }
      case 'state':
        return this.onState(e, node);
      case 'rollback.append':
      case 'rollback.confirm':
        return this.setFrom(`rollback|${node}->${peer}`, e.entries);
      case 'commit.append':
      case 'commit.confirm':
        return this.setFrom(`commit|${peer}->${node}`, e.entries);
      case 'commit.discard':
        return this.add(`commit|${peer}->${node}`, -(num(e.removed) ?? 0));
      case 'target.lock':
        if (e.result === 'granted') this.add(`locks|${peer}->${node}`, 1);
        else if (e.result === 'released') this.add(`locks|${peer}->${node}`, -1);
        return;
      case 'target.apply':
        return this.add(`applied|${peer}->${node}`, (num(e.count) ?? 0) * this.sectorBytes, { floor: false });
      case 'frame.sent':
        return this.add(`inflight|${node}->${peer}`, 1);
      case 'frame.received':
      case 'frame.error':
        return this.add(`inflight|${peer}->${node}`, -1);
      case 'link.fault':
        return this.onLinkFault(e, node, peer);
      case 'link.connection':
        if (e.state === 'closed') this.loseInFlight(node, peer);
        return;
      case 'link.supervision': {
        const level = SUPERVISION_LEVEL[str(e.event) ?? ''];
        if (level !== undefined) this.set(`supervision|${node}->${peer}`, level);
        return;
      }
      case 'host.write':
        return this.onHostWrite(e, node);
      case 'host.ack':
      case 'host.error':
        return this.onHostDone(e, node);
      default:
    }
  }

  private onState(e: LooseEvent, node: string): void {
    const instance = str(e.machine);
    const to = str(e.to);
    if (instance === null || to === null) return;
    this.sink.state({ instance, from: str(e.from) ?? '', to, event: str(e.event) ?? '', t: e.t });
    // A source channel's link, from its chart: whatever its states are called, `linkDown` is the one without it.
    if (instance.startsWith('source:')) this.set(`link|${instance.slice('source:'.length) || node}`, to === 'linkDown' ? 0 : 1);
  }

  private onLinkFault(e: LooseEvent, node: string, peer: string): void {
    if (e.fault === 'drop') this.add(`inflight|${node}->${peer}`, -1);
    else if (e.fault === 'duplicate') this.add(`inflight|${node}->${peer}`, 1);
    else if (e.fault === 'partition.start') {
      for (const key of this.values.keys()) if (key.startsWith('inflight|')) this.set(key, 0);
    }
  }

  private loseInFlight(node: string, peer: string): void {
    for (const key of [`inflight|${node}->${peer}`, `inflight|${peer}->${node}`]) if (this.values.has(key)) this.set(key, 0);
  }

  private onHostWrite(e: LooseEvent, node: string): void {
    const tag = num(e.tag);
    if (tag === null) return;
    this.pendingWrites.set(`${node}|${tag}`, e.t);
    if (this.pendingWrites.size > PENDING_WRITES_MAX) this.pendingWrites.delete(this.pendingWrites.keys().next().value!);
  }

  private onHostDone(e: LooseEvent, node: string): void {
    const key = `${node}|${num(e.tag)}`;
    const started = this.pendingWrites.get(key);
    if (started === undefined) return;
    this.pendingWrites.delete(key);
    if (e.kind === 'host.ack') this.emit(`latency|${node}`, e.t - started);
  }

  private setFrom(key: string, v: unknown): void {
    const value = num(v);
    if (value !== null) this.set(key, value);
  }

  private add(key: string, delta: number, opts: { floor: boolean } = { floor: true }): void {
    const next = (this.values.get(key) ?? 0) + delta;
    this.set(key, opts.floor ? Math.max(0, next) : next);
  }

  private set(key: string, value: number): void {
    const old = this.values.get(key);
    if (old === value) return;
    if (old === undefined && this.values.size >= SERIES_MAX) {
      this.seriesDropped++;
      return;
    }
    this.values.set(key, value);
    this.sink.series(key, value);
  }

  /** A point series (latency): every value is reported, equal or not. */
  private emit(key: string, value: number): void {
    if (!this.values.has(key) && this.values.size >= SERIES_MAX) {
      this.seriesDropped++;
      return;
    }
    this.values.set(key, value);
    this.sink.series(key, value);
  }
}

/** Events a plot marks: link faults (by what struck) and violations. */
export function markerOf(e: LooseEvent): { type: 'fault' | 'violation' | 'error'; name: string } | null {
  if (e.kind === 'link.fault') return { type: 'fault', name: str(e.fault) ?? 'fault' };
  if (e.kind === 'violation') return { type: 'violation', name: str(e.invariant) ?? 'violation' };
  if (e.kind === 'firmware.error') return { type: 'error', name: 'firmware.error' };
  return null;
}
