import { assert } from '../../firmware/errors.ts';
import type { HostClock } from '../clock/clock.ts';
import type { LinkChannel, LinkDirection, LinkEndpoint, LinkFaultHook, LinkHandler } from './link.ts';
import { SerialisationQueue } from './serialisation-queue.ts';
import {
  LineConnection, TcpConnections, other,
  type ConnectionHost, type ConnectionTable, type End, type Incarnation, type PathSnapshot,
} from './sim-connections.ts';

export interface SimLinkOptions {
  clock: HostClock;
  /** Names of the two ends (the controllers they belong to). */
  names: readonly [string, string];
  /** One-way propagation delay. */
  latencyMs: number;
  /** Serialisation rate, megabits (10^6 bits) per second. */
  bandwidthMbps: number;
  /**
   * Most bytes waiting to be serialised per direction, data and heartbeats together; beyond it
   * `send` returns false and a heartbeat is dropped.
   */
  queueBytesMax?: number;
  /** Data connections (default 2). An inline link has exactly 1. */
  connections?: number;
  /** `datagram` (default): heartbeats on a channel of their own; `inline`: on connection 0's byte stream. */
  heartbeats?: 'datagram' | 'inline';
  /** How long a connection attempt through a black hole goes on before the wanting ends hear it failed. */
  connectTimeoutMs?: number;
}

/**
 * Defaults (docs/simulated-link.md 2): the connect timeout is TCP's with one SYN retransmission
 * (SYN at 0 and 1 s, given up when the second's 2 s timer runs out), short because the firmware,
 * not the transport, decides when to try again.
 */
export const SIM_LINK_DEFAULTS = {
  connections: 2,
  heartbeats: 'datagram',
  queueBytesMax: 64 * 1024 * 1024,
  connectTimeoutMs: 3_000,
  synRetryMs: 1_000,
} as const;

/** Connections a simulated link may carry: more would only multiply timers. */
export const SIM_LINK_CONNECTIONS_MAX = 64;

export function newChannelStats() {
  return { framesSent: 0, bytesSent: 0, framesDelivered: 0, bytesDelivered: 0, framesLostBlackhole: 0, framesLostClosed: 0, framesDroppedQueueFull: 0 };
}
export type ChannelStats = ReturnType<typeof newChannelStats>;

/**
 * One direction's counters, per channel: `data` (every `send`) and `heartbeat` (every
 * `sendDatagram`, inline or not). A frame sent is delivered, lost in a black hole, lost on a
 * closed or reset connection, or struck by the fault hook (counted by the hook); a refused `send`
 * is not sent, a heartbeat that found the queue full is dropped.
 */
export function newDirectionStats() {
  return { data: newChannelStats(), heartbeat: newChannelStats(), sendsRefused: 0, sendsNotOpen: 0 };
}
export type DirectionStats = ReturnType<typeof newDirectionStats>;

interface Direction {
  readonly name: LinkDirection;
  readonly from: End;
  /** Time (ms) at which the wire finishes serialising everything queued so far. */
  busyUntil: number;
  readonly queue: SerialisationQueue;
  queuedBytes: number;
  /** Connections whose `send` was refused for a full queue, waiting for `writable`. */
  readonly refused: Set<number>;
  writableTimer: unknown;
  /** The connection the next round of `writable` calls starts from: each round starts one further on. */
  writableNext: number;
  holeOn: boolean;
  /** How many black holes have begun on this direction: a frame in flight across one is lost. */
  holeStarts: number;
  readonly stats: DirectionStats;
}

const roundNs = (ms: number): number => Math.round(ms * 1e6) / 1e6;

/**
 * A frame on a byte stream longer than this is heard arriving every this many bytes of its
 * serialisation (docs/simulated-link.md 2): a real socket hands over a long frame's first segments
 * before its last, and the receiver's supervision counts them as traffic.
 */
export const SIM_SEGMENT_BYTES = 16 * 1024;

