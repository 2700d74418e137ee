import type { TelemetryEvent } from '../../firmware/telemetry/events.ts';
import type { TraceEvent, TraceSink } from '../trace/events.ts';
import type { InvariantName, Violation } from './violation.ts';

export interface LinkCheckerConfig {
  heartbeatMs: number;
  interruptionMs: number;
  probationMs: number;
  report(v: Violation): void;
}

/** Float slack for comparisons of virtual times computed along different paths. */
const EPSILON_MS = 1e-6;
/** Stream entries remembered per stream (their tags, until confirmed): as many as the rollback log can hold, with room. */
const STREAM_ENTRIES_MAX = 1 << 20;

type Supervision = Extract<TelemetryEvent, { kind: 'link.supervision' }>;

/** What one controller `node` believes about its link to `peer`, as its telemetry says. */
interface View {
  up: boolean;
  /** A black hole on the direction peer -> node is on since (ms), or -1: node hears nothing from peer. */
  deafSince: number;
  /** How many black holes cover that direction right now (kinds can overlap). */
  holes: number;
  /** The declaration of `down` that deafSince still waits for, by this deadline (ms), or -1. */
  detectBy: number;
  /** Heartbeats from peer heard without a gap longer than the interruption timeout since (ms), or -1 (none since the last down). */
  cleanSince: number;
  lastHeartbeatMs: number;
  /** The link went down at least once (so the next `up` is a reconnection that needs probation). */
  wasDown: boolean;
}

/**
 * One stream's entries as its source appended them: seq -> tag of each write not yet confirmed.
 * Parallel arrays with a moving head, dropped from the front as confirmations arrive.
 */
class StreamEntries {
  private seqs: number[] = [];
  private tags: number[] = [];
  private head = 0;
  /** `stream`: the stream's number within the source's session (a suspension begins the next: docs/tag-tables.md, "Suspension"). */
  constructor(readonly sourceSession: number, public targetSession: number, readonly stream = 1) {}

  add(seq: number, tag: number): void {
    this.seqs.push(seq);
    this.tags.push(tag);
    if (this.seqs.length - this.head > STREAM_ENTRIES_MAX) this.head++;
  }

