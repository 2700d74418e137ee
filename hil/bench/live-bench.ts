import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect as dialTcp, type NetConnectOpts, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MirrorMode } from '../../firmware/mirror/types.ts';
import { encodeFrame } from '../../firmware/protocol/encode.ts';
import { FRAME_OVERHEAD_BYTES, FrameType } from '../../firmware/protocol/frame.ts';
import { RealClock } from '../../host/clock/real.ts';
import { ptyPair, type PtyPair } from '../../host/disks/serial-disk/socat-pty.ts';
import { silentLinkLogger } from '../../host/transports/link-logger.ts';
import { openLiveLink, type LiveLink } from '../../host/transports/live-link.ts';
import { openSerialPort, type SerialPortLike } from '../../host/transports/serial-link.ts';
import { TCP_LINK_DEFAULTS, type TcpLink } from '../../host/transports/tcp-link.ts';
import { LivePair, driveWrites } from './live-pair.ts';
import { SideProcess } from './live-processes.ts';
import { pump } from './live-side.ts';

/**
 * The live benchmark (docs/live-links.md 10), wall clock. Each ratio is taken in one run, as the
 * median of rounds that measure the raw copy and the mirror back to back (so both see the same
 * load on the machine): mirrored write throughput over loopback TCP against raw loopback TCP
 * moving the same bytes in the same process; the TCP link alone (frames already encoded) against
 * the same raw copy; the mirror over a socat PTY pair against a raw copy through the same kind of
 * pair; host write latency over loopback. PTYs ignore the baud rate, so the serial figures are
 * upper bounds for any real line.
 */
export const LIVE_BENCH = {
  /** Mirrored writes: speculative (the host waits for the target's confirmation), queue depth 32, 2 TCP connections. */
  mode: 'speculative' as MirrorMode,
  queueDepth: 32,
  connections: 2,
  tcpWriteBytes: [64 * 1024, 1024 * 1024],
  /** Bytes each timed TCP run moves (and each serial run), before `scale`. */
  tcpBytes: 256 * 1024 * 1024,
  serialWriteBytes: [64 * 1024],
  serialBytes: 32 * 1024 * 1024,
  rounds: 3,
  /** The latency row: 4 KiB writes one at a time. */
  latencyWriteBytes: 4096,
  latencyWrites: 2_000,
  /** Each controller's memory volume; a warm-up pass writes it once before anything is timed. */
  volumeBytes: 64 * 1024 * 1024,
  /** The serial links and raw copy run at the fastest rate a serial-disk line takes (a PTY ignores it). */
  serialBaud: 4_000_000,
} as const;

/** The live bench's target: the mirror keeps up with a raw copy of the same bytes on the same transport. */
export const LIVE_RATIO_MIN = 0.8;

export interface LiveThroughputRow {
  /** `mirrored`: two controllers, host writes acknowledged; `link`: the TCP link alone carrying encoded WRITE frames. */
  what: 'mirrored' | 'link';
  transport: 'tcp' | 'serial';
  /**
   * 1: both ends (both controllers, and the raw copy's sender and receiver) in the bench's own
   * process; 2: each end in a process of its own, as deployed controllers are.
   */
  processes: 1 | 2;
  writeBytes: number;
  /** Medians over the rounds: payload MB/s (10^6 bytes) of the measured path and of the raw copy, and of their per-round ratios. */
  MBps: number;
  rawMBps: number;
  ratio: number;
  /** Every round's ratio, in order. */
  ratios: number[];
  /** CPU (every thread of every process of the row) per MB moved, median over the rounds: where the time goes when the machine is busy. */
  cpuMsPerMB: number;
  rawCpuMsPerMB: number;
}

export interface LiveBenchResult {
  scale: number;
  /** The machine's 1, 5 and 15 minute load averages as the bench started: how much else was running. */
  loadAverage: number[];
  rows: LiveThroughputRow[];
  latency: { writeBytes: number; writes: number; p50Ms: number; p99Ms: number; meanMs: number };
  /** Why the serial rows were not measured (no socat), or null. */
  serialSkipped: string | null;
}

