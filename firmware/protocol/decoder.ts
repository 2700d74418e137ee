import { assert } from '../errors.ts';
import { DEFAULT_PAYLOAD_BYTES_MAX, FRAME_OVERHEAD_BYTES, HEADER_BYTES, HELLO_PAYLOAD_BYTES_MAX, frameTypeName } from './frame.ts';
import type { Frame } from './frame.ts';
import { FrameError, fieldError, magicError, truncatedError } from './errors.ts';
import { MAGIC_HI, MAGIC_LO, U32_MAX, emptyRawFields, readU32 } from './layout.ts';
import type { FrameBufferPool } from './frame-pool.ts';
import { declaredFrameBytes, findMagic, headerError, headerInfo, readFrame } from './parse.ts';

export interface DecodeOptions {
  /** Largest payload accepted, in bytes (default {@link DEFAULT_PAYLOAD_BYTES_MAX}). */
  payloadBytesMax?: number;
}

function checkedPayloadBytesMax(value: number | undefined): number {
  const max = value ?? DEFAULT_PAYLOAD_BYTES_MAX;
  assert(Number.isInteger(max) && max >= 0 && max <= U32_MAX, `payloadBytesMax must be an integer from 0 to ${U32_MAX}, got ${max}`);
  return max;
}

/**
 * Decodes exactly one frame that occupies exactly `bytes` (a datagram, a file, a test vector).
 * Whatever the bytes, it returns a valid frame or throws a {@link FrameError}: garbage before the
 * magic is ML_ERR_FRAME_MAGIC, too few bytes ML_ERR_FRAME_TRUNCATED, bytes beyond the declared
 * frame ML_ERR_FRAME_FIELD (the payloadLength field disagrees with the input). A WRITE's data is
 * a view into `bytes`, not a copy.
 */
export function decodeFrame(bytes: Uint8Array, opts: DecodeOptions = {}): Frame {
  assert(bytes instanceof Uint8Array, 'decodeFrame: bytes must be a Uint8Array');
  const max = checkedPayloadBytesMax(opts.payloadBytesMax);
  const lead = bytes.length === 0 ? 0 : findMagic(bytes, 0, bytes.length);
  if (lead > 0) throw magicError(lead);
  if (bytes.length < HEADER_BYTES) throw truncatedError(bytes.length, HEADER_BYTES);
  const bad = headerError(bytes, 0, max);
  if (bad !== null) throw bad;
  const frameBytes = declaredFrameBytes(bytes, 0);
  if (bytes.length < frameBytes) throw truncatedError(bytes.length, frameBytes);
  if (bytes.length > frameBytes) {
    const h = headerInfo(bytes, 0);
    throw fieldError(h, 'payloadLength', String(frameBytes - FRAME_OVERHEAD_BYTES),
      `it declares a ${frameBytes}-byte ${frameTypeName(h.type)} frame but ${bytes.length} bytes were given; ` +
      'decodeFrame takes exactly one frame (use FrameDecoder for a stream)');
  }
  const result = readFrame(bytes, 0, frameBytes, emptyRawFields(), false);
  if (result instanceof FrameError) throw result;
  return result;
}

export interface FrameDecoderOptions extends DecodeOptions {
  /** A frame arrived. A WRITE's data may be a view into a pushed chunk (see FrameDecoder). */
  onFrame(frame: Frame): void;
  /**
   * Where a large frame's own buffer comes from (default: a fresh one each time). Whoever
   * consumes the frames gives their buffers back to the same pool (frame-pool.ts).
   */
  frameBuffers?: FrameBufferPool;
  /** Bytes were rejected; the decoder has already moved past them. */
  onError(error: FrameError): void;
}

/** `step()` result: the bytes from here on do not yet hold a whole header or frame. */
const NEED_MORE = -1;
/**
 * The shared reassembly buffer's size at most (and its first size). A split frame larger than
 * this is reassembled in a buffer of its own, exactly its size, which the frame then keeps.
 */
const SHARED_CAPACITY_BYTES = 16 * 1024;

