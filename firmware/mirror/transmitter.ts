import type { SequencedLog } from '../logs/sequenced-log.ts';
import type { Clock } from '../ports/clock.ts';
import { CongestionWindow } from './congestion-window.ts';
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
  /** Counters to keep (the channel's). */
  counters: { framesSent: number; bytesSent: number; writesSent: number; locksSent: number; unlocksSent: number; entriesRetransmitted: number };
}

/**
 * The source's transmitter: what of the rollback log is on the wire. It sends from a cursor as
 * far as the gate (the chart's say), the peer's window, the congestion window and the link allow;
 * a rollback moves the cursor back (go-back-N) and everything from there is sent again. One timer
 * watches the oldest unconfirmed entry (RTO after RFC 6298, Karn's rule), re-armed lazily so that
 * acks making progress cost nothing here. The log itself belongs to the source channel; this class
 * only reads it and keeps `cursor`/`inflightBytes` right as entries leave.
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

  /**
   * Send from the cursor as far as the gate, the windows and the link allow. Re-entrant calls (a
   * send that tells the chart about an edge, whose action opens the gate) only ask the loop
   * already running to look again: one loop moves the cursor.
   */
  pump(): void {
    if (this.pumping) {
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
    while (this.gate && this.cursor < this.log.nextSeq) {
      const entry = this.log.get(this.cursor)!;
      const inflightEntries = this.cursor - this.log.firstSeq;
      const windowBytes = Math.min(this.windowBytes, this.cwnd.bytes);
      if (inflightEntries > 0 && (inflightEntries >= this.windowEntries || this.inflightBytes + entry.bytes > windowBytes)) break;
      if (!this.transmit(entry)) break;
      this.inflightBytes += entry.bytes;
      this.cursor++;
    }
  }

  /** Send one entry now, outside the cursor (a probe of a halted or awaited LOCK). */
  transmit(entry: RollbackEntry): boolean {
    const conn = this.deps.send(entry.frame, entry.sends > 0);
    if (conn < 0) return false;
    const c = this.deps.counters;
    entry.sends++;
    entry.sentAt = this.deps.clock.now();
    entry.conn = conn;
    c.framesSent++;
    c.bytesSent += entry.bytes;
    if (entry.sends > 1) c.entriesRetransmitted++;
    else if (entry.kind === 'write') c.writesSent++;
    else if (entry.kind === 'lock') c.locksSent++;
    else c.unlocksSent++;
    return true;
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
