import { assert } from '../../firmware/errors.ts';
import type { HostClock } from '../clock/clock.ts';
import type { LinkDirection, LinkEndpoint, LinkFaultHook, LinkHandler } from './link.ts';

export interface SimLinkOptions {
  clock: HostClock;
  /** Names of the two ends (the controllers they belong to). */
  names: readonly [string, string];
  /** One-way propagation delay. */
  latencyMs: number;
  /** Serialisation rate, megabits (10^6 bits) per second. */
  bandwidthMbps: number;
  /** Most bytes waiting to be serialised per direction; beyond it `send` returns false. */
  queueBytesMax?: number;
}

export function newDirectionStats() {
  return { framesSent: 0, bytesSent: 0, framesDelivered: 0, bytesDelivered: 0, framesLostDown: 0, framesRefused: 0 };
}
export type DirectionStats = ReturnType<typeof newDirectionStats>;

interface Direction {
  readonly name: LinkDirection;
  readonly to: SimEndpoint;
  /** Time (ms) at which the wire finishes serialising everything queued so far. */
  busyUntil: number;
  /** Serialisation end times and sizes of queued frames, oldest first. */
  readonly queue: SerialisationQueue;
  queuedBytes: number;
  wantWritable: boolean;
  writableTimer: unknown;
  readonly stats: DirectionStats;
}

const roundNs = (ms: number): number => Math.round(ms * 1e6) / 1e6;

/**
 * The frames a direction is still serialising: (end time, size) pairs, oldest first. A ring of
 * numbers rather than an array of objects with `shift()`: a fast link queues thousands of frames
 * (a whole send window), where `shift()` copies the rest of the array every time, and the pair
 * objects would be one allocation per frame sent.
 */
class SerialisationQueue {
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

  clear(): void {
    this.head = 0;
    this.count = 0;
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

/**
 * A simulated point-to-point link between two controllers, in the clock's time: one-way latency,
 * a serialisation delay per byte at the link's bandwidth, a bounded send queue per direction, and
 * in-order delivery (unless a fault hook delays some copies). Each frame handed to `send` reaches
 * the far end as one chunk.
 *
 * `cut()` takes the link down (both ends are told; frames in flight are lost) and `heal()` brings
 * it back; a fault hook (`setFaults`) decides the fate of every frame. All randomness lives in the
 * hook, drawn from the run's seed, so the link itself is deterministic.
 */
export class SimLink {
  readonly a: SimEndpoint;
  readonly b: SimEndpoint;
  private readonly ab: Direction;
  private readonly ba: Direction;
  private up = true;
  private epoch = 0;
  private faults: LinkFaultHook | null = null;
  private msPerByte: number;
  private latencyMs: number;
  readonly queueBytesMax: number;

  constructor(private readonly opts: SimLinkOptions) {
    assert(opts.latencyMs >= 0 && opts.bandwidthMbps > 0, 'link latency must be >= 0 and bandwidth > 0');
    this.msPerByte = 8 / (opts.bandwidthMbps * 1000);
    this.latencyMs = opts.latencyMs;
    this.queueBytesMax = opts.queueBytesMax ?? 64 * 1024 * 1024;
    this.a = new SimEndpoint(opts.names[0], this, 'ab');
    this.b = new SimEndpoint(opts.names[1], this, 'ba');
    this.ab = newDirection('ab', this.b);
    this.ba = newDirection('ba', this.a);
  }

  get isUp(): boolean {
    return this.up;
  }

  stats(dir: LinkDirection): Readonly<DirectionStats> {
    return (dir === 'ab' ? this.ab : this.ba).stats;
  }

  setFaults(hook: LinkFaultHook | null): void {
    this.faults = hook;
  }

  setBandwidth(mbps: number): void {
    assert(mbps > 0, 'bandwidth must be positive');
    this.msPerByte = 8 / (mbps * 1000);
  }

  setLatency(ms: number): void {
    assert(ms >= 0, 'latency must be >= 0');
    this.latencyMs = ms;
  }

  /** Take the link down: frames in flight are lost and both ends hear `down(reason)`. */
  cut(reason = 'link cut'): void {
    if (!this.up) return;
    this.up = false;
    this.epoch++;
    for (const d of [this.ab, this.ba]) {
      d.queue.clear();
      d.queuedBytes = 0;
      d.busyUntil = 0;
    }
    this.a.handler?.down(reason);
    this.b.handler?.down(reason);
  }

  heal(): void {
    if (this.up) return;
    this.up = true;
    this.a.handler?.up();
    this.b.handler?.up();
  }

  /** @internal The endpoint's send. */
  transmit(dirName: LinkDirection, bytes: Uint8Array): boolean {
    const d = dirName === 'ab' ? this.ab : this.ba;
    if (!this.up) {
      d.stats.framesLostDown++;
      return true; // a dead wire takes the bytes and delivers nothing
    }
    const now = this.opts.clock.now();
    this.drainQueue(d, now);
    if (d.queuedBytes > 0 && d.queuedBytes + bytes.length > this.queueBytesMax) {
      d.stats.framesRefused++;
      this.wantWritable(d);
      return false;
    }
    const end = roundNs(Math.max(now, d.busyUntil) + bytes.length * this.msPerByte);
    d.busyUntil = end;
    d.queue.push(end, bytes.length);
    d.queuedBytes += bytes.length;
    d.stats.framesSent++;
    d.stats.bytesSent += bytes.length;
    const copies = this.faults?.onSend(dirName, bytes) ?? null;
    if (copies === null) this.deliverAt(d, bytes, end + this.latencyMs - now);
    else for (const c of copies) this.deliverAt(d, c.bytes, end + this.latencyMs + c.extraDelayMs - now);
    return true;
  }

  private deliverAt(d: Direction, bytes: Uint8Array, delayMs: number): void {
    const epoch = this.epoch;
    this.opts.clock.setTimeout(() => {
      if (epoch !== this.epoch) return;
      d.stats.framesDelivered++;
      d.stats.bytesDelivered += bytes.length;
      d.to.handler?.bytes(bytes);
    }, roundNs(delayMs));
  }

  private drainQueue(d: Direction, now: number): void {
    while (d.queue.length > 0 && d.queue.firstEnd <= now) d.queuedBytes -= d.queue.shift();
  }

  private wantWritable(d: Direction): void {
    d.wantWritable = true;
    if (d.writableTimer !== null) return;
    const now = this.opts.clock.now();
    d.writableTimer = this.opts.clock.setTimeout(() => {
      d.writableTimer = null;
      this.drainQueue(d, this.opts.clock.now());
      if (!d.wantWritable || !this.up) return;
      d.wantWritable = false;
      (d.name === 'ab' ? this.a : this.b).handler?.writable();
    }, Math.max(0, d.queue.firstEnd - now));
  }
}

function newDirection(name: LinkDirection, to: SimEndpoint): Direction {
  return { name, to, busyUntil: 0, queue: new SerialisationQueue(), queuedBytes: 0, wantWritable: false, writableTimer: null, stats: newDirectionStats() };
}

/** One end of a {@link SimLink}. */
export class SimEndpoint implements LinkEndpoint {
  /** @internal */
  handler: LinkHandler | null = null;

  constructor(readonly name: string, private readonly link: SimLink, private readonly dir: LinkDirection) {}

  get isUp(): boolean {
    return this.link.isUp;
  }

  send(bytes: Uint8Array): boolean {
    return this.link.transmit(this.dir, bytes);
  }

  attach(handler: LinkHandler): void {
    assert(this.handler === null, `${this.name}: a link endpoint takes one handler`);
    this.handler = handler;
  }
}