export interface LiveBenchOptions {
  /** Multiplies the bytes each run moves and the latency row's writes (0.05 for a quick look). */
  scale?: number;
  /** Each controller's volume (default {@link LIVE_BENCH}.volumeBytes); smaller makes the warm-up shorter. */
  volumeBytes?: number;
  log?: (fields: object, message: string) => void;
}

export const LIVE_BENCH_SCALE_MIN = 0.01;
export const LIVE_BENCH_SCALE_MAX = 10;

export async function measureLive(o: LiveBenchOptions = {}): Promise<LiveBenchResult> {
  const scale = o.scale ?? 1;
  const loadAverage = loadavg().map((x) => Math.round(x * 100) / 100);
  const log = o.log ?? (() => {});
  const volumeBytes = o.volumeBytes ?? LIVE_BENCH.volumeBytes;
  const rows: LiveThroughputRow[] = [];
  const done = (row: LiveThroughputRow): void => {
    rows.push(row);
    log(row, 'live row measured');
  };
  for (const w of LIVE_BENCH.tcpWriteBytes) done(await tcpMirroredRow(w, scaled(LIVE_BENCH.tcpBytes, scale, w), volumeBytes));
  for (const w of LIVE_BENCH.tcpWriteBytes) done(await tcpTwoProcessRow(w, scaled(LIVE_BENCH.tcpBytes, scale, w), volumeBytes));
  done(await tcpLinkRow(LIVE_BENCH.tcpWriteBytes[0], scaled(LIVE_BENCH.tcpBytes, scale, LIVE_BENCH.tcpWriteBytes[0])));
  let serialSkipped: string | null = null;
  const dir = await mkdtemp(join(tmpdir(), 'mirrorlab-live-bench-'));
  try {
    for (const w of LIVE_BENCH.serialWriteBytes) done(await serialMirroredRow(dir, w, scaled(LIVE_BENCH.serialBytes, scale, w), volumeBytes));
  } catch (error) {
    if (!/socat/.test(String(error))) throw error;
    serialSkipped = (error as Error).message;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const latency = await tcpLatency(Math.max(100, Math.round(LIVE_BENCH.latencyWrites * scale)), volumeBytes);
  return { scale, loadAverage, rows, latency, serialSkipped };
}

/** `bytes × scale`, at least 32 writes' worth. */
const scaled = (bytes: number, scale: number, writeBytes: number): number => Math.max(writeBytes * 32, Math.round(bytes * scale));

/** One timed run: payload MB/s and process CPU ms per MB. */
interface Run {
  MBps: number;
  cpuMsPerMB: number;
}

async function timed(payloadBytes: number, work: () => Promise<void>): Promise<Run> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await work();
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const mb = payloadBytes / 1e6;
  return { MBps: mb / seconds, cpuMsPerMB: (used.user + used.system) / 1000 / mb };
}

/** Rounds of (raw, measured) back to back; the row holds the medians. */
async function rounds(what: LiveThroughputRow['what'], transport: LiveThroughputRow['transport'], writeBytes: number,
  raw: () => Promise<Run>, measured: () => Promise<Run>, processes: 1 | 2 = 1): Promise<LiveThroughputRow> {
  const r: Run[] = [];
  const m: Run[] = [];
  for (let i = 0; i < LIVE_BENCH.rounds; i++) {
    r.push(await raw());
    m.push(await measured());
  }
  const ratios = m.map((x, i) => round3(x.MBps / r[i]!.MBps));
  return {
    what, transport, processes, writeBytes, MBps: round1(median(m.map((x) => x.MBps))), rawMBps: round1(median(r.map((x) => x.MBps))),
    ratio: median(ratios), ratios, cpuMsPerMB: round3(median(m.map((x) => x.cpuMsPerMB))), rawCpuMsPerMB: round3(median(r.map((x) => x.cpuMsPerMB))),
  };
}

// ---- mirrored ------------------------------------------------------------------------------------

/** Two TCP live links on 127.0.0.1: A connects, B listens. */
async function tcpLinks(clock: RealClock): Promise<[TcpLink, TcpLink]> {
  const common = { clock, logger: silentLinkLogger };
  const listen = await openLiveLink({ kind: 'tcp', role: 'listen', host: '127.0.0.1', port: 0, connections: LIVE_BENCH.connections },
    { ...common, localName: 'B', peerName: 'A' }) as TcpLink;
  const connect = await openLiveLink({ kind: 'tcp', role: 'connect', host: '127.0.0.1', port: listen.port, connections: LIVE_BENCH.connections },
    { ...common, localName: 'A', peerName: 'B' }) as TcpLink;
  return [connect, listen];
}

