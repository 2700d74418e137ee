import { SequencedLog, type LogEntry } from '../logs/sequenced-log.ts';
import type { LockOwner, RegionLock, RegionLockTable, Rejection } from '../locks/region-lock-table.ts';
import { startChart, type ChartHandle } from '../machines/start-chart.ts';
import { targetChannelMachine, type TargetChannelControl, type TargetPhase } from '../machines/target-channel.machine.ts';
import { encodeFrame } from '../protocol/encode.ts';
import {
  FrameFlag, FrameType, LockMode, NakReason, RejectAction, RejectReason,
  type Frame, type LockFrame, type StreamFrame, type WriteFrame,
} from '../protocol/frame.ts';
import { submitWrite, type BlockDevice } from '../ports/block-device.ts';
import type { StreamEntryKind } from '../telemetry/events.ts';
import { REORDER_MUTATION_DELAY_MS } from '../mutations.ts';
import type { ChannelDeps } from './source-channel.ts';

export interface TargetChannelConfig {
  commitLogEntriesMax: number;
  commitLogBytesMax: number;
  /** Longest an ACK for confirmed LOCK/UNLOCK entries may wait for company (writes are acked at once). */
  ackDelayMs: number;
  /** A NAK for the same missing sequence number is repeated no more often than this. */
  nakRetryMs: number;
  /**
   * Most locks the peer may hold here at once: its share of the shared lock table, advertised in
   * HELLO. A LOCK beyond it breaks the protocol: it is NAKed LocksExceeded, never left to fill
   * the table. A function because the share is known only once every peer is connected.
   */
  locksWindow(): number;
  policy: 'halt-resume' | 'retransmit';
}

export interface TargetDeps extends ChannelDeps {
  locks: RegionLockTable;
  device(lun: number): BlockDevice | undefined;
}

const NEW = 0;
const APPLYING = 1;
const DONE = 2;

interface CommitEntry extends LogEntry {
  readonly frame: StreamFrame;
  status: typeof NEW | typeof APPLYING | typeof DONE;
  /** LOCK entries: refused at least once / granted. */
  rejected: boolean;
  granted: boolean;
}

export function newTargetCounters() {
  return {
    framesReceived: 0, bytesReceived: 0, duplicates: 0, gaps: 0, corrupt: 0, naksSent: 0, acksSent: 0,
    locksGranted: 0, locksRejected: 0, tableFullRejections: 0, writesApplied: 0, unlocks: 0, entriesDiscarded: 0, entriesRefused: 0, overflows: 0,
  };
}
export type TargetCounters = ReturnType<typeof newTargetCounters>;

const KIND: Record<number, StreamEntryKind> = { [FrameType.Lock]: 'lock', [FrameType.Write]: 'write', [FrameType.Unlock]: 'unlock' };

/**
 * The target side of one peer's mirror stream: the data path of docs/design.md 1.1's storage control
 * module. Frames are taken strictly in sequence order into the commit log; entries are processed
 * in log order (a refused LOCK holds up everything behind it, which is what keeps async mirrors a
 * prefix of the source's history); writes run on the disk concurrently but never two overlapping
 * at once, and always under their mirror lock; an UNLOCK waits for its lock's writes. The head of
 * the log is confirmed as entries finish, with one cumulative ACK per burst.
 */
export class TargetChannel implements TargetChannelControl {
  readonly counters = newTargetCounters();
  readonly retransmitPolicy: boolean;
  private readonly log: SequencedLog<CommitEntry>;
  private chart: ChartHandle<typeof targetChannelMachine> | null = null;
  private processSeq = 1;
  private retryingSeq = 0;
  private discardSeq = 0;
  private refusedLock: CommitEntry | null = null;
  /** Why `refusedLock` was last refused (sent in every LOCK_REJECTED about it). */
  private refusedReason: RejectReason = RejectReason.LocalLock;
  /**
   * Lock id of the refused LOCK whose rejection this channel recorded in the lock table (0: none).
   * At most one: processing stops at a refused LOCK. It survives a retransmit-policy discard (the
   * re-sent LOCK is a new commit-log entry, so the record is keyed by lock id) and is cleared when
   * that lock id is granted or unlocked, when the peer sends something else where the discarded
   * LOCK was (`onStreamFrame`), when the link drops while the LOCK is discarded (`linkDown`), or
   * when the channel stops: a record never outlives the retry it protects.
   */
  private rejectedLockId = 0;
  private heldLocks = 0;
  private readonly inflightByLock = new Map<number, number>();
  private readonly inflight: { lun: number; lba: number; end: number }[] = [];
  private draining = false;
  private drainAgain = false;
  private lastAckSent = 0;
  private lastReackAt = -1;
  private ackTimer: unknown = null;
  private lastNak = { seq: 0, at: -Infinity };
  private lastPhase: TargetPhase = 'idle';

