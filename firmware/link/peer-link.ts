import { linkSupervisorMachine, type LinkSupervisorControl } from '../machines/link-supervisor.machine.ts';
import { startChart, type ChartHandle } from '../machines/start-chart.ts';
import type { SourceChannel } from '../mirror/source-channel.ts';
import type { TargetChannel } from '../mirror/target-channel.ts';
import type { Clock } from '../ports/clock.ts';
import type { LinkEndpoint } from '../ports/link.ts';
import type { Telemetry } from '../ports/telemetry.ts';
import { decodeFrame } from '../protocol/decoder.ts';
import { encodeFrame, encodedLength } from '../protocol/encode.ts';
import { FrameError } from '../protocol/errors.ts';
import {
  BATCH_BYTES_MAX_MIN, FEATURE_BITS, FEATURES_IMPLEMENTED, FrameFlag, FrameType, LockRejectPolicy, featureNames, frameTypeName, isResyncFrame,
  isResyncFrameType, isStreamFrame, type BatchFrame, type Frame, type HeartbeatFrame, type HeartbeatTags, type HelloFrame, type ResponseFrame,
  type ResyncFrame,
} from '../protocol/frame.ts';
import { OFF_LUN, OFF_SEQ, OFF_TYPE, readU16, readU32, readU64 } from '../protocol/layout.ts';
import type { LinkSupervisionEvent } from '../telemetry/events.ts';
import { ConnectionArray, type Connection } from './connection-array.ts';
import { PeerSessions } from './peer-sessions.ts';

export interface PeerLinkConfig {
  controllerId: number;
  /** This controller's session id. */
  session: number;
  payloadBytesMax: number;
  /** Most response frames (ACK, NAK, LOCK_GRANTED, LOCK_REJECTED) queued while every connection is full. */
  controlQueueMax: number;
  /** HELLO is repeated this often on a connection until the peer's HELLO arrives there. */
  helloRetryMs: number;
  heartbeatMs: number;
  interruptionMs: number;
  probationMs: number;
  /** Connections that could not be made are asked for again this often while connecting. */
  connectRetryMs: number;
  policy: 'halt-resume' | 'retransmit';
}

export interface PeerLinkHooks {
  /** The peer restarted (its session changed): mirrors to it need resynchronising. */
  peerRestarted(): void;
  /** The peer says it knew an earlier session of ours: we restarted, and our mirrors to it need resynchronising. */
  weRestarted(): void;
  /** The link came up (connections ready, HELLOs exchanged); `features`: what both sides implement. */
  linkUp(features: number): void;
  /** The link went down (the supervisor declared it: silence, or the peer restarted). */
  linkDown(): void;
  /** A frame of a resync's table exchange (feature `resync`, docs/tag-tables.md "Resync"). */
  resyncFrame(f: ResyncFrame): void;
}

export function newLinkCounters() {
  return {
    framesIn: 0, bytesIn: 0, frameErrors: 0, hellosSent: 0, hellosReceived: 0, controlQueued: 0, controlDropped: 0, unexpected: 0,
    heartbeatsSent: 0, heartbeatsReceived: 0, heartbeatsStale: 0, heartbeatBytesSent: 0, staleFrames: 0, versionMismatches: 0,
    connectionsOpened: 0, connectionsLost: 0,
    suspicions: 0, downs: 0, probationsPassed: 0, probationsRestarted: 0, reconnects: 0, peerRestarts: 0, incompatible: 0,
  };
}
export type LinkCounters = ReturnType<typeof newLinkCounters>;

/** What the supervisor measured, for reports: link-down time and the silence at each detection. */
export interface LinkSupervisionStats {
  downMs: number;
  /** Per down declared for silence: how long the peer had been silent (ms). */
  detectMs: number[];
}

/** Most detection latencies kept for the report (the earliest ones; the count is in `downs`). */
const DETECT_SAMPLES_MAX = 1024;

