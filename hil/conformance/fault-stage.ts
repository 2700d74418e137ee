import { decodeFrame, FrameDecoder, FrameType, type Frame } from '../../firmware/protocol/index.ts';
import type { LinkEndpoint, LinkHandler } from '../../firmware/ports/link.ts';
import type { HostClock } from '../../host/clock/clock.ts';
import { FrameSplitter } from '../faults/proxy/frame-splitter.ts';

/**
 * The conformance battery's fault stage (docs/conformance.md 3): a LinkEndpoint between the source
 * firmware and its live link, so a case decides what happens to each frame the firmware sends,
 * and sees every frame the target sends back. The firmware encodes every byte; the stage only cuts
 * what it sends into frames (the fault proxy's splitter, with the firmware's decoder as judge) and
 * then forwards, drops, flips a bit, or re-cuts the stream into odd pieces, several frames a write.
 *
 * Bounded: each connection's queue holds at most {@link STAGE_QUEUE_BYTES_MAX} (beyond it `send`
 * refuses and `writable` follows, as the transport itself does), and the logs at most
 * {@link STAGE_LOG_ENTRIES_MAX} records each (a case sends tens of frames; the bound only guards
 * against a target that floods us).
 */
export const STAGE_QUEUE_BYTES_MAX = 4 * 1024 * 1024;
export const STAGE_LOG_ENTRIES_MAX = 100_000;
/** Piece sizes the split shape cycles through: odd, small and large, so frame boundaries fall anywhere. */
const PIECE_BYTES = [1, 5, 47, 3, 190, 11, 2, 97, 13, 701] as const;

/** A stream frame the firmware sent: which copy of its sequence number this is (0: the first). */
export interface OutgoingFrame {
  conn: number;
  type: number;
  seq: number;
  copy: number;
  bytes: Uint8Array;
}

/** What the stage does with one outgoing frame. */
export type FrameFate =
  | { kind: 'pass' }
  | { kind: 'drop' }
  /** Forward a copy with bit `mask` of byte `at` flipped (the original stays the firmware's). */
  | { kind: 'flip'; at: number; mask: number };

export const PASS: FrameFate = { kind: 'pass' };

/** How outgoing bytes are cut into writes: as the firmware sent them, or coalesced and re-cut into odd pieces. */
export type StageShape = 'as-sent' | 'split-coalesce';

export interface SentRecord {
  at: number;
  conn: number;
  type: number;
  seq: number;
  copy: number;
  fate: FrameFate['kind'];
}

export interface ReceivedRecord {
  at: number;
  /** The data connection it came on, or `datagram` (heartbeats). */
  conn: number | 'datagram';
  frame: Frame;
}

interface ConnState {
  open: boolean;
  queue: Uint8Array[];
  queuedBytes: number;
  flushing: boolean;
  /** The split shape stopped at a full transport queue: it goes on at `writable`. */
  stalled: boolean;
  refused: boolean;
  decoder: FrameDecoder;
  splitter: FrameSplitter;
}

export interface FaultStageOptions {
  inner: LinkEndpoint;
  clock: HostClock;
  payloadBytesMax: number;
}

