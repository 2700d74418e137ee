import { SequencedLog, type LogEntry } from '../logs/sequenced-log.ts';
import type { LockOwner, RegionLock, RegionLockTable, Rejection } from '../locks/region-lock-table.ts';
import { startChart, type ChartHandle } from '../machines/start-chart.ts';
import { targetChannelMachine, type TargetChannelControl } from '../machines/target-channel.machine.ts';
import { encodeFrame } from '../protocol/encode.ts';
import { reassembledFrames } from '../protocol/frame-pool.ts';
import {
  FrameFlag, FrameType, LockMode, NakReason, RejectAction, RejectReason, hasImpliedLock,
  type Frame, type LockFrame, type StreamFrame, type WriteFrame,
} from '../protocol/frame.ts';
import { submitWrite, type BlockDevice } from '../ports/block-device.ts';
import type { Clock } from '../ports/clock.ts';
import type { Telemetry } from '../ports/telemetry.ts';
import type { StreamEntryKind } from '../telemetry/events.ts';
import { StreamReassembly } from './stream-reassembly.ts';
import { TargetTokens, type TargetTokensDeps } from '../tags/target-tokens.ts';

export interface TargetChannelConfig {
  commitLogEntriesMax: number;
  commitLogBytesMax: number;
  /** Longest an ACK for confirmed LOCK/UNLOCK entries may wait for company (writes are acked at once). */
  ackDelayMs: number;
  /**
   * A NAK for the same missing sequence number is repeated no more often than this; a gap that may
   * only be frames overtaking each other on different connections is NAKed after this long.
   */
  nakRetryMs: number;
  /** A held refused lock is retried at least this often (it is also retried whenever a lock is released). */
  lockRetryMs: number;
  /**
   * Most locks the peer may hold here at once: its share of the shared lock table, advertised in
   * HELLO. A LOCK beyond it breaks the protocol: it is NAKed LocksExceeded, never left to fill
   * the table. A function because the share is known only once every peer is connected.
   */
  locksWindow(): number;
  policy: 'halt-resume' | 'retransmit';
  /**
   * The target-role tag tables of the peer's mirrors here (docs/tag-tables.md, "Tokens"): with a
   * peer whose HELLO offers `tags`, applied writes enter them and tokens go back. Absent: none.
   */
  tokens?: TargetTokensDeps;
}

export interface TargetDeps {
  node: string;
  peer: string;
  clock: Clock;
  telemetry: Telemetry;
  /** Send a response (ACK, NAK, LOCK_GRANTED, LOCK_REJECTED) to the peer. */
  send(bytes: Uint8Array): void;
  onError(error: unknown): void;
  locks: RegionLockTable;
  device(lun: number): BlockDevice | undefined;
}

const NEW = 0;
const APPLYING = 1;
const DONE = 2;

interface CommitEntry extends LogEntry {
  readonly frame: StreamFrame;
  status: typeof NEW | typeof APPLYING | typeof DONE;
  /** LOCK entries, and WRITEs carrying an implied lock: the lock was refused at least once / granted. */
  rejected: boolean;
  granted: boolean;
}

/** A mirror lock being taken: a LOCK's, or the implied lock a WRITE carries (its own sectors, write mode). */
interface LockRequest {
  readonly lun: number;
  readonly lba: number;
  readonly count: number;
  readonly lockId: number;
  readonly mode: 'read' | 'write';
  readonly implied: boolean;
}

interface Span {
  lun: number;
  lba: number;
  end: number;
}

export function newTargetCounters() {
  return {
    framesReceived: 0, bytesReceived: 0, duplicates: 0, gaps: 0, corrupt: 0, naksSent: 0, acksSent: 0,
    locksGranted: 0, locksRejected: 0, tableFullRejections: 0, writesApplied: 0, unlocks: 0, entriesDiscarded: 0, entriesRefused: 0, overflows: 0,
    framesHeldEarly: 0, streamsStarted: 0, entriesAbandoned: 0, impliedLocksGranted: 0,
  };
}
export type TargetCounters = ReturnType<typeof newTargetCounters>;

const KIND: Record<number, StreamEntryKind> = { [FrameType.Lock]: 'lock', [FrameType.Write]: 'write', [FrameType.Unlock]: 'unlock' };

