import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { MirrorlabError } from '../../firmware/errors.ts';
import type { Telemetry } from '../../firmware/ports/telemetry.ts';
import type { TelemetryEvent } from '../../firmware/telemetry/events.ts';
import type { ProcessEvent } from './process-events.ts';

/**
 * The telemetry file or socket could not be opened or written: an operating error, one line naming
 * the target and the system's reason.
 */
export class TelemetryTargetError extends MirrorlabError {
  constructor(target: string, what: string, cause: unknown) {
    super('ML_ERR_TELEMETRY', `telemetry ${target} could not be ${what}: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

/** Lines gathered in memory before a write is forced (bytes); otherwise they go out once per event-loop turn. */
export const JOURNAL_BATCH_BYTES_MAX = 1024 * 1024;
/** A socket consumer that falls this far behind loses lines (counted, and said in the stream). */
export const JOURNAL_SOCKET_BACKLOG_BYTES_MAX = 64 * 1024 * 1024;
/** How long opening a telemetry socket may take (ms). */
const SOCKET_CONNECT_MS = 5_000;

/** What every line carries besides the event (docs/controller-process.md 3). */
export interface Stamp {
  /** This process incarnation's counter: 1, 2, 3... with no gaps unless lines were lost (then a `telemetry.lost` says so). */
  n: number;
  /** Names the incarnation: `NAME/SESSION`; a restart has a new session, hence a new proc. */
  proc: string;
  /** Wall-clock time (ms since the Unix epoch): for people and for tie-breaking, never for causal order. */
  wall: number;
}

export type JournalEvent = TelemetryEvent | ProcessEvent;

interface Sink {
  /** Writes a batch; false if it had to drop it (a socket consumer too far behind). */
  write(text: string): boolean;
  close(): Promise<void>;
}

/**
 * The controller process's telemetry (docs/controller-process.md 3): every firmware event and the
 * process's own, one JSON object per line, stamped with {@link Stamp} so that events of several
 * processes can be merged in causal order without a shared clock (`hil/trace/merge.ts`).
 *
 * A file is appended to (a restarted controller adds its incarnation after the last one's lines,
 * starting on a fresh line if a kill cut the last one short) and written synchronously once per
 * event-loop turn, so a SIGKILL loses at most the current turn's lines. A unix socket (`unix:PATH`,
 * where a collector listens) is written asynchronously; a collector more than
 * {@link JOURNAL_SOCKET_BACKLOG_BYTES_MAX} behind loses lines, and the stream says how many.
 */
export class TelemetryJournal implements Telemetry {
  readonly enabled = true;
  private proc = '';
  private procJson = '""';
  private counter = 0;
  private lines: string[] = [];
  private bytes = 0;
  private scheduled = false;
  private lost = 0;
  /** The episode of loss not reported yet: its first counter and how many lines. */
  private lostFrom = 0;
  private lostNow = 0;
  private closed = false;

  private constructor(readonly target: string, private readonly sink: Sink, private readonly now: () => number) {}

  /** Opens `target`: a file path (appended to) or `unix:PATH` (a listening collector). `now` gives the process events' `t`. */
  static async open(target: string, now: () => number): Promise<TelemetryJournal> {
    const sink = target.startsWith('unix:') ? await openSocketSink(target.slice(5), target) : openFileSink(target);
    return new TelemetryJournal(target, sink, now);
  }

  /** Names this incarnation in every line from now on (set once the controller has drawn its session). */
  setProc(proc: string): void {
    this.proc = proc;
    this.procJson = JSON.stringify(proc);
  }

  /** Events stamped so far (lost ones included). */
  get events(): number {
    return this.counter;
  }

  /** Events that could not be written. */
  get lostEvents(): number {
    return this.lost;
  }

  emit(event: JournalEvent): void {
    if (this.closed) return;
    // The stamp written ahead of the event's own fields, without building a merged object per event.
    const body = JSON.stringify(event);
    const line = `{"n":${++this.counter},"proc":${this.procJson},"wall":${Date.now()}${body.length > 2 ? `,${body.slice(1)}` : '}'}`;
    this.lines.push(line);
    this.bytes += line.length + 1;
    if (this.bytes >= JOURNAL_BATCH_BYTES_MAX) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes what is gathered now. */
  flush(): void {
    this.scheduled = false;
    if (this.lines.length === 0) return;
    const first = this.counter - this.lines.length + 1;
    const text = `${this.lines.join('\n')}\n`;
    const count = this.lines.length;
    this.lines = [];
    this.bytes = 0;
    if (this.sink.write(text)) {
      if (this.lostFrom > 0) this.noteLoss();
      return;
    }
    if (this.lostFrom === 0) this.lostFrom = first;
    this.lost += count;
    this.lostNow += count;
  }

  /** Flushes and closes; nothing is written after. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    if (this.lostFrom > 0) this.noteLoss();
    this.closed = true;
    await this.sink.close();
  }

  /** Lines were dropped: say which counters they had, in the stream itself, as soon as it takes lines again. */
  private noteLoss(): void {
    const event: ProcessEvent = { kind: 'telemetry.lost', t: this.now(), node: this.proc.split('/')[0] ?? '', fromN: this.lostFrom, events: this.lostNow };
    this.lostFrom = 0;
    this.lostNow = 0;
    this.sink.write(`${JSON.stringify({ n: ++this.counter, proc: this.proc, wall: Date.now(), ...event })}\n`);
  }
}

function openFileSink(path: string): Sink {
  let fd: number;
  try {
    fd = openSync(path, 'a+');
  } catch (error) {
    throw new TelemetryTargetError(path, 'opened', error);
  }
  // A controller killed mid-write may have left its last line without its newline: start on a fresh one.
  const size = fstatSync(fd).size;
  if (size > 0) {
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    if (last[0] !== 0x0a) writeSync(fd, '\n');
  }
  let failure: unknown = null;
  return {
    write(text) {
      if (failure !== null) return false;
      try {
        writeSync(fd, text);
        return true;
      } catch (error) {
        failure = error;
        return false;
      }
    },
    async close() {
      closeSync(fd);
      if (failure !== null) throw new TelemetryTargetError(path, 'written', failure);
    },
  };
}

async function openSocketSink(path: string, target: string): Promise<Sink> {
  const socket: Socket = await new Promise((resolve, reject) => {
    const s = createConnection({ path });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new TelemetryTargetError(target, 'opened', new Error(`no answer within ${SOCKET_CONNECT_MS} ms`)));
    }, SOCKET_CONNECT_MS);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (error) => {
      clearTimeout(timer);
      reject(new TelemetryTargetError(target, 'opened', error));
    });
  });
  let broken = false;
  socket.on('error', () => (broken = true));
  socket.on('close', () => (broken = true));
  return {
    write(text) {
      if (broken || socket.writableLength > JOURNAL_SOCKET_BACKLOG_BYTES_MAX) return false;
      socket.write(text);
      return true;
    },
    close() {
      return new Promise((resolve) => {
        if (broken) return resolve();
        const timer = setTimeout(() => {
          socket.destroy();
          resolve();
        }, SOCKET_CONNECT_MS);
        socket.end(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
