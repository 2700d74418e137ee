import { assert } from '../errors.ts';

/** What every log entry has: its sequence number and the bytes it holds (its encoded frame). */
export interface LogEntry {
  readonly seq: number;
  readonly bytes: number;
}

export interface LogLimits {
  /** Most entries the log holds, reservations included. */
  entriesMax: number;
  /** Most bytes the log holds, reservations included. */
  bytesMax: number;
}

/**
 * A FIFO of entries with contiguous sequence numbers: the source's rollback log and the target's
 * commit log (docs/design.md 1.1) are both this.
 *
 * - Entries are appended in sequence order and leave from the head on cumulative confirmation
 *   ({@link removeThrough}), or from the tail when a target discards what followed a rejected
 *   lock ({@link truncateFrom}).
 * - {@link get} finds an entry by sequence number in O(1); a rollback re-sends by moving the
 *   source's send cursor back and fetching entries with it one at a time as the window allows.
 *   {@link forEachFrom} walks from any sequence number to the tail, for inspection (tests, reports);
 *   the data path does not use it.
 * - Both maxima are explicit. Room is claimed with {@link reserve} before an entry exists (a host
 *   write claims room for its lock, data and unlock before any of them is built); when the log is
 *   full the request waits in FIFO order and is granted as confirmations free room. Nothing is
 *   ever dropped: backpressure goes back to whoever asked.
 *
 * Storage is a ring buffer that grows by doubling up to `entriesMax`, so lookups by sequence
 * number are O(1) and a steady state allocates nothing.
 */
export class SequencedLog<E extends LogEntry> {
  readonly name: string;
  readonly limits: LogLimits;
  private ring: (E | undefined)[] = new Array(16);
  private head = 0;
  private size = 0;
  private first: number;
  private byteCount = 0;
  private reservedEntries = 0;
  private reservedBytes = 0;
  private readonly waiters: { entries: number; bytes: number; grant: () => void }[] = [];
  private waiterHead = 0;

  constructor(name: string, limits: LogLimits, firstSeq = 1) {
    assert(limits.entriesMax >= 1 && limits.bytesMax >= 1, `${name}: limits must be positive`);
    this.name = name;
    this.limits = limits;
    this.first = firstSeq;
  }

  /** Entries held (not counting reservations). */
  get count(): number {
    return this.size;
  }

  /** Bytes held (not counting reservations). */
  get bytes(): number {
    return this.byteCount;
  }

  /** Sequence number of the head entry; when empty, the next one expected. */
  get firstSeq(): number {
    return this.first;
  }

  /** Sequence number the next appended entry must carry. */
  get nextSeq(): number {
    return this.first + this.size;
  }

  /** Requests waiting for room. */
  get waiting(): number {
    return this.waiters.length - this.waiterHead;
  }

  /** Room claimed (held entries plus reservations), in entries and bytes. */
  get claimed(): { entries: number; bytes: number } {
    return { entries: this.size + this.reservedEntries, bytes: this.byteCount + this.reservedBytes };
  }

  /** True if `entries`/`bytes` more would fit now (ignores waiters ahead). */
  fits(entries: number, bytes: number): boolean {
    return (
      this.size + this.reservedEntries + entries <= this.limits.entriesMax &&
      this.byteCount + this.reservedBytes + bytes <= this.limits.bytesMax
    );
  }

  /**
   * Claim room for `entries` entries of `bytes` bytes in total. Calls `grant` synchronously if
   * there is room and nobody is waiting ahead, else queues the request and calls `grant` once
   * confirmations have made room (in request order). Returns true if granted at once.
   * A single request larger than the log's maxima can never be satisfied: that is a caller bug.
   */
  reserve(entries: number, bytes: number, grant: () => void): boolean {
    if (this.tryReserve(entries, bytes)) {
      grant();
      return true;
    }
    assert(
      entries <= this.limits.entriesMax && bytes <= this.limits.bytesMax,
      `${this.name}: a request for ${entries} entries / ${bytes} bytes can never fit (max ${this.limits.entriesMax} / ${this.limits.bytesMax})`,
    );
    this.waiters.push({ entries, bytes, grant });
    return false;
  }

  /**
   * Claim room for `entries` entries of `bytes` bytes if there is room now and nobody is waiting
   * ahead; true if claimed. Lets the hot path skip making the `grant` callback that a waiting
   * request needs: try this first, and {@link reserve} only if it fails.
   */
  tryReserve(entries: number, bytes: number): boolean {
    if (this.waiting !== 0 || !this.fits(entries, bytes)) return false;
    this.take(entries, bytes);
    return true;
  }

  /** Give back room reserved and not used. */
  unreserve(entries: number, bytes: number): void {
    // The message is built only on failure: this runs for most host writes.
    if (entries > this.reservedEntries || bytes > this.reservedBytes) assert(false, `${this.name}: unreserving more than reserved`);
    this.reservedEntries -= entries;
    this.reservedBytes -= bytes;
    this.grantWaiters();
  }

