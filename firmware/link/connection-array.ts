import { FrameDecoder } from '../protocol/decoder.ts';
import { reassembledFrames } from '../protocol/frame-pool.ts';
import type { FrameError } from '../protocol/errors.ts';
import type { Frame, HelloFrame } from '../protocol/frame.ts';

/**
 * A data connection's state, as the firmware sees it:
 * - `closed`: not wanted (or lost);
 * - `opening`: asked of the transport, not established yet;
 * - `hello`: established, our HELLO sent, the peer's not heard yet;
 * - `ready`: both HELLOs exchanged; stream frames flow, bound to the peer session of its HELLO.
 */
export type ConnectionState = 'closed' | 'opening' | 'hello' | 'ready';

export interface Connection {
  readonly index: number;
  state: ConnectionState;
  /** Each connection is a byte stream of its own, so each has its own decoder. */
  readonly decoder: FrameDecoder;
  /** The peer's HELLO on this connection (null until it arrives). */
  peerHello: HelloFrame | null;
  /** When this connection last delivered anything (ms). */
  lastHeardMs: number;
  helloTimer: unknown;
}

/**
 * The connection array of docs/link-supervision.md: per data connection its state, its decoder and
 * when it was last heard, and the choice of connection for each frame sent. Stream frames are
 * spread round-robin over the ready connections (a connection whose send queue is full is skipped),
 * so under load each of n connections carries about 1/n of the bytes.
 */
export class ConnectionArray {
  readonly all: readonly Connection[];
  private next = 0;

  constructor(count: number, opts: { payloadBytesMax: number; onFrame(conn: number, f: Frame): void; onError(conn: number, e: FrameError): void }) {
    this.all = Array.from({ length: count }, (_, index) => ({
      index,
      state: 'closed' as ConnectionState,
      // Large frames are gathered in the shared pool; the target gives WRITE data back once written.
      decoder: new FrameDecoder({
        payloadBytesMax: opts.payloadBytesMax, frameBuffers: reassembledFrames, onFrame: (f) => opts.onFrame(index, f), onError: (e) => opts.onError(index, e),
      }),
      peerHello: null,
      lastHeardMs: -Infinity,
      helloTimer: null,
    }));
  }

  get size(): number {
    return this.all.length;
  }

  at(conn: number): Connection | undefined {
    return this.all[conn];
  }

  /** Indices of the ready connections. */
  ready(): number[] {
    return this.all.filter((c) => c.state === 'ready').map((c) => c.index);
  }

  anyReady(): boolean {
    for (const c of this.all) if (c.state === 'ready') return true;
    return false;
  }

  /**
   * Offer `bytes` to the ready connections in turn, starting after the one used last, until one
   * takes them; the index of that one, or -1.
   */
  sendRoundRobin(send: (conn: number) => boolean): number {
    const n = this.all.length;
    for (let i = 0; i < n; i++) {
      const c = this.all[(this.next + i) % n]!;
      if (c.state !== 'ready' || !send(c.index)) continue;
      this.next = (c.index + 1) % n;
      return c.index;
    }
    return -1;
  }
}
