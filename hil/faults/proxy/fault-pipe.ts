import type { TimerHandle } from '../../../firmware/ports/clock.ts';
import { applyFlips, type ChannelKind, type FrameDecision, type ProxyDirection } from './frame-decisions.ts';
import type { StreamPiece } from './frame-splitter.ts';
import type { ProxyCore } from './proxy-core.ts';
import type { ChannelCounters } from './proxy-stats.ts';
import type { FrameFaultName } from '../../trace/events.ts';

type FramePiece = Extract<StreamPiece, { kind: 'frame' }>;

/** Where a pipe's bytes go: a socket, a serial line, a datagram socket. */
export interface PipeSink {
  /** Take `bytes`; false asks the pipe to wait for {@link FaultPipe.drained}. */
  write(bytes: Uint8Array): boolean;
  /**
   * Optional: hold the writes of one pass together, and let them go as one (a socket's
   * cork/uncork: one writev for the frames a chunk brought, instead of a syscall per frame).
   */
  cork?(): void;
  uncork?(): void;
}

export interface FaultPipeOptions {
  core: ProxyCore;
  dir: ProxyDirection;
  /** The channel's name in stats and events, and its key for fault decisions. */
  channel: string;
  kind: ChannelKind;
  counters: ChannelCounters;
  sink: PipeSink;
  /**
   * `stream`: a byte stream keeps its order; a delayed frame holds back everything behind it (head
   * of line), and only reordering lets a later frame pass. `datagram`: each datagram goes at its
   * own time, so a delayed one is overtaken.
   */
  ordering: 'stream' | 'datagram';
  /**
   * What happens above the queue bound: `pause` asks the source to stop reading (`onPressure`) and
   * loses nothing; `drop` loses the arriving frame (a line or datagram socket cannot be paused).
   */
  overflow: 'pause' | 'drop';
  queueBytesMax: number;
  /** Pieces queued and held; with `pause`, a bound like the bytes', with `drop`, arriving frames beyond it are dropped. */
  queueItemsMax: number;
  onPressure?: (over: boolean) => void;
  /** A reset was drawn for this frame: the owner resets the connection (the frame is lost with it). */
  onReset?: (piece: FramePiece) => void;
}

interface Item {
  bytes: Uint8Array;
  frame: boolean;
  dueMs: number;
}

interface Held {
  bytes: Uint8Array;
  delayMs: number;
  duplicate: boolean;
  /** Later frames still to overtake it. */
  left: number;
  deadlineMs: number;
}

/**
 * One direction of one channel through the proxy (docs/fault-proxy.md 3): takes pieces in arrival
 * order (frames and noise, or datagrams), applies the frame's fault decision and the black holes,
 * and writes what survives to the sink at its time, paced by the direction's pacer.
 *
 * Black holes swallow at both ends of the pipe: a piece that completes while its direction is
 * covered, and one whose turn to leave comes while it is (it was in flight when the hole began).
 * Noise is relayed as it came; only frames are struck, counted and numbered. One timer per pipe
 * at most, for the earliest of: the head's due time, the pacer's next slot, a held frame's deadline.
 */
export class FaultPipe {
  private readonly o: FaultPipeOptions;
  private readonly queue: Item[] = [];
  private head = 0;
  private readonly held: Held[] = [];
  private queuedBytes = 0;
  private heldBytes = 0;
  private lastDueMs = 0;
  private frameIndex = 0;
  private sinkBlocked = false;
  private pressured = false;
  private wakeTimer: TimerHandle | null = null;
  private wakeAtMs = Infinity;
  private finishing: (() => void) | null = null;
  private closed = false;

  constructor(opts: FaultPipeOptions) {
    this.o = opts;
  }

  /** Bytes waiting in the pipe (queued and held). */
  get pendingBytes(): number {
    return this.queuedBytes + this.heldBytes;
  }

  /** Frames numbered so far (the next frame's index). */
  get framesNumbered(): number {
    return this.frameIndex;
  }

  accept(piece: StreamPiece): void {
    if (this.closed) return;
    const c = this.o.counters;
    c.bytesIn += piece.bytes.length;
    if (piece.kind === 'noise') {
      c.noiseBytes += piece.bytes.length;
      if (this.o.core.holes.blocked(this.o.dir)) c.bytesSwallowed += piece.bytes.length;
      else this.enqueue(piece.bytes, false, 0);
    } else {
      this.acceptFrame(piece);
    }
    this.pump();
  }

  /** The sink can take more. */
  drained(): void {
    this.sinkBlocked = false;
    this.pump();
  }