/**
 * One controller's end of the link to one peer (docs/link-supervision.md): the endpoint, its data
 * connections (`ConnectionArray`: state, decoder and last-heard time per connection), heartbeats
 * both ways, the peer's sessions, and the link supervisor chart that decides from all that
 * whether the link is up. Frames that arrive are routed: the peer's stream frames to this
 * controller's target side, responses to its source channel, HELLO and HEARTBEAT here.
 *
 * Both channels share the connections. Stream data never needs queueing here (it stays in the
 * rollback log until a connection takes it); responses are small and are queued, boundedly, when
 * every connection is full. Dropping the oldest queued response is safe: ACKs are cumulative and
 * every other response is repeated when the source asks again (ack timeout, halt probe).
 */
export class PeerLink implements LinkSupervisorControl {
  readonly counters = newLinkCounters();
  readonly heartbeatMs: number;
  readonly suspectMs: number;
  readonly interruptionMs: number;
  readonly probationMs: number;
  readonly connectRetryMs: number;
  private readonly conns: ConnectionArray;
  private readonly sessions = new PeerSessions();
  private readonly pending: Uint8Array[] = [];
  private chart: ChartHandle<typeof linkSupervisorMachine> | null = null;
  private heartbeatTimer: unknown = null;
  private heartbeatCounter = 0;
  private probing = false;
  private up = false;
  /** When the peer was last heard, by heartbeat or traffic; and its last heartbeat. */
  private lastHeardMs = 0;
  private lastHeartbeatMs = -1;
  private downSinceMs = -1;
  private readonly stats: LinkSupervisionStats = { downMs: 0, detectMs: [] };
  private readonly inline: boolean;
  /**
   * The optional features this end offers in HELLO: all it implements, but `batch` only if its
   * decoder takes a BATCH of useful size (payloadBytesMax at least BATCH_BYTES_MAX_MIN).
   */
  private readonly features: number;
  /**
   * Per connection: when the one HELLO that asked for an answer (Retransmit) went out, and how
   * many did (Karn's rule: an answer to one of several says nothing sure about the round trip).
   */
  private readonly helloAsked = new Map<number, { atMs: number; sends: number }>();
  /** The smallest round trip a HELLO handshake measured: the path's, idle (Infinity: none yet). */
  private pathRttMs = Infinity;
  /** The features of the peer's last HELLO (0 before the first), and whether one was heard at all. */
  private peerFeatures = 0;
  private helloHeard = false;

  constructor(
    private readonly cfg: PeerLinkConfig,
    private readonly deps: { node: string; peer: string; clock: Clock; telemetry: Telemetry; endpoint: LinkEndpoint; onError(error: unknown): void },
    private readonly source: SourceChannel | null,
    private readonly target: TargetChannel,
    private readonly hooks: PeerLinkHooks,
  ) {
    this.heartbeatMs = cfg.heartbeatMs;
    this.interruptionMs = cfg.interruptionMs;
    this.probationMs = cfg.probationMs;
    this.connectRetryMs = cfg.connectRetryMs;
    this.suspectMs = Math.min(cfg.interruptionMs / 2, 3 * cfg.heartbeatMs);
    this.inline = deps.endpoint.heartbeats === 'inline';
    this.features = cfg.payloadBytesMax >= BATCH_BYTES_MAX_MIN ? FEATURES_IMPLEMENTED : FEATURES_IMPLEMENTED & ~FEATURE_BITS.batch;
    this.conns = new ConnectionArray(deps.endpoint.connections, {
      payloadBytesMax: cfg.payloadBytesMax,
      onFrame: (conn, f) => this.onFrame(conn, f),
      onError: (conn, e) => this.onFrameError(conn, e),
    });
  }

