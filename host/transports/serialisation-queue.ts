/**
 * The frames one direction of a simulated link is still serialising: (end time, size) pairs,
 * oldest first. A ring of numbers rather than an array of objects with `shift()`: a fast link
 * queues thousands of frames (a whole send window), where `shift()` copies the rest of the array
 * every time, and the pair objects would be one allocation per frame sent. Its length is bounded
 * by the link's `queueBytesMax` (every entry holds at least one byte).
 */
export class SerialisationQueue {
  private ends = new Float64Array(64);
  private sizes = new Float64Array(64);
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  /** End time (ms) of the oldest frame; the queue must not be empty. */
  get firstEnd(): number {
    return this.ends[this.head]!;
  }

  push(end: number, bytes: number): void {
    if (this.count === this.ends.length) this.grow();
    const i = (this.head + this.count) & (this.ends.length - 1);
    this.ends[i] = end;
    this.sizes[i] = bytes;
    this.count++;
  }

  /** Remove the oldest frame; returns its size. The queue must not be empty. */
  shift(): number {
    const bytes = this.sizes[this.head]!;
    this.head = (this.head + 1) & (this.ends.length - 1);
    this.count--;
    return bytes;
  }

  private grow(): void {
    const ends = new Float64Array(this.ends.length * 2);
    const sizes = new Float64Array(this.sizes.length * 2);
    for (let k = 0; k < this.count; k++) {
      const i = (this.head + k) & (this.ends.length - 1);
      ends[k] = this.ends[i]!;
      sizes[k] = this.sizes[i]!;
    }
    this.ends = ends;
    this.sizes = sizes;
    this.head = 0;
  }
}
