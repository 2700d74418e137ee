import { assert, MirrorlabError } from '../errors.ts';
import type { FirmwareMutation } from '../mutations.ts';
import { SequencedLog, type LogEntry } from '../logs/sequenced-log.ts';
import { sourceChannelMachine, type SourceChannelControl, type SourcePhase } from '../machines/source-channel.machine.ts';
import { startChart, type ChartHandle } from '../machines/start-chart.ts';
import { encodeFrame } from '../protocol/encode.ts';
import {
  FRAME_OVERHEAD_BYTES, FrameFlag, FrameType, LockMode, NakReason, RejectAction, RejectReason,
  type LockGrantedFrame, type LockRejectedFrame, type ResponseFrame, type StreamFrame,
} from '../protocol/frame.ts';
import type { Clock } from '../ports/clock.ts';
import type { Telemetry } from '../ports/telemetry.ts';
import type { StreamEntryKind } from '../telemetry/events.ts';
import { LockSessionTable, lockRegion } from './lock-sessions.ts';
import { CongestionWindow } from './congestion-window.ts';
import { RetransmitTimer, type RetransmitTimerConfig } from './retransmit-timer.ts';
import type { ChannelWrite, LockSession } from './types.ts';

const OH = FRAME_OVERHEAD_BYTES;
/** Congestion window: start at 64 KiB, never below 16 KiB, grow in congestion avoidance by about 4 KiB per round trip. */
const CWND_INITIAL_BYTES = 64 * 1024;
const CWND_MIN_BYTES = 16 * 1024;
const CWND_SEGMENT_BYTES = 4096;
const EPSILON_MS = 1e-6;

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
  /** Size of a lock region of `lun`, in its sectors. */
  regionSectors(lun: number): number;
}

export interface ChannelDeps {
  node: string;
  peer: string;
  clock: Clock;
  telemetry: Telemetry;
  /**
   * Put bytes on the link; false if the link's queue is full (then `writable()` follows).
   * `retransmit`: these bytes went out before (the connection reports it in `frame.sent`).
   */
  send(bytes: Uint8Array, retransmit: boolean): boolean;
  /** A firmware bug surfaced (a chart action threw). */
  onError(error: unknown): void;
  /** Deliberate bugs for the checker's tests (empty in real use). */
  mutations: ReadonlySet<FirmwareMutation>;
}

/** What the peer's HELLO tells a source channel. */
export interface PeerHello {
  confirmedSeq: number;
  windowBytes: number;
  windowEntries: number;
  /** Most locks our stream may hold at the peer at once. */
  locksWindow: number;
}

interface RollbackEntry extends LogEntry {
  readonly kind: StreamEntryKind;
  readonly frame: Uint8Array;
  readonly lockId: number;
  readonly write: ChannelWrite | null;
  sends: number;
  sentAt: number;
  failed: MirrorlabError | null;
}

/** The target refused a mirrored write (range, lock or media); the host sees this error. */
export class MirrorRefusedError extends MirrorlabError {
  constructor(peer: string, reason: NakReason, seq: number) {
    super('ML_ERR_MIRROR_REFUSED', `${peer} refused stream entry ${seq}: ${NakReason[reason] ?? reason}`);
  }
}

export function newSourceCounters() {
  return {
    framesSent: 0, bytesSent: 0, locksSent: 0, writesSent: 0, unlocksSent: 0,
    locksGranted: 0, locksRejected: 0, tableFullRejections: 0, halts: 0, resumes: 0, rollbacks: 0, entriesRetransmitted: 0,
    lockProbes: 0, acksReceived: 0, acksIgnored: 0, naksReceived: 0, naksIgnored: 0, grantsIgnored: 0, ackTimeouts: 0,
    writesConfirmed: 0, writesRefused: 0,
  };
}
export type SourceCounters = ReturnType<typeof newSourceCounters>;

