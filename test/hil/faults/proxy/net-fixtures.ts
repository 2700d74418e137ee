import dgram from 'node:dgram';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { FrameDecoder, type Frame } from '../../../../firmware/protocol/index.ts';
import type { HostClock } from '../../../../host/clock/clock.ts';
import { parseLinkFaults } from '../../../../hil/faults/link-fault-plan.ts';
import { encodePreamble } from '../../../../host/transports/tcp-preamble.ts';
import { startTcpFaultProxy, type FaultProxy, type ProxyEvent } from '../../../../hil/faults/proxy/index.ts';
import type { ProxyLimits } from '../../../../hil/faults/proxy/limits.ts';

/** Polls `cond` every few ms until it holds; fails the test after `maxMs` (a bound, never an assertion on time). */
export async function waitFor(cond: () => boolean, what: string, maxMs = 10_000): Promise<void> {
  for (let waited = 0; !cond(); waited += 5) {
    if (waited > maxMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** One end of a TCP connection in a test: every byte it received, decoded frames, and how it ended. */
export class Peer {
  readonly received: Buffer[] = [];
  readonly frames: Frame[] = [];
  decodeErrors = 0;
  error: string | null = null;
  closed = false;
  ended = false;
  private readonly decoder = new FrameDecoder({ onFrame: (f) => this.frames.push(f), onError: () => this.decodeErrors++ });

  constructor(readonly socket: net.Socket, private readonly skip = 0) {
    let skipLeft = skip;
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      const rest = skipLeft > 0 ? chunk.subarray(Math.min(skipLeft, chunk.length)) : chunk;
      skipLeft = Math.max(0, skipLeft - chunk.length);
      if (rest.length > 0) this.decoder.push(new Uint8Array(rest));
    });
    socket.on('error', (e: NodeJS.ErrnoException) => (this.error = e.code ?? e.message));
    socket.on('end', () => (this.ended = true));
    socket.on('close', () => (this.closed = true));
  }

  get bytes(): Buffer {
    return Buffer.concat(this.received);
  }

  /** Bytes after the first `skip` (the preamble, on the listener's side). */
  get payload(): Buffer {
    return this.bytes.subarray(this.skip);
  }

  send(...parts: Uint8Array[]): void {
    for (const p of parts) this.socket.write(p);
  }
}

/** A stand-in for the real listener: TCP connections (each a Peer that skips the 8-byte preamble) and UDP on the same port. */
export class FakeListener {
  readonly peers: Peer[] = [];
  readonly datagrams: { bytes: Buffer; from: dgram.RemoteInfo }[] = [];
  private constructor(readonly server: net.Server, readonly udp: dgram.Socket, readonly port: number) {}

  static async start(): Promise<FakeListener> {
    for (;;) {
      const server = net.createServer({ allowHalfOpen: true });
      await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
      const port = (server.address() as net.AddressInfo).port;
      const udp = dgram.createSocket('udp4');
      const bound = await new Promise<boolean>((resolve) => {
        udp.once('error', () => resolve(false));
        udp.bind({ address: '127.0.0.1', port }, () => resolve(true));
      });
      if (!bound) {
        await new Promise((resolve) => server.close(resolve));
        continue;
      }
      const l = new FakeListener(server, udp, port);
      server.on('connection', (s) => l.peers.push(new Peer(s, 8)));
      udp.on('message', (bytes, from) => l.datagrams.push({ bytes, from }));
      return l;
    }
  }

  /** Answer the last datagram's sender, as a live link's listen side does. */
  reply(bytes: Uint8Array): void {
    const last = this.datagrams.at(-1)!.from;
    this.udp.send(bytes, last.port, last.address);
  }

  private stopped = false;

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const p of this.peers) p.socket.destroy();
    this.udp.close();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

export async function connectClient(port: number, slot = 0, connections = 1): Promise<Peer> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.setNoDelay(true);
  const peer = new Peer(socket);
  socket.write(encodePreamble(slot, connections));
  return peer;
}

/** A listener, a proxy in front of it, and everything it emitted. */
export async function proxied(plan: string, opts: { seed?: number; clock?: HostClock; limits?: Partial<ProxyLimits> } = {}) {
  const listener = await FakeListener.start();
  const events: ProxyEvent[] = [];
  const proxy: FaultProxy = await startTcpFaultProxy({
    plan: parseLinkFaults(plan), seed: opts.seed ?? 1, clock: opts.clock, limits: opts.limits,
    listen: { host: '127.0.0.1', port: 0 }, to: { host: '127.0.0.1', port: listener.port }, onEvent: (e) => void events.push(e),
  });
  const stop = async (): Promise<void> => {
    await proxy.stop();
    await listener.stop();
  };
  return { listener, proxy, events, port: proxy.address!.port, stop };
}
