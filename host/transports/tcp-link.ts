import { createServer, connect as dialTcp, type Server, type Socket } from 'node:net';
import { assert } from '../../firmware/errors.ts';
import type { LinkHandler } from '../../firmware/ports/link.ts';
import type { TimerHandle } from '../../firmware/ports/clock.ts';
import type { HostClock } from '../clock/clock.ts';
import { definedOnly } from './defaults.ts';
import type { LinkLogger } from './link-logger.ts';
import { LiveLinkError, errnoCode } from './live-link-errors.ts';
import type { LiveConnectionStats, LiveLink, LiveLinkStats } from './live-link-types.ts';
import { PREAMBLE_BYTES, acceptanceProblem, encodeAcceptance, encodePreamble, readPreamble } from './tcp-preamble.ts';
import { UdpHeartbeats } from './udp-heartbeats.ts';

export interface TcpLinkOptions {
  role: 'listen' | 'connect';
  /** The host as the user wrote it (for messages) and the numeric address it resolved to. */
  host: string;
  address: string;
  family: 4 | 6;
  /** Listen: the port to bind (0: any free one, the same for TCP and UDP). Connect: the listener's port. */
  port: number;
  connections: number;
  clock: HostClock;
  logger: LinkLogger;
  localName: string;
  peerName: string;
  /** A `send` is refused once this many bytes wait in a connection's send queue (docs/live-links.md 5). */
  sendQueueBytesMax?: number;
  /** The connect side gives up on a connection not accepted within this long (dial and acceptance together). */
  connectTimeoutMs?: number;
  /** The listen side drops an accepted socket that has not sent its preamble within this long. */
  preambleTimeoutMs?: number;
  /** A connection the firmware closed is reset if its FIN has not gone out within this long. */
  closeLingerMs?: number;
}

/**
 * Defaults (docs/live-links.md): the connect timeout is the simulated link's (TCP's with one SYN
 * retransmission), short because the firmware decides when to try again; the send queue holds
 * about a millisecond of a fast NIC beside the kernel's socket buffer, which is the real queue.
 */
export const TCP_LINK_DEFAULTS = {
  sendQueueBytesMax: 1024 * 1024,
  connectTimeoutMs: 3_000,
  preambleTimeoutMs: 3_000,
  closeLingerMs: 2_000,
} as const;

/** A link carries 1 to this many data connections (the simulated link's limit). */
export const TCP_LINK_CONNECTIONS_MAX = 64;
/** Listen side: at most this many accepted sockets may still owe their preamble; more are dropped at once. */
const UNIDENTIFIED_PER_CONNECTION_MAX = 4;
/** Listen on port 0: tries for a free port that is free for UDP too. */
const FREE_PORT_ATTEMPTS_MAX = 8;

type Phase = 'dialing' | 'awaiting' | 'preamble' | 'pending' | 'open' | 'dead';

/** One TCP socket of the link, from dial or accept to its end. */
class Conn {
  phase: Phase;
  /** The preamble (listen side) or acceptance (connect side) gathered so far. */
  readonly head = new Uint8Array(PREAMBLE_BYTES);
  headBytes = 0;
  timer: TimerHandle | null = null;
  corked = false;
  readonly remote: string;

  constructor(readonly socket: Socket, public slot: number, phase: Phase, readonly afterWrite: () => void) {
    this.phase = phase;
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
  }
}

interface Slot {
  readonly index: number;
  /** The firmware asked for this connection (`open`) and has not closed it, nor heard it closed since. */
  want: boolean;
  /** Connect side: the connection being dialled, awaiting acceptance, or open. Listen side: the open one. */
  conn: Conn | null;
  /** Listen side: a connection for this slot that sent its preamble, waiting for the firmware to want the slot. */
  pending: Conn | null;
  /** A send was refused: `writable` is owed once the queue has room. */
  refused: boolean;
  readonly stats: Omit<LiveConnectionStats, 'conn' | 'state' | 'queuedBytes'>;
}

function uncork(c: Conn): void {
  c.corked = false;
  if (c.phase !== 'dead') c.socket.uncork();
}