/**
 * The target side of one peer's mirror stream: the data path of docs/design.md 1.1's storage
 * control module. Frames are taken strictly in sequence order into the commit log (frames that
 * overtook each other on different data connections wait in a reassembly buffer); entries are
 * processed in log order (a refused LOCK holds up everything behind it, which is what keeps async
 * mirrors a prefix of the source's history); writes run on the disk concurrently but never two
 * overlapping at once, and always under their mirror lock; an UNLOCK waits for its lock's writes.
 * The head of the log is confirmed as entries finish, with one cumulative ACK per burst.
 *
 * A stream belongs to one source session. When the source restarts, `beginStream` drops the old
 * stream's entries unapplied and releases its locks (each once its writes already on the disk have
 * finished): nothing of the old stream is ever applied as part of the new one.
 */
export class TargetChannel implements TargetChannelControl {
  readonly counters = newTargetCounters();
  readonly retransmitPolicy: boolean;
  readonly lockRetryMs: number;
  readonly rejectRepeatMs: number;
  private readonly log: SequencedLog<CommitEntry>;
  private readonly reassembly: StreamReassembly;
  private chart: ChartHandle<typeof targetChannelMachine> | null = null;
  /** The source session whose stream this is (0 until the first HELLO), and a count of streams so far. */
  private streamSource = 0;
  private generation = 0;
  private processSeq = 1;
  private discardSeq = 0;
  /** The refused LOCK at the head of processing (halt-resume), and why it was last refused. */
  private refusedLock: CommitEntry | null = null;
  private refusedReason: RejectReason = RejectReason.LocalLock;
  /**
   * Lock id of the refused LOCK whose rejection this channel recorded in the lock table (0: none).
   * At most one: processing stops at a refused LOCK. It survives a retransmit-policy discard (the
   * re-sent LOCK is a new commit-log entry, so the record is keyed by lock id) and is cleared when
   * that lock id is granted or unlocked, when the peer sends something else where the discarded
   * LOCK was, when the link drops while the LOCK is discarded, at a new stream, or when the channel
   * stops: a record never outlives the retry it protects.
   */
  private rejectedLockId = 0;
  private heldLocks = 0;
  /** Writes on the disk per lock of the current stream. */
  private inflightByLock = new Map<number, number>();
  private readonly inflight: Span[] = [];
  /** Locks of old streams kept until their writes already on the disk finish, by generation, then lock id. */
  private readonly orphans = new Map<number, Map<number, { owner: LockOwner; writes: number; session: number }>>();
  private orphanCount = 0;
  /** The lock table's owner name for this stream's locks (see `owner`). */
  private ownerPeer: string;
  private draining = false;
  private drainAgain = false;
  private lastAckSent = 0;
  private lastReackAt = -1;
  private ackTimer: unknown = null;
  private gapTimer: unknown = null;
  private lastNak = { seq: 0, at: -Infinity };
  /** Stopped (the controller stopped or crashed): disk writes still finishing change nothing more. */
  private stopped = false;
  /** The source's number for its stream within its session (HELLO's `stream`, feature `tags`; 0 before the first). */
  private streamNumber = 0;
  /** The peer's HELLO offered tokens (feature `tags`), and we keep tables. */
  private tagsNow = false;
  private readonly tokens: TargetTokens | null;

  constructor(private readonly cfg: TargetChannelConfig, private readonly deps: TargetDeps) {
    this.retransmitPolicy = cfg.policy === 'retransmit';
    this.lockRetryMs = cfg.lockRetryMs;
    this.rejectRepeatMs = cfg.nakRetryMs;
    this.log = new SequencedLog(`commit log ${deps.peer}->${deps.node}`, { entriesMax: cfg.commitLogEntriesMax, bytesMax: cfg.commitLogBytesMax });
    this.reassembly = new StreamReassembly({ entriesMax: cfg.commitLogEntriesMax, bytesMax: cfg.commitLogBytesMax });
    this.ownerPeer = `${deps.peer}/0`;
    this.tokens = cfg.tokens ? new TargetTokens(cfg.tokens) : null;
    deps.locks.onRelease(() => {
      if (this.refusedLock !== null) this.chart?.send({ type: 'lock.released' });
    });
  }

  start(): void {
    const { clock, telemetry, node, peer, onError } = this.deps;
    this.chart = startChart(targetChannelMachine, { ctl: this }, { clock, telemetry, node, machine: `target:${peer}->${node}`, onError });
  }

