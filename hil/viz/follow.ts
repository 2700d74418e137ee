import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { TraceEvent } from '../trace/events.ts';
import { firmwareCharts } from './charts.ts';
import type { LooseEvent } from './fold.ts';
import { LiveFeed } from './live.ts';
import { VizServer } from './server.ts';

/** Bytes read from one file per read call. */
export const FOLLOW_CHUNK_BYTES = 256 * 1024;
/** A line longer than this is not telemetry: it is skipped (counted), never buffered whole. */
export const FOLLOW_LINE_BYTES_MAX = 1024 * 1024;
/** Lines handed on per turn of the event loop, so that catching up with a long file never starves the server. */
export const FOLLOW_LINES_PER_TURN_MAX = 20_000;
/** Parsed lines a file may have waiting for the merge; it is not read further until they are taken. */
export const FOLLOW_QUEUE_LINES_MAX = 50_000;
/** How often the files are looked at for new lines (wall ms). */
export const FOLLOW_POLL_MS = 100;

const READ_BUF = Buffer.allocUnsafe(FOLLOW_CHUNK_BYTES);

/** One line a controller process wrote: its stamp (docs/controller-process.md 3) and its event. */
interface StampedLine {
  wall: number;
  event: LooseEvent;
}

/** What a follower has seen so far, for the page and for the person who started it. */
export interface FollowStats {
  files: { path: string; bytes: number; lines: number; badLines: number; truncations: number; present: boolean }[];
  delivered: number;
}

/**
 * One telemetry file, read as it grows: whole lines are parsed into {@link StampedLine}s, a partial
 * last line waits for the rest, a line that is not a stamped telemetry object is counted and
 * skipped. A file that shrinks (a new run started over it) is read again from its start.
 */
class FileTail {
  private fd: number | null = null;
  private offset = 0;
  private partial = '';
  private skippingLongLine = false;
  private decoder = new StringDecoder('utf8');
  readonly queue: StampedLine[] = [];
  private head = 0;
  lines = 0;
  badLines = 0;
  truncations = 0;

  constructor(readonly path: string) {}

  get present(): boolean {
    return this.fd !== null;
  }

  get waiting(): number {
    return this.queue.length - this.head;
  }

  get bytes(): number {
    return this.offset;
  }

  peek(): StampedLine | undefined {
    return this.queue[this.head];
  }

  shift(): StampedLine | undefined {
    const line = this.queue[this.head];
    if (line === undefined) return undefined;
    this.head++;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    return line;
  }

  /** Reads what was appended since the last call, at most `budget` bytes; returns the bytes read. */
  poll(budget: number): number {
    if (this.fd === null) {
      try {
        this.fd = openSync(this.path, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
        throw err;
      }
    }
    const size = fstatSync(this.fd).size;
    if (size < this.offset) {
      this.truncations++;
      this.offset = 0;
      this.partial = '';
      this.skippingLongLine = false;
      this.decoder = new StringDecoder('utf8');
    }
    let read = 0;
    const buf = READ_BUF;
    while (read < budget && this.offset < size) {
      const n = readSync(this.fd, buf, 0, Math.min(buf.length, size - this.offset), this.offset);
      if (n <= 0) break;
      this.offset += n;
      read += n;
      this.take(this.decoder.write(buf.subarray(0, n)));
    }
    return read;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private take(text: string): void {
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      const piece = text.slice(start, nl);
      start = nl + 1;
      if (this.skippingLongLine) {
        this.skippingLongLine = false;
        this.partial = '';
        continue;
      }
      const line = this.partial.length > 0 ? this.partial + piece : piece;
      this.partial = '';
      if (line.length > FOLLOW_LINE_BYTES_MAX) this.badLines++;
      else this.parse(line);
    }
    if (this.skippingLongLine) return;
    this.partial += text.slice(start);
    if (this.partial.length > FOLLOW_LINE_BYTES_MAX) {
      this.badLines++;
      this.partial = '';
      this.skippingLongLine = true;
    }
  }

  private parse(line: string): void {
    if (line.trim().length === 0) return;
    this.lines++;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.badLines++;
      return;
    }
    const v = value as Record<string, unknown> | null;
    if (v === null || typeof v !== 'object' || Array.isArray(v) || typeof v.kind !== 'string' || typeof v.wall !== 'number' || !Number.isFinite(v.wall)) {
      this.badLines++;
      return;
    }
    this.queue.push({ wall: v.wall, event: v as unknown as LooseEvent });
  }
}

export interface TelemetryFollowerOptions {
  /** Where each event goes, re-timed: `t` is ms since the first line the follower saw (by its wall stamp). */
  sink: { emit(event: TraceEvent): void };
  /** Wall-clock time (ms since the epoch); injectable for tests. */
  wallNow?: () => number;
}