/**
 * The streaming decoder (docs/design.md 2.3): bytes split or coalesced at any boundary in, frames and
 * typed errors out, for TCP and serial alike.
 *
 * Resynchronisation. The decoder scans for the magic; consecutive bytes that cannot start a frame
 * are one ML_ERR_FRAME_MAGIC error, reported when the run ends (at the next magic, or at end()).
 * A 48-byte header is then judged (parse.ts): a wrong header CRC means the magic was not a frame
 * start, so exactly one byte is dropped and the scan goes on. Once the header CRC matches, its
 * fields are trusted (random bytes pass it with odds of 2^-32), so every later verdict drops the
 * whole declared frame, never a single byte: another protocol version (a peer running other
 * firmware: ML_ERR_FRAME_VERSION, never mistaken for noise), an unknown type (a newer peer's
 * frame), a payload over payloadBytesMax (ML_ERR_FRAME_TOO_LARGE), a bad frame CRC (reported with
 * type, seq and lun, so the receiver can NAK it) or a bad field. The first two are dropped as
 * they stream past, never buffered, so a declared 4 GiB costs no memory. Dropping one byte
 * instead would rescan the payload, and a WRITE's payload is arbitrary data that may hold
 * frame-shaped bytes (a disk image of captured traffic), which would then decode as phantom
 * frames. The price: a header whose CRC matched by chance swallows up to its declared length.
 *
 * Memory. Only a partial frame is ever buffered, never more than {@link reassemblyBytesMax}
 * (one whole frame). Fast path: while nothing is buffered, frames are decoded in place in the
 * pushed chunk with zero copies (a WRITE's data is a subarray of the chunk, which the LinkHandler
 * contract hands over to the receiver); only the partial frame at the chunk's tail is copied. A
 * partial frame of up to 16 KiB is gathered in one lazily allocated buffer that is reused, and a
 * WRITE decoded out of it gets its own copy of the data. A larger one, once its header is sound,
 * is gathered in a buffer of exactly its size that the decoder then lets go: the frame's data is
 * a view into it, so a frame that spans reads (every 64 KiB or larger WRITE on TCP, whose reads
 * are 64 KiB) costs one copy of its bytes, and no allocation when the buffer comes from a
 * {@link FrameBufferPool} its consumer gives it back to. The decoder's memory is thus the shared
 * 16 KiB and at most one frame's own buffer (docs/live-links.md 10).
 *
 * Callbacks. The decoder commits its position before every callback. A callback that throws (a
 * programmer error elsewhere) makes push() throw; the frame or error it was given counts as
 * delivered, and the rest of the input is kept and decoded at the next push() or end(). A
 * callback may call reset(); calling push() or end() from a callback is a programmer error.
 */
export class FrameDecoder {
  readonly payloadBytesMax: number;
  /**
   * The reassembly buffer never grows beyond this: one frame of the largest accepted payload, which
   * is payloadBytesMax or, if that is less, a HELLO's largest (HELLO and HEARTBEAT are accepted
   * whatever payloadBytesMax, so a split one must fit too).
   */
  readonly reassemblyBytesMax: number;
  private readonly onFrame: (frame: Frame) => void;
  private readonly frameBuffers: FrameBufferPool | null;
  private readonly onError: (error: FrameError) => void;
  private readonly raw = emptyRawFields();
  /** What the partial frame is gathered in: {@link shared}, or a buffer of the frame's own. */
  private buf: Uint8Array | null = null;
  /** The reused buffer for partial frames of up to {@link SHARED_CAPACITY_BYTES}. */
  private shared: Uint8Array | null = null;
  /** `buf` is the frame's own: handed over with the frame, never reused. */
  private owned = false;
  private bufStart = 0;
  private bufEnd = 0;
  /** The chunk being decoded, and chunks pushed while a throwing callback left one unfinished. */
  private input: Uint8Array | null = null;
  private inputPos = 0;
  private readonly backlog: Uint8Array[] = [];
  /** Bytes of a rejected frame still to be dropped as they arrive. */
  private skipRemaining = 0;
  /** Garbage bytes dropped but not yet reported. */
  private garbageRun = 0;
  /**
   * Set with every NEED_MORE: the bytes the candidate at the scan position needs before it can be
   * judged (a header, or a whole frame once its header is sound). Buffering reads the length
   * from here, never from a header nobody has checked.
   */
  private need = HEADER_BYTES;
  private draining = false;
  private nextFrame: Frame | null = null;
  private nextError: FrameError | null = null;
  private framesDecodedCount = 0;
  private lastCrc = 0;
  private errorCount = 0;
  private bytesSkippedCount = 0;