  stop(): void {
    this.stopped = true;
    this.chart?.stop();
    for (const t of [this.ackTimer, this.gapTimer]) if (t !== null) this.deps.clock.clearTimeout(t);
    this.ackTimer = this.gapTimer = null;
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

  /** The source session whose stream this channel holds (0 before the first). */
  get sourceSession(): number {
    return this.streamSource;
  }

  /** The source's number for the stream this channel holds (0 before the first). */
  get stream(): number {
    return this.streamNumber;
  }

  /** Whether tokens flow with this peer (its HELLO offered `tags`, and we keep tables). */
  get tagsOn(): boolean {
    return this.tagsNow;
  }

  /** The token watermark of this stream: every WRITE through it is durable here (0: none yet, or no tokens). */
  get tokensDurable(): number {
    return this.tagsNow ? this.tokens!.tokens : 0;
  }

  /** Applied writes whose tokens have not come back. */
  get tokensOutstanding(): number {
    return this.tokens?.waiting ?? 0;
  }

  /** The peer's HELLO says whether it offers tokens (feature `tags`). */
  setTags(offered: boolean): void {
    this.tagsNow = offered && this.tokens !== null;
  }

  /** The source deleted its entries through `seq` of this stream (on a WRITE, a BATCH or a heartbeat). */
  onTokensBack(seq: number): void {
    if (this.tagsNow && seq > 0) this.tokens!.back(seq);
  }

  get commitLog(): { entries: number; bytes: number } {
    return { entries: this.log.count, bytes: this.log.bytes };
  }

  /** Frames held because they arrived ahead of a gap. */
  get heldEarly(): number {
    return this.reassembly.entries;
  }

  /** Holds nothing: no entry, no lock of the peer's, nothing of an old stream still on the disk. */
  get settled(): boolean {
    return this.log.count === 0 && this.heldLocks === 0 && this.orphanCount === 0 && this.reassembly.entries === 0;
  }

  /** What HELLO offers the peer's stream: commit-log room, and how many locks it may hold here. */
  get window(): { bytes: number; entries: number; locks: number } {
    return { bytes: this.cfg.commitLogBytesMax, entries: this.cfg.commitLogEntriesMax, locks: this.cfg.locksWindow() };
  }

  // ---- streams and connections -------------------------------------------------------------

  /**
   * The stream from `sourceSession` begins (its first HELLO, or the source restarted). A first
   * stream is simply adopted; a new one drops whatever the old one left: its entries unapplied,
   * its locks (each once its writes still on the disk finish), its rejection record.
   */
  beginStream(sourceSession: number, stream = 0): void {
    // `stream` 0: not said (a heartbeat, or a peer without `tags`): the session's stream as it stands, or its first.
    if (sourceSession === this.streamSource && (stream === 0 || stream <= this.streamNumber)) return;
    const first = this.streamSource === 0;
    if (!first) this.abandonStream();
    this.streamSource = sourceSession;
    this.streamNumber = Math.max(1, stream);
    // Lock ids are per stream: a suspension's new stream must never meet the old one's locks.
    this.ownerPeer = this.streamNumber > 1 ? `${this.deps.peer}/${sourceSession}.${this.streamNumber}` : `${this.deps.peer}/${sourceSession}`;
    this.counters.streamsStarted++;
    const t = this.deps.telemetry;
    if (t.enabled) {
      t.emit({
        kind: 'stream.start', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, role: 'target', sourceSession, targetSession: 0,
        firstSeq: this.log.firstSeq, ...(this.streamNumber > 1 ? { stream: this.streamNumber } : {}),
      });
    }
    if (!first) this.chart?.send({ type: 'stream.begin' });
  }

  /** The data connections that are ready now (frames on them belong to the current stream). */
  connectionsReady(connections: readonly number[]): void {
    this.reassembly.setReady(connections);
  }

  /**
   * The link went down. A LOCK held in the commit log (halt-resume) keeps its rejection record:
   * it is still retried here. A discarded one (retransmit) is retried only if the peer re-sends it
   * after reconnecting, which may be never: its record goes now, and a refused re-send records it
   * again. Frames held early are dropped: the source re-sends everything unconfirmed.
   */
  linkDown(): void {
    this.lastNak = { seq: 0, at: -Infinity };
    if (this.discardSeq !== 0) this.clearRejected();
    this.reassembly.dropFrom();
    this.stopGapTimer();
  }

  // ---- arrivals ----------------------------------------------------------------------------

  onStreamFrame(f: StreamFrame, bytes: number, conn: number): void {
    this.counters.framesReceived++;
    this.counters.bytesReceived += bytes;
    if (f.type === FrameType.Write && f.tokensBack !== undefined) this.onTokensBack(f.tokensBack);
    this.reassembly.saw(conn, f.seq);
    const expected = this.log.nextSeq;
    if (f.seq < expected) return this.onDuplicate(f);
    if (f.seq > expected) return this.onEarly(f, bytes, expected);
    this.accept(f, bytes);
    for (let next = this.reassembly.take(this.log.nextSeq); next !== undefined; next = this.reassembly.take(this.log.nextSeq)) {
      this.accept(next.frame, next.bytes);
    }
    if (this.reassembly.entries === 0) this.stopGapTimer();
    this.drain();
  }

  /**
   * A frame of the peer's stream failed its checks on the way in. If its header was sound, it
   * names its sequence number: a gap there is then certain once the other connections are past it.
   */
  onCorrupt(conn: number, seq: number | undefined): void {
    this.counters.corrupt++;
    if (seq !== undefined) this.reassembly.saw(conn, seq);
    if (seq === undefined || seq === this.log.nextSeq) this.nak(NakReason.Corrupt, this.log.nextSeq);
    else this.checkGap(this.log.nextSeq);
  }

  private accept(f: StreamFrame, bytes: number): void {
    if (this.discardSeq !== 0) {
      this.discardSeq = 0;
      // The peer re-sends from the discarded LOCK (or implied-lock WRITE); anything else there
      // means it gave that lock up.
      if ((f.type !== FrameType.Lock && !hasImpliedLock(f)) || f.lockId !== this.rejectedLockId) this.clearRejected();
      this.chart?.send({ type: 'stream.resumed' });
    }
    if (!this.log.fits(1, bytes)) {
      this.counters.overflows++;
      this.nak(NakReason.Overflow, f.seq);
      return;
    }
    this.log.append({ seq: f.seq, bytes, frame: f, status: NEW, rejected: false, granted: false });
    this.lastNak.seq = 0;
    const t = this.deps.telemetry;
    if (t.enabled) {
      t.emit({ kind: 'commit.append', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, seq: f.seq, entry: KIND[f.type]!, lun: f.lun, entries: this.log.count, bytes: this.log.bytes });
    }
  }

  /** A frame ahead of the one expected: hold it (unless discarding), and ask for the gap once it is a loss. */
  private onEarly(f: StreamFrame, bytes: number, expected: number): void {
    if (this.discardSeq !== 0) {
      this.counters.entriesDiscarded++;
      return;
    }
    const room = this.log.fits(this.reassembly.entries + 1, this.reassembly.bytes + bytes);
    if (room && this.reassembly.hold(f, bytes)) this.counters.framesHeldEarly++;
    this.checkGap(expected);
  }

  private checkGap(expected: number): void {
    if (this.reassembly.gapIsCertain(expected)) {
      this.counters.gaps++;
      this.nak(NakReason.Gap, expected);
      return;
    }
    if (this.gapTimer !== null) return;
    this.gapTimer = this.deps.clock.setTimeout(() => {
      this.gapTimer = null;
      if (this.reassembly.entries === 0 || this.discardSeq !== 0) return;
      this.counters.gaps++;
      this.nak(NakReason.Gap, this.log.nextSeq);
      this.checkGap(this.log.nextSeq);
    }, this.cfg.nakRetryMs);
  }

  private stopGapTimer(): void {
    if (this.gapTimer !== null) this.deps.clock.clearTimeout(this.gapTimer);
    this.gapTimer = null;
  }

  // ---- chart control -----------------------------------------------------------------------

  holdRefusedLock(seq: number): void {
    const e = this.refusedLock;
    if (e && e.seq === seq) this.sendRejected(e, RejectAction.Held);
  }

  retryRefusedLock(): void {
    this.drain();
  }

  discardFromRefusedLock(seq: number): void {
    const e = this.refusedLock;
    if (!e || e.seq !== seq) return;
    this.refusedLock = null;
    this.sendRejected(e, RejectAction.Discarded);
    const removed = this.log.truncateFrom(e.seq) + this.reassembly.dropFrom(e.seq);
    this.counters.entriesDiscarded += removed;
    this.processSeq = Math.min(this.processSeq, this.log.nextSeq);
    this.discardSeq = e.seq;
    this.stopGapTimer();
    const t = this.deps.telemetry;
    if (t.enabled) t.emit({ kind: 'commit.discard', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, from: e.seq, removed });
  }

  repeatDiscardNotice(seq: number): void {
    if (this.discardSeq !== seq || this.rejectedLockId === 0) return;
    this.sendControl({ type: FrameType.LockRejected, lun: 0, seq, flags: 0, lockId: this.rejectedLockId, reason: this.refusedReason, action: RejectAction.Discarded });
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
      if (!result.granted) return this.lockRefused(e, { lun: f.lun, lba: f.lba, count: f.count, lockId: f.lockId, mode, implied: false }, owner, result.blocker);
      this.heldLocks++;
    }
    e.status = DONE;
    this.lockTaken(e, f.lockId, (f.flags & FrameFlag.GrantWanted) !== 0);
    if (this.deps.telemetry.enabled) this.lockEvent('granted', e.seq, { lun: f.lun, lba: f.lba, count: f.count, lockId: f.lockId, mode, implied: false });
    return true;
  }