  /**
   * Append the next entry. With `reserved` (entries, bytes) the room comes out of an earlier
   * reservation; without it the log must have room now (the commit log checks `fits` first).
   */
  append(entry: E, reserved = false): void {
    // Each assert builds its message only when it fails: this runs for every frame.
    if (entry.seq !== this.nextSeq) assert(false, `${this.name}: append seq ${entry.seq}, expected ${this.nextSeq}`);
    if (reserved) {
      if (this.reservedEntries < 1 || this.reservedBytes < entry.bytes) assert(false, `${this.name}: append beyond reservation`);
      this.reservedEntries -= 1;
      this.reservedBytes -= entry.bytes;
    } else if (!this.fits(1, entry.bytes)) {
      assert(false, `${this.name}: append to a full log`);
    }
    if (this.size === this.ring.length) this.grow();
    this.ring[(this.head + this.size) & (this.ring.length - 1)] = entry;
    this.size++;
    this.byteCount += entry.bytes;
  }

  get(seq: number): E | undefined {
    const i = seq - this.first;
    if (i < 0 || i >= this.size) return undefined;
    return this.ring[(this.head + i) & (this.ring.length - 1)];
  }

  peek(): E | undefined {
    return this.size === 0 ? undefined : this.ring[this.head];
  }

  /**
   * Remove every entry with sequence number <= `seq` (cumulative confirmation), calling `visit`
   * on each in order. Returns how many were removed; confirming what already left does nothing.
   */
  removeThrough(seq: number, visit?: (entry: E) => void): number {
    let removed = 0;
    while (this.size > 0 && this.first <= seq) {
      const entry = this.ring[this.head]!;
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) & (this.ring.length - 1);
      this.size--;
      this.first++;
      this.byteCount -= entry.bytes;
      removed++;
      visit?.(entry);
    }
    if (removed > 0) this.grantWaiters();
    return removed;
  }

  /** Remove every entry with sequence number >= `seq` (a target discarding after a rejected lock). */
  truncateFrom(seq: number, visit?: (entry: E) => void): number {
    let removed = 0;
    while (this.size > 0 && this.nextSeq - 1 >= seq) {
      const i = (this.head + this.size - 1) & (this.ring.length - 1);
      const entry = this.ring[i]!;
      this.ring[i] = undefined;
      this.size--;
      this.byteCount -= entry.bytes;
      removed++;
      visit?.(entry);
    }
    if (removed > 0) this.grantWaiters();
    return removed;
  }

  /**
   * Start the log again at `firstSeq`: every entry and every reservation is dropped (requests still
   * waiting for room stay queued). For a new stream, whose entries are numbered afresh: the caller
   * re-appends what it keeps, claiming room with {@link requeue}. Returns the entries dropped, in order.
   */
  restart(firstSeq: number): E[] {
    const dropped: E[] = [];
    this.forEachFrom(this.first, (e) => dropped.push(e));
    this.ring = new Array(16);
    this.head = 0;
    this.size = 0;
    this.first = firstSeq;
    this.byteCount = 0;
    this.reservedEntries = 0;
    this.reservedBytes = 0;
    return dropped;
  }

  /**
   * Claim room for `requests`, in order, ahead of every request already waiting: for entries that
   * were in the log already and are numbered again after {@link restart}. Those that fit now are
   * granted now; from the first that does not, they wait at the head of the queue, in order, and
   * are granted as confirmations make room. They cannot simply be taken past the maxima: a new
   * stream can need more room than the old one had (a lock session whose LOCK was confirmed
   * already needs a new LOCK in the new stream).
   */
  requeue(requests: readonly { entries: number; bytes: number; grant: () => void }[]): void {
    let i = 0;
    for (; i < requests.length && this.fits(requests[i]!.entries, requests[i]!.bytes); i++) {
      this.take(requests[i]!.entries, requests[i]!.bytes);
      requests[i]!.grant();
    }
    if (i < requests.length) this.waiters.splice(this.waiterHead, 0, ...requests.slice(i).map(({ entries, bytes, grant }) => ({ entries, bytes, grant })));
    this.grantWaiters();
  }

  /**
   * Call `visit` on every entry from `seq` (or the head, if it left already) to the tail, in order.
   * For inspection: the rollback path does not walk the log, it re-reads entries with {@link get}.
   */
  forEachFrom(seq: number, visit: (entry: E) => void): void {
    const start = Math.max(0, seq - this.first);
    const mask = this.ring.length - 1;
    for (let i = start; i < this.size; i++) visit(this.ring[(this.head + i) & mask]!);
  }

  private take(entries: number, bytes: number): void {
    this.reservedEntries += entries;
    this.reservedBytes += bytes;
  }

  private grantWaiters(): void {
    while (this.waiterHead < this.waiters.length) {
      const w = this.waiters[this.waiterHead]!;
      if (!this.fits(w.entries, w.bytes)) break;
      this.waiterHead++;
      this.take(w.entries, w.bytes);
      w.grant();
    }
    if (this.waiterHead > 64 && this.waiterHead * 2 > this.waiters.length) {
      this.waiters.splice(0, this.waiterHead);
      this.waiterHead = 0;
    }
  }

  private grow(): void {
    const next: (E | undefined)[] = new Array(this.ring.length * 2);
    for (let i = 0; i < this.size; i++) next[i] = this.ring[(this.head + i) & (this.ring.length - 1)];
    this.ring = next;
    this.head = 0;
  }
}