  constructor(opts: FrameDecoderOptions) {
    this.payloadBytesMax = checkedPayloadBytesMax(opts.payloadBytesMax);
    this.reassemblyBytesMax = Math.max(this.payloadBytesMax, HELLO_PAYLOAD_BYTES_MAX) + FRAME_OVERHEAD_BYTES;
    assert(typeof opts.onFrame === 'function' && typeof opts.onError === 'function', 'FrameDecoder needs onFrame and onError');
    this.onFrame = opts.onFrame;
    this.onError = opts.onError;
    this.frameBuffers = opts.frameBuffers ?? null;
  }

  /** Frames handed to onFrame. */
  get framesDecoded(): number {
    return this.framesDecodedCount;
  }

  /**
   * The frame CRC (its last four bytes) of the frame last handed to onFrame: with its type, seq and
   * connection, what names the frame across processes (telemetry's frame identity, docs/controller-process.md 4).
   */
  get lastFrameCrc(): number {
    return this.lastCrc;
  }

  /** Errors handed to onError. */
  get errors(): number {
    return this.errorCount;
  }

  /** Bytes dropped without becoming part of a decoded frame (garbage, rejected frames, reset, end). */
  get bytesSkipped(): number {
    return this.bytesSkippedCount;
  }

  /**
   * Bytes held and not yet decoded: the partial frame in the reassembly buffer (at most
   * {@link reassemblyBytesMax}), plus, only after a callback threw, the unfinished input.
   * Invariant: bytes pushed = bytes of decoded frames + bytesSkipped + bufferedBytes + bytes of a
   * rejected frame still to come.
   */
  get bufferedBytes(): number {
    let n = this.bufEnd - this.bufStart;
    if (this.input !== null) n += this.input.length - this.inputPos;
    for (const chunk of this.backlog) n += chunk.length;
    return n;
  }

  /** Test hook: bytes of the buffer the partial frame is gathered in now (0 until a frame is split): the shared one, or a frame's own. */
  get reassemblyCapacity(): number {
    return this.buf === null ? 0 : this.buf.length;
  }

  /** Decode `chunk`, calling onFrame/onError for what it completes. The decoder may keep `chunk`. */
  push(chunk: Uint8Array): void {
    assert(chunk instanceof Uint8Array, 'FrameDecoder.push: chunk must be a Uint8Array');
    this.assertNotDraining();
    if (this.input === null) {
      this.input = chunk;
      this.inputPos = 0;
    } else {
      this.backlog.push(chunk);
    }
    // Inline rather than through run(): push() runs once per frame on a packet link.
    this.draining = true;
    try {
      this.drain();
    } finally {
      this.draining = false;
    }
  }

  /** The byte stream ended: report what was left (garbage, a truncated frame) and start afresh. */
  end(): void {
    this.assertNotDraining();
    this.run(() => {
      this.drain();
      this.finish();
    });
  }

  /** Drop everything buffered, unreported (the link went down; what follows is a new stream). */
  reset(): void {
    this.bytesSkippedCount += this.bufferedBytes;
    this.input = null;
    this.inputPos = 0;
    this.backlog.length = 0;
    this.letGoOwned();
    this.bufStart = 0;
    this.bufEnd = 0;
    this.skipRemaining = 0;
    this.garbageRun = 0;
    this.need = HEADER_BYTES;
    this.nextFrame = null;
    this.nextError = null;
  }

  private assertNotDraining(): void {
    assert(!this.draining, 'FrameDecoder: push() and end() must not be called from onFrame/onError');
  }