  /**
   * What follows a granted lock, a LOCK's or an implied one: its rejection record goes, the source
   * hears of the grant if it waits for it or was refused before, and an episode about it ends.
   */
  private lockTaken(e: CommitEntry, lockId: number, grantWanted: boolean): void {
    if (this.rejectedLockId === lockId) this.clearRejected();
    e.granted = true;
    this.counters.locksGranted++;
    if (grantWanted || e.rejected) this.sendControl({ type: FrameType.LockGranted, lun: e.frame.lun, seq: e.seq, flags: 0, lockId });
    if (this.refusedLock === e) {
      this.refusedLock = null;
      this.chart?.send({ type: 'lock.granted', seq: e.seq });
    }
  }

  /**
   * The implied lock a WRITE carries (docs/implied-locks.md): lock `lockId` in write mode on
   * exactly the write's sectors, taken as a LOCK standing just before the write would be (the same
   * checks, table, rejection record and episodes). Called once nothing of the stream that overlaps
   * the write is still on the disk, so the stream's own earlier writes never refuse it.
   * `granted`: go on and apply; `waiting`: refused, processing waits (held or discarded by the
   * chart); `refused`: a protocol violation, NAKed, the entry is done.
   */
  private takeImpliedLock(e: CommitEntry, f: WriteFrame, count: number): 'granted' | 'waiting' | 'refused' {
    const owner = this.owner(f.lockId);
    // A lock id the peer still holds can name no new lock; nor can one beyond its share.
    const violation = this.deps.locks.held(owner) ? NakReason.LockInUse : this.heldLocks >= this.cfg.locksWindow() ? NakReason.LocksExceeded : 0;
    if (violation !== 0) {
      this.refuse(e, violation);
      return 'refused';
    }
    const result = this.deps.locks.tryAcquire({ lun: f.lun, lba: f.lba, count, mode: 'write', owner });
    if (!result.granted) {
      this.lockRefused(e, { lun: f.lun, lba: f.lba, count, lockId: f.lockId, mode: 'write', implied: true }, owner, result.blocker);
      return 'waiting';
    }
    this.heldLocks++;
    this.counters.impliedLocksGranted++;
    this.lockTaken(e, f.lockId, false);
    if (this.deps.telemetry.enabled) this.lockEvent('granted', e.seq, { lun: f.lun, lba: f.lba, count, lockId: f.lockId, mode: 'write', implied: true });
    return 'granted';
  }

