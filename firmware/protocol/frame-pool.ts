import { assert } from '../errors.ts';

/**
 * Buffers for the large frames a decoder reassembles (docs/live-links.md 10), lent out and given
 * back once whoever consumed the frame no longer reads it: the target gives a WRITE's data back
 * once its disk write has completed (the BlockDevice contract: the device reads the data only
 * until then).
 *
 * Why: a 1 MiB WRITE spans sixteen 64 KiB TCP reads and is gathered in a buffer of its own. A
 * fresh buffer per frame costs an allocation, zero-filling and, above all, external memory that
 * makes V8 collect garbage after every few tens of megabytes; a buffer lent again costs nothing.
 *
 * Safety. Only a buffer this pool lent, and has not had back since, is taken back: a view into
 * anything else (a frame decoded in place in a transport's chunk, a BATCH entry) is ignored, and
 * so is a second give-back before the buffer is lent again. The pool cannot tell a stale holder
 * from the buffer's next borrower, so whoever consumes a frame gives it back exactly once, when
 * it has finished reading it: the target, from its disk write's completion, which runs once per
 * write it issues. A frame that is never given back (refused, dropped by a stream restart) is
 * simply collected. The pool keeps at most `freeBytesMax` bytes of buffers nobody holds.
 */
export class FrameBufferPool {
  private readonly free = new Map<number, Uint8Array[]>();
  /** Buffers lent and not given back: weak, so a frame that is never given back costs nothing here. */
  private readonly lent = new WeakSet<ArrayBufferLike>();
  private freeBytes = 0;
  private lentCount = 0;
  private reusedCount = 0;

  constructor(readonly freeBytesMax: number) {
    assert(Number.isSafeInteger(freeBytesMax) && freeBytesMax >= 0, `freeBytesMax must be an integer >= 0, got ${freeBytesMax}`);
  }

  /** A buffer of exactly `length` bytes, all of them the caller's to write; not zeroed when reused. */
  take(length: number): Uint8Array {
    const reused = this.free.get(length)?.pop();
    const b = reused ?? new Uint8Array(length);
    if (reused !== undefined) {
      this.freeBytes -= length;
      this.reusedCount++;
    }
    this.lent.add(b.buffer);
    this.lentCount++;
    return b;
  }

  /**
   * Nobody reads `view` (or anything else in its buffer) any more: if its buffer is one this pool
   * lent, it may be lent again. Anything else is ignored.
   */
  giveBack(view: Uint8Array): void {
    const buffer = view.buffer;
    if (!this.lent.has(buffer)) return;
    this.lent.delete(buffer);
    const length = buffer.byteLength;
    if (this.freeBytes + length > this.freeBytesMax) return;
    let list = this.free.get(length);
    if (list === undefined) this.free.set(length, (list = []));
    list.push(new Uint8Array(buffer));
    this.freeBytes += length;
  }

  /** Test hooks: buffers lent in all, of which reused; bytes waiting to be lent again. */
  get stats(): { lent: number; reused: number; freeBytes: number } {
    return { lent: this.lentCount, reused: this.reusedCount, freeBytes: this.freeBytes };
  }
}

/**
 * The pool the firmware's connections reassemble large frames in, and the target gives WRITE
 * data back to. One per thread (module state, as the encoder's slabs); it keeps at most 64 MiB
 * of buffers nobody holds: the target's window of 1 MiB writes.
 */
export const reassembledFrames = new FrameBufferPool(64 * 1024 * 1024);
