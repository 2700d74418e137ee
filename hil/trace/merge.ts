import { readFile } from 'node:fs/promises';
import { MirrorlabError } from '../../firmware/errors.ts';

/**
 * Merging the telemetry of several controller processes into one causally consistent order
 * (docs/controller-process.md 4). Processes share no clock, so order comes from two kinds of
 * happens-before edge only:
 *
 * - **local order**: the lines of one file, in file order (one process, or the incarnations of one
 *   controller appended one after the other);
 * - **send -> receive**: a `frame.received` at B from A happened after the `frame.sent` at A to B
 *   of the same frame. A frame is named by its identity: type, seq, data connection, length and
 *   CRC32C. A retransmission of the same bytes has the same identity, so a receive is tied to the
 *   *first* send of it: whichever copy arrived, that first send came before. Heartbeats carry
 *   confirmations too, so a `heartbeat.received` is tied to its `heartbeat.sent` (named by the
 *   sender's session and the heartbeat's counter).
 *
 * The result is a total order that respects every edge (a topological order: among the events
 * whose predecessors are all placed, the one with the earliest wall-clock stamp goes next, so the
 * order also reads naturally), and a vector clock per event, with which {@link happenedBefore}
 * says whether one event must have come before another, or whether they were concurrent.
 */
export class MergeError extends MirrorlabError {}

/** Most events merged at once: the whole merge is in memory. */
export const MERGE_EVENTS_MAX = 5_000_000;

export interface TelemetrySource {
  /** A name for messages: the file's path. */
  name: string;
  text: string;
}

/** One telemetry line as written by a controller process (host/runtime/telemetry-journal.ts). */
export interface StampedEvent {
  n: number;
  proc: string;
  wall: number;
  kind: string;
  node: string;
  t: number;
  [field: string]: unknown;
}

export interface MergedEvent {
  /** Index of the source (file) it came from, and its line there (1-based). */
  source: number;
  line: number;
  event: StampedEvent;
  /** Vector clock: per source, how many of its events happened before or are this one. */
  vc: number[];
  /** For a receive tied to its send: the send's index in the merged order. */
  sentAt: number | null;
}

export type MergeProblemKind =
  /** A line that is not JSON, or not a stamped event (a kill cut the last line short, or another file). */
  | 'unparseable'
  /** A receive with no send of the same frame or heartbeat in any source: its sender's telemetry is missing or lost. */
  | 'unmatched-receive'
  /** A jump in an incarnation's counter: lines lost between. */
  | 'events-lost'
  /** A counter that goes backwards within an incarnation: the file was tampered with or mixed. */
  | 'counter-order'
  /** A receive whose send could only be placed after it: the identity matched the wrong frame (or the files lie). */
  | 'cycle';

export interface MergeProblem {
  kind: MergeProblemKind;
  source: string;
  line: number;
  message: string;
}

export interface MergeResult {
  sources: string[];
  events: MergedEvent[];
  problems: MergeProblem[];
  /** Receives tied to their send: the cross-process edges the order rests on. */
  edges: number;
}

interface Parsed {
  line: number;
  event: StampedEvent;
  /** The send it is tied to: source and position there; for receives only. */
  send: { source: number; pos: number } | null;
}

/** Reads the files and merges them. */
export async function mergeTelemetryFiles(paths: string[], opts: { eventsMax?: number } = {}): Promise<MergeResult> {
  const sources: TelemetrySource[] = [];
  for (const path of paths) {
    try {
      sources.push({ name: path, text: await readFile(path, 'utf8') });
    } catch (error) {
      throw new MergeError('ML_ERR_MERGE_INPUT', `telemetry file ${path} could not be read: ${(error as Error).message}`);
    }
  }
  return mergeTelemetry(sources, opts);
}

/** Merges the sources' events into one order that respects every happens-before edge; reports what it could not place. */
export function mergeTelemetry(sources: readonly TelemetrySource[], opts: { eventsMax?: number } = {}): MergeResult {
  const problems: MergeProblem[] = [];
  const eventsMax = opts.eventsMax ?? MERGE_EVENTS_MAX;
  let total = 0;
  const streams = sources.map((s) => {
    const parsed = parseSource(s, problems);
    total += parsed.length;
    if (total > eventsMax) throw new MergeError('ML_ERR_MERGE_TOO_LARGE', `more than ${eventsMax} events to merge; merge fewer or shorter files`);
    return parsed;
  });
  const edges = tieReceives(streams, sources, problems);
  const events = order(streams, sources, problems);
  return { sources: sources.map((s) => s.name), events, problems, edges };
}

/** Whether `a` happened before `b` (by the edges): false when they were concurrent, or `b` came first. */
export function happenedBefore(a: MergedEvent, b: MergedEvent): boolean {
  if (a === b) return false;
  return a.vc[a.source]! <= b.vc[a.source]!;
}

