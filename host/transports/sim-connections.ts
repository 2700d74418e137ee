import type { HostClock } from '../clock/clock.ts';

/** An end of a simulated link: 0 is `a`, 1 is `b`. */
export type End = 0 | 1;
export const other = (e: End): End => (e === 0 ? 1 : 0);

/**
 * One incarnation of a data connection (or, on an inline link, of the line). Every frame is
 * stamped with the incarnation it was sent on and is delivered only if that incarnation is still
 * the one its receiver holds: nothing from an old incarnation ever reaches a new one.
 */
export class Incarnation {
  live = true;
  /** A reset has been sent back for a frame that arrived after its receiver let go of it. */
  rstSent = false;
  constructor(readonly conn: number, readonly id: number) {}
}

/** The black-hole state of both directions at one instant, to tell later whether a segment was lost. */
export interface PathSnapshot {
  readonly ab: number;
  readonly ba: number;
  readonly blocked: boolean;
}

/** What the connection tables need from the link. */
export interface ConnectionHost {
  readonly clock: HostClock;
  readonly connectTimeoutMs: number;
  readonly synRetryMs: number;
  latencyMs(): number;
  /**
   * A control segment (SYN-ACK, FIN, RST) from `from` to the other end: `then` runs one latency
   * later, unless the path black-holes it (on when sent, on when it arrives, or a hole began in
   * between). Control segments take no queue space: they are a few bytes.
   */
  signal(from: End, then: () => void): void;
  snapshot(): PathSnapshot;
  /** No black hole was on at `s`, is on now, or began since. */
  clearSince(s: PathSnapshot): boolean;
  opened(end: End, conn: number): void;
  closed(end: End, conn: number, reason: string): void;
  /** A connection was closed or reset at `end`: forget the writable it was waiting for. */
  forget(end: End, conn: number): void;
}

/**
 * How a link's data connections come and go. Both tables defer every notification to a timer, so
 * a handler is never called from inside one of its own calls (a fault hook may reset a
 * connection from inside a `send`).
 */
export interface ConnectionTable {
  open(end: End, conn: number): void;
  close(end: End, conn: number): void;
  /** The incarnation a frame sent now by `end` on `conn` belongs to, or null if `end` does not hold it open. */
  sendTag(end: End, conn: number): Incarnation | null;
  /** A frame stamped `tag` arrives at `to`: may it be delivered? (Refusing may answer with a reset.) */
  admit(tag: Incarnation, to: End): boolean;
  /** Whether `to` still holds the incarnation `tag` open (no side effect, unlike {@link admit}). */
  holds(tag: Incarnation, to: End): boolean;
  /** Reset `conn` at the transport level; false if no end held it. */
  reset(conn: number): boolean;
  isOpen(end: End, conn: number): boolean;
  /** `end` crashed: it lets go of everything at once, telling nobody. */
  forgetEnd(end: End): void;
}

interface Slot {
  readonly want: [boolean, boolean];
  /** The incarnation each end holds (believes open), or null. */
  readonly at: [Incarnation | null, Incarnation | null];
  handshake: unknown;
  handshakeStartMs: number;
  attempt: number;
}

/**
 * Connections as on TCP (docs/simulated-link.md 3). A connection is established one round trip
 * after both ends want it, if the path carries the handshake; otherwise the handshake is retried
 * after `synRetryMs`, doubling (TCP's SYN retransmissions, RFC 6298's initial RTO of 1 s), until
 * `connectTimeoutMs` after the first attempt, when every end still wanting it hears `closed(conn,
 * 'connect timed out')`. A close stops delivery at the closing end at once, kills what is in
 * flight, and sends a FIN: the peer hears `closed(conn, 'closed by peer')` one latency later unless
 * the path loses it. A frame that reaches an end no longer holding its incarnation is answered with
 * a reset (once per incarnation), and a handshake finding an end on a stale incarnation resets
 * that end first, as TCP answers a SYN on a half-open connection; the reset end then decides
 * whether to open again.
 */