/**
 * `mirrorlab viz --follow FILE...` (docs/viz.md, "Attaching to controller processes"): the
 * telemetry files of running controller processes, followed as they grow and handed to the live
 * feed as one stream. Each process's `t` counts from its own start (and from zero again after a
 * restart), so the stream is re-timed by the lines' wall stamps, which all processes on one machine
 * share: `t` is ms since the earliest line seen. Lines of several files are merged by wall stamp as
 * far as each file has been read; a line that arrives later than a newer one already passed on is
 * given that newer time (times never go backwards on the page).
 */
export class TelemetryFollower {
  private readonly tails: FileTail[];
  private origin: number | null = null;
  private lastT = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private readonly wallNow: () => number;
  delivered = 0;

  constructor(paths: readonly string[], private readonly opts: TelemetryFollowerOptions) {
    this.tails = paths.map((p) => new FileTail(p));
    this.wallNow = opts.wallNow ?? Date.now;
  }

  /** The page's clock between lines: ms since the first line, moving with the wall clock. */
  now(): number {
    return this.origin === null ? 0 : Math.max(this.lastT, this.wallNow() - this.origin);
  }

  /** Starts following: reads what the files hold (in turns, so a long file does not block), then polls. */
  start(): void {
    if (this.timer !== null || this.stopped) return;
    const turn = (): void => {
      this.timer = null;
      if (this.stopped) return;
      const more = this.step();
      this.timer = setTimeout(turn, more ? 0 : FOLLOW_POLL_MS);
      this.timer.unref?.();
    };
    turn();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const tail of this.tails) tail.close();
  }

  /**
   * Reads and delivers one turn's worth; true if there may be more at once (a file not read to its
   * end, or lines left waiting). Public for tests, which step without timers.
   */
  step(): boolean {
    let more = false;
    for (const tail of this.tails) {
      if (tail.waiting >= FOLLOW_QUEUE_LINES_MAX) more = true;
      else if (tail.poll(FOLLOW_CHUNK_BYTES * 4) >= FOLLOW_CHUNK_BYTES * 4) more = true;
    }
    // Merge by wall stamp what every file has given so far. A file read to its end with nothing
    // waiting may still be behind the others by a poll; its late lines are clamped, not reordered.
    for (let n = 0; n < FOLLOW_LINES_PER_TURN_MAX; n++) {
      let best: FileTail | null = null;
      for (const tail of this.tails) {
        const line = tail.peek();
        if (line !== undefined && (best === null || line.wall < best.peek()!.wall)) best = tail;
      }
      if (best === null) return more;
      this.deliver(best.shift()!);
    }
    return true;
  }

  stats(): FollowStats {
    return {
      files: this.tails.map((t) => ({ path: t.path, bytes: t.bytes, lines: t.lines, badLines: t.badLines, truncations: t.truncations, present: t.present })),
      delivered: this.delivered,
    };
  }

  private deliver(line: StampedLine): void {
    this.origin ??= line.wall;
    const t = Math.max(this.lastT, line.wall - this.origin);
    this.lastT = t;
    this.delivered++;
    this.opts.sink.emit({ ...line.event, t } as unknown as TraceEvent);
  }
}

/** Checks, before anything starts, that each file to follow can be: its directory exists and the file, if there, is a regular file. */
export function checkFollowPath(path: string): string | null {
  try {
    const st = statSync(path);
    return st.isFile() ? null : `${path} is not a regular file`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return `${path}: ${(err as Error).message}`;
  }
  const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) || '/' : '.';
  try {
    return statSync(dir).isDirectory() ? null : `${dir} is not a directory`;
  } catch {
    return `${path}: no such directory ${dir}`;
  }
}

/**
 * The visualizer's live page for controller processes: their telemetry files followed into a live
 * feed, served on 127.0.0.1:`port`. `close` stops following and serving.
 */
export async function startFollowing(paths: readonly string[], port: number): Promise<{ server: VizServer; feed: LiveFeed; follower: TelemetryFollower; close: () => Promise<void> }> {
  let follower: TelemetryFollower | null = null;
  const feed = new LiveFeed(firmwareCharts(), null, { now: () => follower?.now() ?? 0, source: paths.join(', ') });
  follower = new TelemetryFollower(paths, { sink: feed });
  const server = await VizServer.start({ port, live: feed });
  follower.start();
  feed.start();
  const f = follower;
  return {
    server, feed, follower: f,
    close: async () => {
      f.stop();
      feed.stop();
      await server.close();
    },
  };
}