function parseSource(s: TelemetrySource, problems: MergeProblem[]): Parsed[] {
  const out: Parsed[] = [];
  const lastN = new Map<string, number>();
  const lines = s.text.split('\n');
  lines.forEach((text, i) => {
    if (text.trim() === '') return;
    const line = i + 1;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      const last = i >= lines.length - 2;
      problems.push({ kind: 'unparseable', source: s.name, line, message: `not JSON${last ? ' (the last line: a process killed while writing it?)' : ''}: ${text.slice(0, 80)}` });
      return;
    }
    const e = value as StampedEvent;
    if (e === null || typeof e !== 'object' || !Number.isSafeInteger(e.n) || typeof e.proc !== 'string' || typeof e.kind !== 'string' || typeof e.node !== 'string') {
      problems.push({ kind: 'unparseable', source: s.name, line, message: 'not a stamped telemetry event (n, proc, kind, node)' });
      return;
    }
    const prev = lastN.get(e.proc);
    if (prev !== undefined && e.n <= prev) {
      problems.push({ kind: 'counter-order', source: s.name, line, message: `${e.proc}: event ${e.n} after event ${prev}` });
    } else if (prev !== undefined && e.n > prev + 1) {
      problems.push({ kind: 'events-lost', source: s.name, line, message: `${e.proc}: events ${prev + 1} to ${e.n - 1} are missing` });
    }
    lastN.set(e.proc, e.n);
    out.push({ line, event: e, send: null });
  });
  return out;
}

/** The identity of what a send event put on the wire: a frame (docs/controller-process.md 4), or a heartbeat datagram. */
function sentKey(e: StampedEvent): string | null {
  if (e.kind === 'frame.sent') return frameKey(e.node, e.peer, e);
  if (e.kind === 'heartbeat.sent') return `${e.node}>${String(e.peer)}|HEARTBEAT|${String(e.session)}|${String(e.counter)}`;
  return null;
}

/** The identity of what a receive event took off the wire; the same as its send's. */
function receivedKey(e: StampedEvent): string | null {
  if (e.kind === 'frame.received') return frameKey(e.peer, e.node, e);
  if (e.kind === 'heartbeat.received') return `${String(e.peer)}>${e.node}|HEARTBEAT|${String(e.session)}|${String(e.counter)}`;
  return null;
}

function frameKey(from: unknown, to: unknown, e: StampedEvent): string {
  return `${String(from)}>${String(to)}|${String(e.type)}|${String(e.seq)}|${String(e.conn)}|${String(e.bytes)}|${String(e.crc)}`;
}

/** Ties every receive to the first send of the same frame or heartbeat; returns how many were tied. */
function tieReceives(streams: Parsed[][], sources: readonly TelemetrySource[], problems: MergeProblem[]): number {
  const firstSend = new Map<string, { source: number; pos: number }>();
  streams.forEach((events, source) => events.forEach((p, pos) => {
    const key = sentKey(p.event);
    if (key !== null && !firstSend.has(key)) firstSend.set(key, { source, pos });
  }));
  let tied = 0;
  streams.forEach((events, source) => events.forEach((p) => {
    const key = receivedKey(p.event);
    if (key === null) return;
    const send = firstSend.get(key);
    if (send && send.source !== source) {
      p.send = send;
      tied++;
      return;
    }
    const e = p.event;
    const what = e.kind === 'heartbeat.received'
      ? `heartbeat ${String(e.counter)} of session ${String(e.session)}`
      : `${String(e.type)} seq ${String(e.seq)} on connection ${String(e.conn)} (crc ${String(e.crc)})`;
    problems.push({
      kind: 'unmatched-receive', source: sources[source]!.name, line: p.line,
      message: `${e.node} received ${what} from ${String(e.peer)}, and no source holds that send`,
    });
  }));
  return tied;
}

/** A topological order of the events (earliest wall stamp first among the ready), with vector clocks. */
function order(streams: Parsed[][], sources: readonly TelemetrySource[], problems: MergeProblem[]): MergedEvent[] {
  const n = streams.length;
  const next = new Array<number>(n).fill(0);
  /** Per source, each placed event's index in `out`. */
  const placed: number[][] = streams.map(() => []);
  const clocks = streams.map(() => new Array<number>(n).fill(0));
  const out: MergedEvent[] = [];
  const ready = (s: number): boolean => {
    const p = streams[s]![next[s]!]!;
    return p.send === null || next[p.send.source]! > p.send.pos;
  };
  for (;;) {
    let pick = -1;
    let fallback = -1;
    for (let s = 0; s < n; s++) {
      if (next[s]! >= streams[s]!.length) continue;
      const wall = streams[s]![next[s]!]!.event.wall;
      if (fallback < 0 || wall < streams[fallback]![next[fallback]!]!.event.wall) fallback = s;
      if (ready(s) && (pick < 0 || wall < streams[pick]![next[pick]!]!.event.wall)) pick = s;
    }
    if (fallback < 0) return out;
    let cycle = false;
    if (pick < 0) {
      pick = fallback;
      cycle = true;
    }
    const p = streams[pick]![next[pick]!]!;
    if (cycle) {
      problems.push({ kind: 'cycle', source: sources[pick]!.name, line: p.line, message: `a receive whose send cannot come before it (${String(p.event.type)} seq ${String(p.event.seq)}); placed by local order only` });
    }
    const clock = clocks[pick]!;
    clock[pick]!++;
    let sentAt: number | null = null;
    if (p.send && !cycle) {
      sentAt = placed[p.send.source]![p.send.pos]!;
      const sendClock = out[sentAt]!.vc;
      for (let i = 0; i < n; i++) clock[i] = Math.max(clock[i]!, sendClock[i]!);
    }
    const m: MergedEvent = { source: pick, line: p.line, event: p.event, vc: [...clock], sentAt };
    placed[pick]!.push(out.length);
    out.push(m);
    next[pick]!++;
  }
}