/**
 * A controller pair on the links, up, its volumes written once (warm-up: store allocated, code
 * compiled); `run` mirrors `bytes` in writes of `writeBytes` at `depth`, cycling over the volume,
 * timed from the first write to the last acknowledgement, with each write's latency.
 */
async function mirroredPair(a: LiveLink, b: LiveLink, clock: RealClock, writeBytes: number, volumeBytes: number) {
  const limits = { payloadBytesMax: Math.max(writeBytes, 1024 * 1024) };
  const pair = new LivePair(a, b, { clock, seed: 1, mode: LIVE_BENCH.mode, volumeBytes, limits });
  pair.start();
  const write = (bytes: number, depth: number, latenciesMs?: Float64Array): Promise<void> =>
    driveWrites(pair.source, { writeBytes, volumeBytes, bytes, depth, ...(latenciesMs === undefined ? {} : { latenciesMs }) });
  await pair.waitUp(30_000);
  await write(volumeBytes, LIVE_BENCH.queueDepth);
  return {
    pair,
    run: async (bytes: number): Promise<Run> => {
      const r = await timed(Math.ceil(bytes / writeBytes) * writeBytes, () => write(bytes, LIVE_BENCH.queueDepth));
      if (pair.failure !== null) throw new Error(`the firmware failed during the live bench: ${String(pair.failure)}`);
      return r;
    },
    latencies: async (writes: number): Promise<Float64Array> => {
      const out = new Float64Array(writes);
      await write(writes * writeBytes, 1, out);
      return out;
    },
  };
}

async function tcpMirroredRow(writeBytes: number, bytes: number, volumeBytes: number): Promise<LiveThroughputRow> {
  const clock = new RealClock();
  const [a, b] = await tcpLinks(clock);
  const m = await mirroredPair(a, b, clock, writeBytes, volumeBytes);
  try {
    return await rounds('mirrored', 'tcp', writeBytes, () => rawTcp(writeBytes, bytes), () => m.run(bytes));
  } finally {
    m.pair.stop();
    await Promise.all([a.shutdown(), b.shutdown()]);
  }
}

async function serialMirroredRow(dir: string, writeBytes: number, bytes: number, volumeBytes: number): Promise<LiveThroughputRow> {
  const clock = new RealClock();
  const pty = await ptyPair(dir, `mirror-${writeBytes}`);
  try {
    const common = { clock, logger: silentLinkLogger };
    const a = await openLiveLink({ kind: 'serial', path: pty.a, baudRate: LIVE_BENCH.serialBaud }, { ...common, localName: 'A', peerName: 'B' });
    const b = await openLiveLink({ kind: 'serial', path: pty.b, baudRate: LIVE_BENCH.serialBaud }, { ...common, localName: 'B', peerName: 'A' });
    const m = await mirroredPair(a, b, clock, writeBytes, volumeBytes);
    try {
      return await rounds('mirrored', 'serial', writeBytes, () => rawPty(dir, writeBytes, bytes), () => m.run(bytes));
    } finally {
      m.pair.stop();
      await Promise.all([a.shutdown(), b.shutdown()]);
    }
  } finally {
    await pty.stop();
  }
}

async function tcpLatency(writes: number, volumeBytes: number): Promise<LiveBenchResult['latency']> {
  const clock = new RealClock();
  const [a, b] = await tcpLinks(clock);
  const w = LIVE_BENCH.latencyWriteBytes;
  const m = await mirroredPair(a, b, clock, w, volumeBytes);
  try {
    const sorted = (await m.latencies(writes)).sort();
    const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    const meanMs = round3(sorted.reduce((s, x) => s + x, 0) / sorted.length);
    return { writeBytes: w, writes, p50Ms: round3(at(0.5)), p99Ms: round3(at(0.99)), meanMs };
  } finally {
    m.pair.stop();
    await Promise.all([a.shutdown(), b.shutdown()]);
  }
}

// ---- two processes -------------------------------------------------------------------------------

