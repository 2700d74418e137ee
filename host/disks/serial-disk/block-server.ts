import { DeviceFailedError, MediaError, OutOfRangeError, type BlockDevice } from '../../../firmware/ports/block-device.ts';
import {
  BLOCK_PAYLOAD_BYTES_MAX,
  BlockFrameType,
  BlockNakReason,
  BlockStatus,
  encodeBlockFrame,
  encodeGeometry,
  type BlockFrame,
  type BlockFrameError,
} from './block-frames.ts';
import type { ByteLine } from './line.ts';
import { FrameReceiver, type LineTimers } from './receiver.ts';

export interface BlockServerOptions {
  line: ByteLine;
  device: BlockDevice;
  /** What IDENTIFY calls the volume (default the device's name). */
  name?: string;
  /**
   * Largest READ/WRITE payload taken in one frame (bytes; rounded down to sectors). Default 4 KiB:
   * on a noisy line a frame is lost whole, so small frames lose little; at 115,200 baud one is
   * 0.36 s of line time.
   */
  transferBytesMax?: number;
  /** Requests a host may have outstanding (IDENTIFY tells it). Default 8. */
  requestsInFlightMax?: number;
  /** Told about protocol events worth a log line (a new session, a NAK, a device error). */
  onEvent?: (event: BlockServerEvent) => void;
  /** The line's rate (how long a silence means a partial frame is dead). Default 115,200. */
  baud?: number;
  timers?: LineTimers;
}

export type BlockServerEvent =
  | { kind: 'session'; session: number }
  | { kind: 'nak'; expected: number; reason: 'corrupt' | 'gap' }
  | { kind: 'device-error'; seq: number; message: string }
  | { kind: 'frame-error'; code: string };

export interface BlockServerCounters {
  requests: number;
  duplicates: number;
  naks: number;
  frameErrors: number;
}



export const BLOCK_SERVER_TRANSFER_BYTES_DEFAULT = 4 * 1024;
export const BLOCK_SERVER_REQUESTS_IN_FLIGHT_DEFAULT = 8;

/**
 * The device side of the serial block protocol (docs/usb-serial-targets.md): what a board does,
 * serving any BlockDevice over a line. `mirrorlab serial-disk` runs one; a board's firmware does
 * the same in C.
 *
 * Requests are executed one at a time, strictly in sequence order: the one expected next is
 * accepted (and queued, at most a window's worth), a later one means something was lost (NAK the
 * expected number, once per number, and drop it), an earlier one is a repeat (a WRITE or FLUSH is
 * answered from the reply cache, never done twice, since a later write may have landed since; a
 * READ is simply read again). A corrupt frame whose header still names our session is NAKed too,
 * so the host resends without waiting for its timeout.
 */
export class BlockServer {
  readonly counters: BlockServerCounters = { requests: 0, duplicates: 0, naks: 0, frameErrors: 0 };
  private readonly device: BlockDevice;
  private readonly line: ByteLine;
  private readonly transferBytesMax: number;
  private readonly window: number;
  private readonly receiver: FrameReceiver;
  private session: number | null = null;
  private expected = 1;
  private nakedFor = 0;
  private readonly queue: BlockFrame[] = [];
  private readonly replies = new Map<number, Uint8Array>();
  private running = false;
  private stopped = false;
  private idle: Promise<void> = Promise.resolve();

  constructor(private readonly options: BlockServerOptions) {
    this.device = options.device;
    this.line = options.line;
    const ss = this.device.sectorSize;
    this.transferBytesMax = Math.max(ss, Math.floor(Math.min(options.transferBytesMax ?? BLOCK_SERVER_TRANSFER_BYTES_DEFAULT, BLOCK_PAYLOAD_BYTES_MAX) / ss) * ss);
    this.window = Math.max(1, Math.min(256, options.requestsInFlightMax ?? BLOCK_SERVER_REQUESTS_IN_FLIGHT_DEFAULT));
    this.receiver = new FrameReceiver({
      line: this.line, baud: options.baud ?? 115_200, timers: options.timers, payloadBytesMax: Math.max(this.transferBytesMax, 1024),
      onFrame: (f) => this.frame(f),
      onError: (e) => this.frameError(e),
      // A frame died half-way (a byte was lost): most likely the request expected next. Say so now.
      onSilenceReset: () => {
        if (this.session !== null) this.nak(this.session, 'corrupt');
      },
    });
  }