/**
 * A simulated point-to-point link between two controllers, in the clock's time
 * (docs/simulated-link.md): `connections` byte-stream data connections and a heartbeat channel
 * (datagrams, or frames inline on connection 0), all sharing one serialisation queue per
 * direction: one-way latency, a serialisation delay per byte at the link's bandwidth, a bounded
 * queue. Each `send` reaches the far end as one chunk, in order per connection, unless the fault
 * hook delays some copies.
 *
 * Failures are silent, as on real links: a black hole (`blackhole`) loses every frame of its
 * direction and tells nobody; `reset` resets one data connection. All randomness lives in the
 * fault hook (`setFaults`), drawn from the run's seed, so the link itself is deterministic.
 */
export class SimLink {
  /** The current endpoint at each end (a restarted controller gets a fresh one: see {@link restartEnd}). */
  a: SimEndpoint;
  b: SimEndpoint;
  readonly connections: number;
  readonly heartbeats: 'datagram' | 'inline';
  readonly queueBytesMax: number;
  private readonly ends: [SimEndpoint, SimEndpoint];
  private readonly dirs: readonly [Direction, Direction];
  private readonly conns: ConnectionTable;
  private readonly line: LineConnection | null;
  private faults: LinkFaultHook | null = null;
  private resetCount = 0;
  /** Scratch for one round of `writable` calls (see wantWritable). */
  private readonly writableOrder: number[] = [];
  private msPerByte: number;
  private latency: number;

  constructor(private readonly opts: SimLinkOptions) {
    const d = SIM_LINK_DEFAULTS;
    const o = {
      latencyMs: opts.latencyMs, bandwidthMbps: opts.bandwidthMbps, queueBytesMax: opts.queueBytesMax ?? d.queueBytesMax,
      connections: opts.connections ?? d.connections, heartbeats: opts.heartbeats ?? d.heartbeats, connectTimeoutMs: opts.connectTimeoutMs ?? d.connectTimeoutMs,
    };
    assert(Number.isFinite(o.latencyMs) && o.latencyMs >= 0, `link latency must be a finite number >= 0 ms, got ${o.latencyMs}`);
    assert(Number.isFinite(o.bandwidthMbps) && o.bandwidthMbps > 0, `link bandwidth must be a finite number > 0 Mbit/s, got ${o.bandwidthMbps}`);
    assert(Number.isSafeInteger(o.queueBytesMax) && o.queueBytesMax >= 1, `queueBytesMax must be an integer >= 1, got ${o.queueBytesMax}`);
    assert(Number.isInteger(o.connections) && o.connections >= 1 && o.connections <= SIM_LINK_CONNECTIONS_MAX,
      `a link carries 1 to ${SIM_LINK_CONNECTIONS_MAX} data connections, got ${o.connections}`);
    assert(o.heartbeats === 'datagram' || o.heartbeats === 'inline', `heartbeats must be 'datagram' or 'inline', got ${String(o.heartbeats)}`);
    assert(o.heartbeats === 'datagram' || o.connections === 1, `inline heartbeats travel on the one connection of a serial line: connections must be 1, got ${o.connections}`);
    assert(Number.isFinite(o.connectTimeoutMs) && o.connectTimeoutMs > 0, `connectTimeoutMs must be > 0, got ${o.connectTimeoutMs}`);
    this.connections = o.connections;
    this.heartbeats = o.heartbeats;
    this.queueBytesMax = o.queueBytesMax;
    this.msPerByte = 8 / (o.bandwidthMbps * 1000);
    this.latency = o.latencyMs;
    this.a = new SimEndpoint(opts.names[0], this, 0);
    this.b = new SimEndpoint(opts.names[1], this, 1);
    this.ends = [this.a, this.b];
    this.dirs = [newDirection('ab', 0), newDirection('ba', 1)];
    const host = this.connectionHost(o.connectTimeoutMs);
    this.line = o.heartbeats === 'inline' ? new LineConnection(host) : null;
    this.conns = this.line ?? new TcpConnections(host, o.connections);
  }

  stats(dir: LinkDirection): Readonly<DirectionStats> {
    return this.dir(dir).stats;
  }

  /** The share of the bytes sent (both directions, or one) that were heartbeats: what supervision costs. */
  heartbeatShare(dir?: LinkDirection): number {
    const dirs = dir === undefined ? this.dirs : [this.dir(dir)];
    let hb = 0;
    let all = 0;
    for (const d of dirs) {
      hb += d.stats.heartbeat.bytesSent;
      all += d.stats.heartbeat.bytesSent + d.stats.data.bytesSent;
    }
    return all === 0 ? 0 : hb / all;
  }