  /** Attach to the endpoint, start heartbeats and the supervisor. */
  start(): void {
    const { endpoint, clock, telemetry, node, peer, onError } = this.deps;
    endpoint.attach({
      opened: (conn) => this.onOpened(conn),
      closed: (conn, reason) => this.onClosed(conn, reason),
      bytes: (conn, chunk) => this.onBytes(conn, chunk),
      traffic: (conn) => this.onTraffic(conn),
      datagram: (bytes) => this.onDatagram(bytes),
      writable: (conn) => this.onWritable(conn),
    });
    this.lastHeardMs = clock.now();
    this.sendHeartbeat();
    this.chart = startChart(linkSupervisorMachine, { ctl: this }, { clock, telemetry, node, machine: `link:${node}->${peer}`, onError });
  }

  stop(): void {
    this.chart?.stop();
    if (this.heartbeatTimer !== null) this.deps.clock.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
    for (const c of this.conns.all) this.cancelHello(c);
  }

  /** The supervisor's state: `connecting`, `up`, `suspect`, `down`, `probation.clean`. */
  get state(): string {
    return this.chart?.state() ?? 'stopped';
  }

  get chartEvents(): number {
    return this.chart?.events() ?? 0;
  }

  get isUp(): boolean {
    return this.up;
  }

  /** The peer's current session (0 if never heard). */
  get peerSession(): number {
    return this.sessions.current;
  }

  /** Both sides offer tokens (feature `tags`), as the peer's last HELLO said (docs/tag-tables.md, "Tokens"). */
  get tagsOffered(): boolean {
    return (this.peerFeatures & this.features & FEATURE_BITS.tags) !== 0;
  }

  /**
   * The peer's HELLO said it keeps no tokens with us. Before any HELLO nothing is known: a write
   * accepted then must still enter the table (its heartbeats may come first, and the write may
   * never reach the peer), and the table is forgotten later if the HELLO says so.
   */
  get tagsRefused(): boolean {
    return this.helloHeard && !this.tagsOffered;
  }

  /** Per connection: its state and when it was last heard. */
  get connections(): { conn: number; state: string; lastHeardMs: number }[] {
    return this.conns.all.map((c) => ({ conn: c.index, state: c.state, lastHeardMs: c.lastHeardMs }));
  }

  get supervision(): LinkSupervisionStats {
    const ongoing = this.downSinceMs >= 0 ? this.deps.clock.now() - this.downSinceMs : 0;
    return { downMs: this.stats.downMs + ongoing, detectMs: [...this.stats.detectMs] };
  }

  // ---- sending, for the channels -------------------------------------------------------------

  /**
   * Stream data: the connection that took it, or -1 if none has room now (or responses are queued
   * ahead of it). `retransmit`: the source sent this entry before (for telemetry).
   */
  sendStream(bytes: Uint8Array, retransmit: boolean): number {
    if (!this.up || this.pending.length !== 0) return -1;
    const conn = this.conns.sendRoundRobin((c) => this.deps.endpoint.send(c, bytes));
    if (conn >= 0 && this.deps.telemetry.enabled) this.emitSent(bytes, retransmit, conn);
    return conn;
  }

  /** Responses: sent now, or queued (boundedly) until a connection has room. */
  sendControl(bytes: Uint8Array): boolean {
    if (!this.conns.anyReady()) return false;
    const conn = this.pending.length === 0 ? this.conns.sendRoundRobin((c) => this.deps.endpoint.send(c, bytes)) : -1;
    if (conn >= 0) {
      if (this.deps.telemetry.enabled) this.emitSent(bytes, false, conn);
      return true;
    }
    this.pending.push(bytes);
    this.counters.controlQueued++;
    if (this.pending.length > this.cfg.controlQueueMax) {
      this.pending.shift();
      this.counters.controlDropped++;
    }
    return true;
  }

  // ---- supervisor control (LinkSupervisorControl) ----------------------------------------------

  silentForMs(): number {
    return this.deps.clock.now() - this.lastHeardMs;
  }

  openConnections(): void {
    for (const c of this.conns.all) if (c.state === 'closed') this.open(c);
  }

  closeConnections(): void {
    for (const c of this.conns.all) {
      if (c.state === 'closed') continue;
      this.deps.endpoint.close(c.index);
      this.dropConnection(c, 'closed by the link supervisor');
    }
    this.pending.length = 0;
    this.target.connectionsReady(this.conns.ready());
  }

