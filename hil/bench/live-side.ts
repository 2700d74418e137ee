import { createServer, connect as dialTcp, type NetConnectOpts, type Server, type Socket } from 'node:net';
import type { StorageController } from '../../firmware/controller/storage-controller.ts';
import { RealClock } from '../../host/clock/real.ts';
import { SeededRandom } from '../../host/random.ts';
import { silentLinkLogger } from '../../host/transports/link-logger.ts';
import { openLiveLink, type LiveLink } from '../../host/transports/live-link.ts';
import { TCP_LINK_DEFAULTS, type TcpLink } from '../../host/transports/tcp-link.ts';
import { driveWrites, linkState, liveVolume, mirrorSource, mirrorTarget, type LivePairOptions } from './live-pair.ts';

/**
 * One process of the live bench's two-process rows (docs/live-links.md 10): the mirror's source
 * or target controller, or the raw copy's sender or receiver, as deployed controllers are, one
 * per process. The bench forks it (live-side-entry.mjs) and drives it over the IPC channel with
 * {@link SideRequest}s; it answers each with one {@link SideReply}. It prints nothing: the
 * bench's stdout carries only the bench's output.
 */
export type SideStart =
  /** Listens on 127.0.0.1 (a free port, in `ready`), B of the mirror, its volume empty. */
  | { role: 'mirror-target'; connections: number; writeBytes: number; volumeBytes: number; seed: number }
  /** A, connecting to the target's port: `ready` once the link is up and the volume was written once (warm-up). */
  | { role: 'mirror-source'; port: number; connections: number; writeBytes: number; volumeBytes: number; seed: number; queueDepth: number }
  /** Accepts the sender's connections on 127.0.0.1 and counts what arrives. */
  | { role: 'raw-recv' }
  /** Dials the receiver's port `connections` times. */
  | { role: 'raw-send'; port: number; connections: number };

export type SideRequest =
  | ({ op: 'start' } & SideStart)
  /** This process's CPU time so far (user + system, every thread), in microseconds. */
  | { op: 'cpu' }
  /** mirror-source: write `bytes` (in writes of writeBytes, at the queue depth). raw-send: send `frames` chunks of `chunkBytes`. */
  | { op: 'run'; bytes: number; frames: number; chunkBytes: number }
  /** raw-recv: answer `done` once `total` bytes in all have arrived since it started. */
  | { op: 'expect'; total: number }
  | { op: 'stop' };

export type SideReply =
  | { op: 'ready'; port: number }
  | { op: 'cpu'; us: number }
  | { op: 'done' }
  | { op: 'stopped' }
  | { op: 'error'; message: string };

/** The mirror's side: its controller and link. */
interface MirrorSide {
  controller: StorageController;
  link: LiveLink;
  start: Extract<SideStart, { role: 'mirror-source' | 'mirror-target' }>;
}

/** Link-up budget for the mirror's two processes. */
const LINK_UP_MS_MAX = 30_000;

export class LiveSide {
  private mirror: MirrorSide | null = null;
  private server: Server | null = null;
  private readonly sockets: Socket[] = [];
  private received = 0;
  private expected: { target: number; done: () => void } | null = null;

  constructor(private readonly reply: (r: SideReply) => void) {}

  async handle(m: SideRequest): Promise<void> {
    try {
      if (m.op === 'start') this.reply({ op: 'ready', port: await this.start(m) });
      else if (m.op === 'cpu') {
        const u = process.cpuUsage();
        this.reply({ op: 'cpu', us: u.user + u.system });
      } else if (m.op === 'run') {
        await this.run(m);
        this.reply({ op: 'done' });
      } else if (m.op === 'expect') {
        await this.expect(m.total);
        this.reply({ op: 'done' });
      } else {
        await this.stop();
        this.reply({ op: 'stopped' });
      }
    } catch (error) {
      this.reply({ op: 'error', message: error instanceof Error ? error.message : String(error) });
    }
  }