  setFaults(hook: LinkFaultHook | null): void {
    this.faults = hook;
  }

  setBandwidth(mbps: number): void {
    assert(Number.isFinite(mbps) && mbps > 0, 'bandwidth must be positive');
    this.msPerByte = 8 / (mbps * 1000);
  }

  setLatency(ms: number): void {
    assert(Number.isFinite(ms) && ms >= 0, 'latency must be >= 0');
    this.latency = ms;
  }

  /**
   * Make a direction (or both) a black hole, or end it. Nobody is told: frames sent into it, or in
   * flight when it begins, are lost, and so is a connection handshake or a FIN crossing it.
   */
  blackhole(dir: LinkDirection | 'both', on: boolean): void {
    for (const d of dir === 'both' ? this.dirs : [this.dir(dir)]) {
      if (d.holeOn === on) continue;
      d.holeOn = on;
      if (on) d.holeStarts++;
    }
  }

  isBlackholed(dir: LinkDirection): boolean {
    return this.dir(dir).holeOn;
  }

  /**
   * A transport-level reset of data connection `conn` (a middlebox's RST, a USB re-enumeration):
   * what is in flight on it is lost and each end holding it hears `closed(conn, 'connection
   * reset')` (from a timer); the other connections are untouched. False if no end held it.
   */
  reset(conn: number): boolean {
    this.checkConn(conn);
    if (!this.conns.reset(conn)) return false;
    this.resetCount++;
    return true;
  }

  /**
   * The controller at one end crashed: its process and everything it held are gone. Its endpoint
   * goes dead (whatever the old incarnation still tries to send is lost, nothing is delivered to
   * it), its connections are forgotten at that end without a word to the peer (a crash sends no
   * FIN), and a fresh endpoint takes its place for the controller's next start. The peer learns
   * what a real peer would: nothing, until it sends on a connection the restarted end no longer
   * holds and is answered with a reset, or until its heartbeats tell it the session changed.
   */
  restartEnd(side: 'a' | 'b'): SimEndpoint {
    const end: End = side === 'a' ? 0 : 1;
    const old = this.ends[end];
    old.retire();
    this.conns.forgetEnd(end);
    this.dirs[end].refused.clear();
    const fresh = new SimEndpoint(old.name, this, end);
    this.ends[end] = fresh;
    if (end === 0) this.a = fresh;
    else this.b = fresh;
    return fresh;
  }

  /** Connections reset by {@link reset} so far (those that some end held). */
  get resets(): number {
    return this.resetCount;
  }

  /** @internal */
  isOpen(end: End, conn: number): boolean {
    this.checkConn(conn);
    return this.conns.isOpen(end, conn);
  }

  /** @internal */
  open(end: End, conn: number): void {
    this.checkConn(conn);
    if (!this.ends[end].retired) this.conns.open(end, conn);
  }

  /** @internal */
  close(end: End, conn: number): void {
    this.checkConn(conn);
    if (!this.ends[end].retired) this.conns.close(end, conn);
  }

  /** @internal The endpoint's send. */
  transmit(end: End, conn: number, bytes: Uint8Array): boolean {
    this.checkConn(conn);
    if (this.ends[end].retired) return false;
    const d = this.dirs[end];
    const tag = this.conns.sendTag(end, conn);
    if (tag === null) {
      d.stats.sendsNotOpen++;
      return false;
    }
    const serialisedMs = this.enqueue(d, bytes.length);
    if (serialisedMs < 0) {
      d.stats.sendsRefused++;
      d.refused.add(conn);
      this.wantWritable(d);
      return false;
    }
    d.stats.data.framesSent++;
    d.stats.data.bytesSent += bytes.length;
    this.launch(d, bytes, conn, tag, serialisedMs);
    return true;
  }

  /** @internal The endpoint's sendDatagram: never refused; dropped if the queue is full. */
  transmitDatagram(end: End, bytes: Uint8Array): void {
    if (this.ends[end].retired) return;
    const d = this.dirs[end];
    const serialisedMs = this.enqueue(d, bytes.length);
    if (serialisedMs < 0) {
      d.stats.heartbeat.framesDroppedQueueFull++;
      return;
    }
    d.stats.heartbeat.framesSent++;
    d.stats.heartbeat.bytesSent += bytes.length;
    this.launch(d, bytes, 'datagram', this.line?.current ?? null, serialisedMs);
  }

