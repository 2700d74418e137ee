import { createSocket } from 'node:dgram';
import { connect as dialTcp, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { LinkHandler } from '../../../firmware/ports/link.ts';
import { encodeFrame } from '../../../firmware/protocol/encode.ts';
import { FrameType } from '../../../firmware/protocol/frame.ts';
import { RealClock } from '../../../host/clock/real.ts';
import { SeededRandom } from '../../../host/random.ts';
import type { LinkLogger } from '../../../host/transports/link-logger.ts';
import { openLiveLink } from '../../../host/transports/live-link.ts';
import { TcpLink, listenError, socketErrorReason, type TcpLinkOptions } from '../../../host/transports/tcp-link.ts';
import { serialPortError } from '../../../host/transports/serial-link.ts';
import { encodeAcceptance, encodePreamble } from '../../../host/transports/tcp-preamble.ts';
import { HEARTBEAT_FRAME_BYTES } from '../../../host/transports/udp-heartbeats.ts';
import { bulk, heartbeat } from './link-contract.ts';
import { tcpPair, type TcpPair } from './live-pairs.ts';

/** What a handler heard, in order. */
class Heard implements LinkHandler {
  readonly events: string[] = [];
  readonly datagrams: Uint8Array[] = [];
  bytesIn = 0;
  opened(conn: number): void { this.events.push(`opened ${conn}`); }
  closed(conn: number, reason: string): void { this.events.push(`closed ${conn}: ${reason}`); }
  bytes(_conn: number, chunk: Uint8Array): void { this.bytesIn += chunk.length; }
  datagram(bytes: Uint8Array): void { this.datagrams.push(bytes); }
  writable(conn: number): void { this.events.push(`writable ${conn}`); }
}

/** A logger that keeps what it was told. */
function recorder(): LinkLogger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (fields: object, message: string): void => void lines.push(`${level} ${message} ${JSON.stringify(fields)}`);
  return { lines, debug: keep('debug'), info: keep('info'), warn: keep('warn') };
}

async function until(cond: () => boolean, what: string, budgetMs = 5_000): Promise<void> {
  for (let waited = 0; !cond(); waited += 10) {
    if (waited > budgetMs) throw new Error(`${what}: not within ${budgetMs} ms`);
    await sleep(10);
  }
}

const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function base(o: Partial<TcpLinkOptions> & Pick<TcpLinkOptions, 'role' | 'port'>): TcpLinkOptions {
  return { host: '127.0.0.1', address: '127.0.0.1', family: 4, connections: 2, clock: new RealClock(), logger: recorder(), localName: 'L', peerName: 'P', ...o };
}

async function listener(o: Partial<TcpLinkOptions> = {}): Promise<{ link: TcpLink; heard: Heard; log: string[] }> {
  const logger = recorder();
  const link = await TcpLink.open(base({ role: 'listen', port: 0, logger, ...o }));
  const heard = new Heard();
  link.attach(heard);
  cleanup.push(() => link.shutdown());
  return { link, heard, log: logger.lines };
}