  reopenConnection(conn: number): void {
    const c = this.conns.at(conn);
    if (c && c.state === 'closed') this.open(c);
  }

  announceUp(): void {
    const hello = this.conns.all.find((c) => c.state === 'ready')?.peerHello;
    if (!hello) return;
    this.up = true;
    if (this.downSinceMs >= 0) {
      this.stats.downMs += this.deps.clock.now() - this.downSinceMs;
      this.downSinceMs = -1;
      this.counters.reconnects++;
    }
    this.source?.linkUp({
      sessionId: hello.sessionId, confirmedSeq: hello.seq, peerSession: hello.peerSession,
      windowBytes: hello.windowBytes, windowEntries: hello.windowEntries, locksWindow: hello.locksWindow,
      features: hello.features & this.features, batchBytesMax: Math.min(hello.batchBytesMax ?? 0, this.cfg.payloadBytesMax),
      pathRttMs: this.pathRttMs, ...(hello.peerStream !== undefined && hello.seq > 0 ? { peerStream: hello.peerStream } : {}),
    });
    this.supervise('up', `${this.conns.ready().length} of ${this.conns.size} connections ready`);
    this.hooks.linkUp(hello.features & this.features);
  }

  announceDown(reason: string): void {
    this.up = false;
    if (this.downSinceMs < 0) {
      this.downSinceMs = this.deps.clock.now();
      this.counters.downs++;
      if (reason.startsWith('nothing heard') && this.stats.detectMs.length < DETECT_SAMPLES_MAX) this.stats.detectMs.push(this.silentForMs());
    }
    this.supervise('down', reason);
    this.source?.linkDown();
    this.target.linkDown();
    this.hooks.linkDown();
  }

  setProbing(on: boolean): void {
    this.probing = on;
    if (on) this.sendHeartbeat();
  }

  startNewStreams(): void {
    const session = this.sessions.current;
    this.target.beginStream(session);
    this.source?.beginNewStream(session);
    this.hooks.peerRestarted();
  }

  report(event: 'suspect' | 'probation.start' | 'probation.restart' | 'probation.passed', detail: string): void {
    if (event === 'suspect') this.counters.suspicions++;
    else if (event === 'probation.restart') this.counters.probationsRestarted++;
    else if (event === 'probation.passed') this.counters.probationsPassed++;
    this.supervise(event, detail);
  }

  // ---- the endpoint ----------------------------------------------------------------------------

  private open(c: Connection): void {
    c.state = 'opening';
    this.connectionEvent(c.index, 'opening', '');
    this.deps.endpoint.open(c.index);
  }

  private onOpened(conn: number): void {
    const c = this.conns.at(conn);
    if (!c || c.state !== 'opening') {
      // Established after we stopped wanting it (the link went down meanwhile): not ours to use.
      if (c && c.state === 'closed') this.deps.endpoint.close(conn);
      return;
    }
    c.state = 'hello';
    c.peerHello = null;
    if (!this.inline) c.decoder.reset();
    this.counters.connectionsOpened++;
    this.connectionEvent(conn, 'open', '');
    this.sayHello(c);
  }

  private onClosed(conn: number, reason: string): void {
    const c = this.conns.at(conn);
    if (!c || c.state === 'closed') return;
    const wasReady = c.state === 'ready';
    this.counters.connectionsLost++;
    this.dropConnection(c, reason);
    this.target.connectionsReady(this.conns.ready());
    if (wasReady) this.source?.connectionLost(conn);
    this.chart?.send({ type: 'connection.lost', conn, reason });
  }

  private dropConnection(c: Connection, reason: string): void {
    c.state = 'closed';
    c.peerHello = null;
    this.helloAsked.delete(c.index);
    this.cancelHello(c);
    // On an inline link the line still carries heartbeats: its decoder keeps going.
    if (!this.inline) c.decoder.reset();
    this.connectionEvent(c.index, 'closed', reason);
  }