  private run(work: () => void): void {
    this.draining = true;
    try {
      work();
    } finally {
      this.draining = false;
    }
  }

  private drain(): void {
    while (this.input !== null) {
      const input = this.input;
      if (this.inputPos >= input.length) {
        this.input = this.backlog.length > 0 ? this.backlog.shift()! : null;
        this.inputPos = 0;
      } else if (this.skipRemaining > 0) {
        const n = Math.min(this.skipRemaining, input.length - this.inputPos);
        this.inputPos += n;
        this.skipRemaining -= n;
        this.bytesSkippedCount += n;
      } else if (this.bufEnd > this.bufStart) {
        this.feedBuffer(input);
      } else {
        this.scanInput(input);
      }
    }
  }

  /** Fast path: decode in place in the chunk; copy only a partial frame at its tail. */
  private scanInput(input: Uint8Array): void {
    for (;;) {
      const at = this.inputPos;
      const next = this.step(input, at, input.length, false);
      if (next === NEED_MORE) {
        this.stash(input, at);
        return;
      }
      this.inputPos = next;
      this.emit();
      if (this.input !== input || next >= input.length || this.skipRemaining > 0) return;
    }
  }

  /**
   * Move just the bytes the buffered candidate still lacks, then judge it in the buffer. (It can
   * already have them only if a callback threw halfway through the buffer.)
   */
  private feedBuffer(input: Uint8Array): void {
    const held = this.bufEnd - this.bufStart;
    if (held < this.need) {
      const take = Math.min(this.need - held, input.length - this.inputPos);
      this.reserve(this.need);
      this.buf!.set(input.subarray(this.inputPos, this.inputPos + take), this.bufEnd);
      this.bufEnd += take;
      this.inputPos += take;
      // Still short: wait, unless all that was held is a lone first magic byte, whose second byte
      // says now whether it starts a frame at all (else end() would call garbage a truncated frame).
      if (held + take < this.need && held >= 2) return;
    }
    const buf = this.buf!;
    while (this.bufStart < this.bufEnd) {
      // A frame's own buffer holds that frame alone: its data may stay a view into it.
      const next = this.step(buf, this.bufStart, this.bufEnd, !this.owned);
      if (next === NEED_MORE) return;
      this.bufStart = next;
      // Let go of a frame's own buffer before its frame is handed out, so that nothing the
      // receiver holds is ever written again, even if the callback throws.
      if (this.owned && this.bufStart === this.bufEnd) this.letGoOwned();
      this.emit();
    }
  }

  /** Back to the shared buffer, empty; a frame's own buffer is forgotten (its frame keeps it). */
  private letGoOwned(): void {
    if (!this.owned) return;
    this.owned = false;
    this.buf = this.shared;
    this.bufStart = 0;
    this.bufEnd = 0;
  }

  private stash(input: Uint8Array, at: number): void {
    const n = input.length - at;
    this.bufStart = 0;
    this.bufEnd = 0;
    this.reserve(this.need);
    this.buf!.set(input.subarray(at), 0);
    this.bufEnd = n;
    this.inputPos = input.length;
  }

  /**
   * Make room for `target` bytes from bufStart (never past the cap). `target` is a header's size
   * or, once the header is sound, the whole frame's: one above {@link SHARED_CAPACITY_BYTES} gets
   * a buffer of exactly its size, holding what was gathered so far; smaller ones compact or grow
   * the shared buffer.
   */
  private reserve(target: number): void {
    assert(target <= this.reassemblyBytesMax, `reassembly of ${target} bytes exceeds ${this.reassemblyBytesMax}`);
    const buf = this.buf;
    if (buf !== null && this.bufStart + target <= buf.length) return;
    assert(!this.owned, 'a frame\'s own reassembly buffer is exactly its size');
    const held = this.bufEnd - this.bufStart;
    if (target > SHARED_CAPACITY_BYTES) {
      const own = this.frameBuffers === null ? new Uint8Array(target) : this.frameBuffers.take(target);
      if (buf !== null) own.set(buf.subarray(this.bufStart, this.bufEnd));
      this.buf = own;
      this.owned = true;
    } else if (buf !== null && target <= buf.length) {
      buf.copyWithin(0, this.bufStart, this.bufEnd);
    } else {
      const grown = new Uint8Array(Math.min(this.reassemblyBytesMax, SHARED_CAPACITY_BYTES));
      if (buf !== null) grown.set(buf.subarray(this.bufStart, this.bufEnd));
      this.buf = grown;
      this.shared = grown;
    }
    this.bufStart = 0;
    this.bufEnd = held;
  }

