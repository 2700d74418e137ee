import { isAscii } from 'node:buffer';
import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import { discoveredChart, firmwareCharts, machineIdOf, type ChartModel } from './charts.ts';
import { TraceFormatError } from './errors.ts';
import { RunFold, SHAPE_OF, markerOf, type LooseEvent, type StateChange } from './fold.ts';
import { GrowableFloats, GrowableInts } from './growable.ts';

/** Limits on what a trace may hold (docs/conventions.md 6); past them the trace is refused with a message saying so. */
export interface TraceLimits {
  eventsMax: number;
  lineBytesMax: number;
}

export const DEFAULT_TRACE_LIMITS: Readonly<TraceLimits> = { eventsMax: 20_000_000, lineBytesMax: 1 << 20 };
/** Distinct machine instances, states per instance, event names per instance, (kind, node) pairs kept apart; more share an `(other)` slot. */
const INSTANCES_MAX = 256;
const INSTANCE_NAME_CHARS_MAX = 128;
const NAMES_PER_INSTANCE_MAX = 256;
const KIND_NODE_KEYS_MAX = 4096;
/** Violations and partitions remembered with their details. */
const VIOLATIONS_MAX = 100_000;
const PARTITIONS_MAX = 100_000;
/** Longest violation message kept (a trace is not trusted to keep them short). */
const MESSAGE_CHARS_MAX = 4000;
/** The most events one request may read back from the file, and the most plot buckets. */
export const EVENTS_PER_READ_MAX = 500;
export const PLOT_BUCKETS_MAX = 4000;
const OTHER = '(other)';

export interface RunInfo {
  seed?: number;
  mode?: string;
  onLockReject?: string;
  sectorSize?: number;
  faults?: string;
  diskFaults?: string;
  reproduce?: string;
}

export interface IndexedViolation {
  /** Where the scrubber goes for it: the last event at or before `atMs`. */
  index: number;
  atMs: number;
  invariant: string;
  node: string;
  lun: number;
  lba: number;
  seq: number;
  message: string;
}

export interface InstanceState {
  state: string;
  from: string;
  event: string;
  t: number;
  /** The index of the state event. */
  index: number;
}

/** One machine instance's history: every state change as three codes at an event index. */
class InstanceTrack {
  readonly names: string[] = [];
  private readonly codes = new Map<string, number>();
  readonly changeAt = new GrowableInts(64);
  readonly to = new GrowableInts(64);
  readonly from = new GrowableInts(64);
  readonly event = new GrowableInts(64);
  /** Distinct (from, event, to) seen, for a chart of a machine no definition matches. */
  readonly seen = new Map<string, { from: string; to: string; event: string }>();

  code(name: string): number {
    let c = this.codes.get(name);
    if (c === undefined) {
      if (this.names.length >= NAMES_PER_INSTANCE_MAX) return this.code(OTHER);
      c = this.names.length;
      this.names.push(name);
      this.codes.set(name, c);
    }
    return c;
  }

  add(index: number, ch: StateChange): void {
    this.changeAt.push(index);
    this.to.push(this.code(ch.to));
    this.from.push(this.code(ch.from));
    this.event.push(this.code(ch.event));
    const key = `${ch.from}|${ch.event}|${ch.to}`;
    if (this.seen.size < 1024 && !this.seen.has(key)) this.seen.set(key, { from: ch.from, to: ch.to, event: ch.event });
  }

  at(i: number): InstanceState | null {
    const k = this.changeAt.lastAtMost(i);
    if (k < 0) return null;
    return { state: this.names[this.to.at(k)]!, from: this.names[this.from.at(k)]!, event: this.names[this.event.at(k)]!, t: 0, index: this.changeAt.at(k) };
  }
}

class Series {
  readonly at = new GrowableInts(256);
  readonly values = new GrowableFloats(256);
}

export interface PlotSeries {
  key: string;
  group: string;
  name: string;
  shape: string;
  /** Per bucket: step series min/max/last; rate series MB/s; point series mean/max (null when empty). */
  min?: (number | null)[];
  max?: (number | null)[];
  last?: (number | null)[];
  mean?: (number | null)[];
  rate?: (number | null)[];
}