  private onBytes(conn: number, chunk: Uint8Array): void {
    const c = this.onTraffic(conn);
    if (c !== null) c.decoder.push(chunk);
  }

  /** Anything arriving on a connection is heard: the peer is alive (docs/link-supervision.md). */
  private onTraffic(conn: number): Connection | null {
    const c = this.conns.at(conn);
    if (!c || (c.state === 'closed' && !this.inline)) return null;
    const now = this.deps.clock.now();
    c.lastHeardMs = now;
    if (c.state === 'ready' || this.inline) this.lastHeardMs = now;
    return c;
  }

  private onDatagram(bytes: Uint8Array): void {
    let f: Frame;
    try {
      f = decodeFrame(bytes, { payloadBytesMax: 0 });
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      this.counters.frameErrors++;
      this.frameErrorEvent(error);
      return;
    }
    if (f.type === FrameType.Heartbeat) this.onHeartbeat(f);
    else this.counters.unexpected++; // only heartbeats travel as datagrams
  }

  private onWritable(conn: number): void {
    while (this.pending.length > 0) {
      const bytes = this.pending[0]!;
      if (!this.deps.endpoint.send(conn, bytes)) return;
      this.pending.shift();
      if (this.deps.telemetry.enabled) this.emitSent(bytes, false, conn);
    }
    this.source?.writable();
  }

  // ---- frames ------------------------------------------------------------------------------

  private onFrame(conn: number, f: Frame): void {
    const c = this.conns.at(conn)!;
    this.counters.framesIn++;
    const bytes = encodedLength(f);
    this.counters.bytesIn += bytes;
    if (f.type === FrameType.Heartbeat) return this.onHeartbeat(f);
    const t = this.deps.telemetry;
    if (t.enabled) {
      t.emit({
        kind: 'frame.received', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, type: frameTypeName(f.type), seq: f.seq, lun: f.lun, bytes,
        conn, crc: c.decoder.lastFrameCrc,
      });
    }
    if (f.type === FrameType.Hello) return this.onHello(c, f);
    if (c.state !== 'ready') {
      this.counters.staleFrames++; // before the peer's HELLO on this connection: an older conversation
      return;
    }
    if (isStreamFrame(f)) this.target.onStreamFrame(f, bytes, conn);
    else if (f.type === FrameType.Batch) this.onBatch(f, conn);
    else if (isResyncFrame(f)) this.hooks.resyncFrame(f);
    else if (this.source && this.up) this.source.onResponse(f as ResponseFrame);
    else this.counters.unexpected++; // a response with no stream of ours to answer, or while down
  }

  /**
   * A BATCH: each entry goes to the target side exactly as if it had come as a frame of its own
   * (counted in commit-log bytes as that frame would be), in order; the target puts them in
   * sequence, holds early ones and NAKs gaps entry by entry (docs/implied-locks.md).
   */
  private onBatch(f: BatchFrame, conn: number): void {
    if (f.tokensBack !== undefined) this.target.onTokensBack(f.tokensBack);
    for (const e of f.entries) this.target.onStreamFrame(e, encodedLength(e), conn);
  }

