import { assert, MirrorlabError } from '../errors.ts';
import { SequencedLog } from '../logs/sequenced-log.ts';
import type { RollbackSpill } from '../logs/rollback-spill.ts';
import { sourceChannelMachine, type SourceChannelControl } from '../machines/source-channel.machine.ts';
import { startChart, type ChartHandle } from '../machines/start-chart.ts';
import { encodeFrame } from '../protocol/encode.ts';
import {
  FEATURE_BITS, FRAME_OVERHEAD_BYTES, FrameType, NakReason, RejectAction, RejectReason, hasImpliedLock,
  type LockGrantedFrame, type LockRejectedFrame, type ResponseFrame, type StreamFrame,
} from '../protocol/frame.ts';
import type { Clock } from '../ports/clock.ts';
import type { Telemetry } from '../ports/telemetry.ts';
import type { StreamEntryKind } from '../telemetry/events.ts';
import { LockSessionManager, type ReadLockRequest } from './lock-session-manager.ts';
import type { RetransmitTimerConfig } from './retransmit-timer.ts';
import type { RollbackEntry } from './rollback-entry.ts';
import { Transmitter } from './transmitter.ts';
import type { ChannelWrite } from './types.ts';
import { SourceTokens, type SourceTokensDeps } from '../tags/source-tokens.ts';

const OH = FRAME_OVERHEAD_BYTES;
/** Refused locks remembered for their grant; more than the lock sessions a peer can grant at once never matter. */
const REFUSED_LOCKS_MAX = 65_536;

export interface SourceChannelConfig {
  rollbackLogEntriesMax: number;
  rollbackLogBytesMax: number;
  /** Most bytes sent and not yet confirmed; the peer's advertised window can only lower it. */
  sendWindowBytesMax: number;
  lockSessionsMax: number;
  lockSessionIdleMs: number;
  ackTimeout: RetransmitTimerConfig;
  haltProbeMs: number;
  lockRetryDelayMs: number;
  /** A LOCK whose data waits for its grant is asked about again after this long. */
  grantProbeMs: number;
  /** Size of a lock region of `lun`, in its sectors. */
  regionSectors(lun: number): number;
  /**
   * How `lun` is mirrored on the wire (docs/implied-locks.md): its writes carry their own locks
   * (`implied`, speculative and async only) and its entries travel in BATCHes when several are
   * ready, each only once the peer's HELLO offers the feature. Absent: explicit locks, no batches.
   */
  wire?(lun: number): { implied: boolean; batch: boolean };
  /** Largest BATCH payload we send (our own payloadBytesMax; the peer's HELLO may lower it). */
  batchBytesMax?: number;
  /**
   * The source-role tag tables of the LUNs this channel mirrors (docs/tag-tables.md, "Tokens"):
   * tokens from a peer whose HELLO offers `tags` delete their entries. Absent: no tokens.
   */
  tokens?: SourceTokensDeps;
  /** Where async writes go when the rollback log is full, instead of making their hosts wait (docs/tag-tables.md, "Rollback-log spill"). */
  spill?: RollbackSpill;
}

export interface ChannelDeps {
  node: string;
  peer: string;
  clock: Clock;
  telemetry: Telemetry;
  /** This controller's session id (drawn at its start). */
  session: number;
  /**
   * Put bytes on the link: the data connection that took them, or -1 if none has room now (then
   * `writable()` follows). `retransmit`: these bytes went out before (for `frame.sent`).
   */
  send(bytes: Uint8Array, retransmit: boolean): number;
  /** A firmware bug surfaced (a chart action threw). */
  onError(error: unknown): void;
}

/** What the peer's HELLO tells a source channel. */
export interface PeerHello {
  /** The target's session: the stream this channel sends belongs to it. */
  sessionId: number;
  /** Highest sequence number of our stream the target has confirmed, valid if `peerSession` is ours. */
  confirmedSeq: number;
  peerSession: number;
  windowBytes: number;
  windowEntries: number;
  /** Most locks our stream may hold at the peer at once. */
  locksWindow: number;
  /** The optional features both sides implement (FEATURE_BITS), and the largest BATCH payload the peer takes (0: none). */
  features: number;
  batchBytesMax: number;
  /** The path's idle round trip, from a HELLO handshake (Infinity: not measured). */
  pathRttMs: number;
  /** Feature `tags`: our stream's number that `confirmedSeq` refers to (undefined: a peer without it). */
  peerStream?: number;
}

