import { assert } from '../../firmware/errors.ts';

/** Default allocation unit of a {@link SparseStore}: 64 KiB, a good fit for 4 KiB random I/O on
 * 64 MiB volumes (at most 1024 chunks) and for sequential runs (few map look-ups per MiB). */
export const STORE_CHUNK_BYTES_DEFAULT = 64 * 1024;

/**
 * Bytes addressed by offset, allocated in fixed chunks on first write. Unwritten bytes read as
 * zero; a terabyte capacity costs nothing until written. No per-sector objects: a write is one
 * map look-up and one `Uint8Array.set` per chunk it touches.
 */
export class SparseStore {
  readonly capacityBytes: number;
  readonly chunkBytes: number;
  private readonly chunks = new Map<number, Uint8Array>();

  constructor(capacityBytes: number, chunkBytes = STORE_CHUNK_BYTES_DEFAULT) {
    assert(Number.isSafeInteger(capacityBytes) && capacityBytes >= 0, `bad capacity ${capacityBytes}`);
    assert(Number.isSafeInteger(chunkBytes) && chunkBytes > 0 && (chunkBytes & (chunkBytes - 1)) === 0,
      `chunkBytes must be a power of two, got ${chunkBytes}`);
    this.capacityBytes = capacityBytes;
    this.chunkBytes = chunkBytes;
  }

  /** Bytes of memory the chunks hold now. */
  get allocatedBytes(): number {
    return this.chunks.size * this.chunkBytes;
  }

  /** Copies `data` in at `offset`. */
  write(offset: number, data: Uint8Array): void {
    const cb = this.chunkBytes;
    const len = data.length;
    let index = Math.floor(offset / cb);
    let within = offset - index * cb;
    let done = 0;
    while (done < len) {
      const n = Math.min(cb - within, len - done);
      let chunk = this.chunks.get(index);
      if (chunk === undefined) {
        chunk = new Uint8Array(cb);
        this.chunks.set(index, chunk);
      }
      chunk.set(n === len ? data : data.subarray(done, done + n), within);
      done += n;
      index++;
      within = 0;
    }
  }

  /** Copies `out.length` bytes from `offset` into `out`, which the caller passes zero-filled. */
  readInto(offset: number, out: Uint8Array): void {
    const cb = this.chunkBytes;
    const len = out.length;
    let index = Math.floor(offset / cb);
    let within = offset - index * cb;
    let done = 0;
    while (done < len) {
      const n = Math.min(cb - within, len - done);
      const chunk = this.chunks.get(index);
      if (chunk !== undefined) out.set(chunk.subarray(within, within + n), done);
      done += n;
      index++;
      within = 0;
    }
  }

  /** A fresh copy of `length` bytes at `offset`. */
  read(offset: number, length: number): Uint8Array {
    const index = Math.floor(offset / this.chunkBytes);
    const within = offset - index * this.chunkBytes;
    if (within + length <= this.chunkBytes) {
      // One chunk (the common case): `slice` copies without zero-filling first.
      const chunk = this.chunks.get(index);
      return chunk === undefined ? new Uint8Array(length) : chunk.slice(within, within + length);
    }
    const out = new Uint8Array(length);
    this.readInto(offset, out);
    return out;
  }
}
