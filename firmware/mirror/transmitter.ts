import type { SequencedLog } from '../logs/sequenced-log.ts';
import type { Clock } from '../ports/clock.ts';
import { dataBytesOf, subEntryBytes } from '../protocol/batch.ts';
import { encodeBatch } from '../protocol/encode.ts';
import { BATCH_ENTRIES_MAX, FrameFlag } from '../protocol/frame.ts';
import { OFF_FLAGS, OFF_LUN, OFF_TYPE } from '../protocol/layout.ts';
import { CongestionWindow } from './congestion-window.ts';
import { DeliveryRate } from './delivery-rate.ts';
import { RetransmitTimer, type RetransmitTimerConfig } from './retransmit-timer.ts';
import type { RollbackEntry } from './rollback-entry.ts';

/** Congestion window: start at 64 KiB, never below 16 KiB, grow in congestion avoidance by about 4 KiB per round trip. */
const CWND_INITIAL_BYTES = 64 * 1024;
const CWND_MIN_BYTES = 16 * 1024;
const CWND_SEGMENT_BYTES = 4096;
const EPSILON_MS = 1e-6;
/** An armed ack timer due this much later than the current RTO says is re-armed earlier. */
const RTO_REARM_SLACK_MS = 10;

export interface TransmitterConfig {
  /** Most bytes sent and not yet confirmed; the peer's advertised window can only lower it. */
  sendWindowBytesMax: number;
  rollbackLogEntriesMax: number;
  ackTimeout: RetransmitTimerConfig;
}

export interface TransmitterDeps {
  clock: Clock;
  /** Put bytes on the link: the data connection that took them, or -1 (then the link calls `writable`). */
  send(bytes: Uint8Array, retransmit: boolean): number;
  /** The oldest unconfirmed entry went unanswered for a whole RTO. */
  timedOut(): void;
  /** Tokens to return on a BATCH (feature `tags`, docs/tag-tables.md, "Tokens"): a seq below every entry in the log, or 0. */
  tokensBack?(): number;
  /** Counters to keep (the channel's). */
  counters: {
    framesSent: number; bytesSent: number; writesSent: number; locksSent: number; unlocksSent: number; entriesRetransmitted: number;
    batchesSent: number; entriesBatched: number;
  };
}

/**
 * While batching and link-bound, the bytes in flight stay under this many bandwidth-delay products
 * of the bare path, and a new frame waits for room for a whole batch of half that (see
 * `holdCeilingBytes`). At the low point two BDPs are still in flight, so the link never idles;
 * where latency dominates the flight is about one BDP, far below, and nothing waits.
 */
const HOLD_BDP_GAIN = 4;

/**
 * The source's transmitter: what of the rollback log is on the wire. It sends from a cursor as
 * far as the gate (the chart's say), the peer's window, the congestion window and the link allow;
 * a rollback moves the cursor back (go-back-N) and everything from there is sent again. One timer
 * watches the oldest unconfirmed entry (RTO after RFC 6298, Karn's rule), re-armed lazily so that
 * acks making progress cost nothing here. The log itself belongs to the source channel; this class
 * only reads it and keeps `cursor`/`inflightBytes` right as entries leave.
 *
 * Batching (docs/implied-locks.md), when the peer takes BATCHes: consecutive entries that are
 * ready together (of one LUN, within the windows and the peer's batchBytesMax) leave in one BATCH
 * frame; entries stay entries (one sequence number each, sent, re-sent and confirmed one by one,
 * so a rollback to the middle of a batch re-sends from that entry). Entries are ready together when
 * one confirmation released several host writes, and when the link is the bottleneck: then the
 * bytes in flight stay under a ceiling of a few bandwidth-delay products (the bandwidth the largest
 * delivery rate confirmations show, as in BBR; the delay the path's round trip measured at the
 * HELLO handshake, on an idle link), and a new frame waits until there is room for a whole batch
 * (sender-side silly-window avoidance, RFC 1122 4.2.3.4), so what gathers meanwhile leaves as one
 * frame. Where latency dominates the flight stays far below the ceiling: every entry leaves at
 * once, alone. Ordered entries (async) never wait: the target applies them one at a time, so a
 * batch held back for them arrives as a burst its disk works through serially (measured: a loss).
 */