/** The target refused a mirrored write (range, lock or media); the host sees this error. */
export class MirrorRefusedError extends MirrorlabError {
  constructor(peer: string, reason: NakReason, seq: number) {
    super('ML_ERR_MIRROR_REFUSED', `${peer} refused stream entry ${seq}: ${NakReason[reason] ?? reason}`);
  }
}

/** Entries a LOCK_GRANTED or LOCK_REJECTED may be about: a LOCK, or a WRITE that carries its own lock. */
function takesLock(e: RollbackEntry): boolean {
  return e.kind === 'lock' || e.implied;
}

export function newSourceCounters() {
  return {
    framesSent: 0, bytesSent: 0, locksSent: 0, writesSent: 0, unlocksSent: 0,
    locksGranted: 0, locksRejected: 0, tableFullRejections: 0, halts: 0, resumes: 0, rollbacks: 0, entriesRetransmitted: 0,
    lockProbes: 0, acksReceived: 0, acksIgnored: 0, naksReceived: 0, naksIgnored: 0, grantsIgnored: 0, ackTimeouts: 0,
    writesConfirmed: 0, writesRefused: 0, streamsStarted: 0, entriesRenumbered: 0, heartbeatConfirmations: 0,
    impliedLocks: 0, batchesSent: 0, entriesBatched: 0, suspensions: 0, writesSuspended: 0,
  };
}
export type SourceCounters = ReturnType<typeof newSourceCounters>;

/**
 * One controller's mirror stream to one peer: the data path of docs/design.md 1.1 on the source side.
 *
 * Every LOCK, WRITE and UNLOCK is appended to the rollback log (claiming room first, so a full log
 * makes the host wait) and sent as far as the transmitter may; cumulative ACKs remove entries and
 * complete host writes. Three parts do the work: the lock sessions (`LockSessionManager`: which
 * LOCK a write goes behind), the transmitter (`Transmitter`: cursor, windows, RTO, go-back-N) and
 * this class (admission, confirmations, responses). Everything that changes what may be sent is
 * decided by the source channel chart (`source-channel.machine.ts`), which this class tells about
 * edges only.
 *
 * A stream belongs to one target session: when the target restarts, `beginNewStream` numbers
 * everything unconfirmed afresh from 1, behind new LOCKs (the target forgot every lock).
 */
export class SourceChannel implements SourceChannelControl {
  readonly counters = newSourceCounters();
  readonly haltProbeMs: number;
  readonly lockRetryDelayMs: number;
  readonly grantProbeMs: number;
  private readonly log: SequencedLog<RollbackEntry>;
  private readonly tx: Transmitter;
  private readonly locks: LockSessionManager;
  private chart: ChartHandle<typeof sourceChannelMachine> | null = null;
  /** The target session this stream goes to (0 until the first HELLO). */
  private streamTarget = 0;
  /** Edges the chart hears about: nothing outstanding; a LOCK awaiting its grant. */
  private quiet = true;
  private awaiting = false;
  /** Tell the chart once confirmations reach this sequence number (0: nobody asked). */
  private notifyAt = 0;
  /** Locks the target refused and has not granted since (whose grant the chart must hear). */
  private readonly refusedLocks = new Set<number>();
  /** The optional features this stream may use: what both sides implement, as the target's HELLO said (0 until then). */
  private features = 0;
  /** Something of this stream went out: from then on its entries keep their numbers and form. */
  private streamSent = false;
  /**
   * The number of this stream within our session (docs/tag-tables.md, "Suspension"): 1 for the
   * first stream to a target session; a suspension abandons the stream and the next one gets the
   * next number, which HELLO tells the target (feature `tags`).
   */
  private streamNumber = 1;
  /** The mirror is suspended: writes are acknowledged locally and go into no stream. */
  private suspendedNow = false;
  /** Tokens with this stream's target (null: no tables to keep). */
  private readonly tokens: SourceTokens | null;