  /** Take `bytes` onto the direction's queue; returns when their serialisation ends (ms), or -1 if the queue is full. */
  private enqueue(d: Direction, bytes: number): number {
    const now = this.opts.clock.now();
    while (d.queue.length > 0 && d.queue.firstEnd <= now) d.queuedBytes -= d.queue.shift();
    if (d.queuedBytes > 0 && d.queuedBytes + bytes > this.queueBytesMax) return -1;
    const end = roundNs(Math.max(now, d.busyUntil) + bytes * this.msPerByte);
    d.busyUntil = end;
    d.queue.push(end, bytes);
    d.queuedBytes += bytes;
    return end;
  }

  /** A frame leaves the queue at `serialisedMs`: into a black hole, or through the fault hook onto the wire. */
  private launch(d: Direction, bytes: Uint8Array, channel: LinkChannel, tag: Incarnation | null, serialisedMs: number): void {
    if (d.holeOn) {
      channelStats(d, channel).framesLostBlackhole++;
      return;
    }
    const copies = this.faults?.onSend(d.name, bytes, channel) ?? null;
    const delayMs = serialisedMs + this.latency - this.opts.clock.now();
    if (copies === null) this.fly(d, bytes, channel, tag, delayMs);
    else for (const c of copies) this.fly(d, c.bytes, channel, tag, delayMs + c.extraDelayMs);
    if (tag !== null && bytes.length > SIM_SEGMENT_BYTES && (copies === null || copies.length > 0)) this.segments(d, bytes.length, tag, delayMs);
  }

  /**
   * The first segments of a long frame reach the far end before the whole does: each is heard
   * there as `traffic` on its connection (for the supervisor; the frame's bytes still arrive
   * whole, so a fault-delayed frame never splits another one).
   */
  private segments(d: Direction, length: number, tag: Incarnation, wholeDelayMs: number): void {
    const holeStarts = d.holeStarts;
    const to = other(d.from);
    const segmentMs = SIM_SEGMENT_BYTES * this.msPerByte;
    const firstMs = wholeDelayMs - length * this.msPerByte;
    for (let k = 1; k * SIM_SEGMENT_BYTES < length; k++) {
      this.opts.clock.setTimeout(() => {
        if (d.holeOn || d.holeStarts !== holeStarts || !this.conns.holds(tag, to)) return;
        this.ends[to].handler?.traffic?.(tag.conn);
      }, roundNs(firstMs + k * segmentMs));
    }
  }

  private fly(d: Direction, bytes: Uint8Array, channel: LinkChannel, tag: Incarnation | null, delayMs: number): void {
    const holeStarts = d.holeStarts;
    this.opts.clock.setTimeout(() => this.arrive(d, bytes, channel, tag, holeStarts), roundNs(delayMs));
  }

  private arrive(d: Direction, bytes: Uint8Array, channel: LinkChannel, tag: Incarnation | null, holeStarts: number): void {
    const stats = channelStats(d, channel);
    if (d.holeOn || d.holeStarts !== holeStarts) {
      stats.framesLostBlackhole++;
      return;
    }
    const to = other(d.from);
    if (tag !== null && !this.conns.admit(tag, to)) {
      stats.framesLostClosed++;
      return;
    }
    stats.framesDelivered++;
    stats.bytesDelivered += bytes.length;
    const handler = this.ends[to].handler;
    if (handler === null) return;
    if (tag === null) handler.datagram(bytes);
    else handler.bytes(tag.conn, bytes);
  }