  /**
   * A frame failed its checks. If its header was intact and says it was a response, it is lost
   * (a later ACK or a timeout covers it); anything else may have been part of the peer's stream,
   * so the target side asks for it again. A frame of another protocol version means the peer runs
   * other firmware: the link is refused, saying so.
   */
  private onFrameError(conn: number, e: FrameError): void {
    this.counters.frameErrors++;
    this.frameErrorEvent(e);
    // A frame this link never takes (another version, an unknown type, more payload than it
    // accepts) comes from a broken or hostile peer, and its declared length (up to 4 GiB) is no
    // length to skip: the decoder would swallow everything behind it, heartbeats on an inline
    // link included, while the bytes still arriving kept the link looking alive. Scan on instead.
    if (e.code === 'ML_ERR_FRAME_VERSION' || e.code === 'ML_ERR_FRAME_TYPE' || e.code === 'ML_ERR_FRAME_TOO_LARGE') this.conns.at(conn)!.decoder.reset();
    if (e.code === 'ML_ERR_FRAME_VERSION') {
      this.counters.versionMismatches++;
      this.chart?.send({ type: 'peer.incompatible', reason: e.message });
      return;
    }
    const c = this.conns.at(conn)!;
    const type = e.type;
    // A resync frame is asked for again by whoever waits for it (its request's retry): it is no stream entry to NAK.
    const response = type === FrameType.Ack || type === FrameType.Nak || type === FrameType.LockGranted || type === FrameType.LockRejected
      || (type !== undefined && isResyncFrameType(type));
    if (c.state === 'ready' && !response && type !== FrameType.Hello && type !== FrameType.Heartbeat) this.target.onCorrupt(conn, e.seq);
  }

  private onHeartbeat(f: HeartbeatFrame): void {
    if (!this.observeSession(f.sessionId)) {
      this.counters.heartbeatsStale++;
      return;
    }
    const now = this.deps.clock.now();
    this.counters.heartbeatsReceived++;
    const gapMs = this.lastHeartbeatMs < 0 ? 0 : now - this.lastHeartbeatMs;
    this.lastHeartbeatMs = now;
    this.lastHeardMs = now;
    const t = this.deps.telemetry;
    if (t.enabled) {
      t.emit({ kind: 'heartbeat.received', t: now, node: this.deps.node, peer: this.deps.peer, session: f.sessionId, counter: f.seq, confirmedSeq: f.confirmedSeq, gapMs });
    }
    if ((f.flags & FrameFlag.Probe) !== 0) this.sendHeartbeat({ reschedule: false });
    this.heartbeatStreams(f);
    this.chart?.send({ type: 'heartbeat.heard' });
  }

  /**
   * What a heartbeat says about the streams (docs/tag-tables.md, "Tokens"). About ours: how far the
   * target confirmed it (as good as an ACK) and its token watermark, if it names this stream (our
   * session, its session as our stream's target, and with `tags` our stream's number). About the
   * peer's stream to us: the tokens it has back, if it names the stream we hold.
   */
  private heartbeatStreams(f: HeartbeatFrame): void {
    if (f.peerSession !== this.cfg.session) return;
    const tags = f.tags;
    const source = this.source;
    if (this.up && source && source.targetSession === f.sessionId && (tags === undefined || tags.peerStream === source.stream)) {
      source.onPeerConfirmed(f.confirmedSeq);
      if (tags !== undefined) source.onPeerTokens(tags.tokens);
    }
    if (tags !== undefined && this.target.sourceSession === f.sessionId && this.target.stream === tags.stream) this.target.onTokensBack(tags.tokensBack);
  }

  private onHello(c: Connection, f: HelloFrame): void {
    this.counters.hellosReceived++;
    if (c.state !== 'hello' && c.state !== 'ready') {
      this.counters.staleFrames++;
      return;
    }
    const missing = f.requiredFeatures & ~FEATURES_IMPLEMENTED;
    if (missing !== 0) {
      this.counters.incompatible++;
      this.chart?.send({ type: 'peer.incompatible', reason: `the peer requires features this firmware lacks: ${featureNames(missing >>> 0).join(', ')}` });
      return;
    }
    if (!this.observeSession(f.sessionId)) return; // a stale HELLO, or the restart just took every connection down
    if ((f.flags & FrameFlag.PeerRestarted) !== 0) this.hooks.weRestarted();
    const first = c.peerHello === null;
    c.peerHello = f;
    this.peerFeatures = f.features;
    this.helloHeard = true;
    this.target.setTags(this.tagsOffered);
    this.cancelHello(c);
    this.timeHandshake(c.index, f);
    if ((f.flags & FrameFlag.Retransmit) !== 0) this.sayHello(c);
    if (!first || c.state === 'ready') return;
    c.state = 'ready';
    this.target.beginStream(f.sessionId, f.stream ?? 0);
    this.target.connectionsReady(this.conns.ready());
    this.chart?.send({ type: 'connection.ready', conn: c.index });
    if (this.up) this.source?.writable();
  }