export interface Plot {
  t0: number;
  t1: number;
  buckets: number;
  series: PlotSeries[];
  /** Per fault kind, how many struck in each bucket. */
  faults: Record<string, number[]>;
  /** State changes (all instances) per bucket. */
  stateChanges: number[];
  partitions: { startMs: number; endMs: number }[];
  violations: IndexedViolation[];
}

/**
 * A trace file, indexed once so that any instant of it can be shown at once (docs/viz.md,
 * "Indexing a trace"): per event only its byte offset, its time and a few codes are kept; series,
 * state changes, faults and violations are flat arrays of event indices with binary search on top.
 * The events themselves stay in the file and are read back a window at a time.
 */
export class TraceIndex {
  readonly offsets = new GrowableFloats(1 << 16);
  /** Time of each event, made non-decreasing (a running maximum), so that time can be searched. */
  readonly times = new GrowableFloats(1 << 16);
  readonly run: RunInfo = {};
  readonly instances = new Map<string, InstanceTrack>();
  readonly series = new Map<string, Series>();
  readonly kindNode = new Map<string, GrowableInts>();
  readonly stateChanges = new GrowableInts(1024);
  readonly faults = new GrowableInts(1024);
  readonly faultsByName = new Map<string, GrowableInts>();
  readonly errors = new GrowableInts(64);
  readonly violations: IndexedViolation[] = [];
  readonly partitions: { startMs: number; endMs: number }[] = [];
  violationsDropped = 0;
  truncatedLastLine = false;
  bytes = 0;
  indexMs = 0;
  private fd: number | null = null;
  private readonly fold: RunFold;
  private current = 0;
  private tMax = 0;
  private openPartition: { startMs: number; endMs: number } | null = null;

  private constructor(readonly path: string, private readonly limits: TraceLimits) {
    this.fold = new RunFold({
      series: (key, value) => this.onSeries(key, value),
      state: (ch) => this.onState(ch),
    });
  }

  get count(): number {
    return this.offsets.length;
  }

  get durationMs(): number {
    return this.tMax;
  }

  /** Read and index the whole file; throws {@link TraceFormatError} for a file that is not a trace. */
  static async build(path: string, limits: TraceLimits = DEFAULT_TRACE_LIMITS): Promise<TraceIndex> {
    const started = performance.now();
    const index = new TraceIndex(path, limits);
    index.bytes = statSync(path).size;
    let carry: Buffer | null = null;
    let base = 0;
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      const buf: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
      const start = index.lines(buf, base);
      carry = start < buf.length ? Buffer.from(buf.subarray(start)) : null;
      base += start;
      if (carry && carry.length > limits.lineBytesMax) index.fail(index.lineNumber + 1, `a line longer than ${limits.lineBytesMax} bytes; a trace holds one event per line, each far shorter`);
    }
    if (carry) index.line(carry.toString('utf8'), carry.length, base, true);
    if (index.count === 0) index.fail(0, 'holds no events; a trace written by `mirrorlab emulate --trace FILE` has at least its run.start line');
    index.finish();
    index.fd = openSync(path, 'r');
    index.indexMs = Math.round(performance.now() - started);
    return index;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /** Lines read so far: while a line is handled, its own number (from 1). */
  private lineNumber = 0;

  private fail(line: number, problem: string): never {
    throw new TraceFormatError(this.path, line, problem);
  }