  constructor(private readonly cfg: TargetChannelConfig, private readonly deps: TargetDeps) {
    this.retransmitPolicy = cfg.policy === 'retransmit';
    this.log = new SequencedLog(`commit log ${deps.peer}->${deps.node}`, { entriesMax: cfg.commitLogEntriesMax, bytesMax: cfg.commitLogBytesMax });
    deps.locks.onRelease(() => {
      if (this.retryingSeq !== 0) this.drain();
    });
  }

  start(): void {
    const { clock, telemetry, node, peer, onError } = this.deps;
    this.chart = startChart(targetChannelMachine, { ctl: this }, { clock, telemetry, node, machine: `target:${peer}->${node}`, onError });
  }

  stop(): void {
    this.chart?.stop();
    if (this.ackTimer !== null) this.deps.clock.clearTimeout(this.ackTimer);
    this.ackTimer = null;
    this.clearRejected();
  }

  get state(): string {
    return this.chart?.state() ?? 'stopped';
  }

  get chartEvents(): number {
    return this.chart?.events() ?? 0;
  }

  /** Highest sequence number of the peer's stream that is confirmed (what HELLO reports). */
  get confirmedSeq(): number {
    return this.log.firstSeq - 1;
  }

  get commitLog(): { entries: number; bytes: number } {
    return { entries: this.log.count, bytes: this.log.bytes };
  }

  /** What HELLO offers the peer's stream: commit-log room, and how many locks it may hold here. */
  get window(): { bytes: number; entries: number; locks: number } {
    return { bytes: this.cfg.commitLogBytesMax, entries: this.cfg.commitLogEntriesMax, locks: this.cfg.locksWindow() };
  }

  // ---- arrivals ----------------------------------------------------------------------------

  onStreamFrame(f: StreamFrame, bytes: number): void {
    this.counters.framesReceived++;
    this.counters.bytesReceived += bytes;
    const expected = this.log.nextSeq;
    if (f.seq < expected) return this.onDuplicate(f);
    if (f.seq > expected) {
      if (this.discardSeq !== 0) this.counters.entriesDiscarded++;
      else {
        this.counters.gaps++;
        this.nak(NakReason.Gap, expected);
      }
      return;
    }
    if (this.discardSeq !== 0) {
      this.discardSeq = 0;
      // The peer re-sends from the discarded LOCK; anything else there means it gave that lock up.
      if (f.type !== FrameType.Lock || f.lockId !== this.rejectedLockId) this.clearRejected();
      this.chart?.send({ type: 'stream.resumed' });
    }
    if (!this.log.fits(1, bytes)) {
      this.counters.overflows++;
      this.nak(NakReason.Overflow, expected);
      return;
    }
    this.log.append({ seq: f.seq, bytes, frame: f, status: NEW, rejected: false, granted: false });
    this.lastNak.seq = 0;
    const t = this.deps.telemetry;
    if (t.enabled) {
      t.emit({ kind: 'commit.append', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, seq: f.seq, entry: KIND[f.type]!, lun: f.lun, entries: this.log.count, bytes: this.log.bytes });
    }
    this.drain();
  }

  /** A frame of the peer's stream failed its checks on the way in. */
  onCorrupt(): void {
    this.counters.corrupt++;
    this.nak(NakReason.Corrupt, this.log.nextSeq);
  }

  /**
   * The link went down. A LOCK held in the commit log (halt-resume) keeps its rejection record:
   * it is still retried here. A discarded one (retransmit) is retried only if the peer re-sends it
   * after reconnecting, which may be never: its record goes now, and a refused re-send records
   * it again.
   */
  linkDown(): void {
    this.lastNak = { seq: 0, at: -Infinity };
    if (this.discardSeq !== 0) this.clearRejected();
  }

