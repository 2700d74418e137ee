import dgram from 'node:dgram';
import { isIPv4 } from 'node:net';
import { decodeFrame, FrameError, type Frame } from '../../../firmware/protocol/index.ts';
import type { HostPort } from './address.ts';
import { ProxyError } from './errors.ts';
import { FaultPipe } from './fault-pipe.ts';
import type { StreamPiece } from './frame-splitter.ts';
import type { ProxyCore } from './proxy-core.ts';

export const DATAGRAM_CHANNEL = 'datagram';

/**
 * The heartbeat channel through the proxy (docs/fault-proxy.md 2): a UDP socket on the proxy's
 * port (the connect side sends its heartbeats there, to the same port number as the TCP listener),
 * and a socket of the proxy's own, connected to the real listener's UDP port, so that the listener
 * answers the proxy, and only the listener is heard on it. The listener's answers go back to the
 * connect side's last address: the sender of the last datagram that decoded as a frame, so that a
 * stray datagram from elsewhere on the machine cannot steal the channel.
 *
 * Each datagram is one piece: a frame if it decodes as one, noise otherwise (relayed as it came),
 * numbered per direction for the fault decisions, through a datagram-ordered pipe (a delayed
 * datagram is overtaken; a full pipe drops).
 */
export class UdpRelay {
  private readonly front: dgram.Socket;
  private readonly back: dgram.Socket;
  private connectSide: { address: string; port: number } | null = null;
  private readonly pipes: { ab: FaultPipe; ba: FaultPipe };

  private constructor(private readonly core: ProxyCore, front: dgram.Socket, back: dgram.Socket) {
    this.front = front;
    this.back = back;
    const pipe = (dir: 'ab' | 'ba'): FaultPipe => new FaultPipe({
      core, dir, channel: DATAGRAM_CHANNEL, kind: 'datagram', counters: core.tallies[dir].open(DATAGRAM_CHANNEL),
      sink: { write: (bytes) => this.send(dir, bytes) },
      ordering: 'datagram', overflow: 'drop', queueBytesMax: core.limits.pipeQueueBytesMax, queueItemsMax: core.limits.datagramsQueuedMax,
    });
    this.pipes = { ab: pipe('ab'), ba: pipe('ba') };
    front.on('message', (msg, rinfo) => this.arrived('ab', msg, rinfo));
    back.on('message', (msg) => this.arrived('ba', msg, null));
    for (const s of [front, back]) s.on('error', (error) => core.log.warn({ error: error.message }, 'fault proxy: datagram socket error'));
  }

  /** Bind the front socket to `listen` (the TCP listener's address and port) and connect the back one to `target`. */
  static async open(core: ProxyCore, listen: HostPort, target: HostPort): Promise<UdpRelay> {
    const front = dgram.createSocket({ type: 'udp4' });
    const back = dgram.createSocket({ type: 'udp4' });
    try {
      await bind(front, listen.host, listen.port);
      // Loopback targets are reached from loopback; another host needs the unspecified address to route.
      await bind(back, isLoopback(target.host) ? '127.0.0.1' : '0.0.0.0', 0);
      await new Promise<void>((resolve, reject) => {
        back.once('error', reject);
        back.connect(target.port, target.host, () => {
          back.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      front.close();
      back.close();
      const e = error as NodeJS.ErrnoException;
      if (e.code === 'EADDRINUSE') {
        throw new ProxyError('ML_ERR_PROXY_LISTEN', `UDP port ${listen.port} on ${listen.host} is in use; the proxy needs the same port number for TCP and UDP`);
      }
      throw new ProxyError('ML_ERR_PROXY_LISTEN', `cannot open the heartbeat relay to ${target.host}:${target.port}: ${e.message}`);
    }
    return new UdpRelay(core, front, back);
  }

  close(): void {
    this.pipes.ab.close();
    this.pipes.ba.close();
    this.front.close();
    this.back.close();
  }

  private arrived(dir: 'ab' | 'ba', msg: Buffer, from: dgram.RemoteInfo | null): void {
    if (this.core.stopped) return;
    const bytes = new Uint8Array(msg.buffer, msg.byteOffset, msg.length);
    const frame = decodeOrNull(bytes, this.core.limits.payloadBytesMax);
    if (from !== null && frame !== null) this.connectSide = { address: from.address, port: from.port };
    const piece: StreamPiece = frame === null ? { kind: 'noise', bytes } : { kind: 'frame', bytes, type: frame.type, seq: frame.seq, lun: frame.lun };
    this.pipes[dir].accept(piece);
  }

  private send(dir: 'ab' | 'ba', bytes: Uint8Array): boolean {
    const done = (error: Error | null): void => {
      if (error !== null) this.core.log.debug({ error: error.message }, 'fault proxy: a datagram could not be sent');
    };
    if (dir === 'ab') this.back.send(bytes, done);
    else if (this.connectSide !== null) this.front.send(bytes, this.connectSide.port, this.connectSide.address, done);
    // The listener spoke before the connect side ever did: there is nobody to answer yet.
    else this.core.connections.datagramsUnroutable++;
    return true;
  }
}

function decodeOrNull(bytes: Uint8Array, payloadBytesMax: number): Frame | null {
  try {
    return decodeFrame(bytes, { payloadBytesMax });
  } catch (error) {
    // Bytes that are not one whole frame are relayed as noise; anything else is a bug.
    if (error instanceof FrameError) return null;
    throw error;
  }
}

function bind(socket: dgram.Socket, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || (isIPv4(host) && host.startsWith('127.'));
}