/**
 * One controller's mirror stream to one peer: the data path of docs/design.md 1.1 on the source side.
 *
 * Every LOCK, WRITE and UNLOCK is appended to the rollback log (claiming room first, so a full log
 * makes the host wait) and sent as far as the send window allows. Cumulative ACKs remove entries
 * and complete host writes. Everything that changes what may be sent is decided by the source
 * channel chart (`source-channel.machine.ts`), which this class drives with edge events only.
 */
export class SourceChannel implements SourceChannelControl {
  readonly counters = newSourceCounters();
  readonly haltProbeMs: number;
  readonly lockRetryDelayMs: number;
  private readonly log: SequencedLog<RollbackEntry>;
  private readonly sessions = new LockSessionTable();
  private readonly rto: RetransmitTimer;
  private readonly cwnd: CongestionWindow;
  private readonly confirmWaiters: { seq: number; run: () => void }[] = [];
  /** Sessions waiting to open until one of the open ones can end (see `openSession`). */
  private readonly sessionWaiters: (() => void)[] = [];
  /**
   * Most locks our stream may hold at the peer at once, from its HELLO. Until the first HELLO it
   * is 1, the one number every lock table can give: sessions opened before the link comes up are
   * already in the stream when the peer's real window becomes known.
   */
  private locksWindow = 1;
  private chart: ChartHandle<typeof sourceChannelMachine> | null = null;
  private gate = false;
  private cursor = 1;
  private inflightBytes = 0;
  private windowBytes: number;
  private windowEntries: number;
  private haltedLockId = 0;
  private haltedSeq = 0;
  private rollbackPoint = 0;
  private resumePoint = 0;
  private lastPhase: SourcePhase = 'idle';
  private ackTimer: unknown = null;
  private idleTimer: unknown = null;
  /** Timer callbacks, made once: the timers are re-armed about once per write. */
  private readonly ackTimerFired = (): void => this.onAckTimer();
  private readonly idleTimerFired = (): void => this.onIdleTimer();

  constructor(private readonly cfg: SourceChannelConfig, private readonly deps: ChannelDeps) {
    this.log = new SequencedLog(`rollback log ${deps.node}->${deps.peer}`, {
      entriesMax: cfg.rollbackLogEntriesMax,
      bytesMax: cfg.rollbackLogBytesMax,
    });
    this.rto = new RetransmitTimer(cfg.ackTimeout);
    this.cwnd = new CongestionWindow({
      initialBytes: Math.min(cfg.sendWindowBytesMax, CWND_INITIAL_BYTES),
      minBytes: Math.min(cfg.sendWindowBytesMax, CWND_MIN_BYTES),
      maxBytes: cfg.sendWindowBytesMax,
      segmentBytes: CWND_SEGMENT_BYTES,
    });
    this.windowBytes = cfg.sendWindowBytesMax;
    this.windowEntries = cfg.rollbackLogEntriesMax;
    this.haltProbeMs = cfg.haltProbeMs;
    this.lockRetryDelayMs = cfg.lockRetryDelayMs;
  }

  start(): void {
    const { clock, telemetry, node, peer, onError } = this.deps;
    this.chart = startChart(sourceChannelMachine, { ctl: this }, { clock, telemetry, node, machine: `source:${node}->${peer}`, onError });
  }

  stop(): void {
    this.chart?.stop();
    if (this.ackTimer !== null) this.deps.clock.clearTimeout(this.ackTimer);
    if (this.idleTimer !== null) this.deps.clock.clearTimeout(this.idleTimer);
    this.ackTimer = this.idleTimer = null;
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
    return this.sessions.size;
  }

  // ---- host side -------------------------------------------------------------------------

  /** Mirror one host write. Claims room for its LOCK, data and UNLOCK; waits while the log is full. */
  submit(w: ChannelWrite): void {
    assert(w.count >= 1 && w.data.length > 0 && w.data.length % w.count === 0, 'a mirrored write covers whole sectors');
    const bytes = w.data.length + 3 * OH;
    // Usually there is room at once: then no callback is made for the wait (this runs per write).
    if (this.log.tryReserve(3, bytes)) this.admit(w);
    else this.log.reserve(3, bytes, () => this.admit(w));
  }