  constructor(private readonly cfg: SourceChannelConfig, private readonly deps: ChannelDeps) {
    this.log = new SequencedLog(`rollback log ${deps.node}->${deps.peer}`, { entriesMax: cfg.rollbackLogEntriesMax, bytesMax: cfg.rollbackLogBytesMax });
    this.tokens = cfg.tokens ? new SourceTokens(cfg.tokens) : null;
    this.tx = new Transmitter(cfg, this.log, {
      clock: deps.clock,
      counters: this.counters,
      send: (bytes, retransmit) => this.sendEntry(bytes, retransmit),
      timedOut: () => this.chart?.send({ type: 'ack.timeout' }),
      tokensBack: () => this.tokensBack,
    });
    this.locks = new LockSessionManager(cfg, {
      clock: deps.clock,
      log: this.log,
      implied: (w) => this.wantsImplied(w),
      append: (kind, write, frame, count, lba) => this.append(kind, write, frame, count, lba),
      changed: () => this.changed(),
    });
    this.haltProbeMs = cfg.haltProbeMs;
    this.lockRetryDelayMs = cfg.lockRetryDelayMs;
    this.grantProbeMs = cfg.grantProbeMs;
    cfg.spill?.attach({ admit: (w, granted) => this.submitToLog(w, granted), lost: (w, error) => w.confirmed(error) });
  }

  start(): void {
    const { clock, telemetry, node, peer, onError } = this.deps;
    this.chart = startChart(sourceChannelMachine, { ctl: this }, { clock, telemetry, node, machine: `source:${node}->${peer}`, onError });
  }

  stop(): void {
    this.cfg.spill?.stop();
    this.chart?.stop();
    this.tx.stop();
    this.locks.stop();
  }

  /** The chart's state, e.g. `speculativeSent` or `rollback.backoff`. */
  get state(): string {
    return this.chart?.state() ?? 'stopped';
  }

  get chartEvents(): number {
    return this.chart?.events() ?? 0;
  }

  get rollbackLog(): { entries: number; bytes: number; waiting: number } {
    return { entries: this.log.count, bytes: this.log.bytes, waiting: this.log.waiting };
  }

  get confirmedSeq(): number {
    return this.log.firstSeq - 1;
  }

  get openSessions(): number {
    return this.locks.open;
  }

  /** The target session this stream goes to (0 until the first HELLO). */
  get targetSession(): number {
    return this.streamTarget;
  }

  /** This stream's number within our session (HELLO's `stream`, feature `tags`). */
  get stream(): number {
    return this.streamNumber;
  }

  /** Whether the peer's HELLO offered tokens (feature `tags`) and we keep tables. */
  get tagsOn(): boolean {
    return this.tokens !== null && (this.features & FEATURE_BITS.tags) !== 0;
  }

  /** Tokens of this stream that are back with us (0: none), for the target to delete its entries through. */
  get tokensBack(): number {
    return this.tagsOn ? this.tokens!.tokensBack : 0;
  }

  /** Writes confirmed whose token or local flush has not come yet. */
  get tokensAwaited(): number {
    return this.tokens?.waiting ?? 0;
  }

  get isSuspended(): boolean {
    return this.suspendedNow;
  }

  // ---- host side -------------------------------------------------------------------------

  /**
   * Mirror one write. Claims room for its LOCK, data and UNLOCK; waits while the log is full,
   * unless a spill takes it (async), and behind whatever the spill holds (the stream keeps the
   * hosts' order). While the mirror is suspended it goes into no stream: it is acknowledged
   * locally at once.
   */
  submit(w: ChannelWrite): void {
    assert(w.count >= 1 && w.data.length > 0 && w.data.length % w.count === 0, 'a mirrored write covers whole sectors');
    if (this.suspendedNow) return this.suspendWrite(w);
    const spill = this.cfg.spill;
    if (spill?.active) return spill.push(w);
    const bytes = w.data.length + 3 * OH;
    // Usually there is room at once: then no callback is made for the wait (this runs per write).
    if (this.log.tryReserve(3, bytes)) this.admit(w);
    else if (spill !== undefined && w.mode === 'async') spill.push(w);
    else this.log.reserve(3, bytes, () => this.admit(w));
  }