  /**
   * Every whole line in `buf` (which starts at byte `base` of the file); returns where the first
   * incomplete line starts. Traces are ASCII in practice: then one decode serves the whole buffer
   * and string positions are byte positions, which is much faster than a decode per line.
   */
  private lines(buf: Buffer, base: number): number {
    let start = 0;
    if (isAscii(buf)) {
      const text = buf.toString('latin1');
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
        this.line(text.slice(start, nl), nl - start, base + start, false);
        start = nl + 1;
      }
      return start;
    }
    for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, start)) {
      this.line(buf.toString('utf8', start, nl), nl - start, base + start, false);
      start = nl + 1;
    }
    return start;
  }

  /** One line of the file (`bytes` long, at `offset`): an event, a blank line (skipped), or the end of a trace cut short. */
  private line(text: string, bytes: number, offset: number, last: boolean): void {
    const line = ++this.lineNumber;
    if (bytes > this.limits.lineBytesMax) {
      this.fail(line, `a line longer than ${this.limits.lineBytesMax} bytes; a trace holds one event per line, each far shorter`);
    }
    if (text.trim() === '') return;
    let e: unknown;
    try {
      e = JSON.parse(text);
    } catch {
      // A run killed mid-write leaves half a line at the end: show what is there rather than nothing.
      if (last) {
        this.truncatedLastLine = true;
        return;
      }
      this.fail(line, 'not JSON; a trace is one JSON event per line, as `mirrorlab emulate --trace FILE` writes it');
    }
    if (!isEvent(e)) {
      this.fail(line, 'not a trace event; each line must be a JSON object with a string "kind" (at most 64 characters) and a number "t" (virtual ms, 0 or more)');
    }
    if (this.offsets.length >= this.limits.eventsMax) {
      this.fail(line, `more than ${this.limits.eventsMax} events; the visualizer opens traces of up to that many (cut the run shorter with --writes)`);
    }
    this.add(e, offset);
  }

  private add(e: LooseEvent, offset: number): void {
    const i = this.offsets.length;
    this.current = i;
    this.offsets.push(offset);
    this.tMax = Math.max(this.tMax, e.t);
    this.times.push(this.tMax);
    const node = typeof e.node === 'string' ? e.node.slice(0, 64) : '';
    this.listFor(this.kindNode, `${e.kind}@${node}`, KIND_NODE_KEYS_MAX).push(i);
    if (e.kind === 'run.start') this.takeRunInfo(e);
    this.fold.apply(e);
    const marker = markerOf(e);
    if (marker === null) return;
    if (marker.type === 'fault') this.onFault(e, marker.name, i);
    else if (marker.type === 'violation') this.onViolation(e);
    else this.errors.push(i);
  }

  private onFault(e: LooseEvent, name: string, i: number): void {
    this.faults.push(i);
    this.listFor(this.faultsByName, name, 64).push(i);
    if (name === 'partition.start' && this.partitions.length < PARTITIONS_MAX) {
      const until = typeof e.untilMs === 'number' ? e.untilMs : e.t;
      this.openPartition = { startMs: e.t, endMs: until };
      this.partitions.push(this.openPartition);
    } else if (name === 'partition.heal' && this.openPartition) {
      this.openPartition.endMs = e.t;
      this.openPartition = null;
    }
  }

  private onViolation(e: LooseEvent): void {
    if (this.violations.length >= VIOLATIONS_MAX) {
      this.violationsDropped++;
      return;
    }
    const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
    const s = (v: unknown): string => (typeof v === 'string' ? v.slice(0, MESSAGE_CHARS_MAX) : '');
    const atMs = typeof e.atMs === 'number' && Number.isFinite(e.atMs) ? e.atMs : e.t;
    this.violations.push({ index: 0, atMs, invariant: s(e.invariant), node: s(e.node), lun: n(e.lun), lba: n(e.lba), seq: n(e.seq), message: s(e.message) });
  }

  private takeRunInfo(e: LooseEvent): void {
    for (const k of ['seed', 'sectorSize'] as const) if (typeof e[k] === 'number') this.run[k] = e[k];
    for (const k of ['mode', 'onLockReject', 'faults', 'diskFaults', 'reproduce'] as const) if (typeof e[k] === 'string') this.run[k] = (e[k] as string).slice(0, 2000);
  }

  private onSeries(key: string, value: number): void {
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = new Series()));
    s.at.push(this.current);
    s.values.push(value);
  }

  private onState(ch: StateChange): void {
    const name = ch.instance.slice(0, INSTANCE_NAME_CHARS_MAX);
    let track = this.instances.get(name);
    if (!track) {
      if (this.instances.size >= INSTANCES_MAX) return;
      this.instances.set(name, (track = new InstanceTrack()));
    }
    track.add(this.current, ch);
    this.stateChanges.push(this.current);
  }

  private listFor(map: Map<string, GrowableInts>, key: string, max: number): GrowableInts {
    let list = map.get(key);
    if (!list) {
      if (map.size >= max) return this.listFor(map, OTHER, Infinity);
      map.set(key, (list = new GrowableInts(64)));
    }
    return list;
  }

  /** Place every violation at the last event at or before its time (they are recorded after the run). */
  private finish(): void {
    for (const v of this.violations) v.index = Math.max(0, this.indexAtTime(v.atMs, 'atOrBefore'));
    this.violations.sort((a, b) => a.index - b.index || a.atMs - b.atMs);
  }

  /** The event index at virtual time `t`: the last event at or before it, or the first at or after it. */
  indexAtTime(t: number, side: 'atOrBefore' | 'atOrAfter' = 'atOrBefore'): number {
    const first = this.times.firstAtLeast(t);
    if (side === 'atOrAfter') return Math.min(first, this.count - 1);
    if (first < this.count && this.times.at(first) === t) {
      // The last of several events at exactly t.
      let k = first;
      while (k + 1 < this.count && this.times.at(k + 1) === t) k++;
      return k;
    }
    return Math.max(0, first - 1);
  }

  timeAt(i: number): number {
    return this.times.at(i);
  }

  /** Every machine instance's state just after event `i`. */
  statesAt(i: number): Record<string, InstanceState | null> {
    const out: Record<string, InstanceState | null> = {};
    for (const [name, track] of this.instances) {
      const s = track.at(i);
      if (s) s.t = this.times.at(s.index);
      out[name] = s;
    }
    return out;
  }

  /** Every series' value just after event `i` (latency: the last write acknowledged by then). */
  seriesAt(i: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, s] of this.series) {
      const k = s.at.lastAtMost(i);
      if (k >= 0) out[key] = s.values.at(k);
    }
    return out;
  }

  /** How many events of each kind each node had emitted up to and including event `i`. */
  countsAt(i: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, list] of this.kindNode) {
      const n = list.lastAtMost(i) + 1;
      if (n > 0) out[key] = n;
    }
    return out;
  }

  /** The next (or previous) event after (before) `from` that is a state change, a fault, a violation or a firmware error; null if none. */
  jump(from: number, to: 'state' | 'fault' | 'violation' | 'error', dir: 'next' | 'prev'): number | null {
    if (to === 'violation') {
      const list = dir === 'next' ? this.violations.filter((v) => v.index > from) : this.violations.filter((v) => v.index < from).reverse();
      return list[0]?.index ?? null;
    }
    const list = to === 'state' ? this.stateChanges : to === 'fault' ? this.faults : this.errors;
    if (dir === 'next') {
      const k = list.firstAtLeast(from + 1);
      return k < list.length ? list.at(k) : null;
    }
    const k = list.lastAtMost(from - 1);
    return k >= 0 ? list.at(k) : null;
  }

  /** Events `from` .. `from + count - 1`, read back from the file (at most {@link EVENTS_PER_READ_MAX}). */
  events(from: number, count: number): { index: number; event: LooseEvent }[] {
    const a = Math.max(0, Math.min(from, this.count));
    const b = Math.min(this.count, a + Math.min(count, EVENTS_PER_READ_MAX));
    if (a >= b || this.fd === null) return [];
    const start = this.offsets.at(a);
    const end = b < this.count ? this.offsets.at(b) : this.bytes;
    const buf = Buffer.alloc(end - start);
    readSync(this.fd, buf, 0, buf.length, start);
    const lines = buf.toString('utf8').split('\n').filter((l) => l.trim() !== '');
    return lines.slice(0, b - a).map((l, k) => ({ index: a + k, event: JSON.parse(l) as LooseEvent }));
  }

  /** The chart each instance runs: the firmware's definition with the instance's machine id, or one pieced together from the trace. */
  charts(definitions: ChartModel[] = firmwareCharts()): { models: ChartModel[]; instances: { name: string; model: string }[] } {
    const models = [...definitions];
    const instances: { name: string; model: string }[] = [];
    for (const [name, track] of this.instances) {
      const id = machineIdOf(name);
      let model = models.find((m) => m.id === id && !m.discovered);
      if (!model) {
        model = models.find((m) => m.id === id) ?? discoveredChart(id, track.seen.values());
        if (!models.includes(model)) models.push(model);
      }
      instances.push({ name, model: model.name });
    }
    instances.sort((x, y) => x.name.localeCompare(y.name));
    return { models, instances };
  }

  /** Every series over [t0, t1] in `buckets` buckets, with the faults, partitions and violations in it. */
  plot(t0: number, t1: number, buckets: number): Plot {
    const n = Math.max(1, Math.min(PLOT_BUCKETS_MAX, Math.floor(buckets)));
    const span = t1 > t0 ? t1 - t0 : 1;
    const i0 = this.times.firstAtLeast(t0);
    const i1 = this.indexAtTime(t1, 'atOrBefore');
    const bucketOf = (i: number): number => Math.min(n - 1, Math.max(0, Math.floor(((this.times.at(i) - t0) / span) * n)));
    const series = [...this.series.entries()].map(([key, s]) => summarise(key, s, { i0, i1, n, bucketOf, bucketMs: span / n }));
    const faults: Record<string, number[]> = {};
    for (const [name, list] of this.faultsByName) faults[name] = countBuckets(list, i0, i1, n, bucketOf);
    return {
      t0, t1, buckets: n, series, faults, stateChanges: countBuckets(this.stateChanges, i0, i1, n, bucketOf),
      partitions: this.partitions.filter((p) => p.endMs >= t0 && p.startMs <= t1).slice(0, 1000),
      violations: this.violations.filter((v) => v.atMs >= t0 && v.atMs <= t1).slice(0, 1000),
    };
  }
}