/** A plain TCP client: what it received, and whether the other end closed it. */
async function rawClient(port: number): Promise<{ socket: Socket; received: () => Buffer; ended: () => boolean }> {
  const socket = dialTcp({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  let ended = false;
  socket.on('data', (c) => chunks.push(c));
  socket.on('error', () => (ended = true));
  socket.on('close', () => (ended = true));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  cleanup.push(() => void socket.destroy());
  return { socket, received: () => Buffer.concat(chunks), ended: () => ended };
}

async function rawServer(onSocket: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  const address = server.address();
  return { server, port: typeof address === 'object' && address !== null ? address.port : 0 };
}

describe('the connection preamble', () => {
  it('is MLLK, version 1, slot, count, 0; the acceptance mlla, the same fields, and holds no frame magic', () => {
    expect([...encodePreamble(1, 3)]).toEqual([0x4d, 0x4c, 0x4c, 0x4b, 1, 1, 3, 0]);
    const accept = encodeAcceptance(2, 3);
    expect([...accept]).toEqual([0x6d, 0x6c, 0x6c, 0x61, 1, 2, 3, 0]);
    for (let i = 0; i + 1 < accept.length; i++) expect([accept[i], accept[i + 1]]).not.toEqual([0x4d, 0x4c]);
    expect(() => encodePreamble(3, 3)).toThrow(/slot 3 of 3/);
  });

  const bad: [string, Uint8Array, RegExp][] = [
    ['another magic', Uint8Array.of(0x47, 0x45, 0x54, 0x20, 0x2f, 0x20, 0x48, 0x54), /does not start with MLLK .*not a mirrorlab link/],
    ['another version', Uint8Array.of(0x4d, 0x4c, 0x4c, 0x4b, 2, 0, 2, 0), /version 2, this end speaks version 1/],
    ['a slot out of range', Uint8Array.of(0x4d, 0x4c, 0x4c, 0x4b, 1, 2, 2, 0), /names slot 2, which is not 0 to 1/],
    ['another connection count', Uint8Array.of(0x4d, 0x4c, 0x4c, 0x4b, 1, 0, 3, 0), /a link of 3 connections, this end has 2/],
    ['a last byte not 0', Uint8Array.of(0x4d, 0x4c, 0x4c, 0x4b, 1, 0, 2, 9), /last byte is 9/],
    ['bytes after it before acceptance', Uint8Array.of(...encodePreamble(0, 2), 1, 2, 3), /3 bytes followed the preamble/],
  ];
  for (const [what, bytes, problem] of bad) {
    it(`a listener closes a connection whose preamble has ${what}, logs why, and the firmware hears nothing`, async () => {
      const { link, heard, log } = await listener();
      link.open(0);
      link.open(1);
      const client = await rawClient(link.port);
      client.socket.write(bytes);
      await until(client.ended, 'the listener closes the connection');
      expect(client.received().length, 'no acceptance came back').toBe(0);
      expect(log.find((l) => l.startsWith('warn connection refused'))).toMatch(problem);
      expect(link.stats().preamblesRejected).toBe(1);
      expect(heard.events).toEqual([]);
    });
  }

  it('a listener drops a connection that sends no preamble in time', async () => {
    const { link, log } = await listener({ preambleTimeoutMs: 100 });
    const client = await rawClient(link.port);
    await until(client.ended, 'the listener closes the silent connection');
    expect(log.some((l) => /no preamble within 100 ms/.test(l))).toBe(true);
  });

  it('a listener takes a valid preamble only once its firmware wants the slot, then answers with the acceptance', async () => {
    const { link, heard } = await listener();
    const client = await rawClient(link.port);
    client.socket.write(encodePreamble(1, 2));
    await sleep(100);
    expect([client.received().length, heard.events]).toEqual([0, []]);
    link.open(1);
    await until(() => client.received().length === 8, 'the acceptance');
    expect([...client.received()]).toEqual([...encodeAcceptance(1, 2)]);
    expect(heard.events).toEqual(['opened 1']);
    client.socket.write(Buffer.from('hello'));
    await until(() => heard.bytesIn === 5, 'bytes after the acceptance reach the firmware');
  });

  it('a connection for a slot already open replaces the old one, which the firmware hears closed, and the log says so', async () => {
    const { link, heard, log } = await listener();
    link.open(0);
    const first = await rawClient(link.port);
    first.socket.write(encodePreamble(0, 2));
    await until(() => heard.events.length === 1, 'the first connection opens');
    const second = await rawClient(link.port);
    second.socket.write(encodePreamble(0, 2));
    await until(() => heard.events.length === 2, 'the old one is reported closed');
    expect(heard.events[1]).toMatch(/^closed 0: replaced: the peer opened connection 0 again/);
    await until(first.ended, 'the old socket is closed');
    expect(log.some((l) => l.startsWith('warn the peer connected this slot again'))).toBe(true);
    expect(second.received().length, 'the new one waits until the firmware asks again').toBe(0);
    link.open(0);
    await until(() => second.received().length === 8, 'the new connection is accepted');
    expect(heard.events.slice(2)).toEqual(['opened 0']);
    expect(link.stats().replaced).toBe(1);
  });
});

describe('the connect side', () => {
  async function dialer(port: number, o: Partial<TcpLinkOptions> = {}): Promise<{ link: TcpLink; heard: Heard }> {
    const link = await TcpLink.open(base({ role: 'connect', port, ...o }));
    const heard = new Heard();
    link.attach(heard);
    cleanup.push(() => link.shutdown());
    return { link, heard };
  }

  it('hears "connection refused" when nothing listens', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const { link, heard } = await dialer(port);
    link.open(0);
    await until(() => heard.events.length === 1, 'closed(0)');
    expect(heard.events[0]).toBe(`closed 0: connection refused by 127.0.0.1:${port} (ECONNREFUSED): nothing listens there`);
  });

  it('times out when the listener never accepts', async () => {
    const { port } = await rawServer(() => {});
    const { link, heard } = await dialer(port, { connectTimeoutMs: 150 });
    link.open(1);
    await until(() => heard.events.length === 1, 'closed(1)');
    expect(heard.events).toEqual([`closed 1: connect timed out: 127.0.0.1:${port} did not accept connection 1 within 150 ms`]);
  });

  it('refuses an answer that is not an acceptance of its slot', async () => {
    const { port } = await rawServer((s) => s.write(encodeAcceptance(0, 2)));
    const { link, heard } = await dialer(port);
    link.open(1);
    await until(() => heard.events.length === 1, 'closed(1)');
    expect(heard.events[0]).toMatch(/^closed 1: 127\.0\.0\.1:\d+ did not accept connection 1: the acceptance is for slot 0/);
    const garbage = await rawServer((s) => s.write('SSH-2.0-'));
    const other = await dialer(garbage.port);
    other.link.open(0);
    await until(() => other.heard.events.length === 1, 'closed(0)');
    expect(other.heard.events[0]).toMatch(/does not start with mlla .*not a mirrorlab link/);
  });

  it('hears "closed" with the listener\'s reason when the listener refuses its preamble', async () => {
    const l = await listener({ connections: 3 });
    l.link.open(0);
    const { link, heard } = await dialer(l.link.port, { connections: 2 });
    link.open(0);
    await until(() => heard.events.length === 1, 'closed(0)');
    expect(heard.events[0]).toMatch(/closed connection 0 without accepting it/);
    expect(l.log.find((x) => x.startsWith('warn connection refused'))).toMatch(/a link of 2 connections, this end has 3/);
  });
});

describe('a TCP link pair', () => {
  let pair: TcpPair;
  const open = async (o: Parameters<typeof tcpPair>[0]): Promise<{ a: Heard; b: Heard }> => {
    pair = await tcpPair(o);
    cleanup.push(() => pair.close!());
    const a = new Heard();
    const b = new Heard();
    pair.a.attach(a);
    pair.b.attach(b);
    for (let k = 0; k < o.connections; k++) {
      pair.a.open(k);
      pair.b.open(k);
    }
    await until(() => a.events.length === o.connections && b.events.length === o.connections, 'every connection open');
    return { a, b };
  };

  it('a reset reaches the peer as ECONNRESET; the other connection stays up', async () => {
    const { a, b } = await open({ connections: 2, listener: 'b' });
    expect(pair.connect.resetConnection(1)).toBe(true);
    await until(() => b.events.length === 3, 'the listener hears closed(1)');
    expect(a.events[2]).toBe('closed 1: connection reset');
    expect(b.events[2]).toMatch(/^closed 1: connection reset by 127\.0\.0\.1:\d+ \(ECONNRESET\)/);
    expect(pair.a.send(0, bulk(0, 1, 100))).toBe(true);
    await until(() => b.bytesIn > 0, 'connection 0 still delivers');
  });

  it('keeps a connection\'s queue within its bound (plus one send): backpressure, not buffering', async () => {
    const bound = 32 * 1024;
    const { a } = await open({ connections: 1, listener: 'a', sendQueueBytesMax: bound });
    const frame = bulk(0, 1, 8192);
    let accepted = 0;
    while (pair.listen.send(0, frame)) {
      accepted++;
      expect(pair.listen.stats().connections[0]!.queuedBytes).toBeLessThan(bound + frame.length);
      if (accepted > 10_000) throw new Error('send never refused');
    }
    expect(pair.listen.stats().connections[0]!.sendsRefused).toBe(1);
    await until(() => a.events.includes('writable 0'), 'writable after the refusal');
  });

  it('drops every datagram that is not exactly one well-formed HEARTBEAT frame, counts it, and never crashes', async () => {
    const { a } = await open({ connections: 1, listener: 'a' });
    const valid = heartbeat(7);
    const flipped = valid.slice();
    flipped[50]! ^= 0x10;
    const ack = encodeFrame({ type: FrameType.Ack, lun: 0, seq: 1, flags: 0 });
    const random = new SeededRandom(3);
    const noise = Array.from({ length: 200 }, () => Uint8Array.from({ length: random.int(200) }, () => random.int(256)));
    const mutants = Array.from({ length: 200 }, () => {
      const m = valid.slice();
      m[random.int(m.length)]! ^= 1 << random.int(8);
      return m;
    });
    const hostile = [
      new Uint8Array(0), valid.subarray(0, 59), Uint8Array.of(...valid, 0), Uint8Array.of(...valid, ...valid), flipped, ack,
      new Uint8Array(60_000), ...noise, ...mutants,
    ];
    const sender = createSocket('udp4');
    cleanup.push(() => new Promise<void>((r) => sender.close(() => r())));
    // Paced, so that this process's receiving end reads them before the kernel's buffer overflows.
    for (const [i, d] of hostile.entries()) {
      sender.send(d, pair.listen.port, '127.0.0.1');
      if (i % 16 === 15) await until(() => pair.listen.stats().datagrams.rejected === i + 1, `datagram ${i} rejected`);
    }
    await until(() => pair.listen.stats().datagrams.rejected === hostile.length, 'every hostile datagram rejected');
    expect(a.datagrams).toEqual([]);
    // Hostile datagrams never move where the listener answers: only a valid heartbeat does.
    const answers = (): number => pair.connect.stats().datagrams.received;
    const before = answers();
    pair.listen.sendDatagram(heartbeat(9));
    await until(() => answers() === before + 1, 'the listener still answers its peer');
    sender.send(valid, pair.listen.port, '127.0.0.1');
    await until(() => a.datagrams.length === 1, 'a valid heartbeat from anywhere is passed up');
    expect(a.datagrams.map((d) => d.length)).toEqual([HEARTBEAT_FRAME_BYTES]);
  });

  it('shutdown is idempotent, frees the port, and nothing reaches the handler after it', async () => {
    const { a } = await open({ connections: 2, listener: 'a' });
    const port = pair.listen.port;
    const quiet = a.events.length;
    await Promise.all([pair.listen.shutdown(), pair.listen.shutdown()]);
    pair.b.send(0, bulk(0, 1, 100));
    pair.b.sendDatagram(heartbeat(1));
    await pair.connect.shutdown();
    await sleep(50);
    expect(a.events.length).toBe(quiet);
    expect(a.datagrams.length).toBe(0);
    const again = await openLiveLink({ kind: 'tcp', role: 'listen', host: '127.0.0.1', port, connections: 2 },
      { clock: new RealClock(), logger: recorder(), localName: 'L', peerName: 'P' });
    await again.shutdown();
  });
});

describe('opening a TCP link', () => {
  const opts = { clock: new RealClock(), logger: recorder(), localName: 'L', peerName: 'P' };

  it('names the port in use (EADDRINUSE), for TCP and for UDP alike', async () => {
    const { link } = await listener();
    await expect(openLiveLink({ kind: 'tcp', role: 'listen', host: '127.0.0.1', port: link.port, connections: 2 }, opts))
      .rejects.toMatchObject({ code: 'ML_ERR_LINK_ADDRESS_IN_USE', message: expect.stringMatching(new RegExp(`^TCP 127\\.0\\.0\\.1:${link.port} is in use \\(EADDRINUSE\\)`)) });
    const udp = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    cleanup.push(() => new Promise<void>((r) => udp.close(() => r())));
    const port = udp.address().port;
    await expect(openLiveLink({ kind: 'tcp', role: 'listen', host: '127.0.0.1', port, connections: 2 }, opts))
      .rejects.toMatchObject({ code: 'ML_ERR_LINK_ADDRESS_IN_USE', message: expect.stringMatching(/^UDP 127\.0\.0\.1:\d+ is in use/) });
  });

  it('says when the address is not this machine\'s (EADDRNOTAVAIL)', async () => {
    await expect(openLiveLink({ kind: 'tcp', role: 'listen', host: '192.0.2.1', port: 0, connections: 2 }, opts))
      .rejects.toMatchObject({ code: 'ML_ERR_LINK_ADDRESS', message: expect.stringMatching(/192\.0\.2\.1 is not an address of this machine \(EADDRNOTAVAIL\)/) });
  });
});

describe('socket errors in words', () => {
  it('names each error a connection can end with', () => {
    const e = (code: string) => Object.assign(new Error(code), { code });
    expect(socketErrorReason(e('EPIPE'), 'h:1')).toBe('broken pipe (EPIPE): h:1 closed the connection while we were sending');
    expect(socketErrorReason(e('ETIMEDOUT'), 'h:1')).toBe('connection to h:1 timed out (ETIMEDOUT)');
    expect(socketErrorReason(e('EHOSTUNREACH'), 'h:1')).toBe('no route to h:1 (EHOSTUNREACH)');
    expect(socketErrorReason(e('ECONNRESET'), 'h:1')).toBe('connection reset by h:1 (ECONNRESET)');
    expect(socketErrorReason(e('EWHATEVER'), 'h:1')).toBe('socket error EWHATEVER: EWHATEVER');
  });
});

describe('errors opening a link, in words', () => {
  const e = (code: string, message = code) => Object.assign(new Error(message), { code });
  it('a port below 1024 without privileges is a permission error naming the ports that would work', () => {
    expect(listenError(e('EACCES'), { host: '0.0.0.0', family: 4, port: 80 }, 'TCP')).toMatchObject({
      code: 'ML_ERR_LINK_PERMISSION', message: 'no permission to listen on TCP 0.0.0.0:80 (EACCES): ports below 1024 need privileges; use 1024 to 65535',
    });
    expect(listenError(e('EADDRINUSE'), { host: '::1', family: 6, port: 7700 }, 'UDP').message).toMatch(/^UDP \[::1\]:7700 is in use/);
  });

  it('a serial port that is not ours to open is a permission error naming the usual fix', () => {
    expect(serialPortError('/dev/ttyS9', new Error('Error: Permission denied, cannot open /dev/ttyS9'))).toMatchObject({
      code: 'ML_ERR_LINK_PERMISSION', message: expect.stringMatching(/^no permission to open \/dev\/ttyS9 \(EACCES\); .*dialout group/),
    });
  });
});