  /** Stops serving; resolves once the request being executed has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.receiver.stop();
    this.queue.length = 0;
    await this.idle;
  }

  private frame(f: BlockFrame): void {
    if (f.type === BlockFrameType.Identify) return this.identify(f);
    if (f.type !== BlockFrameType.Read && f.type !== BlockFrameType.Write && f.type !== BlockFrameType.Flush) return;
    if (f.session !== this.session) {
      this.reply(f, BlockStatus.Session);
      return;
    }
    if (f.seq < this.expected) return this.repeat(f);
    if (f.seq > this.expected) return this.nak(f.session, 'gap');
    if (this.queue.length >= this.window * 2) return; // beyond what the host may send: it will resend
    this.expected++;
    this.nakedFor = 0;
    this.counters.requests++;
    this.queue.push(f);
    this.run();
  }

  private identify(f: BlockFrame): void {
    this.session = f.session;
    this.expected = 1;
    this.nakedFor = 0;
    this.queue.length = 0;
    this.replies.clear();
    this.options.onEvent?.({ kind: 'session', session: f.session });
    const payload = encodeGeometry({
      sectorSize: this.device.sectorSize, sectorCount: this.device.sectorCount, transferBytesMax: this.transferBytesMax,
      requestsInFlightMax: this.window, name: this.options.name ?? this.device.name,
    });
    this.line.write(encodeBlockFrame({ type: BlockFrameType.Reply, seq: 0, session: f.session, lba: 0, count: 0, code: BlockStatus.Ok, payload }));
  }

  /** A request seen before: its cached reply for a WRITE or FLUSH (if it has been done), a new read for a READ. */
  private repeat(f: BlockFrame): void {
    this.counters.duplicates++;
    const cached = this.replies.get(f.seq);
    if (cached !== undefined) this.line.write(cached);
    else if (f.type === BlockFrameType.Read && !this.queue.some((q) => q.seq === f.seq)) {
      this.queue.push(f);
      this.run();
    }
  }

  private nak(session: number, reason: 'corrupt' | 'gap'): void {
    if (this.nakedFor === this.expected) return;
    this.nakedFor = this.expected;
    this.counters.naks++;
    this.options.onEvent?.({ kind: 'nak', expected: this.expected, reason });
    const code = reason === 'gap' ? BlockNakReason.Gap : BlockNakReason.Corrupt;
    this.line.write(encodeBlockFrame({ type: BlockFrameType.Nak, seq: this.expected, session, lba: 0, count: 0, code, payload: new Uint8Array(0) }));
  }

  private frameError(e: BlockFrameError): void {
    this.counters.frameErrors++;
    this.options.onEvent?.({ kind: 'frame-error', code: e.code });
    // A sound header naming our session is worth a NAK: the host need not wait for its timeout.
    if (e.header !== undefined && this.session !== null && e.header.session === this.session && e.header.seq >= this.expected) this.nak(this.session, 'corrupt');
  }

  /** Executes queued requests in order, one at a time. */
  private run(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    this.idle = this.drain().finally(() => (this.running = false));
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.stopped) {
      const f = this.queue.shift()!;
      const session = this.session;
      const { status, lba, payload } = await this.execute(f);
      if (this.stopped || session !== this.session) continue;
      const bytes = this.reply(f, status, lba, payload);
      if (f.type !== BlockFrameType.Read) this.remember(f.seq, bytes);
    }
  }

  private async execute(f: BlockFrame): Promise<{ status: BlockStatus; lba: number; payload: Uint8Array }> {
    const dev = this.device;
    const ok = { status: BlockStatus.Ok, lba: 0, payload: new Uint8Array(0) };
    if (f.type !== BlockFrameType.Flush) {
      const bytes = f.count * dev.sectorSize;
      if (f.lba + f.count > dev.sectorCount) return { ...ok, status: BlockStatus.Range };
      if (bytes > this.transferBytesMax || (f.type === BlockFrameType.Write && f.payload.length !== bytes)) return { ...ok, status: BlockStatus.BadRequest };
    }
    try {
      if (f.type === BlockFrameType.Read) return { ...ok, payload: await dev.read(f.lba, f.count) };
      if (f.type === BlockFrameType.Write) await dev.write(f.lba, f.payload);
      else await dev.flush();
      return ok;
    } catch (error) {
      this.options.onEvent?.({ kind: 'device-error', seq: f.seq, message: error instanceof Error ? error.message : String(error) });
      if (error instanceof MediaError) return { ...ok, status: BlockStatus.Media, lba: error.lba };
      if (error instanceof OutOfRangeError) return { ...ok, status: BlockStatus.Range };
      if (error instanceof DeviceFailedError) return { ...ok, status: BlockStatus.Failed };
      return { ...ok, status: BlockStatus.Failed };
    }
  }

  private reply(f: BlockFrame, status: BlockStatus, lba = 0, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
    const bytes = encodeBlockFrame({ type: BlockFrameType.Reply, seq: f.seq, session: f.session, lba, count: 0, code: status, payload });
    this.line.write(bytes);
    return bytes;
  }

  /** Keeps a WRITE's or FLUSH's reply for repeats; only the last two windows' worth can still be asked for. */
  private remember(seq: number, bytes: Uint8Array): void {
    this.replies.set(seq, bytes);
    const oldest = seq - 2 * this.window;
    for (const k of this.replies.keys()) {
      if (k > oldest) break;
      this.replies.delete(k);
    }
  }
}