  // ---- chart control -----------------------------------------------------------------------

  phase(): TargetPhase {
    return this.log.count > 0 || this.heldLocks > 0 ? 'applying' : 'idle';
  }

  holdRejectedLock(): void {
    const e = this.refusedLock;
    if (!e) return;
    this.retryingSeq = e.seq;
    this.sendRejected(e, RejectAction.Held);
  }

  discardFromRejectedLock(): void {
    const e = this.refusedLock;
    if (!e) return;
    this.refusedLock = null;
    this.sendRejected(e, RejectAction.Discarded);
    const removed = this.log.truncateFrom(e.seq);
    this.counters.entriesDiscarded += removed;
    this.processSeq = Math.min(this.processSeq, this.log.nextSeq);
    this.discardSeq = e.seq;
    const t = this.deps.telemetry;
    if (t.enabled) t.emit({ kind: 'commit.discard', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, from: e.seq, removed });
    this.updatePhase();
  }

  // ---- processing --------------------------------------------------------------------------

  private drain(): void {
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    this.draining = true;
    do {
      this.drainAgain = false;
      while (this.processSeq < this.log.nextSeq) {
        if (!this.process(this.log.get(this.processSeq)!)) break;
        this.processSeq++;
      }
    } while (this.drainAgain);
    this.draining = false;
    this.confirm();
  }

  /** Process one entry; false if it must wait (refused lock, overlapping write, unlock with writes out). */
  private process(e: CommitEntry): boolean {
    switch (e.frame.type) {
      case FrameType.Lock:
        return this.processLock(e, e.frame);
      case FrameType.Write:
        return this.processWrite(e, e.frame);
      case FrameType.Unlock:
        return this.processUnlock(e, e.frame.lockId);
    }
  }

  private processLock(e: CommitEntry, f: LockFrame): boolean {
    const dev = this.deps.device(f.lun);
    if (!dev || f.lba + f.count > dev.sectorCount) return this.refuse(e, NakReason.OutOfRange);
    const owner = this.owner(f.lockId);
    const mode = f.mode === LockMode.Read ? 'read' : 'write';
    const held = this.deps.locks.held(owner);
    if (held) {
      // The peer re-used a lock id it still holds: the same lock again is harmless, another is not.
      if (held.lun !== f.lun || held.lba !== f.lba || held.count !== f.count || held.mode !== mode) return this.refuse(e, NakReason.LockInUse);
    } else {
      if (this.heldLocks >= this.cfg.locksWindow()) return this.refuse(e, NakReason.LocksExceeded);
      const result = this.deps.locks.tryAcquire({ lun: f.lun, lba: f.lba, count: f.count, mode, owner });
      if (!result.granted && this.deps.mutations.has('target-applies-without-lock')) {
        e.status = DONE; // the planted bug: carry on as if the lock were held
        return true;
      }
      if (!result.granted) return this.lockRefused(e, f, owner, result.blocker);
      this.heldLocks++;
    }
    if (this.rejectedLockId === f.lockId) this.clearRejected();
    e.granted = true;
    e.status = DONE;
    this.counters.locksGranted++;
    this.lockEvent('granted', e.seq, f);
    if ((f.flags & FrameFlag.GrantWanted) !== 0 || e.rejected) this.sendControl({ type: FrameType.LockGranted, lun: f.lun, seq: e.seq, flags: 0, lockId: f.lockId });
    if (this.retryingSeq === e.seq) {
      this.retryingSeq = 0;
      this.refusedLock = null;
      this.chart?.send({ type: 'lock.granted', seq: e.seq });
    }
    return true;
  }