function isEvent(e: unknown): e is LooseEvent {
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return false;
  const { kind, t } = e as { kind?: unknown; t?: unknown };
  return typeof kind === 'string' && kind.length > 0 && kind.length <= 64 && typeof t === 'number' && Number.isFinite(t) && t >= 0;
}

function countBuckets(list: GrowableInts, i0: number, i1: number, n: number, bucketOf: (i: number) => number): number[] {
  const out = new Array<number>(n).fill(0);
  for (let k = list.firstAtLeast(i0); k < list.length && list.at(k) <= i1; k++) out[bucketOf(list.at(k))]!++;
  return out;
}

interface Window {
  i0: number;
  i1: number;
  n: number;
  bucketOf: (i: number) => number;
  bucketMs: number;
}

/** One series over a window: how a step, a rate or a point series reads per bucket. */
function summarise(key: string, s: Series, w: Window): PlotSeries {
  const [group = key, name = ''] = key.split('|');
  const shape = SHAPE_OF.get(group) ?? 'step';
  const out: PlotSeries = { key, group, name, shape };
  const first = s.at.firstAtLeast(w.i0);
  const before = first > 0 ? s.values.at(first - 1) : null;
  const min = new Array<number | null>(w.n).fill(null);
  const max = new Array<number | null>(w.n).fill(null);
  const last = new Array<number | null>(w.n).fill(null);
  const sum = new Array<number>(w.n).fill(0);
  const count = new Array<number>(w.n).fill(0);
  for (let k = first; k < s.at.length && s.at.at(k) <= w.i1; k++) {
    const b = w.bucketOf(s.at.at(k));
    const v = s.values.at(k);
    min[b] = min[b] === null ? v : Math.min(min[b]!, v);
    max[b] = max[b] === null ? v : Math.max(max[b]!, v);
    last[b] = v;
    sum[b]! += v;
    count[b]!++;
  }
  if (shape === 'points') {
    out.mean = count.map((c, b) => (c > 0 ? round(sum[b]! / c) : null));
    out.max = max;
    return out;
  }
  // Step and rate series hold their value between changes: carry it into empty buckets.
  let carried = before;
  for (let b = 0; b < w.n; b++) {
    if (last[b] === null) {
      last[b] = carried;
      min[b] = carried;
      max[b] = carried;
    } else {
      min[b] = carried === null ? min[b]! : Math.min(min[b]!, carried);
      max[b] = carried === null ? max[b]! : Math.max(max[b]!, carried);
    }
    carried = last[b]!;
  }
  if (shape === 'rate') {
    // Bytes applied per bucket over the bucket's length: MB/s.
    let prev = before ?? 0;
    out.rate = last.map((v) => {
      const cur = v ?? prev;
      const mbps = (cur - prev) / 1e6 / (w.bucketMs / 1000);
      prev = cur;
      return round(mbps);
    });
    return out;
  }
  out.min = min;
  out.max = max;
  out.last = last;
  return out;
}

const round = (x: number): number => Math.round(x * 1000) / 1000;
