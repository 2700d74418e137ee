import { assert } from '../../firmware/errors.ts';
import type { HostClock } from '../clock/clock.ts';
import { keepBothPollInterests } from '../disks/serial-disk/line.ts';
import { definedOnly } from './defaults.ts';
import type { LinkLogger } from './link-logger.ts';
import { LiveLinkError } from './live-link-errors.ts';
import type { LiveLinkStats } from './live-link-types.ts';
import { LineLink } from './line-link.ts';

/** What the link needs of an open serial port: `serialport`'s SerialPort (a Duplex stream) fits, and so does its mock. */
export interface SerialPortLike {
  readonly isOpen: boolean;
  /** Bytes written but not yet handed to the operating system. */
  readonly writableLength: number;
  write(data: Uint8Array, callback?: (error?: Error | null) => void): boolean;
  on(event: 'data', fn: (chunk: Buffer) => void): unknown;
  on(event: 'close', fn: (error?: Error | null) => void): unknown;
  on(event: 'error', fn: (error: Error) => void): unknown;
  removeAllListeners(event?: 'data' | 'close' | 'error'): unknown;
  close(callback: (error?: Error | null) => void): void;
}

/** Opens the port at `path` at `baudRate`, or throws a {@link LiveLinkError} saying why not. */
export type SerialPortOpener = (path: string, baudRate: number) => Promise<SerialPortLike>;

export interface SerialLinkOptions {
  path: string;
  baudRate: number;
  clock: HostClock;
  logger: LinkLogger;
  localName: string;
  peerName: string;
  /** A `send` is refused once this many bytes wait to be written to the port. */
  sendQueueBytesMax?: number;
  /** How the port is opened (default: `serialport`; tests pass its mock binding). */
  openPort?: SerialPortOpener;
  /** A port that disappeared: an `open(0)` tries this many times to open the path again... */
  reopenAttemptsMax?: number;
  /** ...this long apart; and heartbeats sent while it is gone try once at most this often. */
  reopenIntervalMs?: number;
}

/**
 * Defaults (docs/live-links.md 6): the queue holds about 0.2 s of a 4 Mbaud line (and far more of
 * a slow one: the firmware's own windows bound what it sends); reopening tries three times, a
 * quarter second apart, enough for a USB adapter to come back after a replug or a PTY to be made
 * again, short enough that the firmware's supervisor stays in charge.
 */
export const SERIAL_LINK_DEFAULTS = {
  sendQueueBytesMax: 64 * 1024,
  reopenAttemptsMax: 3,
  reopenIntervalMs: 250,
} as const;

/**
 * Heartbeats may go this far past the send queue's bound: data is refused at the bound, so they
 * still pass a line full of data (between whole frames), and the queue stays bounded.
 */

/**
 * A live link over a serial line (docs/live-links.md 6): one data connection, heartbeats inline
 * as frames on the same byte stream (LinkEndpoint `heartbeats: 'inline'`), as the simulated line
 * does it (docs/simulated-link.md 4).
 *
 * The line delivers every byte it carries whenever the port is open, whether or not the firmware
 * holds connection 0 open: `open` and `close` are the firmware's own bookkeeping (`open(0)` is
 * answered by `opened(0)` at once, from a timer), and the HELLO that opens the connection marks
 * where a new conversation starts. Noise on the line is the firmware decoder's to skip
 * (it resynchronises on the next frame).
 *
 * A port that disappears (a USB adapter unplugged, the program behind a PTY gone) is
 * `closed(0, reason)` if the firmware held it. The link does not keep retrying on its own: an
 * `open(0)` tries to open the path again (a few times, a moment apart), and so does a heartbeat
 * sent while it is gone (at most one try per interval), since heartbeats are what bring a
 * supervisor back from `down` and they travel on this line.
 */
export class SerialLink extends LineLink<SerialPortLike> {
  readonly description: string;
  private readonly o: Required<SerialLinkOptions>;
  private readonly afterWrite = (): void => this.drained();

  private constructor(opts: SerialLinkOptions, port: SerialPortLike) {
    const o = { ...SERIAL_LINK_DEFAULTS, openPort: openSerialPort, ...definedOnly(opts) } as Required<SerialLinkOptions>;
    super(o, { what: 'a serial line', notAgain: 'did not open again' });
    this.o = o;
    this.description = `serial ${opts.path} at ${opts.baudRate} baud, heartbeats inline (${opts.localName} -> ${opts.peerName})`;
    this.device = port;
    this.adopt(port);
  }