export class FaultStage implements LinkEndpoint {
  readonly name: string;
  readonly connections: number;
  readonly heartbeats: 'datagram' | 'inline';
  readonly sent: SentRecord[] = [];
  readonly received: ReceivedRecord[] = [];
  /** Connections lost without the firmware asking (the transport's `closed`), with why. */
  readonly closedHeard: { at: number; conn: number; reason: string }[] = [];
  /** Bytes the target sent that our decoder rejected. */
  decodeErrors = 0;
  private handler: LinkHandler | null = null;
  private readonly inner: LinkEndpoint;
  private readonly clock: HostClock;
  private readonly conns: ConnState[] = [];
  private readonly copies = new Map<number, number>();
  /** When an intact copy of each sequence number was first handed on (ms on the stage's clock). */
  private readonly intactAt = new Map<number, number>();
  private fate: (f: OutgoingFrame) => FrameFate = () => PASS;
  private shape: StageShape = 'as-sent';
  private heartbeatsHeld: Uint8Array[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(opts: FaultStageOptions) {
    this.inner = opts.inner;
    this.clock = opts.clock;
    this.name = opts.inner.name;
    this.connections = opts.inner.connections;
    this.heartbeats = opts.inner.heartbeats;
    for (let k = 0; k < this.connections; k++) {
      const decoder = new FrameDecoder({
        payloadBytesMax: opts.payloadBytesMax,
        onFrame: (frame) => this.heard(k, frame),
        onError: () => this.decodeErrors++,
      });
      const splitter = new FrameSplitter({ payloadBytesMax: opts.payloadBytesMax, onPiece: (p) => this.piece(k, p.kind === 'frame' ? p : null, p.bytes) });
      this.conns.push({ open: false, queue: [], queuedBytes: 0, flushing: false, stalled: false, refused: false, decoder, splitter });
    }
  }

  /** What happens to each stream frame from now on. */
  setFate(fate: (f: OutgoingFrame) => FrameFate): void {
    this.fate = fate;
  }

  setShape(shape: StageShape): void {
    this.shape = shape;
  }

  /** When an intact copy of `seq` was first handed on, or undefined if none has been. */
  intactSentAt(seq: number): number | undefined {
    return this.intactAt.get(seq);
  }

  /** Highest stream sequence number the firmware has sent. */
  get highestSeq(): number {
    let max = 0;
    for (const s of this.copies.keys()) max = Math.max(max, s);
    return max;
  }

  isOpen(conn: number): boolean {
    return this.conns[conn]?.open === true;
  }

  /** Puts `bytes` on connection `conn`'s stream as they are (a duplicate, a frame of another version). */
  inject(conn: number, bytes: Uint8Array): boolean {
    const c = this.conns[conn];
    if (!c?.open) return false;
    this.enqueue(conn, bytes);
    return true;
  }

  /** Closes every data connection as a failure would, telling the firmware so; it asks for them again itself. */
  dropConnections(reason: string): void {
    for (let k = 0; k < this.connections; k++) {
      const c = this.conns[k]!;
      if (!c.open) continue;
      this.lose(k);
      this.inner.close(k);
      this.handler?.closed(k, reason);
    }
  }

  /** Resolves when `cond` holds (checked at every frame heard or sent, and every 20 ms), or with false after `timeoutMs`. */
  until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (!cond()) return;
        finish(true);
      };
      const poll = setInterval(check, 20);
      const timer = setTimeout(() => finish(false), timeoutMs);
      const finish = (ok: boolean): void => {
        clearInterval(poll);
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(ok);
      };
      this.waiters.add(check);
    });
  }

  // ---- LinkEndpoint ---------------------------------------------------------------------------

  attach(handler: LinkHandler): void {
    this.handler = handler;
    this.inner.attach({
      opened: (conn) => {
        const c = this.conns[conn]!;
        c.open = true;
        c.decoder.reset();
        handler.opened(conn);
      },
      closed: (conn, reason) => {
        this.lose(conn);
        this.closedHeard.push({ at: this.clock.now(), conn, reason });
        handler.closed(conn, reason);
      },
      bytes: (conn, chunk) => {
        // The decoder may keep views into the chunk; the firmware gets its own copy.
        this.conns[conn]?.decoder.push(chunk.slice());
        handler.bytes(conn, chunk);
      },
      datagram: (bytes) => {
        try {
          this.heard('datagram', decodeFrame(bytes.slice()));
        } catch {
          this.decodeErrors++;
        }
        handler.datagram(bytes);
      },
      writable: (conn) => {
        const c = this.conns[conn];
        if (!c) return;
        if (c.stalled) {
          c.stalled = false;
          this.flushPieces(conn, 0);
        } else this.flush(conn);
        if (c.refused && c.queuedBytes < STAGE_QUEUE_BYTES_MAX) {
          c.refused = false;
          handler.writable(conn);
        }
      },
    });
  }

  open(conn: number): void {
    this.inner.open(conn);
  }

  close(conn: number): void {
    this.lose(conn);
    this.inner.close(conn);
  }

  send(conn: number, bytes: Uint8Array): boolean {
    const c = this.conns[conn];
    if (!c?.open) return false;
    if (c.queuedBytes + bytes.length > STAGE_QUEUE_BYTES_MAX) {
      c.refused = true;
      return false;
    }
    c.splitter.push(bytes);
    return true;
  }

  sendDatagram(bytes: Uint8Array): void {
    // Inline heartbeats share connection 0's byte stream: never in the middle of a frame cut in pieces.
    if (this.heartbeats === 'inline' && (this.conns[0]?.queuedBytes ?? 0) > 0) {
      if (this.heartbeatsHeld.length < 8) this.heartbeatsHeld.push(bytes);
      return;
    }
    this.inner.sendDatagram(bytes);
  }

  // ---- internals ------------------------------------------------------------------------------

  private piece(conn: number, frame: { type: number; seq: number } | null, bytes: Uint8Array): void {
    const streamFrame = frame !== null && frame.type >= FrameType.Lock && frame.type <= FrameType.Unlock;
    if (!streamFrame) {
      this.enqueue(conn, bytes);
      return;
    }
    const copy = this.copies.get(frame.seq) ?? 0;
    this.copies.set(frame.seq, copy + 1);
    const fate = this.fate({ conn, type: frame.type, seq: frame.seq, copy, bytes });
    this.log(this.sent, { at: this.clock.now(), conn, type: frame.type, seq: frame.seq, copy, fate: fate.kind });
    if (fate.kind === 'drop') return;
    if (fate.kind === 'flip') {
      const altered = bytes.slice();
      altered[fate.at] = altered[fate.at]! ^ fate.mask;
      this.enqueue(conn, altered);
      return;
    }
    if (!this.intactAt.has(frame.seq)) this.intactAt.set(frame.seq, this.clock.now());
    this.enqueue(conn, bytes);
  }

  private enqueue(conn: number, bytes: Uint8Array): void {
    const c = this.conns[conn]!;
    c.queue.push(bytes);
    c.queuedBytes += bytes.length;
    if (this.shape === 'as-sent') this.flush(conn);
    else if (!c.flushing) {
      // Coalesce: whatever the firmware sends in this turn of the event loop leaves together, re-cut.
      c.flushing = true;
      setImmediate(() => this.flushPieces(conn, 0));
    }
    this.wake();
  }

  /** As sent: each queued buffer in one write, while the transport takes them. */
  private flush(conn: number): void {
    const c = this.conns[conn]!;
    if (c.flushing) return;
    while (c.queue.length > 0) {
      if (!c.open || !this.inner.send(conn, c.queue[0]!)) return;
      c.queuedBytes -= c.queue.shift()!.length;
    }
    this.releaseHeartbeats();
  }

  /** Split and coalesced: everything queued as one run of bytes, written in pieces of odd sizes, a turn of the loop apart. */
  private flushPieces(conn: number, turn: number): void {
    const c = this.conns[conn]!;
    if (!c.open) {
      c.flushing = false;
      return;
    }
    const joined = concat(c.queue);
    let offset = 0;
    let pieces = 0;
    let full = false;
    while (offset < joined.length && pieces < 4) {
      const size = Math.min(PIECE_BYTES[(turn + pieces) % PIECE_BYTES.length]!, joined.length - offset);
      if (!this.inner.send(conn, joined.slice(offset, offset + size))) {
        full = true;
        break;
      }
      offset += size;
      pieces++;
    }
    const rest = joined.subarray(offset);
    c.queue = rest.length > 0 ? [rest] : [];
    c.queuedBytes = rest.length;
    if (rest.length === 0) {
      c.flushing = false;
      this.releaseHeartbeats();
      return;
    }
    if (full) c.stalled = true; // `writable` resumes it
    else setImmediate(() => this.flushPieces(conn, turn + pieces));
  }

  private releaseHeartbeats(): void {
    if ((this.conns[0]?.queuedBytes ?? 0) > 0) return;
    for (const hb of this.heartbeatsHeld.splice(0)) this.inner.sendDatagram(hb);
  }

  /** A connection is gone: what was queued on it is lost, as bytes in flight are. */
  private lose(conn: number): void {
    const c = this.conns[conn];
    if (!c) return;
    c.open = false;
    c.queue = [];
    c.queuedBytes = 0;
    c.flushing = false;
    c.stalled = false;
  }

  private heard(conn: number | 'datagram', frame: Frame): void {
    this.log(this.received, { at: this.clock.now(), conn, frame });
    this.wake();
  }

  private log<T>(list: T[], record: T): void {
    if (list.length < STAGE_LOG_ENTRIES_MAX) list.push(record);
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