/**
 * The mirror as deployed: the source controller and the target controller each in a process of
 * its own (live-side.ts), over loopback TCP, the source's process also the host; against the raw
 * copy's sender and receiver, likewise two processes, moving the same WRITE frames. Timed by this
 * process from its request to the answer that the last write was acknowledged (or the last byte
 * received); the CPU per MB is both processes' together.
 */
async function tcpTwoProcessRow(writeBytes: number, bytes: number, volumeBytes: number): Promise<LiveThroughputRow> {
  const sides: SideProcess[] = [];
  try {
    const common = { connections: LIVE_BENCH.connections, writeBytes, volumeBytes, seed: 1 };
    const target = await SideProcess.start({ role: 'mirror-target', ...common });
    sides.push(target.side);
    const source = await SideProcess.start({ role: 'mirror-source', ...common, port: target.port, queueDepth: LIVE_BENCH.queueDepth });
    sides.push(source.side);
    const recv = await SideProcess.start({ role: 'raw-recv' });
    sides.push(recv.side);
    const send = await SideProcess.start({ role: 'raw-send', port: recv.port, connections: LIVE_BENCH.connections });
    sides.push(send.side);
    const frames = Math.ceil(bytes / writeBytes);
    const chunkBytes = wireBytes(writeBytes);
    let rawTotal = 0;
    const raw = (): Promise<Run> => timedSides(frames * writeBytes, [send.side, recv.side], async () => {
      rawTotal += frames * chunkBytes;
      await Promise.all([recv.side.request({ op: 'expect', total: rawTotal }), send.side.request({ op: 'run', bytes, frames, chunkBytes })]);
    });
    const mirrored = (): Promise<Run> => timedSides(frames * writeBytes, [source.side, target.side], async () => {
      await source.side.request({ op: 'run', bytes, frames, chunkBytes });
    });
    return await rounds('mirrored', 'tcp', writeBytes, raw, mirrored, 2);
  } finally {
    await Promise.all(sides.map((p) => p.stop()));
  }
}

/** One timed run across processes: payload MB/s, and the CPU per MB of `sides` together. */
async function timedSides(payloadBytes: number, sides: SideProcess[], work: () => Promise<void>): Promise<Run> {
  const before = await Promise.all(sides.map((p) => p.cpuUs()));
  const started = performance.now();
  await work();
  const seconds = (performance.now() - started) / 1000;
  const after = await Promise.all(sides.map((p) => p.cpuUs()));
  const cpuMs = after.reduce((sum, us, i) => sum + us - before[i]!, 0) / 1000;
  const mb = payloadBytes / 1e6;
  return { MBps: mb / seconds, cpuMsPerMB: cpuMs / mb };
}

// ---- the link alone ------------------------------------------------------------------------------

/**
 * The TCP link alone: the mirrored writes' WRITE frames, encoded once, sent round robin over the
 * link's connections as fast as `send` takes them (waiting for `writable` when both refuse), the
 * far end's handler counting bytes. What the transport costs beside a raw socket, firmware aside.
 */
async function tcpLinkRow(writeBytes: number, bytes: number): Promise<LiveThroughputRow> {
  const clock = new RealClock();
  const [a, b] = await tcpLinks(clock);
  const data = new Uint8Array(writeBytes).fill(0xa5);
  const frame = encodeFrame({ type: FrameType.Write, lun: 0, seq: 1, flags: 0, lockId: 1, lba: 0, tag: 0, data });
  let received = 0;
  let arrived: (() => void) | null = null;
  let wake: (() => void) | null = null;
  let opened = 0;
  const ignore = (): void => {};
  b.attach({ opened: () => void opened++, closed: ignore, datagram: ignore, writable: ignore, bytes: (_c, chunk) => {
    received += chunk.length;
    arrived?.();
  } });
  a.attach({ opened: () => void opened++, closed: ignore, datagram: ignore, bytes: ignore, writable: () => {
    const w = wake;
    wake = null;
    w?.();
  } });
  for (let k = 0; k < LIVE_BENCH.connections; k++) {
    b.open(k);
    a.open(k);
  }
  try {
    for (let i = 0; opened < 2 * LIVE_BENCH.connections; i++) {
      if (i > 3_000) throw new Error('the TCP link did not open on loopback within 30 s');
      await sleep(10);
    }
    const frames = Math.ceil(bytes / writeBytes);
    const send = async (): Promise<void> => {
      const target = received + frames * frame.length;
      const all = new Promise<void>((resolve) => (arrived = () => received >= target && resolve()));
      for (let i = 0, k = 0; i < frames;) {
        if (a.send(k, frame) || a.send((k = (k + 1) % LIVE_BENCH.connections), frame)) {
          i++;
          k = (k + 1) % LIVE_BENCH.connections;
        } else {
          await new Promise<void>((resolve) => (wake = resolve));
        }
      }
      await all;
    };
    return await rounds('link', 'tcp', writeBytes, () => rawTcp(writeBytes, bytes), () => timed(frames * writeBytes, send));
  } finally {
    await Promise.all([a.shutdown(), b.shutdown()]);
  }
}