export class Transmitter {
  private readonly rto: RetransmitTimer;
  private readonly cwnd: CongestionWindow;
  private gate = false;
  private pumping = false;
  private pumpAgain = false;
  /** The next entry to send. */
  private cursor = 1;
  private inflightBytes = 0;
  private windowBytes: number;
  private windowEntries: number;
  private ackTimer: unknown = null;
  private ackTimerDueMs = 0;
  private readonly ackTimerFired = (): void => this.onAckTimer();
  /** Largest BATCH payload to send (0: no batching). */
  private batchBytesMax = 0;
  private deferring = false;
  private readonly rate = new DeliveryRate();
  /** Bytes of sent entries confirmed so far, for delivery-rate samples. */
  private delivered = 0;
  /** The path's round trip when idle, from the HELLO handshake (Infinity: not measured). */
  private pathRttMs = Infinity;
  private readonly batchFrames: Uint8Array[] = [];

  constructor(private readonly cfg: TransmitterConfig, private readonly log: SequencedLog<RollbackEntry>, private readonly deps: TransmitterDeps) {
    this.rto = new RetransmitTimer(cfg.ackTimeout);
    this.cwnd = newCongestionWindow(cfg.sendWindowBytesMax);
    this.windowBytes = cfg.sendWindowBytesMax;
    this.windowEntries = cfg.rollbackLogEntriesMax;
  }

  /** Sequence number of the next entry to send (entries before it are out, or confirmed). */
  get next(): number {
    return this.cursor;
  }

  /** Smallest round trip seen: a NAK about an entry sent more recently than this predates it. */
  get minRttMs(): number {
    return this.rto.minRttMs;
  }

  get isOpen(): boolean {
    return this.gate;
  }

  /** The peer's window, from its HELLO. */
  setPeerWindow(bytes: number, entries: number, frameOverheadBytes: number): void {
    this.windowBytes = Math.max(frameOverheadBytes, Math.min(this.cfg.sendWindowBytesMax, bytes));
    this.windowEntries = Math.max(1, entries);
  }

  setGate(open: boolean): void {
    const opening = open && !this.gate;
    this.gate = open;
    if (opening) this.pump();
  }

  /** Send BATCHes of at most this many payload bytes from now on (0: none): what the peer takes and we allow. */
  setBatchBytesMax(bytes: number): void {
    this.batchBytesMax = Math.max(0, bytes);
    if (this.batchBytesMax === 0) this.deferring = false;
  }

  /** The path's idle round trip as a HELLO handshake measured it (the smallest such sample counts). */
  setPathRtt(ms: number): void {
    if (ms > 0 && ms < this.pathRttMs) this.pathRttMs = ms;
  }

  /**
   * While batching: hold every pump until `defer(false)`, whose caller then pumps once (what a
   * burst of confirmations released leaves together). Does nothing otherwise.
   */
  defer(on: boolean): void {
    this.deferring = on && this.batchBytesMax > 0;
  }

  /** The ceiling on bytes in flight while batching and link-bound (Infinity: batching off, or rate or path unknown). */
  get holdCeilingBytes(): number {
    if (this.batchBytesMax === 0) return Infinity;
    const bdpBytes = this.rate.bytesPerMs * this.pathRttMs;
    return bdpBytes > 0 && Number.isFinite(bdpBytes) ? HOLD_BDP_GAIN * bdpBytes : Infinity;
  }

  /**
   * Send from the cursor as far as the gate, the windows and the link allow. Re-entrant calls (a
   * send that tells the chart about an edge, whose action opens the gate) only ask the loop
   * already running to look again: one loop moves the cursor.
   */
  pump(): void {
    if (this.pumping || this.deferring) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        this.sendWhatFits();
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
    this.armAckTimer();
  }

  private sendWhatFits(): void {
    const ceiling = this.holdCeilingBytes;
    while (this.gate && this.cursor < this.log.nextSeq) {
      const entry = this.log.get(this.cursor)!;
      const inflightEntries = this.cursor - this.log.firstSeq;
      const windowBytes = Math.min(this.windowBytes, this.cwnd.bytes);
      if (inflightEntries > 0 && (inflightEntries >= this.windowEntries || this.inflightBytes + entry.bytes > windowBytes)) break;
      if (this.batchBytesMax > 0 && entry.batch) {
        let allowedBytes = windowBytes;
        if (ceiling !== Infinity && (entry.frame[OFF_FLAGS]! & FrameFlag.Ordered) === 0) {
          // Link-bound: send only once a whole batch (half the ceiling) fits under it, or all that is ready does.
          const batchBytes = ceiling / 2;
          if (this.inflightBytes > 0 && this.inflightBytes + this.readyBytes(batchBytes) > ceiling) break;
          allowedBytes = Math.min(windowBytes, this.inflightBytes + batchBytes);
        }
        const n = this.batchable(inflightEntries, allowedBytes);
        if (n > 1) {
          if (!this.transmitBatch(n)) break;
          continue;
        }
      }
      if (!this.transmit(entry)) break;
      this.inflightBytes += entry.bytes;
      this.cursor++;
    }
  }