  /** An implied lock's write is on the disk (or failed there): the lock goes, as an UNLOCK after it would. */
  private releaseImplied(seq: number, lockId: number): void {
    const lock = this.deps.locks.release(this.owner(lockId));
    if (!lock) return; // a hostile UNLOCK of it came first
    this.heldLocks--;
    this.releasedEvent(seq, lockId, lock, this.streamSource, true);
  }

  /**
   * A lock at the head of processing was refused (a LOCK, or a WRITE's implied lock): by a
   * conflicting lock, a rejection record, or a full lock table (`blocker` null). The first refusal
   * records the rejection, keyed by the lock's id (not by the commit-log entry: under the
   * retransmit policy the entry is discarded and the re-sent one is a new entry), and lets the
   * chart decide between holding and discarding; a retry that fails again says nothing. False:
   * processing waits.
   */
  private lockRefused(e: CommitEntry, lock: LockRequest, owner: LockOwner, blocker: RegionLock | Rejection | null): false {
    if (this.refusedLock === e) return false;
    e.rejected = true;
    this.refusedLock = e;
    this.refusedReason = blocker === null ? RejectReason.TableFull : blocker.owner.kind === 'mirror' ? RejectReason.MirrorLock : RejectReason.LocalLock;
    this.counters.locksRejected++;
    if (blocker === null) this.counters.tableFullRejections++;
    if (this.rejectedLockId !== 0 && this.rejectedLockId !== lock.lockId) this.clearRejected();
    this.rejectedLockId = lock.lockId;
    this.deps.locks.recordRejection({ lun: lock.lun, lba: lock.lba, count: lock.count, owner });
    this.lockEvent('rejected', e.seq, lock);
    this.chart?.send({ type: 'lock.refused', seq: e.seq, lockId: lock.lockId });
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
    const implied = (f.flags & FrameFlag.ImpliedLock) !== 0;
    if (!implied && !this.deps.locks.covers(this.owner(f.lockId), f.lun, f.lba, count)) return this.refuse(e, NakReason.NotLocked);
    const end = f.lba + count;
    // Ordered (async): only once every earlier write is on the disk, so the copy is a prefix at every instant.
    if ((f.flags & FrameFlag.Ordered) !== 0 && this.inflight.length > 0) return false;
    for (const w of this.inflight) if (w.lun === f.lun && w.lba < end && f.lba < w.end) return false;
    if (implied && !e.granted) {
      const taken = this.takeImpliedLock(e, f, count);
      if (taken !== 'granted') return taken === 'refused';
    }
    const span: Span = { lun: f.lun, lba: f.lba, end };
    this.inflight.push(span);
    this.inflightByLock.set(f.lockId, (this.inflightByLock.get(f.lockId) ?? 0) + 1);
    e.status = APPLYING;
    this.issueWrite(dev, e, f, span, count);
    return true;
  }