  /**
   * Once the oldest queued frame is on the wire, tell every refused connection that it may send.
   * The room is usually one frame's, and the first connection told takes it; so each round starts
   * one connection further on (round robin, as a fair-queuing qdisc serves flows), and no
   * connection of a saturated link is starved: under load each carries its share.
   */
  private wantWritable(d: Direction): void {
    if (d.writableTimer !== null) return;
    const clock = this.opts.clock;
    d.writableTimer = clock.setTimeout(() => {
      d.writableTimer = null;
      const n = this.connections;
      const order = this.writableOrder;
      order.length = 0;
      for (let i = 0; i < n; i++) {
        const k = (d.writableNext + i) % n;
        if (d.refused.has(k)) order.push(k);
      }
      d.refused.clear();
      if (order.length === 0) return;
      d.writableNext = (order[0]! + 1) % n;
      const handler = this.ends[d.from].handler;
      // A handler's sends may set the next round's timer, never run it: `order` is not reused meanwhile.
      for (const conn of order) if (this.conns.isOpen(d.from, conn)) handler?.writable(conn);
    }, Math.max(0, d.queue.firstEnd - clock.now()));
  }

  private connectionHost(connectTimeoutMs: number): ConnectionHost {
    const clock = this.opts.clock;
    return {
      clock, connectTimeoutMs, synRetryMs: SIM_LINK_DEFAULTS.synRetryMs,
      latencyMs: () => this.latency,
      signal: (from, then) => {
        const d = this.dirs[from];
        if (d.holeOn) return;
        const holeStarts = d.holeStarts;
        clock.setTimeout(() => {
          if (!d.holeOn && d.holeStarts === holeStarts) then();
        }, this.latency);
      },
      snapshot: (): PathSnapshot => ({ ab: this.dirs[0].holeStarts, ba: this.dirs[1].holeStarts, blocked: this.dirs[0].holeOn || this.dirs[1].holeOn }),
      clearSince: (s) => !s.blocked && !this.dirs[0].holeOn && !this.dirs[1].holeOn && s.ab === this.dirs[0].holeStarts && s.ba === this.dirs[1].holeStarts,
      opened: (end, conn) => this.ends[end].handler?.opened(conn),
      closed: (end, conn, reason) => this.ends[end].handler?.closed(conn, reason),
      forget: (end, conn) => this.dirs[end].refused.delete(conn),
    };
  }

  private dir(name: LinkDirection): Direction {
    return name === 'ab' ? this.dirs[0] : this.dirs[1];
  }

  private checkConn(conn: number): void {
    if (Number.isInteger(conn) && conn >= 0 && conn < this.connections) return;
    const what = typeof conn === 'number' ? String(conn) : `a ${typeof conn}`;
    assert(false, `connection ${what} does not exist: this link has ${this.connections} (0 to ${this.connections - 1})`);
  }
}

function newDirection(name: LinkDirection, from: End): Direction {
  return {
    name, from, busyUntil: 0, queue: new SerialisationQueue(), queuedBytes: 0, refused: new Set(), writableTimer: null, writableNext: 0,
    holeOn: false, holeStarts: 0, stats: newDirectionStats(),
  };
}

function channelStats(d: Direction, channel: LinkChannel): ChannelStats {
  return channel === 'datagram' ? d.stats.heartbeat : d.stats.data;
}

/** One end of a {@link SimLink}: the LinkEndpoint port. */
export class SimEndpoint implements LinkEndpoint {
  /** @internal */
  handler: LinkHandler | null = null;
  /** The controller behind this endpoint crashed (see SimLink.restartEnd): it sends and hears nothing any more. */
  retired = false;

  constructor(readonly name: string, private readonly link: SimLink, private readonly end: End) {}

  /** @internal */
  retire(): void {
    this.retired = true;
    this.handler = null;
  }

  get connections(): number {
    return this.link.connections;
  }

  get heartbeats(): 'datagram' | 'inline' {
    return this.link.heartbeats;
  }

  /** Test and harness aid: whether this end holds connection `conn` open (it may be dead on the wire). */
  isOpen(conn: number): boolean {
    return this.link.isOpen(this.end, conn);
  }

  attach(handler: LinkHandler): void {
    assert(!this.retired, `${this.name}: this endpoint's controller crashed; a restarted one attaches to the link's new endpoint`);
    assert(this.handler === null, `${this.name}: a link endpoint takes one handler`);
    this.handler = handler;
  }

  open(conn: number): void {
    this.link.open(this.end, conn);
  }

  close(conn: number): void {
    this.link.close(this.end, conn);
  }

  send(conn: number, bytes: Uint8Array): boolean {
    return this.link.transmit(this.end, conn, bytes);
  }

  sendDatagram(bytes: Uint8Array): void {
    this.link.transmitDatagram(this.end, bytes);
  }
}