  /**
   * Whether a frame from `session` is from the peer as we know it now. A first session is adopted;
   * a new one means the peer restarted (the supervisor takes the link down and starts new
   * streams); one already replaced is stale.
   */
  private observeSession(session: number): boolean {
    const verdict = this.sessions.observe(session);
    if (verdict === 'stale') return false;
    if (verdict === 'first') this.target.beginStream(session);
    if (verdict === 'restarted') {
      this.counters.peerRestarts++;
      this.supervise('peer.restarted', `session ${session} replaces the one known`);
      this.chart?.send({ type: 'peer.restarted' });
      return false;
    }
    return true;
  }

  // ---- HELLO and heartbeats ----------------------------------------------------------------

  /**
   * HELLO on one connection. It carries the Retransmit flag while we have not heard the peer's
   * HELLO there, which asks the peer to answer with its own; answers go without it, so the
   * exchange always ends. It is repeated every helloRetryMs until the peer's arrives.
   */
  private sayHello(c: Connection): void {
    const window = this.target.window;
    const policy = this.cfg.policy === 'retransmit' ? LockRejectPolicy.Retransmit : LockRejectPolicy.HaltResume;
    const peerSession = this.sessions.current;
    let flags = c.peerHello ? 0 : FrameFlag.Retransmit;
    if (this.sessions.restarted) flags |= FrameFlag.PeerRestarted;
    // Our confirmed number is about the peer's stream only if our target holds that session's stream.
    const confirmed = peerSession !== 0 && this.target.sourceSession === peerSession ? this.target.confirmedSeq : 0;
    this.counters.hellosSent++;
    const bytes = encodeFrame({
      type: FrameType.Hello, lun: 0, seq: confirmed, flags, controllerId: this.cfg.controllerId, sessionId: this.cfg.session,
      windowBytes: window.bytes, windowEntries: window.entries, policy, locksWindow: window.locks,
      features: this.features, requiredFeatures: 0, connection: c.index, connections: this.conns.size, peerSession,
      // The largest BATCH our decoder takes (feature `batch`): its payload bound, as for WRITE data.
      ...((this.features & FEATURE_BITS.batch) !== 0 ? { batchBytesMax: this.cfg.payloadBytesMax } : {}),
      // Feature `tags`: our stream's number, and the number of the peer's stream `seq` is about.
      ...((this.features & FEATURE_BITS.tags) !== 0 ? { stream: this.source?.stream ?? 0, peerStream: confirmed > 0 ? this.target.stream : 0 } : {}),
    });
    const sent = this.deps.endpoint.send(c.index, bytes);
    if (sent && this.deps.telemetry.enabled) this.emitSent(bytes, false, c.index);
    if (sent && (flags & FrameFlag.Retransmit) !== 0) {
      const asked = this.helloAsked.get(c.index);
      this.helloAsked.set(c.index, { atMs: this.deps.clock.now(), sends: (asked?.sends ?? 0) + 1 });
    }
    if (!c.peerHello && c.helloTimer === null) {
      c.helloTimer = this.deps.clock.setTimeout(() => {
        c.helloTimer = null;
        if (!c.peerHello && c.state === 'hello') this.sayHello(c);
      }, this.cfg.helloRetryMs);
    }
  }

  /**
   * A HELLO without Retransmit answers one we sent with it: on a connection just opened, the link
   * is idle, so the time between is the path's round trip (as TCP times its handshake). The
   * source's batching sizes its hold from it (docs/implied-locks.md).
   */
  private timeHandshake(conn: number, f: HelloFrame): void {
    const asked = this.helloAsked.get(conn);
    if (asked === undefined || (f.flags & FrameFlag.Retransmit) !== 0) return;
    this.helloAsked.delete(conn);
    if (asked.sends !== 1) return;
    this.pathRttMs = Math.min(this.pathRttMs, this.deps.clock.now() - asked.atMs);
    // The link may be up already: the first HELLO heard (the peer's own) readies a connection.
    this.source?.pathRttMeasured(this.pathRttMs);
  }