  /** The source ended: held frames go now, and `then` runs once everything has left. */
  finish(then: () => void): void {
    if (this.closed) return;
    this.finishing = then;
    this.releaseHeld(() => true);
    this.pump();
  }

  /** Drop everything and stop; nothing is written after this. */
  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.head = 0;
    this.held.length = 0;
    this.queuedBytes = this.heldBytes = 0;
    if (this.wakeTimer !== null) this.o.core.cancel(this.wakeTimer);
    this.wakeTimer = null;
    this.finishing = null;
  }

  private acceptFrame(piece: FramePiece): void {
    const { core, dir, counters: c } = this.o;
    const len = piece.bytes.length;
    const index = this.frameIndex++;
    c.framesSeen++;
    if (core.holes.blocked(dir)) {
      c.framesSwallowed++;
      c.bytesSwallowed += len;
      return;
    }
    if (this.o.overflow === 'drop' && (this.pendingBytes + len > this.o.queueBytesMax || this.items() >= this.o.queueItemsMax)) {
      c.framesDroppedQueueFull++;
      core.warnOnce(`queue:${dir}:${this.o.channel}`, { dir, channel: this.o.channel, pendingBytes: this.pendingBytes, limit: this.o.queueBytesMax },
        'fault proxy: a pipe is full; arriving frames are dropped (counted framesDroppedQueueFull)');
      return;
    }
    const d = core.decider.decide(this.o, { index, type: piece.type, length: len });
    if (this.lost(d, piece)) return;
    const bytes = d.flips.length > 0 ? applyFlips(piece.bytes, d.flips) : piece.bytes;
    if (d.flips.length > 0) this.fault('corrupt', piece, 0, () => c.framesCorrupted++);
    if (d.delayed) this.fault('delay', piece, d.delayMs, () => c.framesDelayed++);
    if (d.overtakers > 0 && this.held.length < core.limits.heldFramesMax) {
      this.fault('reorder', piece, d.delayMs, () => c.framesReordered++);
      const deadlineMs = core.nowMs() + core.limits.reorderHoldMsMax;
      this.held.push({ bytes, delayMs: d.delayMs, duplicate: d.duplicate, left: d.overtakers, deadlineMs });
      this.heldBytes += len * (d.duplicate ? 2 : 1);
      if (d.duplicate) this.fault('duplicate', piece, d.delayMs, () => c.framesDuplicated++);
      this.wake(core.nowMs() + core.limits.reorderHoldMsMax);
      return;
    }
    if (d.overtakers > 0) {
      c.reorderLimitHits++;
      core.warnOnce(`held:${dir}:${this.o.channel}`, { dir, channel: this.o.channel, limit: core.limits.heldFramesMax },
        'fault proxy: too many frames held back for reordering; this one goes in order (counted reorderLimitHits)');
    }
    this.enqueue(bytes, true, d.delayMs);
    if (d.duplicate) {
      this.fault('duplicate', piece, d.delayMs, () => c.framesDuplicated++);
      this.enqueue(bytes, true, d.delayMs);
    }
    this.overtake();
  }

  /** Heartbeat loss, a reset or a drop: the frame goes no further. */
  private lost(d: FrameDecision, piece: FramePiece): boolean {
    const { core, dir, counters: c } = this.o;
    if (d.heartbeatLost) {
      c.heartbeatsLost++;
      const { node, peer } = core.ends(dir);
      core.emit({ kind: 'link.fault', t: core.nowMs(), node, fault: 'hbloss', peer, type: core.typeName(piece.type), channel: this.o.channel });
      return true;
    }
    if (d.reset) {
      this.o.onReset?.(piece);
      return true;
    }
    if (d.drop) this.fault('drop', piece, 0, () => c.framesDropped++);
    return d.drop;
  }

  /** Count a fault (`count`) and publish it; `delayMs` is the extra delay the frame gets (0 for drop and corrupt). */
  private fault(fault: FrameFaultName, piece: FramePiece, delayMs: number, count: () => void): void {
    const core = this.o.core;
    count();
    const { node, peer } = core.ends(this.o.dir);
    const { seq, lun } = piece;
    core.emit({ kind: 'link.fault', t: core.nowMs(), node, fault, peer, type: core.typeName(piece.type), seq, lun, delayMs, channel: this.o.channel });
  }

  /** A frame went by in order: every held frame has one overtaker fewer. */
  private overtake(): void {
    if (this.held.length === 0) return;
    for (const h of this.held) h.left--;
    this.releaseHeld((h) => h.left <= 0);
  }

  private releaseHeld(due: (h: Held) => boolean): void {
    for (let i = 0; i < this.held.length;) {
      const h = this.held[i]!;
      if (!due(h)) {
        i++;
        continue;
      }
      this.held.splice(i, 1);
      this.heldBytes -= h.bytes.length * (h.duplicate ? 2 : 1);
      this.enqueue(h.bytes, true, h.delayMs);
      if (h.duplicate) this.enqueue(h.bytes, true, h.delayMs);
    }
  }

  private enqueue(bytes: Uint8Array, frame: boolean, delayMs: number): void {
    const now = this.o.core.nowMs();
    let dueMs = now + delayMs;
    if (this.o.ordering === 'stream') {
      dueMs = Math.max(dueMs, this.lastDueMs);
      this.lastDueMs = dueMs;
      this.queue.push({ bytes, frame, dueMs });
    } else {
      let i = this.queue.length;
      while (i > this.head && this.queue[i - 1]!.dueMs > dueMs) i--;
      this.queue.splice(i, 0, { bytes, frame, dueMs });
    }
    this.queuedBytes += bytes.length;
  }

  private items(): number {
    return this.queue.length - this.head + this.held.length;
  }

  private pump(): void {
    if (this.closed) return;
    let nextWake: number;
    const sink = this.o.sink;
    sink.cork?.();
    try {
      nextWake = this.drainQueue();
    } finally {
      sink.uncork?.();
    }
    if (this.closed) return;
    if (this.held.length > 0) nextWake = Math.min(nextWake, ...this.held.map((h) => h.deadlineMs));
    if (nextWake < Infinity) this.wake(nextWake);
    this.checkPressure();
    if (this.finishing !== null && this.head >= this.queue.length && this.held.length === 0) {
      const then = this.finishing;
      this.finishing = null;
      then();
    }
  }

  /** Write what is due, as the pacer allows; returns when to look again (Infinity: when something arrives). */
  private drainQueue(): number {
    const { core, dir, counters: c } = this.o;
    const pacer = core.pacers[dir];
    let nextWake = Infinity;
    while (this.head < this.queue.length && !this.sinkBlocked && !this.closed) {
      const item = this.queue[this.head]!;
      const now = core.nowMs();
      if (item.dueMs > now) {
        nextWake = item.dueMs;
        break;
      }
      if (core.holes.blocked(dir)) {
        this.shift(item);
        c.bytesSwallowed += item.bytes.length;
        if (item.frame) c.framesSwallowed++;
        continue;
      }
      const wait = pacer.admit(item.bytes.length, now);
      if (wait > 0) {
        nextWake = now + wait;
        break;
      }
      this.shift(item);
      c.bytesOut += item.bytes.length;
      if (item.frame) c.framesForwarded++;
      if (!this.o.sink.write(item.bytes)) this.sinkBlocked = true;
    }
    return nextWake;
  }

  private shift(item: Item): void {
    this.queuedBytes -= item.bytes.length;
    this.head++;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Make sure the pipe wakes by `atMs` (one timer: an earlier wake replaces a later one). */
  private wake(atMs: number): void {
    if (this.wakeTimer !== null && this.wakeAtMs <= atMs) return;
    const core = this.o.core;
    if (this.wakeTimer !== null) core.cancel(this.wakeTimer);
    this.wakeAtMs = atMs;
    this.wakeTimer = core.later(() => {
      this.wakeTimer = null;
      this.wakeAtMs = Infinity;
      this.releaseHeld((h) => h.deadlineMs <= core.nowMs());
      this.pump();
    }, atMs - core.nowMs());
  }

  private checkPressure(): void {
    if (this.o.overflow !== 'pause') return;
    const pending = this.pendingBytes;
    const items = this.items();
    if (!this.pressured && (pending > this.o.queueBytesMax || items > this.o.queueItemsMax)) {
      this.pressured = true;
      this.o.counters.queuePauses++;
      const { dir, channel } = this.o;
      this.o.core.warnOnce(`pause:${dir}:${channel}`, { dir, channel, pendingBytes: pending, pieces: items, limit: this.o.queueBytesMax },
        'fault proxy: a pipe reached its bound; its source is paused until it drains (counted queuePauses)');
      this.o.onPressure?.(true);
    } else if (this.pressured && pending <= this.o.queueBytesMax / 2 && items <= this.o.queueItemsMax / 2) {
      this.pressured = false;
      this.o.onPressure?.(false);
    }
  }
}