  private async start(m: SideStart): Promise<number> {
    if (m.role === 'raw-recv') return this.listenRaw();
    if (m.role === 'raw-send') {
      await this.dialRaw(m.port, m.connections);
      return m.port;
    }
    const clock = new RealClock();
    const o: LivePairOptions = {
      clock, seed: m.seed, mode: 'speculative', volumeBytes: m.volumeBytes, limits: { payloadBytesMax: Math.max(m.writeBytes, 1024 * 1024) },
    };
    const random = new SeededRandom(m.seed);
    const common = { clock, logger: silentLinkLogger };
    if (m.role === 'mirror-target') {
      const link = await openLiveLink({ kind: 'tcp', role: 'listen', host: '127.0.0.1', port: 0, connections: m.connections },
        { ...common, localName: 'B', peerName: 'A' });
      const controller = mirrorTarget(link, liveVolume('B/lun0', o), random, o);
      this.mirror = { controller, link, start: m };
      controller.start();
      return (link as TcpLink).port;
    }
    const link = await openLiveLink({ kind: 'tcp', role: 'connect', host: '127.0.0.1', port: m.port, connections: m.connections },
      { ...common, localName: 'A', peerName: 'B' });
    const controller = mirrorSource(link, liveVolume('A/lun0', o), random, o);
    this.mirror = { controller, link, start: m };
    controller.start();
    await waitUp(controller, clock);
    await driveWrites(controller, { writeBytes: m.writeBytes, volumeBytes: m.volumeBytes, bytes: m.volumeBytes, depth: m.queueDepth });
    return m.port;
  }

  private async run(m: Extract<SideRequest, { op: 'run' }>): Promise<void> {
    const side = this.mirror;
    if (side !== null && side.start.role === 'mirror-source') {
      const s = side.start;
      await driveWrites(side.controller, { writeBytes: s.writeBytes, volumeBytes: s.volumeBytes, bytes: m.bytes, depth: s.queueDepth });
      if (side.controller.failure !== null) throw new Error(`the source firmware failed: ${String(side.controller.failure)}`);
      return;
    }
    const chunk = new Uint8Array(m.chunkBytes).fill(0xa5);
    const n = this.sockets.length;
    const share = (k: number): number => Math.floor(m.frames / n) + (k < m.frames % n ? 1 : 0);
    await Promise.all(this.sockets.map((s, k) => pump(s, chunk, share(k))));
  }

  private expect(target: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.received >= target) resolve();
      else this.expected = { target, done: resolve };
    });
  }

  private async listenRaw(): Promise<number> {
    const server = createServer((s) => {
      this.sockets.push(s);
      s.on('error', () => {});
      s.on('data', (d: Buffer) => {
        this.received += d.length;
        const e = this.expected;
        if (e !== null && this.received >= e.target) {
          this.expected = null;
          e.done();
        }
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as { port: number }).port;
  }

  private async dialRaw(port: number, connections: number): Promise<void> {
    for (let k = 0; k < connections; k++) {
      this.sockets.push(await new Promise<Socket>((resolve, reject) => {
        // Node's sockets take the stream option writableHighWaterMark, which @types/node leaves out of NetConnectOpts.
        const opts = { host: '127.0.0.1', port, noDelay: true, writableHighWaterMark: TCP_LINK_DEFAULTS.sendQueueBytesMax } as NetConnectOpts;
        const s = dialTcp(opts, () => resolve(s));
        s.once('error', reject);
      }));
    }
  }

  private async stop(): Promise<void> {
    const side = this.mirror;
    this.mirror = null;
    if (side !== null) {
      side.controller.stop();
      await side.link.shutdown();
    }
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Writes `count` chunks to the socket as fast as it takes them, waiting for 'drain' beyond its buffer. */
export async function pump(s: Socket, chunk: Uint8Array, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    if (!s.write(chunk)) await new Promise<void>((resolve) => s.once('drain', resolve));
  }
}

async function waitUp(c: StorageController, clock: RealClock): Promise<void> {
  const start = clock.now();
  while (linkState(c) !== 'up') {
    if (c.failure !== null) throw new Error(`the link up: the firmware failed: ${String(c.failure)}`);
    if (clock.now() - start > LINK_UP_MS_MAX) throw new Error(`the link was not up within ${LINK_UP_MS_MAX} ms (it is ${linkState(c)})`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The child's main: requests in over IPC, one reply each; the channel closing ends the process. */
export function serveSide(): void {
  const send = (r: SideReply): void => void process.send?.(r);
  const side = new LiveSide(send);
  process.on('message', (m: SideRequest) => void side.handle(m));
  process.on('disconnect', () => process.exit(0));
}