  /** A write coming back from the spill takes its turn in the log (FIFO behind whatever waits there). */
  private submitToLog(w: ChannelWrite, granted: () => void): void {
    const bytes = w.data.length + 3 * OH;
    if (this.log.tryReserve(3, bytes)) {
      this.admit(w);
      granted();
    } else {
      this.log.reserve(3, bytes, () => {
        this.admit(w);
        granted();
      });
    }
  }

  private admit(w: ChannelWrite): void {
    if (this.suspendedNow) {
      // It waited for room, and the mirror was suspended meanwhile: it goes into no stream.
      this.log.unreserve(3, w.data.length + 3 * OH);
      this.suspendWrite(w);
      return;
    }
    w.admitted();
    this.locks.place(w);
  }

  private suspendWrite(w: ChannelWrite): void {
    this.counters.writesSuspended++;
    w.suspended();
  }

  /**
   * The link stayed down past the suspension limit (docs/tag-tables.md, "Suspension"): the stream
   * is abandoned. Every write in it or waiting for room is acknowledged locally (its sectors stay
   * in the source's tag table), read locks not yet granted wait for the next stream, and the next
   * stream gets a new number, which the HELLO that brings the link back tells the target.
   */
  suspend(): void {
    if (this.suspendedNow) return;
    this.suspendedNow = true;
    this.counters.suspensions++;
    const { placements } = this.unplan();
    const spilled = this.cfg.spill?.drop() ?? [];
    this.tokens?.newStream();
    this.streamNumber++;
    this.adoptTarget(this.streamTarget);
    this.chart?.send({ type: 'stream.restart' });
    for (const w of [...placements.writes, ...spilled]) this.suspendWrite(w);
    this.replan({ writes: [], readLocks: placements.readLocks });
    this.changed();
  }

  /** The link is back after a suspension: writes flow into the (new) stream again. */
  resume(): void {
    this.suspendedNow = false;
  }

  /** A local flush finished: confirmed writes waiting for it may give up their entries. */
  localDurable(): void {
    this.tokens?.localDurable();
  }

  /**
   * Take a read lock on the peer's copy of a region. Not speculative: the LOCK is sent only once
   * every earlier entry is confirmed, and `granted` is called once the target granted it. Writes
   * to the region wait until the returned release function is called.
   */
  requestReadLock(lun: number, lba: number, count: number, granted: (release: () => void) => void): void {
    this.log.reserve(2, 2 * OH, () => this.locks.placeReadLock(lun, lba, count, granted));
  }

  // ---- link side -------------------------------------------------------------------------

  /** The link came up with `hello` from the target. */
  linkUp(hello: PeerHello): void {
    if (this.streamTarget === 0) this.adoptTarget(hello.sessionId);
    else if (this.streamTarget !== hello.sessionId) this.beginNewStream(hello.sessionId, hello);
    this.useFeatures(hello);
    this.replanUnsent();
    this.tx.setPeerWindow(hello.windowBytes, hello.windowEntries, OH);
    this.locks.setLocksWindow(hello.locksWindow);
    // The confirmed number is about our stream only if the target names our session (and, with
    // `tags`, this stream's number: a suspension began a new one).
    const ours = hello.peerSession === this.deps.session && (hello.peerStream === undefined || hello.peerStream === this.streamNumber);
    if (ours) this.confirmThrough(Math.min(hello.confirmedSeq, this.tx.next - 1));
    this.chart?.send({ type: 'link.up' });
    this.changed();
  }

  linkDown(): void {
    this.chart?.send({ type: 'link.down' });
  }

  /** A HELLO handshake measured the path's idle round trip (what batching sizes its hold from). */
  pathRttMeasured(ms: number): void {
    this.tx.setPathRtt(ms);
  }