  /**
   * Judges the bytes at `p` and returns where the next judgement starts, leaving at most one
   * frame or error in nextFrame/nextError for emit(); or NEED_MORE. Never calls out.
   */
  private step(b: Uint8Array, p: number, end: number, copy: boolean): number {
    if (b[p] !== MAGIC_HI || (p + 1 < end && b[p + 1] !== MAGIC_LO)) return this.skipGarbage(b, p, end);
    if (this.garbageRun > 0 && p + 1 < end) {
      this.nextError = magicError(this.garbageRun);
      this.garbageRun = 0;
      return p;
    }
    if (end - p < HEADER_BYTES) return this.needMore(HEADER_BYTES);
    const bad = headerError(b, p, this.payloadBytesMax);
    if (bad !== null) return this.rejectHeader(bad, b, p, end);
    const frameBytes = declaredFrameBytes(b, p);
    if (end - p < frameBytes) return this.needMore(frameBytes);
    const result = readFrame(b, p, frameBytes, this.raw, copy);
    if (result instanceof FrameError) {
      this.bytesSkippedCount += frameBytes;
      this.nextError = result;
    } else {
      this.nextFrame = result;
      this.lastCrc = readU32(b, p + frameBytes - 4);
    }
    return p + frameBytes;
  }

  private needMore(bytes: number): number {
    this.need = bytes;
    return NEED_MORE;
  }

  private skipGarbage(b: Uint8Array, p: number, end: number): number {
    const next = findMagic(b, p + 1, end);
    this.garbageRun += next - p;
    this.bytesSkippedCount += next - p;
    return next;
  }

  private rejectHeader(error: FrameError, b: Uint8Array, p: number, end: number): number {
    this.nextError = error;
    if (error.code === 'ML_ERR_FRAME_HEADER_CRC') {
      this.bytesSkippedCount += 1;
      return p + 1;
    }
    // VERSION, TYPE or TOO_LARGE under a sound header CRC: drop the declared frame, streaming past it.
    const frameBytes = declaredFrameBytes(b, p);
    const here = Math.min(frameBytes, end - p);
    this.bytesSkippedCount += here;
    this.skipRemaining = frameBytes - here;
    return p + here;
  }

  private emit(): void {
    const frame = this.nextFrame;
    const error = this.nextError;
    this.nextFrame = null;
    this.nextError = null;
    if (frame !== null) {
      this.framesDecodedCount += 1;
      this.onFrame(frame);
    } else if (error !== null) {
      this.errorCount += 1;
      this.onError(error);
    }
  }

  /** end(): a lone first magic byte was garbage after all; anything longer was a truncated frame. */
  private finish(): void {
    const needed = this.need;
    this.skipRemaining = 0;
    this.need = HEADER_BYTES;
    const held = this.bufEnd - this.bufStart;
    if (held === 1) {
      this.garbageRun += 1;
      this.bytesSkippedCount += 1;
      this.bufStart = this.bufEnd = 0;
    }
    if (this.garbageRun > 0) {
      this.nextError = magicError(this.garbageRun);
      this.garbageRun = 0;
      this.emit();
    }
    if (this.bufEnd > this.bufStart) {
      const have = this.bufEnd - this.bufStart;
      const need = have < HEADER_BYTES ? HEADER_BYTES : Math.max(needed, have + 1);
      this.bytesSkippedCount += have;
      this.bufStart = this.bufEnd = 0;
      this.letGoOwned();
      this.nextError = truncatedError(have, need);
      this.emit();
    }
  }
}
