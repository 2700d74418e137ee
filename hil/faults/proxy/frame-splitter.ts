import { assert } from '../../../firmware/errors.ts';
import { FrameDecoder, type Frame } from '../../../firmware/protocol/index.ts';

/** A run of bytes of a stream: one whole frame (its bytes exactly as they came), or bytes that are no frame. */
export type StreamPiece =
  | { kind: 'frame'; bytes: Uint8Array; type: number; seq: number; lun: number }
  | { kind: 'noise'; bytes: Uint8Array };

export interface FrameSplitterOptions {
  payloadBytesMax: number;
  onPiece(piece: StreamPiece): void;
}

/**
 * Cuts a byte stream into pieces, in order, with the firmware's streaming decoder as the judge of
 * what is a frame (docs/fault-proxy.md 2): whatever the decoder accepts is a frame piece holding
 * exactly the bytes that carried it; everything it skips (garbage, a header whose CRC fails, a
 * frame whose CRC fails, a frame of another version or too large) is noise, relayed as it came so
 * that the far end's decoder judges it for itself. The pieces concatenate to the input.
 *
 * The decoder says what it decided, not where; the places follow from its accounting. It commits
 * its position before every callback, so inside `onFrame` the stream offset just past the frame is
 * `pushed - bufferedBytes`, and the bytes it skipped since the last piece (its `bytesSkipped`
 * grows as it skips) lie between the last piece and the frame. After `push` returns, everything up
 * to `pushed - bufferedBytes` is decided, so whatever is left before it is noise.
 *
 * Memory: the bytes not yet decided are exactly the decoder's `bufferedBytes`, at most one frame of
 * `payloadBytesMax` (its reassembly bound); a declared frame beyond that streams past as noise.
 */
export class FrameSplitter {
  private readonly decoder: FrameDecoder;
  private readonly onPiece: (piece: StreamPiece) => void;
  /** Chunks holding the stream from offset `base` to `pushed`. */
  private readonly chunks: Uint8Array[] = [];
  private base = 0;
  private pushed = 0;
  /** Stream offset up to which pieces have been handed out. */
  private emitted = 0;
  /** The decoder's bytesSkipped when the last piece was handed out. */
  private skippedAtEmitted = 0;
  private framesCount = 0;
  private noiseBytesCount = 0;

  constructor(opts: FrameSplitterOptions) {
    this.onPiece = opts.onPiece;
    this.decoder = new FrameDecoder({
      payloadBytesMax: opts.payloadBytesMax,
      onFrame: (frame) => this.frameFound(frame),
      onError: () => {},
    });
  }

  /** Frames handed out. */
  get frames(): number {
    return this.framesCount;
  }

  /** Bytes handed out as noise. */
  get noiseBytes(): number {
    return this.noiseBytesCount;
  }

  /** Bytes taken but not yet handed out (a partial frame): at most one frame. */
  get pendingBytes(): number {
    return this.pushed - this.emitted;
  }

  /** Decoder test hook: the reassembly bound. */
  get pendingBytesMax(): number {
    return this.decoder.reassemblyBytesMax;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.pushed += chunk.length;
    this.decoder.push(chunk);
    this.noiseUpTo(this.pushed - this.decoder.bufferedBytes);
  }

  /** The stream ended: whatever is pending (a truncated frame, a lone magic byte) is noise. */
  end(): void {
    this.decoder.end();
    this.noiseUpTo(this.pushed);
  }

  private frameFound(frame: Frame): void {
    const frameEnd = this.pushed - this.decoder.bufferedBytes;
    const noise = this.decoder.bytesSkipped - this.skippedAtEmitted;
    const frameStart = this.emitted + noise;
    assert(frameEnd - frameStart >= 52 && frameStart >= this.emitted,
      `frame splitter lost its place: frame at ${frameStart}..${frameEnd}, emitted ${this.emitted}`);
    this.noiseUpTo(frameStart);
    const bytes = this.take(frameEnd);
    this.framesCount++;
    this.onPiece({ kind: 'frame', bytes, type: frame.type, seq: frame.seq, lun: frame.lun });
  }

  private noiseUpTo(offset: number): void {
    if (offset <= this.emitted) return;
    const bytes = this.take(offset);
    this.noiseBytesCount += bytes.length;
    this.onPiece({ kind: 'noise', bytes });
  }

  /** The stream's bytes from `emitted` to `end` (a view when they lie in one chunk), releasing chunks wholly before `end`. */
  private take(end: number): Uint8Array {
    const start = this.emitted;
    const first = this.chunks[0]!;
    const from = start - this.base;
    let out: Uint8Array;
    if (end - this.base <= first.length) {
      out = first.subarray(from, end - this.base);
    } else {
      out = new Uint8Array(end - start);
      let filled = 0;
      let offset = this.base;
      for (const c of this.chunks) {
        const lo = Math.max(start, offset);
        const hi = Math.min(end, offset + c.length);
        if (hi > lo) {
          out.set(c.subarray(lo - offset, hi - offset), filled);
          filled += hi - lo;
        }
        offset += c.length;
        if (offset >= end) break;
      }
    }
    this.emitted = end;
    this.skippedAtEmitted = this.decoder.bytesSkipped;
    while (this.chunks.length > 0 && this.base + this.chunks[0]!.length <= end) this.base += this.chunks.shift()!.length;
    return out;
  }
}