/**
 * A live link over TCP with UDP heartbeats (docs/live-links.md): `connections` TCP data
 * connections to one peer and a UDP heartbeat channel, as the LinkEndpoint port asks
 * (firmware/ports/link.ts).
 *
 * Roles: the **listen** side binds HOST:PORT (TCP and UDP); the **connect** side dials it once per
 * slot the firmware opens. Each connection starts with the connect side's 8-byte preamble naming
 * its slot and the listen side's 8-byte acceptance (tcp-preamble.ts). The listener accepts a
 * slot only while its own firmware wants it, so a connection is `opened` at both ends only once
 * both want it, as on the simulated link; a connection for a slot not wanted yet waits (up to the
 * connect timeout), and one for a slot already open replaces it (the peer restarted, or lost the
 * old connection without our hearing).
 *
 * The transport never decides that the link is up or down. Every way a connection ends that the
 * firmware did not ask for (refused, reset, broken pipe, closed by the peer, timed out, replaced)
 * is one `closed(k, reason)`, and the firmware's supervisor decides when to ask again. No socket
 * error escapes: every socket has an error listener from its first moment to its last.
 *
 * Sends are bounded (docs/live-links.md 5): a connection refuses a `send` once
 * `sendQueueBytesMax` bytes wait in its socket's buffer, and says `writable` when half of that has
 * gone to the kernel. Sends made in one tick go out together (cork, then one writev).
 */
export class TcpLink implements LiveLink {
  readonly heartbeats = 'datagram' as const;
  readonly connections: number;
  readonly name: string;
  readonly description: string;
  /** The TCP (and UDP) port: bound (listen), or dialled (connect). */
  readonly port: number;
  private handler: LinkHandler | null = null;
  private readonly slots: Slot[];
  private readonly unidentified = new Set<Conn>();
  private readonly lingering = new Map<Socket, TimerHandle>();
  private readonly acceptQueue: Slot[] = [];
  private acceptImmediate: ReturnType<typeof setImmediate> | null = null;
  private readonly totals = { preamblesRejected: 0, replaced: 0, refusedBusy: 0 };
  private readonly queueMax: number;
  private readonly resumeBytes: number;
  private readonly o: Required<TcpLinkOptions>;
  private stopping: Promise<void> | null = null;

  private constructor(opts: TcpLinkOptions, private readonly server: Server | null, private readonly udp: UdpHeartbeats, port: number) {
    this.o = { ...TCP_LINK_DEFAULTS, ...definedOnly(opts) } as Required<TcpLinkOptions>;
    this.connections = opts.connections;
    this.name = opts.localName;
    this.port = port;
    this.queueMax = this.o.sendQueueBytesMax;
    this.resumeBytes = Math.floor(this.queueMax / 2);
    const hostPort = this.o.family === 6 ? `[${opts.host}]:${port}` : `${opts.host}:${port}`;
    const n = opts.connections;
    this.description = `tcp ${opts.role === 'listen' ? 'listening on' : 'to'} ${hostPort}, ${n} connection${n === 1 ? '' : 's'}, ` +
      `UDP heartbeats (${opts.localName} -> ${opts.peerName})`;
    this.slots = Array.from({ length: opts.connections }, (_, index) => ({
      index, want: false, conn: null, pending: null, refused: false,
      stats: { opens: 0, closedHeard: 0, framesSent: 0, bytesSent: 0, chunksReceived: 0, bytesReceived: 0, sendsRefused: 0, sendsNotOpen: 0 },
    }));
    server?.on('connection', (socket) => this.onConnection(socket));
  }

