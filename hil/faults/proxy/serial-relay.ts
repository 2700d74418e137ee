import { SerialPortLine, serialOpenError } from '../../../host/disks/serial-disk/line.ts';
import { ProxyError } from './errors.ts';
import { FaultPipe } from './fault-pipe.ts';
import type { ProxyDirection } from './frame-decisions.ts';
import { FrameSplitter } from './frame-splitter.ts';
import { ProxyCore, type FaultProxyCommonOptions } from './proxy-core.ts';
import type { ProxyStats } from './proxy-stats.ts';
import type { FaultProxy } from './tcp-proxy.ts';

export const SERIAL_CHANNEL = 'serial';

export interface SerialFaultProxyOptions extends FaultProxyCommonOptions {
  /** The proxy's end of the PTY pair whose other end controller A opens (A is the plan's first name). */
  pathA: string;
  /** The proxy's end of the PTY pair whose other end controller B opens. */
  pathB: string;
  baud: number;
  /**
   * Pace each direction to the baud rate (10 bits a byte on an 8N1 line), as a UART would; a PTY
   * ignores the rate (docs/fault-proxy.md 7). A `bandwidth=` item still changes it when its time comes.
   */
  paceToBaud?: boolean;
}

/** What the relay needs of an opened serial port: the line for reading, and the port for writing with backpressure. */
interface OpenedPort {
  line: SerialPortLine;
  write(bytes: Uint8Array): boolean;
  onDrain(fn: () => void): void;
}

/**
 * Starts the serial relay (docs/fault-proxy.md 2): between two PTY pairs, controller A on one,
 * controller B on the other, the proxy holding the inner ends. One byte stream each way, cut into
 * frames and noise like a TCP connection; heartbeats are inline frames, so `hbloss` strikes the
 * HEARTBEATs on the line. There is no connection to reset: a plan with `reset=` is refused
 * (ML_ERR_PROXY_PLAN), and so is a path that cannot be opened (ML_ERR_PROXY_SERIAL).
 */
export async function startSerialFaultProxy(opts: SerialFaultProxyOptions): Promise<FaultProxy> {
  if (opts.plan.resetPerMillion > 0) {
    throw new ProxyError('ML_ERR_PROXY_PLAN',
      '--faults: reset=P resets a TCP connection, and a serial line has none; use drop=P, or silent=AT+FOR to cut the line');
  }
  if (opts.pathA === opts.pathB) {
    throw new ProxyError('ML_ERR_PROXY_SERIAL', `--serial: both ends are ${opts.pathA}; give the proxy's end of each PTY pair, A's then B's`);
  }
  const core = new ProxyCore('serial', opts);
  const a = await openPort(opts.pathA, opts.baud);
  let b: OpenedPort;
  try {
    b = await openPort(opts.pathB, opts.baud);
  } catch (error) {
    await a.line.close();
    throw error;
  }
  if (opts.paceToBaud) {
    const mbps = (opts.baud * 0.8) / 1e6;
    core.pacers.ab.set(mbps);
    core.pacers.ba.set(mbps);
  }
  return new SerialRelay(core, { a, b }, opts);
}

async function openPort(path: string, baud: number): Promise<OpenedPort> {
  const { SerialPort } = await import('serialport');
  const port = new SerialPort({ path, baudRate: baud, autoOpen: false, lock: true });
  const error = await new Promise<Error | null>((resolve) => port.open(resolve));
  if (error !== null) throw new ProxyError('ML_ERR_PROXY_SERIAL', `--serial: ${serialOpenError(path, error).message}`);
  return { line: new SerialPortLine(port), write: (bytes) => port.write(bytes), onDrain: (fn) => port.on('drain', fn) };
}

class SerialRelay implements FaultProxy {
  readonly link = 'serial' as const;
  readonly address = null;
  readonly description: string;
  private readonly pipes: Record<ProxyDirection, FaultPipe>;
  private readonly splitters: Record<ProxyDirection, FrameSplitter>;
  private stopping: Promise<void> | null = null;

  private readonly a: OpenedPort;
  private readonly b: OpenedPort;

  constructor(private readonly core: ProxyCore, ports: { a: OpenedPort; b: OpenedPort }, opts: SerialFaultProxyOptions) {
    const { a, b } = ports;
    this.a = a;
    this.b = b;
    this.description = `fault relay ${opts.pathA} <-> ${opts.pathB} (serial, ${opts.baud} baud${opts.paceToBaud ? ', paced' : ''})`;
    const pipe = (dir: ProxyDirection, to: OpenedPort): FaultPipe => new FaultPipe({
      core, dir, channel: SERIAL_CHANNEL, kind: 'serial', counters: core.tallies[dir].open(SERIAL_CHANNEL),
      sink: { write: (bytes) => to.write(bytes) },
      ordering: 'stream', overflow: 'drop', queueBytesMax: core.limits.pipeQueueBytesMax, queueItemsMax: core.limits.pipeQueueItemsMax,
    });
    this.pipes = { ab: pipe('ab', b), ba: pipe('ba', a) };
    const splitter = (dir: ProxyDirection): FrameSplitter =>
      new FrameSplitter({ payloadBytesMax: core.limits.payloadBytesMax, onPiece: (piece) => this.pipes[dir].accept(piece) });
    this.splitters = { ab: splitter('ab'), ba: splitter('ba') };
    b.onDrain(() => this.pipes.ab.drained());
    a.onDrain(() => this.pipes.ba.drained());
    for (const [dir, from, name] of [['ab', a, opts.pathA], ['ba', b, opts.pathB]] as const) {
      from.line.onData((chunk) => {
        if (!core.stopped) this.splitters[dir].push(chunk);
      });
      from.line.onClose((error) => {
        if (core.stopped) return;
        core.log.warn({ path: name, error: error?.message }, 'fault proxy: a serial line closed; that direction relays nothing more');
      });
    }
    core.start();
    core.log.info({ a: opts.pathA, b: opts.pathB, baud: opts.baud }, 'fault relay running');
  }

  stats(): ProxyStats {
    return this.core.stats();
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.core.stop();
    this.pipes.ab.close();
    this.pipes.ba.close();
    await Promise.all([this.a.line.close(), this.b.line.close()]);
  }
}
