/**
 * Buffers for encoded frames, carved from shared slabs.
 *
 * A typed array larger than V8's on-heap limit costs an external allocation (about 1 us for 4 KiB
 * here, plus GC bookkeeping); a view into a slab costs a few tens of nanoseconds. Frames are
 * short-lived (they leave the rollback log on confirmation), so slabs are freed by the GC soon
 * after their last frame. Small frames stay ordinary on-heap arrays. Every byte of a frame is
 * written by the encoder, so slabs need no zeroing between uses (they are new memory anyway).
 *
 * Slab size: 256 KiB measured about 5% faster end to end than 1 MiB with 4 KiB writes (a smaller
 * slab's memory comes back from the allocator while it is still in cache); frames up to a quarter
 * of a slab (64 KiB) still come from slabs.
 */
const SLAB_BYTES = 256 * 1024;
const ON_HEAP_BYTES_MAX = 64;

export class FrameBytes {
  private slab = new ArrayBuffer(0);
  private used = 0;

  take(length: number): Uint8Array {
    if (length <= ON_HEAP_BYTES_MAX || length > SLAB_BYTES / 4) return new Uint8Array(length);
    if (this.used + length > this.slab.byteLength) {
      this.slab = new ArrayBuffer(SLAB_BYTES);
      this.used = 0;
    }
    const view = new Uint8Array(this.slab, this.used, length);
    this.used += (length + 7) & ~7;
    return view;
  }
}