  private issueWrite(dev: BlockDevice, e: CommitEntry, f: WriteFrame, span: Span, count: number): void {
    const generation = this.generation;
    submitWrite(dev, f.lba, f.data, (err) => {
      // The disk is done with the data, and nothing else reads it: its buffer may carry another frame.
      reassembledFrames.giveBack(f.data);
      if (this.stopped) return;
      if (generation !== this.generation) this.abandonedWriteDone(generation, span, f.lockId);
      else this.written(e, f, span, count, err === undefined ? 0 : NakReason.MediaError);
    });
  }

  private written(e: CommitEntry, f: WriteFrame, span: Span, count: number, failure: NakReason | 0): void {
    this.inflight.splice(this.inflight.indexOf(span), 1);
    const left = this.inflightByLock.get(f.lockId)! - 1;
    if (left === 0) this.inflightByLock.delete(f.lockId);
    else this.inflightByLock.set(f.lockId, left);
    if (failure !== 0) {
      this.refuse(e, failure);
    } else {
      e.status = DONE;
      this.counters.writesApplied++;
      if (this.tagsNow) this.tokens!.applied(e.seq, f.lun, f.tag, f.lba, count);
      const t = this.deps.telemetry;
      if (t.enabled) {
        t.emit({
          kind: 'target.apply', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, seq: e.seq, lockId: f.lockId, tag: f.tag,
          lun: f.lun, lba: f.lba, count, sourceSession: this.streamSource, ...(this.streamNumber > 1 ? { stream: this.streamNumber } : {}),
        });
      }
    }
    if ((f.flags & FrameFlag.ImpliedLock) !== 0) this.releaseImplied(e.seq, f.lockId);
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
      this.releasedEvent(e.seq, lockId, lock, this.streamSource);
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
    if (upTo === 0) return;
    this.log.removeThrough(upTo);
    if (this.tagsNow) this.tokens!.confirmed(upTo);
    const t = this.deps.telemetry;
    if (t.enabled) t.emit({ kind: 'commit.confirm', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, upTo, entries: this.log.count, bytes: this.log.bytes });
    if (wrote || this.log.count === 0) this.sendAck();
    else this.armAckTimer();
  }

  private onDuplicate(f: StreamFrame): void {
    this.counters.duplicates++;
    const now = this.deps.clock.now();
    if (now !== this.lastReackAt) {
      this.lastReackAt = now;
      this.sendAck(true); // the source may have lost our ACK
    }
    if (f.type !== FrameType.Lock && !hasImpliedLock(f)) return;
    const e = this.log.get(f.seq);
    if (e && e === this.refusedLock) this.sendRejected(e, RejectAction.Held);
    else if (e ? e.granted && ((f.flags & FrameFlag.GrantWanted) !== 0 || e.rejected) : (f.flags & FrameFlag.GrantWanted) !== 0) {
      this.sendControl({ type: FrameType.LockGranted, lun: f.lun, seq: f.seq, flags: 0, lockId: f.lockId });
    }
  }