  /**
   * The LOCK at the head of processing was refused: by a conflicting lock, a rejection record, or
   * a full lock table (`blocker` null). Record the rejection, keyed by the lock's id (not by the
   * commit-log entry: under the retransmit policy the entry is discarded and the re-sent LOCK is a
   * new entry), and let the chart decide between holding and discarding. False: processing waits.
   */
  private lockRefused(e: CommitEntry, f: LockFrame, owner: LockOwner, blocker: RegionLock | Rejection | null): false {
    if (this.retryingSeq === e.seq) return false;
    e.rejected = true;
    this.refusedLock = e;
    this.refusedReason = blocker === null ? RejectReason.TableFull : blocker.owner.kind === 'mirror' ? RejectReason.MirrorLock : RejectReason.LocalLock;
    this.counters.locksRejected++;
    if (blocker === null) this.counters.tableFullRejections++;
    if (this.rejectedLockId !== 0 && this.rejectedLockId !== f.lockId) this.clearRejected();
    this.rejectedLockId = f.lockId;
    this.deps.locks.recordRejection({ lun: f.lun, lba: f.lba, count: f.count, owner });
    this.lockEvent('rejected', e.seq, f);
    this.chart?.send({ type: 'lock.refused', seq: e.seq, lockId: f.lockId });
    return false;
  }

  /** Forget this channel's rejection record: its lock was granted, or will not be retried. */
  private clearRejected(): void {
    const lockId = this.rejectedLockId;
    if (lockId === 0) return;
    this.rejectedLockId = 0;
    this.deps.locks.clearRejection(this.owner(lockId));
  }

  private processWrite(e: CommitEntry, f: WriteFrame): boolean {
    const dev = this.deps.device(f.lun);
    if (!dev || f.data.length % dev.sectorSize !== 0) return this.refuse(e, NakReason.OutOfRange);
    const count = f.data.length / dev.sectorSize;
    if (f.lba + count > dev.sectorCount) return this.refuse(e, NakReason.OutOfRange);
    const mutations = this.deps.mutations;
    const unlocked = !this.deps.locks.covers(this.owner(f.lockId), f.lun, f.lba, count);
    if (unlocked && !mutations.has('target-applies-without-lock')) return this.refuse(e, NakReason.NotLocked);
    const end = f.lba + count;
    for (const w of this.inflight) if (w.lun === f.lun && w.lba < end && f.lba < w.end) return false;
    const span = { lun: f.lun, lba: f.lba, end };
    this.inflight.push(span);
    this.inflightByLock.set(f.lockId, (this.inflightByLock.get(f.lockId) ?? 0) + 1);
    e.status = mutations.has('target-acks-before-write') ? DONE : APPLYING;
    if (mutations.has('target-reorders-writes') && e.seq % 2 === 0) {
      this.deps.clock.setTimeout(() => this.issueWrite(dev, e, f, span, count), REORDER_MUTATION_DELAY_MS);
    } else {
      this.issueWrite(dev, e, f, span, count);
    }
    return true;
  }

  private issueWrite(dev: BlockDevice, e: CommitEntry, f: WriteFrame, span: { lun: number; lba: number; end: number }, count: number): void {
    submitWrite(dev, f.lba, f.data, (err) => this.written(e, f, span, count, err === undefined ? 0 : NakReason.MediaError));
  }

  private written(e: CommitEntry, f: WriteFrame, span: { lun: number; lba: number; end: number }, count: number, failure: NakReason | 0): void {
    this.inflight.splice(this.inflight.indexOf(span), 1);
    const left = this.inflightByLock.get(f.lockId)! - 1;
    if (left === 0) this.inflightByLock.delete(f.lockId);
    else this.inflightByLock.set(f.lockId, left);
    if (failure !== 0) {
      this.refuse(e, failure);
    } else {
      e.status = DONE;
      this.counters.writesApplied++;
      const t = this.deps.telemetry;
      if (t.enabled) {
        t.emit({ kind: 'target.apply', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, seq: e.seq, lockId: f.lockId, tag: f.tag, lun: f.lun, lba: f.lba, count });
      }
    }
    this.drain();
  }

  private processUnlock(e: CommitEntry, lockId: number): boolean {
    if (this.inflightByLock.has(lockId)) return false;
    if (lockId === this.rejectedLockId) this.clearRejected(); // the peer ended a session it never got
    const lock = this.deps.locks.release(this.owner(lockId));
    e.status = DONE;
    this.counters.unlocks++;
    if (lock) {
      this.heldLocks--;
      const t = this.deps.telemetry;
      if (t.enabled) {
        t.emit({ kind: 'target.lock', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, result: 'released', seq: e.seq, lockId, lun: lock.lun, lba: lock.lba, count: lock.count, mode: lock.mode });
      }
    }
    return true;
  }