export class TcpConnections implements ConnectionTable {
  private readonly slots: Slot[];
  private nextId = 1;

  constructor(private readonly host: ConnectionHost, connections: number) {
    this.slots = Array.from({ length: connections }, () => ({ want: [false, false], at: [null, null], handshake: null, handshakeStartMs: 0, attempt: 0 }));
  }

  open(end: End, conn: number): void {
    const s = this.slots[conn]!;
    if (s.want[end]) return;
    s.want[end] = true;
    if (s.want[other(end)] && s.handshake === null) {
      s.handshakeStartMs = this.host.clock.now();
      s.attempt = 0;
      this.attempt(conn);
    }
  }

  close(end: End, conn: number): void {
    const s = this.slots[conn]!;
    s.want[end] = false;
    this.cancelHandshake(s);
    this.host.forget(end, conn);
    const inc = s.at[end];
    if (inc === null) return;
    s.at[end] = null;
    if (!inc.live) return;
    inc.live = false;
    this.host.signal(end, () => this.drop(other(end), inc, 'closed by peer'));
  }

  sendTag(end: End, conn: number): Incarnation | null {
    return this.slots[conn]!.at[end];
  }

  holds(tag: Incarnation, to: End): boolean {
    return tag.live && this.slots[tag.conn]!.at[to] === tag;
  }

  admit(tag: Incarnation, to: End): boolean {
    const s = this.slots[tag.conn]!;
    if (tag.live && s.at[to] === tag) return true;
    if (s.at[to] !== tag && !tag.rstSent) {
      tag.rstSent = true;
      this.host.signal(to, () => this.drop(other(to), tag, 'connection reset'));
    }
    return false;
  }

  reset(conn: number): boolean {
    const s = this.slots[conn]!;
    const held = [s.at[0], s.at[1]] as const;
    if (held[0] === null && held[1] === null) return false;
    for (const inc of held) if (inc !== null) inc.live = false;
    this.host.clock.setTimeout(() => {
      for (const e of [0, 1] as const) if (held[e] !== null) this.drop(e, held[e], 'connection reset');
    }, 0);
    return true;
  }

  isOpen(end: End, conn: number): boolean {
    return this.slots[conn]!.at[end] !== null;
  }

  forgetEnd(end: End): void {
    for (const s of this.slots) {
      s.want[end] = false;
      s.at[end] = null;
      this.cancelHandshake(s);
    }
  }

  /** `end` lets go of `inc` (if it still holds it) and hears why. */
  private drop(end: End, inc: Incarnation, reason: string): void {
    const s = this.slots[inc.conn]!;
    if (s.at[end] !== inc) return;
    inc.live = false;
    s.at[end] = null;
    s.want[end] = false;
    this.cancelHandshake(s);
    this.host.forget(end, inc.conn);
    this.host.closed(end, inc.conn, reason);
  }

  private attempt(conn: number): void {
    const s = this.slots[conn]!;
    const before = this.host.snapshot();
    s.handshake = this.host.clock.setTimeout(() => {
      s.handshake = null;
      if (this.host.clearSince(before)) this.establish(conn);
      else this.retry(conn);
    }, 2 * this.host.latencyMs());
  }

  /** Attempt `n` starts `synRetryMs * (2^n - 1)` after the first: at 0, 1 s, 3 s, 7 s... */
  private retry(conn: number): void {
    const s = this.slots[conn]!;
    const now = this.host.clock.now();
    const deadline = s.handshakeStartMs + this.host.connectTimeoutMs;
    s.attempt++;
    const nextMs = s.handshakeStartMs + this.host.synRetryMs * (2 ** s.attempt - 1);
    if (nextMs + 2 * this.host.latencyMs() <= deadline) {
      s.handshake = this.host.clock.setTimeout(() => this.attempt(conn), Math.max(0, nextMs - now));
    } else {
      s.handshake = this.host.clock.setTimeout(() => this.timedOut(conn), Math.max(0, deadline - now));
    }
  }