  /** The tag appended as `seq`; undefined if there is none (or it was forgotten). */
  tagOf(seq: number): number | undefined {
    let lo = this.head;
    let hi = this.seqs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = this.seqs[mid]!;
      if (s === seq) return this.tags[mid];
      if (s < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  confirmThrough(seq: number): void {
    while (this.head < this.seqs.length && this.seqs[this.head]! <= seq) this.head++;
    if (this.head > 4096 && this.head * 2 > this.seqs.length) {
      this.seqs = this.seqs.slice(this.head);
      this.tags = this.tags.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * The link supervision invariants (docs/link-supervision.md, "What the checker checks"), judged
 * from telemetry and the harness's own record of the faults it injected, never from firmware
 * internals (docs/conventions.md 8):
 *
 * - `link-detect`: when a black hole cuts what a controller hears from its peer (a silent cut, a
 *   one-way loss towards it, a flap, a partition) while its link is up, it declares the link down
 *   within the interruption timeout and one heartbeat interval of the cut's start, unless the cut
 *   ends first.
 * - `probation`: a controller brings a link back up only after hearing its peer's heartbeats for a
 *   whole probationary interval with no gap longer than the interruption timeout, all of them
 *   after it declared the link down (measured from the heartbeats it reports receiving, not from
 *   its chart's own clock).
 * - `session`: every write a target applies is the entry its source appended under that sequence
 *   number in the stream between the two current sessions (a stream begins afresh when either
 *   controller restarts): never an entry of an older stream passed off as one of the new.
 */
export class LinkChecker implements TraceSink {
  readonly enabled = true;
  private readonly views = new Map<string, View>();
  /** Each controller's current session (from `controller.start`). */
  private readonly sessions = new Map<string, number>();
  /** Per source -> peer: the current stream's entries, and the one before it. */
  private readonly streams = new Map<string, { current: StreamEntries; previous: StreamEntries | null }>();
  private lastT = 0;

  constructor(private readonly cfg: LinkCheckerConfig) {}

  emit(e: TraceEvent): void {
    this.lastT = Math.max(this.lastT, e.t);
    this.checkDeadlines(e.t);
    switch (e.kind) {
      case 'controller.start':
        this.onStart(e.node, e.session);
        return;
      case 'controller.crash':
        // Its supervisors died with it: the next start's begin with no link and nothing owed (a cut
        // still in force stays: it is owed a detection once the new start brings its link up).
        for (const [key, v] of this.views) {
          if (key.startsWith(`${e.node}|`)) Object.assign(v, { up: false, detectBy: -1, cleanSince: -1, lastHeartbeatMs: -1, wasDown: false });
        }
        return;
      case 'link.supervision':
        this.onSupervision(e);
        return;
      case 'heartbeat.received':
        this.onHeartbeat(e.node, e.peer, e.t);
        return;
      case 'link.fault':
        this.onFault(e);
        return;
      case 'stream.start':
        if (e.role === 'source') this.onSourceStream(e.node, e.peer, e.sourceSession, e.targetSession, e.stream ?? 1);
        return;
      case 'rollback.append':
        if (e.entry === 'write') this.stream(e.node, e.peer)?.current.add(e.seq, e.tag);
        return;
      case 'rollback.confirm':
        this.stream(e.node, e.peer)?.current.confirmThrough(e.upTo);
        return;
      case 'target.apply':
        this.checkApply(e);
        return;
      default:
        return;
    }
  }

  /** The run is over at `tMs`: judge every detection still owed. */
  finish(tMs: number): void {
    this.checkDeadlines(Math.max(tMs, this.lastT) + EPSILON_MS);
  }

  // ---- link-detect and probation -------------------------------------------------------------

  private view(node: string, peer: string): View {
    const key = `${node}|${peer}`;
    let v = this.views.get(key);
    if (!v) this.views.set(key, (v = { up: false, deafSince: -1, holes: 0, detectBy: -1, cleanSince: -1, lastHeartbeatMs: -1, wasDown: false }));
    return v;
  }

  private onSupervision(e: Supervision): void {
    const v = this.view(e.node, e.peer);
    if (e.event === 'down') {
      v.up = false;
      v.wasDown = true;
      v.detectBy = -1;
      v.cleanSince = -1;
    } else if (e.event === 'up') {
      if (v.wasDown) this.checkProbation(e, v);
      v.up = true;
      // Up while deaf: the cut is owed a detection from now on, as from its start.
      if (v.deafSince >= 0 && v.detectBy < 0) v.detectBy = Math.max(v.deafSince, e.t) + this.detectWithinMs();
    }
  }

  private checkProbation(e: Supervision, v: View): void {
    const heardFor = v.cleanSince < 0 ? -1 : e.t - v.cleanSince;
    if (heardFor + EPSILON_MS >= this.cfg.probationMs) return;
    const why = heardFor < 0 ? 'no heartbeat was heard since it declared the link down' : `its peer's heartbeats had been clean for only ${round(heardFor)} ms`;
    this.flag('probation', e.node, 0, e.t, `${e.node} brought its link to ${e.peer} back up while ${why}; a probationary interval of ${this.cfg.probationMs} ms comes first`);
  }

  private onHeartbeat(node: string, peer: string, t: number): void {
    const v = this.view(node, peer);
    const gap = v.lastHeartbeatMs < 0 ? Infinity : t - v.lastHeartbeatMs;
    v.lastHeartbeatMs = t;
    if (!v.up && (v.cleanSince < 0 || gap > this.cfg.interruptionMs + EPSILON_MS)) v.cleanSince = t;
  }

  private detectWithinMs(): number {
    return this.cfg.interruptionMs + this.cfg.heartbeatMs;
  }

  /** A harness fault: which listeners went deaf (or could hear again). */
  private onFault(e: Extract<TraceEvent, { kind: 'link.fault' }>): void {
    switch (e.fault) {
      case 'partition.start':
      case 'silent.start':
      case 'flap.down':
        for (const [node, peer] of this.pairs()) this.deafen(node, peer, e.t, +1);
        return;
      case 'partition.heal':
      case 'silent.end':
      case 'flap.up':
        for (const [node, peer] of this.pairs()) this.deafen(node, peer, e.t, -1);
        return;
      case 'oneway.start':
        this.deafen(e.to, e.from, e.t, +1);
        return;
      case 'oneway.end':
        this.deafen(e.to, e.from, e.t, -1);
        return;
      default:
        return;
    }
  }

  /** Every (listener, peer) pair the checker has heard of, both ways. */
  private pairs(): [string, string][] {
    const nodes = [...this.sessions.keys()];
    return nodes.flatMap((a) => nodes.filter((b) => b !== a).map((b): [string, string] => [a, b]));
  }

  private deafen(node: string, peer: string, t: number, by: 1 | -1): void {
    const v = this.view(node, peer);
    v.holes = Math.max(0, v.holes + by);
    if (v.holes > 0 && v.deafSince < 0) {
      v.deafSince = t;
      if (v.up) v.detectBy = t + this.detectWithinMs();
    } else if (v.holes === 0) {
      v.deafSince = -1;
      v.detectBy = -1; // the cut ended first: nothing was owed
    }
  }

  private checkDeadlines(now: number): void {
    for (const [key, v] of this.views) {
      if (v.detectBy < 0 || now <= v.detectBy + EPSILON_MS) continue;
      const [node, peer] = key.split('|') as [string, string];
      this.flag('link-detect', node, 0, v.detectBy,
        `${node} hears nothing from ${peer} since ${round(v.deafSince)} ms (a silent cut) but did not declare the link down within ${this.detectWithinMs()} ms (the interruption timeout and one heartbeat interval)`);
      v.detectBy = -1;
    }
  }

  // ---- session ---------------------------------------------------------------------------

  /** A controller started; if it had started before, its streams as a source begin afresh. */
  private onStart(node: string, session: number): void {
    const before = this.sessions.get(node);
    this.sessions.set(node, session);
    if (before === undefined || before === session) return;
    for (const [key, s] of this.streams) {
      if (!key.startsWith(`${node}|`)) continue;
      s.previous = s.current;
      s.current = new StreamEntries(session, 0);
    }
  }

  private stream(node: string, peer: string): { current: StreamEntries; previous: StreamEntries | null } | undefined {
    let s = this.streams.get(`${node}|${peer}`);
    if (!s) {
      const session = this.sessions.get(node) ?? 0;
      this.streams.set(`${node}|${peer}`, (s = { current: new StreamEntries(session, 0), previous: null }));
    }
    return s;
  }

  private onSourceStream(node: string, peer: string, sourceSession: number, targetSession: number, stream: number): void {
    const s = this.stream(node, peer)!;
    const cur = s.current;
    // The first HELLO names the target of the stream already under way; anything else is a new stream.
    if (cur.sourceSession === sourceSession && cur.targetSession === 0 && cur.stream === stream) {
      cur.targetSession = targetSession;
      return;
    }
    s.previous = cur;
    s.current = new StreamEntries(sourceSession, targetSession, stream);
  }

  /** A write the target `e.node` applied must be the entry of its own stream from `e.peer` with that number. */
  private checkApply(e: Extract<TelemetryEvent, { kind: 'target.apply' }>): void {
    const s = this.streams.get(`${e.peer}|${e.node}`);
    if (!s || e.tag === 0) return; // a source we saw nothing of (a part of a run not traced), or a resync copy
    const targetSession = this.sessions.get(e.node) ?? 0;
    const number = e.stream ?? 1;
    const stream = [s.current, s.previous].find((x) => x !== null && x.sourceSession === e.sourceSession && x.stream === number && (x.targetSession === targetSession || x.targetSession === 0));
    if (!stream) {
      this.flag('session', e.node, e.lun, e.t, `write tag ${e.tag} applied as entry ${e.seq} of a stream from ${e.peer} session ${e.sourceSession} to ${e.node} session ${targetSession}, which is not a stream between their current sessions`, e.lba, e.seq);
      return;
    }
    const tag = stream.tagOf(e.seq);
    if (tag === e.tag) return;
    const was = tag === undefined ? 'which has no unconfirmed write numbered so' : `whose entry ${e.seq} is write tag ${tag}`;
    this.flag('session', e.node, e.lun, e.t, `${e.node} applied write tag ${e.tag} as entry ${e.seq} of the stream from ${e.peer}, ${was}: an entry of another stream passed off as this one's`, e.lba, e.seq);
  }

  private flag(invariant: InvariantName, node: string, lun: number, tMs: number, message: string, lba = 0, seq = 0): void {
    this.cfg.report({ invariant, node, lun, lba, seq, tMs: round(tMs), message });
  }
}

const round = (x: number): number => Math.round(x * 1e6) / 1e6;