  /** Bytes of the entries from the cursor on, counted up to `limit` (then `limit`). */
  private readyBytes(limit: number): number {
    let bytes = 0;
    for (let s = this.cursor; s < this.log.nextSeq && bytes < limit; s++) bytes += this.log.get(s)!.bytes;
    return Math.min(bytes, limit);
  }

  /**
   * How many entries from the cursor may leave in one BATCH: consecutive batching entries of the
   * cursor's LUN, within the peer's entry window, the bytes allowed in flight (`windowBytes`) and
   * batchBytesMax, at most BATCH_ENTRIES_MAX. The first entry is already known to fit the windows.
   */
  private batchable(inflightEntries: number, windowBytes: number): number {
    const first = this.log.get(this.cursor)!.frame;
    const hi = first[OFF_LUN]!;
    const lo = first[OFF_LUN + 1]!;
    const entriesMax = Math.min(BATCH_ENTRIES_MAX, this.windowEntries - inflightEntries, this.log.nextSeq - this.cursor);
    let bytes = this.inflightBytes;
    let payload = 0;
    let n = 0;
    while (n < entriesMax) {
      const e = this.log.get(this.cursor + n)!;
      const f = e.frame;
      const sub = subEntryBytes(f[OFF_TYPE]!, dataBytesOf(f));
      if (!e.batch || f[OFF_LUN] !== hi || f[OFF_LUN + 1] !== lo || payload + sub > this.batchBytesMax) break;
      if (n > 0 && bytes + e.bytes > windowBytes) break;
      bytes += e.bytes;
      payload += sub;
      n++;
    }
    return n;
  }

  /** Send the `n` entries from the cursor as one BATCH; false if the link had no room. */
  private transmitBatch(n: number): boolean {
    const frames = this.batchFrames;
    let resent = false;
    for (let i = 0; i < n; i++) {
      const e = this.log.get(this.cursor + i)!;
      frames.push(e.frame);
      if (e.sends > 0) resent = true;
    }
    const bytes = encodeBatch(frames, resent ? FrameFlag.Retransmit : 0, this.deps.tokensBack?.() ?? 0);
    frames.length = 0;
    const conn = this.deps.send(bytes, resent);
    if (conn < 0) return false;
    const c = this.deps.counters;
    c.framesSent++;
    c.bytesSent += bytes.length;
    c.batchesSent++;
    c.entriesBatched += n;
    for (let i = 0; i < n; i++) {
      const e = this.log.get(this.cursor)!;
      this.sent(e, conn);
      this.inflightBytes += e.bytes;
      this.cursor++;
    }
    return true;
  }

  /** Send one entry now, outside the cursor (a probe of a halted or awaited LOCK). */
  transmit(entry: RollbackEntry): boolean {
    const conn = this.deps.send(entry.frame, entry.sends > 0);
    if (conn < 0) return false;
    const c = this.deps.counters;
    c.framesSent++;
    c.bytesSent += entry.bytes;
    this.sent(entry, conn);
    return true;
  }

  /** An entry went out on `conn`, alone or in a batch. */
  private sent(entry: RollbackEntry, conn: number): void {
    const c = this.deps.counters;
    entry.sends++;
    entry.sentAt = this.deps.clock.now();
    entry.conn = conn;
    entry.delivered = this.delivered;
    if (entry.sends > 1) c.entriesRetransmitted++;
    else if (entry.kind === 'write') c.writesSent++;
    else if (entry.kind === 'lock') c.locksSent++;
    else c.unlocksSent++;
  }