  private timedOut(conn: number): void {
    const s = this.slots[conn]!;
    s.handshake = null;
    for (const e of [0, 1] as const) {
      if (!s.want[e] || s.at[e] !== null) continue;
      s.want[e] = false;
      this.host.closed(e, conn, 'connect timed out');
    }
  }

  private establish(conn: number): void {
    const s = this.slots[conn]!;
    for (const e of [0, 1] as const) {
      const stale = s.at[e];
      if (stale !== null) this.drop(e, stale, 'connection reset');
    }
    // An end that heard the reset may have asked for the connection again from inside the
    // notification, starting a handshake of its own: this establishment answers it (a second one,
    // a round trip later, would find this incarnation stale and reset both ends, for ever).
    this.cancelHandshake(s);
    if (!s.want[0] || !s.want[1]) return;
    const inc = new Incarnation(conn, this.nextId++);
    s.at[0] = inc;
    s.at[1] = inc;
    this.host.opened(0, conn);
    if (s.at[1] === inc) this.host.opened(1, conn);
  }

  private cancelHandshake(s: Slot): void {
    if (s.handshake === null) return;
    this.host.clock.clearTimeout(s.handshake);
    s.handshake = null;
  }
}

/**
 * The single connection of a serial line or a USB bulk pipe, with heartbeats inline
 * (docs/simulated-link.md 4). The line delivers every byte it carries whenever it works, whether
 * either end calls the connection open or not; open and close are each end's own bookkeeping
 * (`open` is answered by `opened` at once, from a timer; a close tells the peer nothing). The line
 * itself has incarnations: a reset loses what is in flight, and each end that held the
 * connection open hears `closed(0, 'connection reset')`.
 */
export class LineConnection implements ConnectionTable {
  private line = new Incarnation(0, 1);
  private readonly want: [boolean, boolean] = [false, false];
  private readonly held: [boolean, boolean] = [false, false];
  private readonly pending: [unknown, unknown] = [null, null];

  constructor(private readonly host: ConnectionHost) {}

  open(end: End): void {
    if (this.want[end]) return;
    this.want[end] = true;
    this.pending[end] = this.host.clock.setTimeout(() => {
      this.pending[end] = null;
      this.held[end] = true;
      this.host.opened(end, 0);
    }, 0);
  }

  close(end: End): void {
    this.want[end] = false;
    this.held[end] = false;
    if (this.pending[end] !== null) this.host.clock.clearTimeout(this.pending[end]);
    this.pending[end] = null;
    this.host.forget(end, 0);
  }

  sendTag(end: End): Incarnation | null {
    return this.held[end] ? this.line : null;
  }

  /** The line's current incarnation: heartbeats travel on it whether or not anyone holds the connection. */
  get current(): Incarnation {
    return this.line;
  }

  admit(tag: Incarnation): boolean {
    return tag === this.line;
  }

  holds(tag: Incarnation): boolean {
    return tag === this.line;
  }

  reset(): boolean {
    this.line.live = false;
    this.line = new Incarnation(0, this.line.id + 1);
    const line = this.line;
    const held = [this.held[0], this.held[1]] as const;
    if (!held[0] && !held[1]) return false;
    this.host.clock.setTimeout(() => {
      for (const e of [0, 1] as const) {
        if (!held[e] || !this.held[e] || this.line !== line) continue;
        this.close(e);
        this.host.closed(e, 0, 'connection reset');
      }
    }, 0);
    return true;
  }

  isOpen(end: End): boolean {
    return this.held[end];
  }

  forgetEnd(end: End): void {
    this.want[end] = false;
    this.held[end] = false;
    if (this.pending[end] !== null) this.host.clock.clearTimeout(this.pending[end]);
    this.pending[end] = null;
  }
}