  /** A data connection was lost: whatever was in flight on it is lost, so re-send from the first such entry. */
  connectionLost(conn: number): void {
    const from = this.tx.firstInFlightOn(conn);
    if (from > 0) this.chart?.send({ type: 'connection.lost', fromSeq: from });
  }

  /** The link has room again. */
  writable(): void {
    this.tx.pump();
  }

  onResponse(f: ResponseFrame): void {
    switch (f.type) {
      case FrameType.Ack:
        this.onAck(f.seq, f.tokens ?? 0);
        return;
      case FrameType.Nak:
        this.onNak(f.seq, f.reason);
        return;
      case FrameType.LockGranted:
        this.onLockGranted(f);
        return;
      case FrameType.LockRejected:
        this.onLockRejected(f);
        return;
    }
  }

  /** A heartbeat from the target said how far it has confirmed our stream: as good as an ACK. */
  onPeerConfirmed(seq: number): void {
    if (seq < this.log.firstSeq || seq >= this.tx.next) return;
    this.counters.heartbeatConfirmations++;
    if (this.confirmThrough(seq) > 0) this.changed();
  }

  /**
   * The target's token watermark for this stream (on an ACK or a heartbeat, docs/tag-tables.md,
   * "Tokens"): writes through it are durable there. Never beyond what it confirmed.
   */
  onPeerTokens(seq: number): void {
    if (!this.tagsOn || seq === 0) return;
    this.tokens!.tokens(Math.min(seq, this.confirmedSeq));
  }

  /**
   * The target restarted (a new session): it forgot its commit log and every lock, so the old
   * stream cannot go on. Everything unconfirmed is numbered afresh from 1 in a new stream, in the
   * order it had: the writes go behind new LOCKs, the old LOCKs and UNLOCKs are dropped.
   */
  beginNewStream(targetSession: number, hello?: PeerHello): void {
    // What the new target offers is known from its HELLO only: until then, explicit locks.
    this.useFeatures(hello ?? null);
    const { placements, renumbered } = this.unplan();
    this.tokens?.newStream();
    this.streamNumber = 1;
    this.counters.streamsStarted++;
    this.counters.entriesRenumbered += renumbered;
    this.adoptTarget(targetSession);
    this.chart?.send({ type: 'stream.restart' });
    this.replan(placements);
    this.changed();
  }

  /**
   * Empty the stream (log, sessions, transmitter) and return, in stream order, what must go into
   * it again: every write not yet confirmed (with its reservation gone) and every read lock not yet
   * granted. The old LOCKs and UNLOCKs are dropped: the writes get new ones as they are placed.
   */
  private unplan(): { placements: { writes: ChannelWrite[]; readLocks: ReadLockRequest[] }; renumbered: number } {
    const dropped = this.log.restart(1);
    const fromLog = dropped.flatMap((e) => (e.kind === 'write' ? [e.write!] : []));
    const { writes, readLocks } = this.locks.restart();
    this.tx.restart();
    this.notifyAt = 0;
    this.refusedLocks.clear();
    this.streamSent = false;
    return { placements: { writes: [...fromLog, ...writes], readLocks }, renumbered: dropped.length };
  }

  /**
   * Place again what {@link unplan} took out, in stream order, ahead of host writes waiting for
   * room and within the log's maxima (an entry that does not fit waits its turn).
   */
  private replan(p: { writes: ChannelWrite[]; readLocks: ReadLockRequest[] }): void {
    this.log.requeue([
      ...p.writes.map((w) => ({ entries: 3, bytes: w.data.length + 3 * OH, grant: () => this.locks.place(w) })),
      ...p.readLocks.map((r) => ({ entries: 2, bytes: 2 * OH, grant: () => this.locks.placeReadLock(r.lun, r.lba, r.count, r.granted) })),
    ]);
  }