  /** Binds (listen) or prepares (connect) the link; errors are {@link LiveLinkError}s naming what to change. */
  static async open(opts: TcpLinkOptions): Promise<TcpLink> {
    const o = opts;
    assert(Number.isInteger(o.connections) && o.connections >= 1 && o.connections <= TCP_LINK_CONNECTIONS_MAX,
      `a TCP link carries 1 to ${TCP_LINK_CONNECTIONS_MAX} connections, got ${o.connections}`);
    assert(o.sendQueueBytesMax === undefined || (Number.isSafeInteger(o.sendQueueBytesMax) && o.sendQueueBytesMax >= 2),
      `sendQueueBytesMax must be an integer >= 2, got ${o.sendQueueBytesMax}`);
    let link: TcpLink | null = null;
    const deliver = (bytes: Uint8Array): void => link?.handler?.datagram(bytes);
    if (o.role === 'connect') {
      const udp = await UdpHeartbeats.open({ role: 'connect', address: o.address, family: o.family, port: o.port, logger: o.logger, deliver });
      link = new TcpLink(o, null, udp, o.port);
      return link;
    }
    for (let attempt = 1; ; attempt++) {
      const server = createServer({ noDelay: true });
      const port = await listen(server, o);
      try {
        const udp = await UdpHeartbeats.open({ role: 'listen', address: o.address, family: o.family, port, logger: o.logger, deliver });
        link = new TcpLink(o, server, udp, port);
        return link;
      } catch (error) {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        // Port 0 found a TCP port whose UDP twin is taken: try another.
        if (o.port === 0 && errnoCode(error) === 'EADDRINUSE' && attempt < FREE_PORT_ATTEMPTS_MAX) continue;
        throw listenError(error, { ...o, port }, 'UDP');
      }
    }
  }

  attach(handler: LinkHandler): void {
    assert(this.handler === null, `${this.name}: a link endpoint takes one handler`);
    this.handler = handler;
  }

  open(conn: number): void {
    const s = this.slot(conn);
    if (this.stopping !== null || s.want) return;
    s.want = true;
    if (this.o.role === 'connect') this.dial(s);
    else if (s.pending !== null) this.acceptSoon(s);
  }

  close(conn: number): void {
    const s = this.slot(conn);
    s.want = false;
    s.refused = false;
    const c = s.conn;
    if (c === null) return;
    s.conn = null;
    if (c.phase === 'open') this.letGo(c);
    else this.kill(c);
  }

  send(conn: number, bytes: Uint8Array): boolean {
    const s = this.slot(conn);
    const c = s.conn;
    if (c === null || c.phase !== 'open') {
      s.stats.sendsNotOpen++;
      return false;
    }
    const socket = c.socket;
    if (socket.writableLength >= this.queueMax) {
      s.refused = true;
      s.stats.sendsRefused++;
      return false;
    }
    if (!c.corked) {
      c.corked = true;
      socket.cork();
      process.nextTick(uncork, c);
    }
    socket.write(bytes, c.afterWrite);
    s.stats.framesSent++;
    s.stats.bytesSent += bytes.length;
    return true;
  }

  sendDatagram(bytes: Uint8Array): void {
    if (this.stopping === null) this.udp.send(bytes);
  }

  /**
   * Reset connection `conn` as a middlebox's RST would (a TCP RST to the peer, which hears
   * ECONNRESET); this end hears `closed(conn, 'connection reset')` like any reset. For tests and
   * fault drills; false if the connection was not open.
   */
  resetConnection(conn: number): boolean {
    const c = this.slot(conn).conn;
    if (c === null || c.phase !== 'open') return false;
    c.socket.resetAndDestroy();
    this.lost(c, 'connection reset');
    return true;
  }

  stats(): LiveLinkStats {
    const connections = this.slots.map((s): LiveConnectionStats => ({
      conn: s.index,
      state: s.conn?.phase === 'open' ? 'open' : s.want ? 'opening' : 'closed',
      queuedBytes: s.conn?.phase === 'open' ? s.conn.socket.writableLength : 0,
      ...s.stats,
    }));
    const opens = connections.reduce((n, c) => n + c.opens, 0);
    return {
      kind: 'tcp', role: this.o.role, description: this.description, connections,
      connects: opens, reconnects: connections.reduce((n, c) => n + Math.max(0, c.opens - 1), 0),
      datagrams: { ...this.udp.stats },
      ...this.totals,
    };
  }

  shutdown(): Promise<void> {
    this.stopping ??= this.stop();
    return this.stopping;
  }

  private async stop(): Promise<void> {
    this.handler = null;
    if (this.acceptImmediate !== null) clearImmediate(this.acceptImmediate);
    this.acceptImmediate = null;
    this.acceptQueue.length = 0;
    for (const s of this.slots) {
      s.want = false;
      for (const c of [s.conn, s.pending]) if (c !== null) this.kill(c);
      s.conn = null;
      s.pending = null;
    }
    for (const c of this.unidentified) this.kill(c);
    for (const [socket, timer] of this.lingering) {
      this.o.clock.clearTimeout(timer);
      socket.destroy();
    }
    this.lingering.clear();
    const server = this.server;
    await Promise.all([
      this.udp.close(),
      server === null ? undefined : new Promise<void>((resolve) => server.close(() => resolve())),
    ]);
  }