  private cancelHello(c: Connection): void {
    if (c.helloTimer !== null) this.deps.clock.clearTimeout(c.helloTimer);
    c.helloTimer = null;
  }

  /** Send a heartbeat now and (unless answering a probe) schedule the next one. */
  private sendHeartbeat(opts: { reschedule: boolean } = { reschedule: true }): void {
    const peerSession = this.sessions.current;
    const ours = peerSession !== 0 && this.target.sourceSession === peerSession;
    const confirmed = ours ? this.target.confirmedSeq : 0;
    const bytes = encodeFrame({
      type: FrameType.Heartbeat, lun: 0, seq: ++this.heartbeatCounter, flags: this.probing ? FrameFlag.Probe : 0,
      controllerId: this.cfg.controllerId, sessionId: this.cfg.session, confirmedSeq: confirmed, peerSession,
      ...(this.tagsOffered ? { tags: this.heartbeatTags(peerSession, ours ? Math.min(this.target.tokensDurable, confirmed) : 0) } : {}),
    });
    this.counters.heartbeatsSent++;
    this.counters.heartbeatBytesSent += bytes.length;
    const t = this.deps.telemetry;
    if (t.enabled) {
      t.emit({ kind: 'heartbeat.sent', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, session: this.cfg.session, counter: this.heartbeatCounter, confirmedSeq: confirmed });
    }
    this.deps.endpoint.sendDatagram(bytes);
    if (!opts.reschedule) return;
    if (this.heartbeatTimer !== null) this.deps.clock.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = this.deps.clock.setTimeout(() => {
      this.heartbeatTimer = null;
      this.sendHeartbeat();
    }, this.cfg.heartbeatMs);
  }

  /** A heartbeat's `tags` fields: our token watermark for the peer's stream, and what we have back of ours. */
  private heartbeatTags(peerSession: number, tokens: number): HeartbeatTags {
    const source = this.source;
    const back = source !== null && peerSession !== 0 && source.targetSession === peerSession ? source.tokensBack : 0;
    return { tokens, tokensBack: back, stream: source?.stream ?? 0, peerStream: this.target.stream };
  }

  // ---- telemetry ---------------------------------------------------------------------------

  private supervise(event: LinkSupervisionEvent, detail: string): void {
    const t = this.deps.telemetry;
    if (!t.enabled) return;
    t.emit({ kind: 'link.supervision', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, event, lastHeardMs: this.lastHeardMs, peerSession: this.sessions.current, detail });
  }

  private connectionEvent(conn: number, state: 'opening' | 'open' | 'closed', reason: string): void {
    const t = this.deps.telemetry;
    if (t.enabled) t.emit({ kind: 'link.connection', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, conn, state, reason });
  }

  private frameErrorEvent(e: FrameError): void {
    const t = this.deps.telemetry;
    if (t.enabled) t.emit({ kind: 'frame.error', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, code: e.code, message: e.message });
  }

  /**
   * `frame.sent` for every frame either side of this controller puts on a data connection, at the
   * moment the link takes it (a response queued while the link is full counts when it leaves the
   * queue; one dropped from the queue was never sent). The fields come from the encoded header,
   * read only when someone listens; the CRC is the frame's last four bytes.
   */
  private emitSent(bytes: Uint8Array, retransmit: boolean, conn: number): void {
    this.deps.telemetry.emit({
      kind: 'frame.sent', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, type: frameTypeName(bytes[OFF_TYPE]!),
      seq: readU64(bytes, OFF_SEQ), lun: readU16(bytes, OFF_LUN), bytes: bytes.length, retransmit, conn, crc: readU32(bytes, bytes.length - 4),
    });
  }
}
