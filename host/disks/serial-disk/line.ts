import { AttachedDeviceError } from '../attached-errors.ts';

/**
 * A byte line: what the serial block protocol runs over. A serial port (through `serialport`),
 * a PTY, or in tests an in-memory pair that can lose and flip bytes. Bytes arrive in order or not
 * at all (a UART has no retransmission), in chunks of any size.
 */
export interface ByteLine {
  /** Queues bytes for sending; the caller may reuse nothing it passed (the line keeps the buffer). */
  write(bytes: Uint8Array): void;
  /** Sets the one receiver of incoming bytes. */
  onData(receiver: (chunk: Uint8Array) => void): void;
  /** Sets the one receiver of the line's end (closed by either side, or an I/O error). */
  onClose(receiver: (error?: Error) => void): void;
  close(): Promise<void>;
}

/** What a `serialport` SerialPort offers that the line uses (its Duplex stream, opened). */
interface SerialPortLike {
  readonly isOpen: boolean;
  write(data: Uint8Array): boolean;
  on(event: 'data', fn: (chunk: Buffer) => void): unknown;
  on(event: 'close', fn: (error?: Error | null) => void): unknown;
  on(event: 'error', fn: (error: Error) => void): unknown;
  open(callback: (error: Error | null) => void): void;
  close(callback: (error?: Error | null) => void): void;
}

/** A serial port as a ByteLine. */
export class SerialPortLine implements ByteLine {
  private dataReceiver: (chunk: Uint8Array) => void = () => {};
  private closeReceiver: (error?: Error) => void = () => {};
  private ended = false;

  constructor(private readonly port: SerialPortLike) {
    keepBothPollInterests((port as { port?: unknown }).port);
    port.on('data', (chunk) => this.dataReceiver(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)));
    port.on('error', (error) => this.end(error));
    port.on('close', (error) => this.end(error ?? undefined));
  }

  write(bytes: Uint8Array): void {
    if (!this.ended && this.port.isOpen) this.port.write(bytes);
  }

  onData(receiver: (chunk: Uint8Array) => void): void {
    this.dataReceiver = receiver;
  }

  onClose(receiver: (error?: Error) => void): void {
    this.closeReceiver = receiver;
  }

  async close(): Promise<void> {
    if (!this.port.isOpen) return;
    await new Promise<void>((resolve) => this.port.close(() => resolve()));
  }

  private end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.closeReceiver(error);
  }
}

/** The events of `serialport`'s unix poller (UV_READABLE, UV_WRITABLE). */
const POLL_READABLE = 1;
const POLL_WRITABLE = 2;

interface UnixPoller {
  poll(flags: number): void;
  listenerCount(event: string): number;
}

/**
 * Works around a bug in `@serialport/bindings-cpp` (its native Poller::poll starts uv_poll with
 * only the events just asked for, not with those still awaited): when a write meets EAGAIN (the
 * tty's buffer is full) and waits for "writable", the next read that waits for "readable"
 * replaces that interest, and the write stalls until some byte happens to arrive. On a PTY under
 * load that is a stall of seconds per large frame. So every poll here also asks for the events
 * that still have a waiter. Harmless when the bug is fixed: asking for an event twice is idempotent.
 */
export function keepBothPollInterests(binding: unknown): void {
  const poller = (binding as { poller?: UnixPoller } | undefined)?.poller;
  if (poller === undefined || typeof poller.poll !== 'function' || typeof poller.listenerCount !== 'function') return;
  const poll = poller.poll.bind(poller);
  poller.poll = (flags: number): void => {
    let all = flags;
    if (poller.listenerCount('readable') > 0) all |= POLL_READABLE;
    if (poller.listenerCount('writable') > 0) all |= POLL_WRITABLE;
    poll(all);
  };
}

/**
 * Opens the serial port at `path` at `baud` (8N1, no flow control) as a line. `serialport` locks
 * the port (TIOCEXCL), so a port another program holds is refused. Errors are one line each:
 * no such port, in use, not a serial port.
 */
export async function openSerialLine(path: string, baud: number): Promise<SerialPortLine> {
  const { SerialPort } = await import('serialport');
  const port = new SerialPort({ path, baudRate: baud, autoOpen: false, lock: true });
  const error = await new Promise<Error | null>((resolve) => port.open(resolve));
  if (error !== null) throw serialOpenError(path, error);
  return new SerialPortLine(port);
}

/** What `serialport`'s open error means, as an operating error naming the port and what would work. */
export function serialOpenError(path: string, error: Error): AttachedDeviceError {
  const m = error.message;
  if (/cannot lock|resource temporarily unavailable|EBUSY|busy/i.test(m)) {
    return new AttachedDeviceError('ML_ERR_SERIAL_DISK_IN_USE', `serial port ${path} is in use by another program (${m}); close it there first`, error);
  }
  if (/no such file|ENOENT/i.test(m)) return new AttachedDeviceError('ML_ERR_SERIAL_DISK_PORT', `no serial port at ${path}; expected a tty such as /dev/ttyUSB0 (see mirrorlab devices)`, error);
  if (/permission denied|EACCES/i.test(m)) return new AttachedDeviceError('ML_ERR_SERIAL_DISK_PORT', `no permission to open ${path}; expected read and write access (the dialout group, usually)`, error);
  if (/inappropriate ioctl|is a directory|ENOTTY/i.test(m)) return new AttachedDeviceError('ML_ERR_SERIAL_DISK_PORT', `${path} is not a serial port (${m}); expected a tty such as /dev/ttyUSB0`, error);
  return new AttachedDeviceError('ML_ERR_SERIAL_DISK_PORT', `cannot open serial port ${path}: ${m}`, error);
}