  /** Opens the port; an absent, busy or forbidden one is a {@link LiveLinkError} naming what would work. */
  static async open(opts: SerialLinkOptions): Promise<SerialLink> {
    assert(opts.sendQueueBytesMax === undefined || (Number.isSafeInteger(opts.sendQueueBytesMax) && opts.sendQueueBytesMax >= 2),
      `sendQueueBytesMax must be an integer >= 2, got ${opts.sendQueueBytesMax}`);
    const port = await (opts.openPort ?? openSerialPort)(opts.path, opts.baudRate);
    return new SerialLink(opts, port);
  }

  stats(): LiveLinkStats {
    return { kind: 'serial', ...this.lineStats() };
  }

  protected queuedBytes(): number {
    return this.device?.writableLength ?? 0;
  }

  protected write(bytes: Uint8Array): void {
    this.device!.write(bytes, this.afterWrite);
  }

  protected findDevice(): Promise<SerialPortLike> {
    return this.o.openPort(this.o.path, this.o.baudRate);
  }

  protected letGo(port: SerialPortLike): Promise<void> {
    return closePort(port);
  }

  protected deviceLabel(): string {
    return `serial port ${this.o.path}`;
  }

  protected async stop(): Promise<void> {
    const p = await this.stopLine();
    if (p !== null) await closePort(p);
  }

  protected adopt(port: SerialPortLike): void {
    port.on('data', (chunk) => {
      if (this.device === port) this.received(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
    });
    port.on('error', (error) => this.gone(port, `serial port ${this.o.path} failed: ${error.message}`));
    port.on('close', (error) => this.gone(port, `serial port ${this.o.path} disappeared${error ? ` (${error.message})` : ''}`));
  }

  /** The port closed under us: the line is gone, and a connection the firmware held or asked for is lost. */
  private gone(port: SerialPortLike, reason: string): void {
    this.lose(port, reason, () => {
      port.removeAllListeners('data');
      if (port.isOpen) port.close(() => {});
      this.o.logger.warn({ path: this.o.path, reason }, 'serial line lost');
    });
  }
}

function closePort(port: SerialPortLike): Promise<void> {
  port.removeAllListeners('data');
  if (!port.isOpen) return Promise.resolve();
  return new Promise<void>((resolve) => port.close(() => resolve()));
}

/**
 * Opens a serial port through `serialport` (8N1, no flow control, locked with TIOCEXCL so a port
 * another program holds is refused).
 */
export async function openSerialPort(path: string, baudRate: number): Promise<SerialPortLike> {
  const { SerialPort } = await import('serialport');
  const port = new SerialPort({ path, baudRate, autoOpen: false, lock: true });
  // An error before anyone listens would be thrown from the stream: the link listens once it adopts the port.
  port.on('error', () => {});
  const error = await new Promise<Error | null>((resolve) => port.open(resolve));
  if (error !== null) throw serialPortError(path, error);
  keepBothPollInterests((port as { port?: unknown }).port);
  return port;
}

/** What `serialport`'s open error means, as a one-line error naming the port and what would work. */
export function serialPortError(path: string, error: Error): LiveLinkError {
  const m = error.message;
  if (/cannot lock|resource temporarily unavailable|EBUSY|busy/i.test(m)) {
    return new LiveLinkError('ML_ERR_LINK_SERIAL_IN_USE',
      `serial port ${path} is in use by another program (${m}); close it there first`, error);
  }
  if (/no such file|ENOENT/i.test(m)) {
    return new LiveLinkError('ML_ERR_LINK_SERIAL_PORT',
      `no serial port at ${path} (ENOENT); expected a tty such as /dev/ttyUSB0 (see mirrorlab devices) or a PTY`, error);
  }
  if (/permission denied|EACCES/i.test(m)) {
    return new LiveLinkError('ML_ERR_LINK_PERMISSION',
      `no permission to open ${path} (EACCES); a serial link needs read and write access (the dialout group, usually)`, error);
  }
  if (/inappropriate ioctl|is a directory|ENOTTY|EISDIR/i.test(m)) {
    return new LiveLinkError('ML_ERR_LINK_SERIAL_PORT',
      `${path} is not a serial port (${m}); expected a tty such as /dev/ttyUSB0 or a PTY`, error);
  }
  return new LiveLinkError('ML_ERR_LINK_SERIAL_PORT', `cannot open serial port ${path}: ${m}`, error);
}