  // ---- a new stream --------------------------------------------------------------------------

  /**
   * Drop what the old stream left. Its entries go unapplied (a write already on the disk finishes,
   * and nothing overlapping it starts before it does); its locks are released, each once its writes
   * on the disk have finished; every timer and episode of it ends.
   */
  private abandonStream(): void {
    const dropped = this.log.restart(1);
    this.counters.entriesAbandoned += dropped.length + this.reassembly.dropFrom();
    this.tokens?.newStream();
    this.processSeq = 1;
    this.discardSeq = 0;
    this.refusedLock = null;
    this.clearRejected();
    this.lastAckSent = 0;
    this.lastNak = { seq: 0, at: -Infinity };
    for (const t of [this.ackTimer, this.gapTimer]) if (t !== null) this.deps.clock.clearTimeout(t);
    this.ackTimer = this.gapTimer = null;
    const waiting = new Map<number, { owner: LockOwner; writes: number; session: number }>();
    for (const lock of this.deps.locks.locks()) {
      if (lock.owner.kind !== 'mirror' || lock.owner.peer !== this.ownerPeer) continue;
      this.heldLocks--;
      const writes = this.inflightByLock.get(lock.owner.lockId) ?? 0;
      if (writes > 0) waiting.set(lock.owner.lockId, { owner: lock.owner, writes, session: this.streamSource });
      else this.releaseOld(lock.owner, this.streamSource);
    }
    if (waiting.size > 0) this.orphans.set(this.generation, waiting);
    this.orphanCount += waiting.size;
    this.inflightByLock = new Map();
    this.generation++;
  }

  /** A write of an old stream finished on the disk: the last one of its lock releases the lock. */
  private abandonedWriteDone(generation: number, span: Span, lockId: number): void {
    this.inflight.splice(this.inflight.indexOf(span), 1);
    const locks = this.orphans.get(generation);
    const orphan = locks?.get(lockId);
    if (locks && orphan && --orphan.writes === 0) {
      locks.delete(lockId);
      if (locks.size === 0) this.orphans.delete(generation);
      this.orphanCount--;
      this.releaseOld(orphan.owner, orphan.session);
    }
    this.drain();
  }

  private releaseOld(owner: LockOwner, session: number): void {
    const lock = this.deps.locks.release(owner);
    if (lock && owner.kind === 'mirror') this.releasedEvent(0, owner.lockId, lock, session);
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
    // The token watermark rides along (feature `tags`, docs/tag-tables.md, "Tokens").
    const tokens = Math.min(this.tokensDurable, seq);
    this.sendControl(tokens > 0 ? { type: FrameType.Ack, lun: 0, seq, flags: 0, tokens } : { type: FrameType.Ack, lun: 0, seq, flags: 0 });
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
    this.deps.send(encodeFrame(frame));
  }

  /** `target.lock` for a grant or refusal; an implied lock's event says so (and carries its WRITE's seq). */
  private lockEvent(result: 'granted' | 'rejected', seq: number, lock: LockRequest): void {
    const t = this.deps.telemetry;
    if (!t.enabled) return;
    t.emit({
      kind: 'target.lock', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, result, seq, lockId: lock.lockId,
      lun: lock.lun, lba: lock.lba, count: lock.count, mode: lock.mode, sourceSession: this.streamSource, ...(lock.implied ? { implied: true } : {}),
    });
  }

  private releasedEvent(seq: number, lockId: number, lock: RegionLock, sourceSession: number, implied = false): void {
    const t = this.deps.telemetry;
    if (!t.enabled) return;
    t.emit({
      kind: 'target.lock', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, result: 'released', seq, lockId,
      lun: lock.lun, lba: lock.lba, count: lock.count, mode: lock.mode, sourceSession, ...(implied ? { implied: true } : {}),
    });
  }

  /** Mirror locks are owned per stream: a restarted source's lock ids never meet its old ones. */
  private owner(lockId: number): LockOwner {
    return { kind: 'mirror', peer: this.ownerPeer, lockId };
  }
}
