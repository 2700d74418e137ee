import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { decodeFrame } from '../../firmware/protocol/decoder.ts';
import { FrameError } from '../../firmware/protocol/errors.ts';
import { FRAME_OVERHEAD_BYTES, FrameType, HEARTBEAT_PAYLOAD_BYTES, HEARTBEAT_TAGS_PAYLOAD_BYTES } from '../../firmware/protocol/frame.ts';
import type { LinkLogger } from './link-logger.ts';

/** A heartbeat frame is exactly this long: a 48-byte header, its 8-byte payload, the frame CRC. */
export const HEARTBEAT_FRAME_BYTES = FRAME_OVERHEAD_BYTES + HEARTBEAT_PAYLOAD_BYTES;
/** A heartbeat frame carrying tokens (feature `tags`, docs/tag-tables.md, "Tokens"). */
export const HEARTBEAT_TAGS_FRAME_BYTES = FRAME_OVERHEAD_BYTES + HEARTBEAT_TAGS_PAYLOAD_BYTES;

/**
 * Datagrams waiting in the socket's send queue, at most. A heartbeat is worth sending only now:
 * one that would wait behind others is dropped (counted), never queued (docs/live-links.md 4).
 */
export const HEARTBEAT_SEND_QUEUE_MAX = 4;

export interface HeartbeatStats {
  sent: number;
  /** Valid heartbeat frames passed up. */
  received: number;
  /** Datagrams that were not exactly one well-formed HEARTBEAT frame: dropped. */
  rejected: number;
  /** Heartbeats not sent: the send queue was full, or (listen side) no peer address is known yet. */
  dropped: number;
  /** Sends the kernel refused (ICMP port unreachable, no route...). */
  sendErrors: number;
}

export interface UdpHeartbeatOptions {
  role: 'listen' | 'connect';
  /** A numeric address: where to bind (listen), or where to send (connect). */
  address: string;
  family: 4 | 6;
  port: number;
  logger: LinkLogger;
  /** A valid heartbeat frame arrived; its bytes are the receiver's. */
  deliver(bytes: Uint8Array): void;
}

/**
 * The heartbeat channel of a TCP live link: one UDP socket, one heartbeat frame per datagram
 * (docs/live-links.md 4). The connect side sends to the listener's address and port (the TCP
 * listener's port number); the listen side binds that port and answers to the address it last
 * received a valid heartbeat from, so a proxy or a NAT in between works. Whatever arrives is
 * checked: a datagram that is not exactly one well-formed HEARTBEAT frame is counted and
 * dropped, never passed up, and never throws.
 */
export class UdpHeartbeats {
  readonly stats: HeartbeatStats = { sent: 0, received: 0, rejected: 0, dropped: 0, sendErrors: 0 };
  private peer: { address: string; port: number } | null = null;
  private closed = false;
  private readonly afterSend = (error: Error | null): void => {
    if (error === null) return;
    this.stats.sendErrors++;
    if (!isPowerOfTwo(this.stats.sendErrors)) return;
    this.opts.logger.debug({ error: error.message, count: this.stats.sendErrors }, 'heartbeat datagram not sent');
  };

  private constructor(private readonly socket: Socket, private readonly opts: UdpHeartbeatOptions) {
    // An ICMP error on a connected socket surfaces as 'error': a lost heartbeat, nothing more.
    socket.on('error', (error) => this.afterSend(error));
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
  }

  /** Binds (listen) or connects (connect) the socket; a bind error is thrown as the system error it is. */
  static async open(opts: UdpHeartbeatOptions): Promise<UdpHeartbeats> {
    const socket = createSocket({ type: opts.family === 6 ? 'udp6' : 'udp4' });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        const ready = (): void => {
          socket.off('error', reject);
          resolve();
        };
        if (opts.role === 'listen') socket.bind(opts.port, opts.address, ready);
        else socket.bind(0, () => socket.connect(opts.port, opts.address, ready));
      });
    } catch (error) {
      socket.close();
      throw error;
    }
    return new UdpHeartbeats(socket, opts);
  }

  /** The UDP port this end is bound to. */
  get localPort(): number {
    return this.socket.address().port;
  }

  /** Best effort: sent now, or dropped (counted); never queued behind other datagrams. */
  send(bytes: Uint8Array): void {
    if (this.closed) return;
    if (this.socket.getSendQueueCount() >= HEARTBEAT_SEND_QUEUE_MAX) {
      this.stats.dropped++;
      return;
    }
    if (this.opts.role === 'connect') {
      this.socket.send(bytes, this.afterSend);
    } else if (this.peer !== null) {
      this.socket.send(bytes, this.peer.port, this.peer.address, this.afterSend);
    } else {
      this.stats.dropped++; // the peer has not said where it is yet
      return;
    }
    this.stats.sent++;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.socket.removeAllListeners('message');
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.closed) return;
    const problem = heartbeatProblem(msg);
    if (problem !== null) {
      this.stats.rejected++;
      if (isPowerOfTwo(this.stats.rejected)) {
        const from = `${rinfo.address}:${rinfo.port}`;
        this.opts.logger.warn({ from, bytes: msg.length, problem, rejected: this.stats.rejected }, 'datagram dropped: not a heartbeat frame');
      }
      return;
    }
    if (this.opts.role === 'listen' && (this.peer === null || this.peer.address !== rinfo.address || this.peer.port !== rinfo.port)) {
      const to = `${rinfo.address}:${rinfo.port}`;
      if (this.peer !== null) this.opts.logger.info({ from: `${this.peer.address}:${this.peer.port}`, to }, 'heartbeats now answered to a new peer address');
      this.peer = { address: rinfo.address, port: rinfo.port };
    }
    this.stats.received++;
    this.opts.deliver(new Uint8Array(msg.buffer, msg.byteOffset, msg.length));
  }
}

/** Why a datagram is not exactly one well-formed HEARTBEAT frame, or null if it is. */
export function heartbeatProblem(bytes: Uint8Array): string | null {
  if (bytes.length !== HEARTBEAT_FRAME_BYTES && bytes.length !== HEARTBEAT_TAGS_FRAME_BYTES) {
    return `${bytes.length} bytes, a heartbeat frame is ${HEARTBEAT_FRAME_BYTES} (${HEARTBEAT_TAGS_FRAME_BYTES} with tokens)`;
  }
  try {
    const f = decodeFrame(bytes, { payloadBytesMax: 0 });
    return f.type === FrameType.Heartbeat ? null : `a frame of type ${f.type}, not a HEARTBEAT`;
  } catch (error) {
    // The decoder throws only FrameErrors; anything else is its bug, and still no reason to crash on a datagram.
    return error instanceof FrameError ? `${error.code}: ${error.message}` : `the decoder failed: ${String(error)}`;
  }
}

/** Logging on counts 1, 2, 4, 8...: a flood of bad datagrams costs a few log lines, not one each. */
function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}