  /** Move the cursor back to `seq`: everything from there on counts as not yet sent. */
  rewind(seq: number): void {
    if (seq < this.log.firstSeq || seq >= this.cursor) return;
    this.cursor = seq;
    let bytes = 0;
    for (let s = this.log.firstSeq; s < seq; s++) bytes += this.log.get(s)!.bytes;
    this.inflightBytes = bytes;
  }

  /**
   * A loss was seen from `from` on: the link is over-driven or lossy, so send less. A NAK halves
   * the window; a timeout or a reconnection (everything in flight was lost) starts it again, and a
   * timeout also backs the RTO off. (A refused lock or a reset connection says nothing about
   * congestion: callers do not report those.)
   */
  lost(from: number, cause: 'nak' | 'timeout' | 'reconnect'): void {
    this.cwnd.lost(from, this.cursor, cause !== 'nak');
    if (cause === 'timeout') this.rto.timedOut();
  }

  /**
   * The entry `e` is leaving the log, confirmed. Call for each, in order, from the log's
   * `removeThrough` visitor: it keeps the cursor and the bytes in flight right.
   */
  leaving(e: RollbackEntry): void {
    if (e.seq < this.cursor) this.inflightBytes -= e.bytes;
    else this.cursor = e.seq + 1; // confirmed before we re-sent it: nothing to re-send
  }

  /** A run of entries was confirmed, `last` the newest: sample the round trip, grow the window. */
  confirmed(last: RollbackEntry, sentBytes: number): void {
    const rtt = last.sends === 1 ? this.deps.clock.now() - last.sentAt : -1;
    if (rtt >= 0) this.rto.sample(rtt);
    this.delivered += sentBytes;
    // Bytes delivered while `last` was in flight, over its flight: a delivery-rate sample (only
    // while batching, the one user; an entry sent more than once gives none, as with Karn's rule).
    if (this.batchBytesMax > 0 && rtt > 0) this.rate.sample((this.delivered - last.delivered) / rtt);
    this.cwnd.acked(sentBytes, rtt, this.rto.minRttMs);
    // The timer is re-armed lazily, but not so lazily that a timeout armed with the initial RTO
    // (before any sample) hides a loss for the whole of it once the real RTO is known to be short.
    if (this.ackTimer !== null && this.cursor > this.log.firstSeq) {
      const due = this.log.peek()!.sentAt + this.rto.rtoMs;
      if (this.ackTimerDueMs > due + RTO_REARM_SLACK_MS) {
        this.stopAckTimer();
        this.armAckTimer();
      }
    }
  }

  /** The lowest unconfirmed entry last sent on `conn`, or 0 if none is in flight there. */
  firstInFlightOn(conn: number): number {
    for (let s = this.log.firstSeq; s < this.cursor; s++) if (this.log.get(s)!.conn === conn) return s;
    return 0;
  }

  /** A new stream: nothing is in flight, the cursor starts at the log's head. */
  restart(): void {
    this.cursor = this.log.firstSeq;
    this.inflightBytes = 0;
    this.stopAckTimer();
  }

  stop(): void {
    this.stopAckTimer();
  }

  private stopAckTimer(): void {
    if (this.ackTimer !== null) this.deps.clock.clearTimeout(this.ackTimer);
    this.ackTimer = null;
  }

  private armAckTimer(): void {
    if (this.ackTimer !== null || !this.gate || this.cursor <= this.log.firstSeq) return;
    const head = this.log.peek()!;
    const now = this.deps.clock.now();
    const delay = Math.max(0, head.sentAt + this.rto.rtoMs - now);
    this.ackTimerDueMs = now + delay;
    this.ackTimer = this.deps.clock.setTimeout(this.ackTimerFired, delay);
  }

  private onAckTimer(): void {
    this.ackTimer = null;
    if (!this.gate || this.cursor <= this.log.firstSeq) return;
    const head = this.log.peek()!;
    if (this.deps.clock.now() + EPSILON_MS >= head.sentAt + this.rto.rtoMs) this.deps.timedOut();
    else this.armAckTimer();
  }
}

function newCongestionWindow(sendWindowBytesMax: number): CongestionWindow {
  return new CongestionWindow({
    initialBytes: Math.min(sendWindowBytesMax, CWND_INITIAL_BYTES),
    minBytes: Math.min(sendWindowBytesMax, CWND_MIN_BYTES),
    maxBytes: sendWindowBytesMax,
    segmentBytes: CWND_SEGMENT_BYTES,
  });
}