// ---- raw -----------------------------------------------------------------------------------------

/** The bytes a mirrored write puts on the wire: its WRITE frame (the LOCK, UNLOCK and ACKs around it are left out, in the raw copy's favour). */
const wireBytes = (writeBytes: number): number => writeBytes + FRAME_OVERHEAD_BYTES;

/**
 * Raw loopback TCP moving the mirrored writes' WRITE frames: as many connections, in this
 * process, each sender writing frame-sized chunks as fast as its socket takes them (waiting for
 * 'drain' beyond the queue a TCP link keeps, so that neither side is starved of buffer), the
 * receiver counting. Payload MB/s, comparable with the mirrored rows.
 */
async function rawTcp(writeBytes: number, bytes: number): Promise<Run> {
  const n = LIVE_BENCH.connections;
  const frames = Math.ceil(bytes / writeBytes);
  const chunk = new Uint8Array(wireBytes(writeBytes)).fill(0xa5);
  const total = frames * chunk.length;
  const accepted: Socket[] = [];
  let received = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => (done = resolve));
  const server = createServer((s) => {
    accepted.push(s);
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= total) done();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const clients = await Promise.all(Array.from({ length: n }, () => new Promise<Socket>((resolve) => {
    // Node's sockets take the stream option writableHighWaterMark, which @types/node leaves out of NetConnectOpts.
    const opts = { host: '127.0.0.1', port, noDelay: true, writableHighWaterMark: TCP_LINK_DEFAULTS.sendQueueBytesMax } as NetConnectOpts;
    const s = dialTcp(opts, () => resolve(s));
    s.on('error', () => {});
  })));
  try {
    const share = (k: number): number => Math.floor(frames / n) + (k < frames % n ? 1 : 0);
    return await timed(frames * writeBytes, async () => {
      await Promise.all(clients.map((s, k) => pump(s, chunk, share(k))));
      await finished;
    });
  } finally {
    for (const s of [...clients, ...accepted]) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}


/**
 * A raw copy through a socat PTY pair, through serialport as the serial link uses it: one end
 * writes the mirrored writes' WRITE frames as fast as the port's stream takes them (waiting for
 * 'drain'), the other counts. Payload MB/s.
 */
async function rawPty(dir: string, writeBytes: number, bytes: number): Promise<Run> {
  const pty: PtyPair = await ptyPair(dir, `raw-${writeBytes}`);
  const ports: SerialPortLike[] = [];
  try {
    const tx = await openSerialPort(pty.a, LIVE_BENCH.serialBaud);
    ports.push(tx);
    const rx = await openSerialPort(pty.b, LIVE_BENCH.serialBaud);
    ports.push(rx);
    const frames = Math.ceil(bytes / writeBytes);
    const chunk = new Uint8Array(wireBytes(writeBytes)).fill(0xa5);
    let received = 0;
    const finished = new Promise<void>((resolve) => rx.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= frames * chunk.length) resolve();
    }));
    const drained = (): Promise<void> => new Promise<void>((resolve) => (tx as unknown as Socket).once('drain', resolve));
    return await timed(frames * writeBytes, async () => {
      for (let i = 0; i < frames; i++) if (!tx.write(chunk)) await drained();
      await finished;
    });
  } finally {
    for (const p of ports) await new Promise<void>((resolve) => p.close(() => resolve()));
    await pty.stop();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;
