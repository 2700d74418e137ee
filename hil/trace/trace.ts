import { createWriteStream, openSync, type WriteStream } from 'node:fs';
import { MirrorlabError } from '../../firmware/errors.ts';
import type { Telemetry } from '../../firmware/ports/telemetry.ts';
import type { TraceEvent, TraceSink } from './events.ts';
import { TraceFingerprint } from './fingerprint.ts';

/**
 * The trace file could not be opened or written: an operating error (a missing directory, no
 * permission, a full disk), not a bug. It names the path and the system's reason.
 */
export class TraceFileError extends MirrorlabError {
  constructor(readonly path: string, what: 'opened' | 'written', cause: unknown) {
    super('ML_ERR_TRACE_FILE', `trace file ${path} could not be ${what}: ${systemReason(cause)}`);
  }
}

/** `ENOENT: no such file or directory` out of Node's `ENOENT: no such file or directory, open '/x'`. */
function systemReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (!(err instanceof Error)) return String(err);
  return typeof e.code === 'string' && e.message.startsWith(`${e.code}:`) ? e.message.replace(/, \w+ '.*'$/, '') : e.message;
}

/**
 * Records the full event trace of a run: its fingerprint (the `traceHash` that proves two runs
 * identical, docs/design.md 2.5; trace/fingerprint.ts), and optionally the events themselves to a
 * JSONL file, one JSON line each. Event objects are built in a fixed key order by the firmware and
 * the harness, and virtual times are exact, so the same run always gives the same fingerprint and
 * serialises to the same bytes; the file's lines, parsed back, give the same fingerprint. The
 * trace holds the firmware's telemetry and the harness's `link.fault` events (trace/events.ts).
 *
 * The file is opened (created, truncated) by the constructor, synchronously: a path that cannot
 * be written fails the run before it starts, with a {@link TraceFileError}, instead of after it.
 */
export class TraceRecorder implements Telemetry, TraceSink {
  readonly enabled = true;
  private readonly fingerprint = new TraceFingerprint();
  private events = 0;
  private readonly out: WriteStream | null;
  private pending: string[] = [];
  private failure: Error | null = null;

  constructor(private readonly file?: string) {
    if (!file) {
      this.out = null;
      return;
    }
    let fd: number;
    try {
      fd = openSync(file, 'w');
    } catch (err) {
      throw new TraceFileError(file, 'opened', err);
    }
    this.out = createWriteStream(file, { fd });
    this.out.on('error', (err) => (this.failure ??= err));
  }

  get count(): number {
    return this.events;
  }

  emit(event: TraceEvent): void {
    this.fingerprint.add(event);
    this.events++;
    if (this.out && !this.failure) {
      this.pending.push(JSON.stringify(event));
      if (this.pending.length >= 4096) this.flushLines();
    }
  }

  /** The trace's fingerprint, in hex; call once, at the end. */
  digest(): string {
    return this.fingerprint.digest();
  }

  /** Finish the file, if any. */
  async close(): Promise<void> {
    if (!this.out) return;
    if (!this.failure) this.flushLines();
    const out = this.out;
    if (!this.failure) await new Promise<void>((resolve) => out.end(() => resolve()));
    if (this.failure) throw new TraceFileError(this.file!, 'written', this.failure);
  }

  private flushLines(): void {
    if (this.pending.length === 0) return;
    this.out!.write(this.pending.join('\n') + '\n');
    this.pending = [];
  }
}

/**
 * Telemetry that hands every event to several subscribers: the firmware's events (as its
 * Telemetry port) and the harness's (as a TraceSink, for the link fault injector).
 */
export class FanoutTelemetry implements Telemetry, TraceSink {
  readonly enabled: boolean;
  constructor(private readonly sinks: TraceSink[]) {
    this.enabled = sinks.some((s) => s.enabled);
  }
  emit(event: TraceEvent): void {
    for (const s of this.sinks) if (s.enabled) s.emit(event);
  }
}
