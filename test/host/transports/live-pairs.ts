import { SerialPortMock } from 'serialport';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LivePair } from '../../../hil/bench/live-pair.ts';
import { RealClock } from '../../../host/clock/real.ts';
import { SeededRandom } from '../../../host/random.ts';
import { ptyPair, type PtyPair } from '../../../host/disks/serial-disk/socat-pty.ts';
import { silentLinkLogger, type LinkLogger } from '../../../host/transports/link-logger.ts';
import { openLiveLink } from '../../../host/transports/live-link.ts';
import { SerialLink, type SerialPortLike, type SerialPortOpener } from '../../../host/transports/serial-link.ts';
import type { TcpLink } from '../../../host/transports/tcp-link.ts';
import { heartbeat, type LinkPair } from './link-contract.ts';

/**
 * Pairs of real live links for the link contract and the transport tests: both ends in this
 * process, on the real clock, on loopback or on PTYs. `wait` is a real sleep.
 */

export interface TcpPairOptions {
  connections: number;
  /** Which end of the pair listens (the other connects). */
  listener: 'a' | 'b';
  sendQueueBytesMax?: number;
  connectTimeoutMs?: number;
  logger?: LinkLogger;
}

export type TcpPair = LinkPair & { listen: TcpLink; connect: TcpLink; clock: RealClock };

/**
 * Two TCP links on 127.0.0.1, the listener on a free port. The connect side's first heartbeat
 * tells the listener where to answer (in a controller pair the firmware's own heartbeats do that
 * within one interval): the factory sends one before handing the pair over, so that both ends'
 * heartbeats flow from the start.
 */
export async function tcpPair(o: TcpPairOptions): Promise<TcpPair> {
  const clock = new RealClock();
  const logger = o.logger ?? silentLinkLogger;
  const common = { clock, logger, sendQueueBytesMax: o.sendQueueBytesMax, connectTimeoutMs: o.connectTimeoutMs };
  const listen = await openLiveLink({ kind: 'tcp', role: 'listen', host: '127.0.0.1', port: 0, connections: o.connections },
    { ...common, localName: o.listener === 'a' ? 'A' : 'B', peerName: o.listener === 'a' ? 'B' : 'A' }) as TcpLink;
  const connect = await openLiveLink({ kind: 'tcp', role: 'connect', host: '127.0.0.1', port: listen.port, connections: o.connections },
    { ...common, localName: o.listener === 'a' ? 'B' : 'A', peerName: o.listener === 'a' ? 'A' : 'B' }) as TcpLink;
  for (let i = 0; listen.stats().datagrams.received === 0; i++) {
    if (i >= 100) throw new Error('the listener heard none of 100 heartbeats on loopback');
    connect.sendDatagram(heartbeat(1));
    await sleep(10);
  }
  const [a, b] = o.listener === 'a' ? [listen, connect] : [connect, listen];
  return {
    a, b, listen, connect, clock,
    wait: (ms) => sleep(ms),
    reset: (conn) => void a.resetConnection(conn),
    close: async () => void (await Promise.all([listen.shutdown(), connect.shutdown()])),
  };
}

export type SerialPair = LinkPair & { a: SerialLink; b: SerialLink; pty: PtyPair | null };

/** Two serial links on the two ends of a socat PTY pair made in `dir`. */
export async function ptyLinkPair(dir: string, name: string, opts: { sendQueueBytesMax?: number; baudRate?: number; logger?: LinkLogger } = {}): Promise<SerialPair> {
  const pty = await ptyPair(dir, name);
  const clock = new RealClock();
  const common = { clock, logger: opts.logger ?? silentLinkLogger, sendQueueBytesMax: opts.sendQueueBytesMax };
  const baudRate = opts.baudRate ?? 115_200;
  const a = await openLiveLink({ kind: 'serial', path: pty.a, baudRate }, { ...common, localName: 'A', peerName: 'B' }) as SerialLink;
  const b = await openLiveLink({ kind: 'serial', path: pty.b, baudRate }, { ...common, localName: 'B', peerName: 'A' }) as SerialLink;
  return {
    a, b, pty,
    wait: (ms) => sleep(ms),
    close: async () => {
      await Promise.all([a.shutdown(), b.shutdown()]);
      await pty.stop();
    },
  };
}

let mockSerial = 0;

/**
 * Two ports of serialport's mock binding wired to each other (what one writes, the other
 * reads), as openers for {@link SerialLink}: the link's own logic, without a tty.
 */
export function mockSerialOpeners(): { paths: [string, string]; openers: [SerialPortOpener, SerialPortOpener]; ports: (SerialPortMock | null)[] } {
  const n = mockSerial++;
  const paths: [string, string] = [`/dev/mock-link-a-${n}`, `/dev/mock-link-b-${n}`];
  for (const path of paths) SerialPortMock.binding.createPort(path, { echo: false, record: false });
  const ports: (SerialPortMock | null)[] = [null, null];
  const opener = (i: 0 | 1): SerialPortOpener => async (path, baudRate) => {
    const port = new SerialPortMock({ path, baudRate, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
    ports[i] = port;
    const binding = port.port!;
    const write = binding.write.bind(binding);
    binding.write = async (buffer: Buffer) => {
      await write(buffer);
      const to = ports[1 - i];
      if (to?.isOpen) to.port!.emitData(Buffer.from(buffer));
    };
    return port as unknown as SerialPortLike;
  };
  return { paths, openers: [opener(0), opener(1)], ports };
}

/** Two serial links over the mock binding. */
export async function mockLinkPair(opts: { sendQueueBytesMax?: number } = {}): Promise<SerialPair> {
  const clock = new RealClock();
  const { paths, openers } = mockSerialOpeners();
  const common = { clock, logger: silentLinkLogger, sendQueueBytesMax: opts.sendQueueBytesMax, baudRate: 115_200 };
  const a = await SerialLink.open({ ...common, path: paths[0], openPort: openers[0], localName: 'A', peerName: 'B' });
  const b = await SerialLink.open({ ...common, path: paths[1], openPort: openers[1], localName: 'B', peerName: 'A' });
  return {
    a, b, pty: null,
    wait: (ms) => sleep(ms),
    close: async () => void (await Promise.all([a.shutdown(), b.shutdown()])),
  };
}

/**
 * `count` seeded writes of `writeBytes` (default 4 KiB) at queue depth `depth` from the pair's
 * source, over a volume of `volumeBytes` (default 4 MiB); `midway` runs once, when half are
 * acknowledged. Each write's bytes say which it was, so a copy that mixes them up differs.
 */
export async function driveWrites(pair: LivePair, o: { seed: number; count: number; depth: number; midway?: () => void; writeBytes?: number; volumeBytes?: number }): Promise<void> {
  const writeBytes = o.writeBytes ?? 4096;
  const random = new SeededRandom(o.seed).fork('writes');
  const slots = (o.volumeBytes ?? 4 * 1024 * 1024) / writeBytes;
  let issued = 0;
  let acked = 0;
  await new Promise<void>((resolve, reject) => {
    const issue = (): void => {
      if (issued >= o.count) return;
      const i = issued++;
      const data = new Uint8Array(writeBytes).fill((i % 251) + 1);
      data[0] = i & 0xff;
      pair.source.submitWrite(0, random.int(slots) * (writeBytes / 512), data, (error) => {
        if (error) return reject(error as Error);
        acked++;
        if (acked === Math.floor(o.count / 2)) o.midway?.();
        if (acked === o.count) resolve();
        else issue();
      });
    };
    for (let k = 0; k < o.depth; k++) issue();
  });
}