  private admit(w: ChannelWrite): void {
    w.admitted();
    this.place(w);
  }

  /**
   * Take a read lock on the peer's copy of a region. Not speculative: the LOCK is sent only once
   * every earlier entry is confirmed, and `granted` is called once the target granted it. Writes
   * to the region wait until the returned release function is called.
   */
  requestReadLock(lun: number, lba: number, count: number, granted: (release: () => void) => void): void {
    this.log.reserve(2, 2 * OH, () => this.placeReadLock(lun, lba, count, granted));
  }

  // ---- link side -------------------------------------------------------------------------

  linkUp(hello: PeerHello): void {
    this.windowBytes = Math.max(OH, Math.min(this.cfg.sendWindowBytesMax, hello.windowBytes));
    this.windowEntries = Math.max(1, hello.windowEntries);
    this.locksWindow = Math.max(1, hello.locksWindow);
    runAll(this.sessionWaiters);
    this.confirmThrough(Math.min(hello.confirmedSeq, this.cursor - 1));
    this.chart?.send({ type: 'link.up' });
    this.afterProgress();
  }

  linkDown(): void {
    this.chart?.send({ type: 'link.down' });
  }

  /** The link has room again. */
  writable(): void {
    this.pump();
  }

  onResponse(f: ResponseFrame): void {
    switch (f.type) {
      case FrameType.Ack:
        this.onAck(f.seq);
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

  // ---- chart control (SourceChannelControl) --------------------------------------------------

  phase(): SourcePhase {
    if (this.sessions.awaitingGrant > 0) return 'lockPending';
    return this.log.count > 0 || this.sessions.size > 0 || this.log.waiting > 0 ? 'active' : 'idle';
  }

  hasSentUnconfirmed(): boolean {
    return this.cursor > this.log.firstSeq;
  }

  setGate(open: boolean): void {
    this.gate = open;
    if (open) this.pump();
  }

  halt(lockId: number, seq: number): void {
    if (this.haltedLockId === lockId) return;
    this.haltedLockId = lockId;
    this.haltedSeq = seq;
    this.counters.halts++;
  }

  isHaltedLock(lockId: number): boolean {
    return lockId === this.haltedLockId;
  }

  probeHaltedLock(): void {
    const entry = this.log.get(this.haltedSeq);
    if (!entry) {
      // Confirmed meanwhile: its LOCK_GRANTED was lost, the ACK was not.
      this.chart?.send({ type: 'target.lock.granted', lockId: this.haltedLockId });
      return;
    }
    this.counters.lockProbes++;
    this.transmit(entry);
  }

  resume(): void {
    this.counters.resumes++;
    this.haltedLockId = 0;
    this.resumePoint = Math.max(this.cursor - 1, this.log.firstSeq);
    this.setGate(true);
    this.afterProgress();
  }

  endResume(): void {
    this.resumePoint = 0;
  }

  rollBackTo(seq: number, cause: 'nak' | 'timeout' | 'discarded' | 'reconnect'): void {
    this.counters.rollbacks++;
    const from = Math.max(seq, this.log.firstSeq);
    // A lost frame means the link is over-driven (or lossy): send less. A refused lock says
    // nothing about the link.
    if (cause !== 'discarded') this.cwnd.lost(from, this.cursor, cause !== 'nak');
    if (from < this.cursor) this.rewind(from);
    this.rollbackPoint = Math.max(this.rollbackPoint, from);
    if (cause === 'discarded') this.gate = false;
    else this.pump();
    this.afterProgress();
  }

  rollBackToHead(cause: 'timeout' | 'reconnect'): void {
    if (cause === 'timeout') {
      this.counters.ackTimeouts++;
      this.rto.timedOut();
    }
    this.rollBackTo(this.log.firstSeq, cause);
  }

  endRollback(): void {
    this.rollbackPoint = 0;
  }

  rewindWhileHalted(seq: number): void {
    if (seq >= this.log.firstSeq && seq < this.cursor) this.rewind(seq);
  }

  // ---- responses ---------------------------------------------------------------------------

  private onAck(seq: number): void {
    this.counters.acksReceived++;
    const newest = this.log.get(seq);
    if (seq >= this.log.nextSeq || (newest !== undefined && newest.sends === 0)) {
      this.counters.acksIgnored++; // confirms something never sent: a confused or hostile peer
      return;
    }
    if (this.confirmThrough(seq) > 0) this.afterProgress();
  }

  private onNak(seq: number, reason: NakReason): void {
    this.counters.naksReceived++;
    if (reason === NakReason.Corrupt || reason === NakReason.Gap || reason === NakReason.Overflow) {
      if (this.deps.mutations.has('source-ignores-naks-and-timeouts')) return;
      const entry = this.log.get(seq);
      // Nothing of ours to re-send (confirmed, or never sent), or the NAK predates our last send.
      if (!entry || seq >= this.cursor || this.deps.clock.now() - entry.sentAt < this.rto.minRttMs) {
        this.counters.naksIgnored++;
        return;
      }
      this.chart?.send({ type: 'target.nak', expected: seq });
      return;
    }
    const entry = this.log.get(seq);
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
    const session = this.sessions.byLockId(f.lockId);
    const entry = this.log.get(f.seq);
    const sent = entry === undefined ? f.seq < this.log.firstSeq : entry.kind === 'lock' && entry.lockId === f.lockId && entry.sends > 0;
    if (!sent || (session !== undefined && session.lockSeq !== f.seq)) {
      this.counters.grantsIgnored++;
      return;
    }
    if (session) this.grant(session);
    if (f.lockId === this.haltedLockId) this.chart?.send({ type: 'target.lock.granted', lockId: f.lockId });
    this.afterProgress();
  }

  private onLockRejected(f: LockRejectedFrame): void {
    const entry = this.log.get(f.seq);
    if (!entry || entry.kind !== 'lock' || entry.lockId !== f.lockId || entry.sends === 0) {
      this.counters.naksIgnored++; // about a lock already confirmed (stale), or one never sent
      return;
    }
    this.counters.locksRejected++;
    if (f.reason === RejectReason.TableFull) this.counters.tableFullRejections++;
    this.chart?.send({ type: 'target.lock.rejected', seq: f.seq, lockId: f.lockId, discarded: f.action === RejectAction.Discarded });
  }

  /**
   * Remove every entry up to `seq`; returns how many left the log.
   *
   * Re-entrancy: confirming a write calls back into the host, which may submit its next write at
   * once, and freeing room wakes writes waiting for the log; both reach `pump()`. So the cursor
   * and the in-flight count are kept right entry by entry, and the confirmations' callbacks run
   * only after the log is consistent again.
   */
  private confirmThrough(seq: number): number {
    const done: RollbackEntry[] = [];
    const removed = this.log.removeThrough(seq, (e) => {
      if (e.seq < this.cursor) this.inflightBytes -= e.bytes;
      else this.cursor = e.seq + 1; // confirmed before we re-sent it: nothing to re-send
      done.push(e);
    });
    if (removed === 0) return 0;
    const last = done[done.length - 1]!;
    const rtt = last.sends === 1 ? this.deps.clock.now() - last.sentAt : -1;
    if (rtt >= 0) this.rto.sample(rtt);
    let sentBytes = 0;
    for (const e of done) if (e.sends > 0) sentBytes += e.bytes;
    this.cwnd.acked(sentBytes, rtt, this.rto.minRttMs);
    const t = this.deps.telemetry;
    if (t.enabled) {
      t.emit({ kind: 'rollback.confirm', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, upTo: seq, removed, entries: this.log.count, bytes: this.log.bytes });
    }
    for (const e of done) this.confirmEntry(e);
    return removed;
  }

  private confirmEntry(e: RollbackEntry): void {
    if (e.kind === 'write') {
      this.counters.writesConfirmed++;
      e.write!.confirmed(e.failed ?? undefined);
    } else if (e.kind === 'lock') {
      this.counters.locksGranted++;
      const session = this.sessions.byLockId(e.lockId);
      if (session) this.grant(session);
    } else {
      this.sessions.retire(e.lockId);
    }
  }

  /** After confirmations: wake whoever waits on them, tell the chart about finished episodes, send more. */
  private afterProgress(): void {
    const confirmed = this.confirmedSeq;
    if (this.confirmWaiters.length > 0) this.wakeConfirmWaiters(confirmed);
    if (this.haltedLockId !== 0 && this.haltedSeq <= confirmed) {
      this.chart?.send({ type: 'target.lock.granted', lockId: this.haltedLockId });
    }
    if (this.rollbackPoint !== 0 && this.rollbackPoint <= confirmed) this.chart?.send({ type: 'rollback.done' });
    if (this.resumePoint !== 0 && this.resumePoint <= confirmed) this.chart?.send({ type: 'resume.done' });
    this.pump();
    this.updatePhase();
  }

  private wakeConfirmWaiters(confirmed: number): void {
    const ready = this.confirmWaiters.filter((w) => w.seq <= confirmed);
    if (ready.length === 0) return;
    this.confirmWaiters.splice(0, this.confirmWaiters.length, ...this.confirmWaiters.filter((w) => w.seq > confirmed));
    for (const w of ready) w.run();
  }

  private updatePhase(): void {
    const phase = this.phase();
    if (phase === this.lastPhase) return;
    this.lastPhase = phase;
    this.chart?.send({ type: phase === 'idle' ? 'phase.idle' : phase === 'lockPending' ? 'phase.lockPending' : 'phase.active' });
  }

  // ---- sessions ----------------------------------------------------------------------------

  /** Put an admitted write into its lock session (holding its reservation of 3 entries). */
  private place(w: ChannelWrite): void {
    const region = lockRegion(w.lba, w.count, this.cfg.regionSectors(w.lun));
    let session: LockSession | null | undefined = this.sessions.get(w.lun, region.lba, region.count);
    if (session) {
      this.log.unreserve(2, 2 * OH);
      this.sessions.touch(session, this.deps.clock.now());
    } else {
      // A session just opened is already the most recently used, as of now.
      session = this.openSession(region, w.lun, 'write', w.mode === 'sync', () => this.place(w));
      if (!session) return;
      this.appendLock(session);
    }
    if (session.grantWanted && !session.granted) session.held.push(w);
    else this.appendWrite(session, w);
    this.armIdleTimer();
    this.pump();
    this.updatePhase();
  }

  /**
   * Open a session on `region`, first ending every open session that overlaps it (their UNLOCKs
   * go into the stream ahead of the new LOCK, so the target never sees two locks of ours on one
   * block). If an overlapping session cannot end yet (its grant is pending, or it is a read lock
   * still held), `retry` runs once it can, and this returns null.
   *
   * At most min(lockSessionsMax, the peer's locksWindow) sessions are open at once, strictly:
   * sessions open here are exactly the locks the target holds for us at this point of the stream,
   * and a target whose lock table we filled with our own locks could never grant the next LOCK
   * (the UNLOCKs that would make room are behind it). At the limit the least recently used
   * session that can end ends first; if none can, `retry` runs once one has.
   */
  private openSession(
    region: { lba: number; count: number }, lun: number, mode: 'read' | 'write', grantWanted: boolean, retry: () => void,
  ): LockSession | null {
    const overlapping = this.sessions.overlapping(lun, region.lba, region.count);
    const busy = overlapping.find((s) => !this.closable(s));
    if (busy) {
      busy.blocked.push(retry);
      return null;
    }
    for (const s of overlapping) this.closeSession(s);
    const sessionsMax = Math.min(this.cfg.lockSessionsMax, this.locksWindow);
    while (this.sessions.size >= sessionsMax) {
      const oldest = this.oldestClosable();
      if (oldest === undefined) {
        this.sessionWaiters.push(retry);
        return null;
      }
      this.closeSession(oldest);
    }
    return this.sessions.open(lun, region.lba, region.count, mode, grantWanted, this.deps.clock.now());
  }

  private oldestClosable(): LockSession | undefined {
    for (const s of this.sessions.values()) if (this.closable(s)) return s;
    return undefined;
  }

  private closable(s: LockSession): boolean {
    return s.mode === 'write' && s.held.length === 0 && (s.granted || !s.grantWanted);
  }

  private closeSession(s: LockSession): void {
    this.sessions.close(s);
    this.append('unlock', s.lun, s.lockId, 0, null, { type: FrameType.Unlock, lun: s.lun, seq: this.log.nextSeq, flags: 0, lockId: s.lockId });
    runAll(s.blocked);
    runAll(this.sessionWaiters);
  }

  private grant(session: LockSession): void {
    if (session.granted) return;
    this.sessions.markGranted(session);
    for (const w of session.held.splice(0)) this.appendWrite(session, w);
    const onGranted = session.onGranted;
    session.onGranted = null;
    onGranted?.();
    runAll(session.blocked);
    runAll(this.sessionWaiters); // the session may end now, making room
  }

  private placeReadLock(lun: number, lba: number, count: number, granted: (release: () => void) => void): void {
    const session = this.openSession({ lba, count }, lun, 'read', true, () => this.placeReadLock(lun, lba, count, granted));
    if (!session) return;
    session.onGranted = () => granted(() => this.releaseReadLock(session));
    // Not speculative: the LOCK goes out once everything before it is confirmed.
    this.whenConfirmed(this.log.nextSeq - 1, () => {
      this.appendLock(session);
      this.pump();
    });
    this.updatePhase();
  }

  private releaseReadLock(session: LockSession): void {
    if (session.closed) return;
    this.sessions.close(session);
    this.append('unlock', session.lun, session.lockId, 0, null, { type: FrameType.Unlock, lun: session.lun, seq: this.log.nextSeq, flags: 0, lockId: session.lockId });
    runAll(session.blocked);
    runAll(this.sessionWaiters);
    this.pump();
    this.updatePhase();
  }

  private whenConfirmed(seq: number, run: () => void): void {
    if (seq <= this.confirmedSeq) run();
    else this.confirmWaiters.push({ seq, run });
  }

  private armIdleTimer(): void {
    if (this.idleTimer !== null || this.sessions.size === 0) return;
    const oldest = this.sessions.values().next().value!;
    const delay = oldest.lastUse + this.cfg.lockSessionIdleMs - this.deps.clock.now();
    this.idleTimer = this.deps.clock.setTimeout(this.idleTimerFired, Math.max(0, delay));
  }

  private onIdleTimer(): void {
    this.idleTimer = null;
    const deadline = this.deps.clock.now() - this.cfg.lockSessionIdleMs + EPSILON_MS;
    const idle: LockSession[] = [];
    for (const s of this.sessions.values()) {
      if (s.lastUse > deadline) break;
      if (this.closable(s)) idle.push(s);
    }
    for (const s of idle) this.closeSession(s);
    if (idle.length === 0 && this.sessions.size > 0) {
      // The oldest sessions cannot close yet (grant pending, read lock held): look again later.
      const s = this.sessions.values().next().value!;
      this.sessions.touch(s, this.deps.clock.now());
    }
    this.armIdleTimer();
    this.pump();
    this.updatePhase();
  }

  // ---- log and transmission ----------------------------------------------------------------

  private appendLock(s: LockSession): void {
    const flags = s.grantWanted ? FrameFlag.GrantWanted : 0;
    const mode = s.mode === 'read' ? LockMode.Read : LockMode.Write;
    s.lockSeq = this.log.nextSeq;
    this.append('lock', s.lun, s.lockId, s.count, null, { type: FrameType.Lock, lun: s.lun, seq: s.lockSeq, flags, lockId: s.lockId, lba: s.lba, count: s.count, mode }, s.lba);
  }

  private appendWrite(s: LockSession, w: ChannelWrite): void {
    this.append('write', w.lun, s.lockId, w.count, w, { type: FrameType.Write, lun: w.lun, seq: this.log.nextSeq, flags: 0, lockId: s.lockId, lba: w.lba, tag: w.tag, data: w.data }, w.lba);
  }

  private append(kind: StreamEntryKind, lun: number, lockId: number, count: number, write: ChannelWrite | null, frame: StreamFrame, lba = 0): void {
    const bytes = encodeFrame(frame);
    const entry: RollbackEntry = { seq: frame.seq, bytes: bytes.length, kind, frame: bytes, lockId, write, sends: 0, sentAt: -1, failed: null };
    this.log.append(entry, true);
    const t = this.deps.telemetry;
    if (t.enabled) {
      t.emit({
        kind: 'rollback.append', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, seq: entry.seq, entry: kind,
        lun, lba, count, lockId, tag: write?.tag ?? 0, entries: this.log.count, bytes: this.log.bytes,
      });
    }
  }

  /** Send from the cursor as far as the gate, the window and the link allow. */
  private pump(): void {
    if (!this.gate) return;
    while (this.cursor < this.log.nextSeq) {
      const entry = this.log.get(this.cursor)!;
      const inflightEntries = this.cursor - this.log.firstSeq;
      const windowBytes = Math.min(this.windowBytes, this.cwnd.bytes);
      if (inflightEntries > 0 && (inflightEntries >= this.windowEntries || this.inflightBytes + entry.bytes > windowBytes)) break;
      if (!this.transmit(entry)) break;
      this.inflightBytes += entry.bytes;
      this.cursor++;
      if (entry.kind === 'write' && this.deps.mutations.has('source-drops-entry-before-ack')) this.confirmThrough(entry.seq);
    }
    this.armAckTimer();
  }

  /** Send one entry (its `frame.sent` telemetry comes from the peer connection, as for every frame). */
  private transmit(entry: RollbackEntry): boolean {
    if (!this.deps.send(entry.frame, entry.sends > 0)) return false;
    const c = this.counters;
    entry.sends++;
    entry.sentAt = this.deps.clock.now();
    c.framesSent++;
    c.bytesSent += entry.bytes;
    if (entry.sends > 1) c.entriesRetransmitted++;
    else if (entry.kind === 'write') c.writesSent++;
    else if (entry.kind === 'lock') c.locksSent++;
    else c.unlocksSent++;
    return true;
  }

  /** Move the send cursor back to `seq`: everything from there on counts as not yet sent. */
  private rewind(seq: number): void {
    this.cursor = seq;
    let bytes = 0;
    for (let s = this.log.firstSeq; s < seq; s++) bytes += this.log.get(s)!.bytes;
    this.inflightBytes = bytes;
  }

  /**
   * One timer watches the oldest unconfirmed entry; it is re-armed lazily, so acks that make
   * progress cost nothing here.
   */
  private armAckTimer(): void {
    if (this.ackTimer !== null || !this.gate || this.cursor <= this.log.firstSeq) return;
    const head = this.log.peek()!;
    const delay = head.sentAt + this.rto.rtoMs - this.deps.clock.now();
    this.ackTimer = this.deps.clock.setTimeout(this.ackTimerFired, Math.max(0, delay));
  }

  private onAckTimer(): void {
    this.ackTimer = null;
    if (!this.gate || this.cursor <= this.log.firstSeq || this.deps.mutations.has('source-ignores-naks-and-timeouts')) return;
    const head = this.log.peek()!;
    if (this.deps.clock.now() + EPSILON_MS >= head.sentAt + this.rto.rtoMs) this.chart?.send({ type: 'ack.timeout' });
    else this.armAckTimer();
  }
}

/**
 * Run every callback waiting in `list`, emptying it first (a callback may queue itself again).
 * Checks for none first: sessions end about once per write, and usually nobody waits on them.
 */
function runAll(list: (() => void)[]): void {
  if (list.length === 0) return;
  for (const run of list.splice(0)) run();
}
