import { BlockFrameDecoder, type BlockFrame, type BlockFrameError } from './block-frames.ts';
import type { ByteLine } from './line.ts';

/** Real timers for the line (retransmission, silence): the line's time is wall time even when the run's is virtual. */
export interface LineTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const WALL_TIMERS: LineTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * A partial frame is dropped after this much silence (ms, wall), or after the line time of 128
 * bytes if that is longer. Long, on purpose: on a loaded machine a PTY (or a USB serial adapter
 * with its latency timer) can pause for tens of milliseconds in the middle of a large frame, and
 * dropping a frame that was still arriving costs a resend of everything behind it. Lost bytes
 * are mostly caught sooner anyway: the frame they truncate swallows the start of the next one and
 * fails its CRC with a sound header, which is NAKed at once.
 */
export const SILENCE_RESET_MS = 1000;

export interface FrameReceiverOptions {
  line: ByteLine;
  /** The line's rate, for how long a silence means a frame will not be completed. */
  baud: number;
  timers?: LineTimers;
  payloadBytesMax?: number;
  onFrame(frame: BlockFrame): void;
  onError(error: BlockFrameError): void;
  /** A partial frame was dropped after a silence: a frame was lost on the line (whose, the header no longer says). */
  onSilenceReset?(): void;
}

/**
 * Frames off a line: the streaming decoder, plus a silence rule. A byte lost on the line leaves
 * the decoder waiting for one more byte, which it would take from the next frame (the resend of
 * the same request, most likely), spoiling that one too. So once the line has been quiet for a
 * while with a partial frame buffered, the partial frame is dropped (as Modbus RTU ends a frame
 * after a silence), and whatever comes next arrives to a clean decoder.
 */
export class FrameReceiver {
  /** Partial frames dropped after a silence. */
  silenceResets = 0;
  private readonly decoder: BlockFrameDecoder;
  private readonly timers: LineTimers;
  private readonly silenceMs: number;
  private timer: unknown = null;
  private stopped = false;

  constructor(private readonly options: FrameReceiverOptions) {
    this.timers = options.timers ?? WALL_TIMERS;
    this.silenceMs = Math.max(SILENCE_RESET_MS, (128 * 10 * 1000) / options.baud);
    this.decoder = new BlockFrameDecoder({ payloadBytesMax: options.payloadBytesMax, onFrame: options.onFrame, onError: options.onError });
    options.line.onData((chunk) => this.data(chunk));
  }

  /**
   * Drops a partial frame now: the host is about to resend after a timeout, so whatever reply
   * was half received is dead (a byte of it was lost), and the fresh reply must not be spliced
   * onto it.
   */
  dropPartial(): void {
    this.clear();
    if (this.decoder.bufferedBytes === 0) return;
    this.silenceResets++;
    this.decoder.reset();
  }

  /** Stops decoding (what arrives later is ignored) and the silence timer. */
  stop(): void {
    this.stopped = true;
    this.clear();
  }

  private data(chunk: Uint8Array): void {
    if (this.stopped) return;
    this.clear();
    this.decoder.push(chunk);
    if (this.decoder.bufferedBytes > 0) this.timer = this.timers.setTimeout(() => this.silence(), this.silenceMs);
  }

  private silence(): void {
    this.timer = null;
    if (this.decoder.bufferedBytes === 0) return;
    this.silenceResets++;
    this.decoder.reset();
    this.options.onSilenceReset?.();
  }

  private clear(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }
}