  /**
   * The first HELLO of a stream offered implied locks, but what the hosts wrote before it is in the
   * log with explicit LOCKs and UNLOCKs (a peer's features are unknown until its HELLO). If nothing
   * of the stream has gone out yet, the target has seen none of it: number it afresh, in the form
   * the stream now allows (an async host may have a whole backlog queued by then). Once anything
   * was sent, never: the target may hold it under its old numbers.
   */
  private replanUnsent(): void {
    if (this.streamSent || (this.features & FEATURE_BITS.impliedLocks) === 0 || this.log.count === 0) return;
    // Explicit sessions open: there are LOCKs in the log that implied locks would spare.
    if (this.log.firstSeq !== 1 || this.locks.open === 0) return;
    // Only if some write there would now carry its own lock (its LUN asks for implied locks).
    let changes = false;
    this.log.forEachFrom(1, (e) => {
      if (e.kind === 'write' && !e.implied && this.wantsImplied(e.write!)) changes = true;
    });
    if (!changes) return;
    const { placements } = this.unplan();
    // The stream begins again, numbered from 1 (stream.start says so to whoever tracks its entries).
    this.adoptTarget(this.streamTarget);
    this.replan(placements);
  }

  /** Whether a write carries its own lock: its LUN asks for it, the peer offered it, and it is not sync (whose data waits for a grant). */
  private wantsImplied(w: ChannelWrite): boolean {
    return w.mode !== 'sync' && (this.features & FEATURE_BITS.impliedLocks) !== 0 && this.cfg.wire?.(w.lun).implied === true;
  }

  /**
   * What this stream may use from now on (docs/implied-locks.md): implied locks for writes
   * appended from here, BATCHes for entries sent from here, each if both sides implement it.
   * Null: the peer is not known yet (a new stream before its HELLO), so neither.
   */
  private useFeatures(hello: PeerHello | null): void {
    this.features = hello?.features ?? 0;
    const batching = (this.features & FEATURE_BITS.batch) !== 0 && hello !== null;
    this.tx.setBatchBytesMax(batching ? Math.min(hello.batchBytesMax, this.cfg.batchBytesMax ?? 0) : 0);
    if (hello !== null) this.tx.setPathRtt(hello.pathRttMs);
  }

  // ---- chart control (SourceChannelControl) --------------------------------------------------

  headSeq(): number {
    return this.log.firstSeq;
  }

  sentThrough(): number {
    return this.tx.next - 1;
  }

  hasSentUnconfirmed(): boolean {
    return this.tx.next > this.log.firstSeq;
  }

  isBusy(): boolean {
    return this.log.count > 0 || this.locks.open > 0 || this.log.waiting > 0;
  }

  awaitsGrant(): boolean {
    return this.locks.awaitingGrant > 0;
  }

  setGate(open: boolean): void {
    this.tx.setGate(open);
  }

  rollBack(seq: number, cause: 'nak' | 'timeout' | 'reconnect' | 'connection' | 'discarded'): void {
    const from = Math.max(seq, this.log.firstSeq);
    if (cause === 'nak' || cause === 'timeout' || cause === 'reconnect') this.tx.lost(from, cause);
    this.tx.rewind(from);
    // A discarded lock is re-sent after the chart's back-off; everything else at once.
    if (cause !== 'discarded') this.tx.pump();
  }

  rewind(seq: number): void {
    this.tx.rewind(seq);
  }

  probe(seq: number): void {
    const entry = this.log.get(seq);
    if (entry && entry.sends > 0) this.tx.transmit(entry);
    else if (!entry) this.notify(); // confirmed meanwhile: let the chart see it
  }

  probeAwaitedGrant(): void {
    for (let s = this.log.firstSeq; s < this.tx.next; s++) {
      const e = this.log.get(s)!;
      if (e.kind !== 'lock') continue;
      const session = this.locks.byLockId(e.lockId);
      if (!session || session.granted || !session.grantWanted) continue;
      this.counters.lockProbes++;
      this.tx.transmit(e);
      return;
    }
  }

  watchConfirmed(seq: number): void {
    this.notifyAt = seq;
    if (seq <= this.confirmedSeq) this.notify();
  }

  count(counter: 'halts' | 'resumes' | 'rollbacks' | 'ackTimeouts' | 'lockProbes'): void {
    this.counters[counter]++;
  }

  // ---- responses ---------------------------------------------------------------------------