  /** The entry cannot be applied (bad range, not locked, media error): tell the source, move on. */
  private refuse(e: CommitEntry, reason: NakReason): true {
    e.status = DONE;
    this.counters.entriesRefused++;
    this.counters.naksSent++;
    this.sendControl({ type: FrameType.Nak, lun: e.frame.lun, seq: e.seq, flags: 0, reason });
    return true;
  }

  /** Remove the finished head of the log and acknowledge it. */
  private confirm(): void {
    let upTo = 0;
    let wrote = false;
    for (let s = this.log.firstSeq; s < this.processSeq; s++) {
      const e = this.log.get(s)!;
      if (e.status !== DONE) break;
      upTo = s;
      if (e.frame.type === FrameType.Write) wrote = true;
    }
    if (upTo !== 0) {
      this.log.removeThrough(upTo);
      const t = this.deps.telemetry;
      if (t.enabled) t.emit({ kind: 'commit.confirm', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, upTo, entries: this.log.count, bytes: this.log.bytes });
      if (wrote || this.log.count === 0) this.sendAck();
      else this.armAckTimer();
    }
    this.updatePhase();
  }

  private onDuplicate(f: StreamFrame): void {
    this.counters.duplicates++;
    const now = this.deps.clock.now();
    if (now !== this.lastReackAt) {
      this.lastReackAt = now;
      this.sendAck(true); // the source may have lost our ACK
    }
    if (f.type !== FrameType.Lock) return;
    const e = this.log.get(f.seq);
    if (e && e.seq === this.retryingSeq) this.sendRejected(e, RejectAction.Held);
    else if (e ? e.granted && ((f.flags & FrameFlag.GrantWanted) !== 0 || e.rejected) : (f.flags & FrameFlag.GrantWanted) !== 0) {
      this.sendControl({ type: FrameType.LockGranted, lun: f.lun, seq: f.seq, flags: 0, lockId: f.lockId });
    }
  }

  // ---- replies -----------------------------------------------------------------------------

  private sendAck(force = false): void {
    if (this.ackTimer !== null) {
      this.deps.clock.clearTimeout(this.ackTimer);
      this.ackTimer = null;
    }
    const seq = this.confirmedSeq;
    if (seq === 0 || (seq <= this.lastAckSent && !force)) return;
    this.lastAckSent = seq;
    this.counters.acksSent++;
    this.sendControl({ type: FrameType.Ack, lun: 0, seq, flags: 0 });
  }

  private armAckTimer(): void {
    if (this.ackTimer !== null) return;
    this.ackTimer = this.deps.clock.setTimeout(() => {
      this.ackTimer = null;
      this.sendAck();
    }, this.cfg.ackDelayMs);
  }

  private nak(reason: NakReason, expected: number): void {
    const now = this.deps.clock.now();
    if (this.lastNak.seq === expected && now - this.lastNak.at < this.cfg.nakRetryMs) return;
    this.lastNak = { seq: expected, at: now };
    this.counters.naksSent++;
    this.sendControl({ type: FrameType.Nak, lun: 0, seq: expected, flags: 0, reason });
  }

  private sendRejected(e: CommitEntry, action: RejectAction): void {
    const f = e.frame as LockFrame;
    this.sendControl({ type: FrameType.LockRejected, lun: f.lun, seq: e.seq, flags: 0, lockId: f.lockId, reason: this.refusedReason, action });
  }

  private sendControl(frame: Frame): void {
    this.deps.send(encodeFrame(frame), false);
  }

  private lockEvent(result: 'granted' | 'rejected', seq: number, f: LockFrame): void {
    const t = this.deps.telemetry;
    if (!t.enabled) return;
    t.emit({
      kind: 'target.lock', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, result, seq, lockId: f.lockId,
      lun: f.lun, lba: f.lba, count: f.count, mode: f.mode === LockMode.Read ? 'read' : 'write',
    });
  }

  private owner(lockId: number): LockOwner {
    return { kind: 'mirror', peer: this.deps.peer, lockId };
  }

  private updatePhase(): void {
    const phase = this.phase();
    if (phase === this.lastPhase) return;
    this.lastPhase = phase;
    this.chart?.send({ type: phase === 'idle' ? 'phase.idle' : 'phase.applying' });
  }
}