  // ---- connect side ---------------------------------------------------------------------------

  private dial(s: Slot): void {
    const k = s.index;
    const socket = dialTcp({ host: this.o.address, port: this.o.port, family: this.o.family, noDelay: true });
    const c = this.track(socket, k, 'dialing');
    s.conn = c;
    c.timer = this.o.clock.setTimeout(() => {
      c.timer = null;
      const what = c.phase === 'dialing' ? 'did not answer' : `did not accept connection ${k}`;
      this.lost(c, `connect timed out: ${this.hostPort} ${what} within ${this.o.connectTimeoutMs} ms`);
    }, this.o.connectTimeoutMs);
    socket.once('connect', () => {
      if (c.phase !== 'dialing') return;
      socket.setNoDelay(true);
      c.phase = 'awaiting';
      socket.write(encodePreamble(k, this.connections));
    });
  }

  private get hostPort(): string {
    return this.o.family === 6 ? `[${this.o.host}]:${this.port}` : `${this.o.host}:${this.port}`;
  }

  // ---- listen side ----------------------------------------------------------------------------

  private onConnection(socket: Socket): void {
    if (this.stopping !== null) {
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    if (this.unidentified.size >= UNIDENTIFIED_PER_CONNECTION_MAX * this.connections) {
      this.totals.refusedBusy++;
      const from = `${socket.remoteAddress}:${socket.remotePort}`;
      this.o.logger.warn({ from, waiting: this.unidentified.size }, 'connection dropped: too many connections still owe their preamble');
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const c = this.track(socket, -1, 'preamble');
    this.unidentified.add(c);
    c.timer = this.o.clock.setTimeout(() => {
      c.timer = null;
      this.reject(c, `no preamble within ${this.o.preambleTimeoutMs} ms`);
    }, this.o.preambleTimeoutMs);
  }

  /** A connection's preamble named slot `k`: it waits there until the firmware wants the slot. */
  private identified(c: Conn, k: number): void {
    this.unidentified.delete(c);
    this.clearTimer(c);
    c.slot = k;
    c.phase = 'pending';
    const s = this.slots[k]!;
    if (s.pending !== null) {
      this.o.logger.info({ conn: k, from: s.pending.remote }, 'a newer connection for this slot replaces one still waiting to be accepted');
      this.kill(s.pending);
    }
    s.pending = c;
    c.timer = this.o.clock.setTimeout(() => {
      c.timer = null;
      if (s.pending === c) s.pending = null;
      this.o.logger.debug({ conn: k, from: c.remote }, 'connection dropped: its slot was not wanted within the connect timeout');
      this.kill(c);
    }, this.o.connectTimeoutMs);
    const old = s.conn;
    if (old !== null) {
      this.totals.replaced++;
      this.o.logger.warn({ conn: k, old: old.remote, new: c.remote },
        'the peer connected this slot again (it restarted, or lost the old connection unheard): the old connection is replaced');
      this.lost(old, `replaced: the peer opened connection ${k} again (it restarted, or lost the old connection without our hearing)`);
    }
    if (s.want) this.accept(s);
  }

  private acceptSoon(s: Slot): void {
    this.acceptQueue.push(s);
    this.acceptImmediate ??= setImmediate(() => {
      this.acceptImmediate = null;
      const due = this.acceptQueue.splice(0);
      for (const x of due) this.accept(x);
    });
  }

  /** Takes the slot's pending connection, if the firmware still wants the slot and holds none open. */
  private accept(s: Slot): void {
    const c = s.pending;
    if (c === null || !s.want || s.conn !== null || this.stopping !== null) return;
    s.pending = null;
    this.clearTimer(c);
    c.socket.write(encodeAcceptance(s.index, this.connections));
    this.established(s, c);
  }

  private reject(c: Conn, problem: string): void {
    this.totals.preamblesRejected++;
    this.o.logger.warn({ from: c.remote, problem }, 'connection refused: not a valid link preamble');
    this.unidentified.delete(c);
    this.kill(c);
  }

  // ---- both sides -----------------------------------------------------------------------------

  /** Listens on the socket for as long as it lives; every event ends in this class's own handling. */
  private track(socket: Socket, slot: number, phase: Phase): Conn {
    const c: Conn = new Conn(socket, slot, phase, () => this.afterWrite(c));
    socket.on('error', (error) => this.lost(c, socketErrorReason(error, this.o.role === 'connect' ? this.hostPort : c.remote)));
    const ended = (): void => this.lost(c, c.phase === 'awaiting'
      ? `${this.hostPort} closed connection ${c.slot} without accepting it (another link's listener, or one that refused our preamble: see its log)`
      : 'closed by peer');
    socket.on('end', ended);
    socket.on('close', ended);
    socket.on('data', (chunk: Buffer) => this.onData(c, chunk));
    return c;
  }

  private onData(c: Conn, chunk: Buffer): void {
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
    if (c.phase === 'open') {
      const s = this.slots[c.slot]!;
      s.stats.chunksReceived++;
      s.stats.bytesReceived += bytes.length;
      this.handler?.bytes(c.slot, bytes);
    } else if (c.phase === 'awaiting') {
      this.onAcceptance(c, bytes);
    } else if (c.phase === 'preamble') {
      const rest = gather(c, bytes);
      if (rest === null) return;
      const got = readPreamble(c.head, this.connections);
      if ('problem' in got) this.reject(c, got.problem);
      else if (rest.length > 0) this.reject(c, `${rest.length} bytes followed the preamble before the connection was accepted`);
      else this.identified(c, got.slot);
    } else if (c.phase === 'pending') {
      this.o.logger.warn({ conn: c.slot, from: c.remote, bytes: bytes.length }, 'connection dropped: the peer sent data before it was accepted');
      if (this.slots[c.slot]!.pending === c) this.slots[c.slot]!.pending = null;
      this.kill(c);
    }
  }

  private onAcceptance(c: Conn, bytes: Uint8Array): void {
    const rest = gather(c, bytes);
    if (rest === null) return;
    const problem = acceptanceProblem(c.head, c.slot, this.connections);
    if (problem !== null) {
      this.lost(c, `${this.hostPort} did not accept connection ${c.slot}: ${problem}`);
      return;
    }
    this.clearTimer(c);
    const s = this.slots[c.slot]!;
    this.established(s, c);
    if (rest.length > 0 && c.phase === 'open') {
      s.stats.chunksReceived++;
      s.stats.bytesReceived += rest.length;
      this.handler?.bytes(c.slot, rest);
    }
  }

  private established(s: Slot, c: Conn): void {
    c.phase = 'open';
    s.conn = c;
    s.refused = false;
    s.stats.opens++;
    this.o.logger.debug({ conn: s.index, remote: c.remote }, 'connection open');
    this.handler?.opened(s.index);
  }

  private afterWrite(c: Conn): void {
    const s = this.slots[c.slot];
    if (s === undefined || !s.refused || s.conn !== c || c.socket.writableLength > this.resumeBytes) return;
    s.refused = false;
    this.handler?.writable(s.index);
  }

  /**
   * The socket ended without the firmware asking. A connection the firmware wanted (open, or being
   * dialled for it) is `closed` with the reason; a listen-side socket not yet accepted just goes.
   */
  private lost(c: Conn, reason: string): void {
    if (c.phase === 'dead') return;
    const reported = c.phase === 'open' || c.phase === 'dialing' || c.phase === 'awaiting';
    this.kill(c);
    if (c.slot < 0) {
      this.unidentified.delete(c);
      return;
    }
    const s = this.slots[c.slot]!;
    if (s.pending === c) s.pending = null;
    if (!reported || s.conn !== c) return;
    s.conn = null;
    s.want = false;
    s.refused = false;
    s.stats.closedHeard++;
    this.o.logger.info({ conn: s.index, remote: c.remote, reason }, 'connection closed');
    this.handler?.closed(s.index, reason);
  }

  /** Gone at once: the socket is destroyed (its error listener stays), its timer cleared. */
  private kill(c: Conn): void {
    c.phase = 'dead';
    this.clearTimer(c);
    c.socket.destroy();
  }

  /** The firmware closed an open connection: a FIN goes out after what is queued, and a reset if that takes too long. */
  private letGo(c: Conn): void {
    c.phase = 'dead';
    this.clearTimer(c);
    const socket = c.socket;
    socket.removeAllListeners('data');
    socket.end();
    const timer = this.o.clock.setTimeout(() => {
      this.lingering.delete(socket);
      socket.destroy();
    }, this.o.closeLingerMs);
    this.lingering.set(socket, timer);
    socket.once('close', () => {
      if (this.lingering.delete(socket)) this.o.clock.clearTimeout(timer);
    });
  }

  private clearTimer(c: Conn): void {
    if (c.timer !== null) this.o.clock.clearTimeout(c.timer);
    c.timer = null;
  }

  private slot(conn: number): Slot {
    const s = Number.isInteger(conn) ? this.slots[conn] : undefined;
    assert(s !== undefined, `connection ${String(conn)} does not exist: this link has ${this.connections} (0 to ${this.connections - 1})`);
    return s;
  }
}

/** Copies preamble bytes into `c.head`; once all 8 are there, returns what followed them (maybe nothing), else null. */
function gather(c: Conn, bytes: Uint8Array): Uint8Array | null {
  const take = Math.min(PREAMBLE_BYTES - c.headBytes, bytes.length);
  c.head.set(bytes.subarray(0, take), c.headBytes);
  c.headBytes += take;
  return c.headBytes < PREAMBLE_BYTES ? null : bytes.subarray(take);
}

/** What a socket error means for the connection, in words (docs/live-links.md 7). */
export function socketErrorReason(error: unknown, peer: string): string {
  const code = errnoCode(error);
  switch (code) {
    case 'ECONNREFUSED': return `connection refused by ${peer} (ECONNREFUSED): nothing listens there`;
    case 'ECONNRESET': return `connection reset by ${peer} (ECONNRESET)`;
    case 'EPIPE': return `broken pipe (EPIPE): ${peer} closed the connection while we were sending`;
    case 'ETIMEDOUT': return `connection to ${peer} timed out (ETIMEDOUT)`;
    case 'EHOSTUNREACH': case 'ENETUNREACH': return `no route to ${peer} (${code})`;
    case 'ERR_STREAM_DESTROYED': case 'ERR_STREAM_WRITE_AFTER_END': return 'closed by peer';
    default: return `socket error${code === '' ? '' : ` ${code}`}: ${(error as Error)?.message ?? String(error)}`;
  }
}

async function listen(server: Server, o: TcpLinkOptions): Promise<number> {
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: o.port, host: o.address, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    throw listenError(error, o, 'TCP');
  }
  // A server that fails after listening (it should not) is logged, never thrown from an event.
  server.on('error', (error) => o.logger.warn({ error: error.message }, 'TCP listener error'));
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : o.port;
}

/** A bind failure as the one-line error a command prints. */
export function listenError(error: unknown, o: Pick<TcpLinkOptions, 'host' | 'family' | 'port'>, proto: 'TCP' | 'UDP'): LiveLinkError {
  const code = errnoCode(error);
  const where = o.family === 6 ? `[${o.host}]:${o.port}` : `${o.host}:${o.port}`;
  if (code === 'EADDRINUSE') {
    return new LiveLinkError('ML_ERR_LINK_ADDRESS_IN_USE',
      `${proto} ${where} is in use (EADDRINUSE): a link listens on a port free for both TCP and UDP; pick another, or stop what holds it`, error);
  }
  if (code === 'EACCES') {
    return new LiveLinkError('ML_ERR_LINK_PERMISSION',
      `no permission to listen on ${proto} ${where} (EACCES): ports below 1024 need privileges; use 1024 to 65535`, error);
  }
  if (code === 'EADDRNOTAVAIL') {
    return new LiveLinkError('ML_ERR_LINK_ADDRESS',
      `${o.host} is not an address of this machine (EADDRNOTAVAIL); listen on one of its addresses, 127.0.0.1, or 0.0.0.0 for all`, error);
  }
  return new LiveLinkError('ML_ERR_LINK_ADDRESS', `cannot listen on ${proto} ${where}: ${(error as Error)?.message ?? String(error)}`, error);
}