  private onAck(seq: number, tokens: number): void {
    this.counters.acksReceived++;
    const newest = this.log.get(seq);
    if (seq >= this.log.nextSeq || (newest !== undefined && newest.sends === 0)) {
      this.counters.acksIgnored++; // confirms something never sent: a confused or hostile peer
      return;
    }
    const removed = this.confirmThrough(seq);
    this.onPeerTokens(tokens);
    if (removed > 0) this.changed();
  }

  private onNak(seq: number, reason: NakReason): void {
    this.counters.naksReceived++;
    const entry = this.log.get(seq);
    if (reason === NakReason.Corrupt || reason === NakReason.Gap || reason === NakReason.Overflow) {
      // Nothing of ours to re-send (confirmed, or never sent), or the NAK predates our last send.
      if (!entry || seq >= this.tx.next || this.deps.clock.now() - entry.sentAt < this.tx.minRttMs) {
        this.counters.naksIgnored++;
        return;
      }
      this.chart?.send({ type: 'target.nak', expected: seq });
      return;
    }
    if (!entry || entry.sends === 0) {
      this.counters.naksIgnored++; // refuses something confirmed already, or never sent
      return;
    }
    if (entry.failed === null) {
      entry.failed = new MirrorRefusedError(this.deps.peer, reason, seq);
      if (entry.kind === 'write') this.counters.writesRefused++;
    }
  }

  /**
   * Honoured only for a LOCK of ours that was sent with that sequence number (or was confirmed
   * since). A grant for a LOCK not sent yet would release held writes, or tell a read-lock holder
   * it holds the region, before the target has granted anything: ignored and counted.
   */
  private onLockGranted(f: LockGrantedFrame): void {
    const session = this.locks.byLockId(f.lockId);
    const entry = this.log.get(f.seq);
    const sent = entry === undefined ? f.seq < this.log.firstSeq : takesLock(entry) && entry.lockId === f.lockId && entry.sends > 0;
    if (!sent || (session !== undefined && session.lockSeq !== f.seq)) {
      this.counters.grantsIgnored++;
      return;
    }
    this.locks.granted(f.lockId);
    // Only the grant of a lock refused before can end an episode; the others would cost a chart
    // event per session for nothing (sync mode grants every lock it sends).
    if (this.refusedLocks.delete(f.lockId)) this.chart?.send({ type: 'target.lock.granted', lockId: f.lockId });
    this.changed();
  }

  private onLockRejected(f: LockRejectedFrame): void {
    const entry = this.log.get(f.seq);
    if (!entry || !takesLock(entry) || entry.lockId !== f.lockId || entry.sends === 0) {
      this.counters.naksIgnored++; // about a lock already confirmed (stale), or one never sent
      return;
    }
    this.counters.locksRejected++;
    if (f.reason === RejectReason.TableFull) this.counters.tableFullRejections++;
    if (this.refusedLocks.size < REFUSED_LOCKS_MAX) this.refusedLocks.add(f.lockId);
    this.chart?.send({ type: 'target.lock.rejected', seq: f.seq, lockId: f.lockId, discarded: f.action === RejectAction.Discarded });
  }

  /**
   * Remove every entry up to `seq`; returns how many left the log.
   *
   * Re-entrancy: confirming a write calls back into the host, which may submit its next write at
   * once, and freeing room wakes writes waiting for the log; both reach the transmitter. So the
   * cursor and the bytes in flight are kept right entry by entry, and the confirmations' callbacks
   * run only after the log is consistent again.
   */
  private confirmThrough(seq: number): number {
    const done: RollbackEntry[] = [];
    const removed = this.log.removeThrough(seq, (e) => {
      this.tx.leaving(e);
      done.push(e);
    });
    if (removed === 0) return 0;
    let sentBytes = 0;
    for (const e of done) if (e.sends > 0) sentBytes += e.bytes;
    this.tx.confirmed(done[done.length - 1]!, sentBytes);
    const t = this.deps.telemetry;
    if (t.enabled) {
      t.emit({ kind: 'rollback.confirm', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, upTo: seq, removed, entries: this.log.count, bytes: this.log.bytes });
    }
    // The hosts' next writes (submitted from these confirmations) go out together, after them: one
    // pump for the lot, so that a BATCH can carry them (docs/implied-locks.md).
    this.tx.defer(true);
    try {
      for (const e of done) this.confirmEntry(e);
    } finally {
      this.tx.defer(false);
    }
    return removed;
  }

  private confirmEntry(e: RollbackEntry): void {
    if (e.kind === 'write') {
      this.counters.writesConfirmed++;
      if (e.implied) this.confirmImpliedLock(e);
      // Applied at the target: its token will follow (a refused write keeps its entry).
      if (e.failed === null && this.tagsOn) this.tokens!.confirmed(e.seq, e.write!);
      e.write!.confirmed(e.failed ?? undefined);
    } else if (e.kind === 'lock') {
      this.counters.locksGranted++;
      this.refusedLocks.delete(e.lockId);
      this.locks.granted(e.lockId);
    } else {
      this.locks.retired(e.lockId);
    }
  }

  /** A confirmed implied-lock WRITE: its lock was granted, used and released at the target. */
  private confirmImpliedLock(e: RollbackEntry): void {
    this.counters.locksGranted++;
    this.refusedLocks.delete(e.lockId);
    this.locks.impliedConfirmed();
  }

  /** After anything changed: wake whoever waits on confirmations, send more, tell the chart about edges. */
  private changed(): void {
    const confirmed = this.confirmedSeq;
    this.locks.confirmedThrough(confirmed);
    if (this.notifyAt !== 0 && this.notifyAt <= confirmed) this.notify();
    this.tx.pump();
    const awaiting = this.locks.awaitingGrant > 0;
    if (awaiting !== this.awaiting) {
      this.awaiting = awaiting;
      this.chart?.send({ type: awaiting ? 'grant.awaited' : 'grant.settled' });
    }
    if (!this.quiet && !this.isBusy()) {
      this.quiet = true;
      this.chart?.send({ type: 'stream.drained' });
    }
  }

  private notify(): void {
    this.notifyAt = 0;
    this.chart?.send({ type: 'stream.confirmed', upTo: this.confirmedSeq });
  }

  private sendEntry(bytes: Uint8Array, retransmit: boolean): number {
    const conn = this.deps.send(bytes, retransmit);
    if (conn >= 0) this.streamSent = true;
    if (conn >= 0 && this.quiet) {
      this.quiet = false;
      this.chart?.send({ type: 'stream.sent' });
    }
    return conn;
  }

  private adoptTarget(session: number): void {
    this.streamTarget = session;
    const t = this.deps.telemetry;
    if (t.enabled) {
      t.emit({
        kind: 'stream.start', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, role: 'source', sourceSession: this.deps.session,
        targetSession: session, firstSeq: this.log.firstSeq, ...(this.streamNumber > 1 ? { stream: this.streamNumber } : {}),
      });
    }
  }

  private append(kind: StreamEntryKind, write: ChannelWrite | null, frame: StreamFrame, count: number, lba: number): void {
    // Tokens back ride on the WRITE (feature `tags`), as a distance the u32 `count` can hold.
    if (frame.type === FrameType.Write && this.tagsOn) {
      const back = this.tokens!.tokensBack;
      if (back > 0 && frame.seq - back <= 0xffff_ffff) frame.tokensBack = back;
    }
    const bytes = encodeFrame(frame);
    const lockId = frame.lockId;
    const implied = hasImpliedLock(frame);
    if (implied) this.counters.impliedLocks++;
    const batch = this.cfg.wire?.(frame.lun).batch === true;
    const entry: RollbackEntry = {
      seq: frame.seq, bytes: bytes.length, kind, frame: bytes, lockId, write, sends: 0, sentAt: -1, conn: -1, failed: null, implied, batch, delivered: 0,
    };
    this.log.append(entry, true);
    const t = this.deps.telemetry;
    if (t.enabled) {
      t.emit({
        kind: 'rollback.append', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, seq: entry.seq, entry: kind,
        lun: frame.lun, lba, count, lockId, tag: write?.tag ?? 0, entries: this.log.count, bytes: this.log.bytes,
      });
    }
  }
}
