import { createHash, type Hash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Telemetry } from '../../firmware/ports/telemetry.ts';
import type { TelemetryEvent } from '../../firmware/telemetry/events.ts';

/**
 * Records the full event trace of a run: a SHA-256 over every event as one JSON line (the
 * `traceHash` that proves two runs identical, DESIGN 2.5), and optionally the lines themselves to
 * a JSONL file. Event objects are built in a fixed key order by the firmware and virtual times are
 * exact, so the same run always serialises to the same bytes.
 */
export class TraceRecorder implements Telemetry {
  readonly enabled = true;
  private readonly hash: Hash = createHash('sha256');
  private events = 0;
  private readonly out: WriteStream | null;
  private pending: string[] = [];
  private failure: Error | null = null;

  constructor(file?: string) {
    this.out = file ? createWriteStream(file) : null;
    this.out?.on('error', (err) => (this.failure ??= err));
  }

  get count(): number {
    return this.events;
  }

  emit(event: TelemetryEvent): void {
    const line = JSON.stringify(event);
    this.hash.update(line);
    this.hash.update('\n');
    this.events++;
    if (this.out && !this.failure) {
      this.pending.push(line);
      if (this.pending.length >= 4096) this.flushLines();
    }
  }

  /** Hex digest of everything recorded; call once, at the end. */
  digest(): string {
    return this.hash.digest('hex');
  }

  /** Finish the file, if any. */
  async close(): Promise<void> {
    if (!this.out) return;
    if (!this.failure) this.flushLines();
    const out = this.out;
    if (!this.failure) await new Promise<void>((resolve) => out.end(() => resolve()));
    if (this.failure) throw new Error(`trace file: ${this.failure.message}`);
  }

  private flushLines(): void {
    if (this.pending.length === 0) return;
    this.out!.write(this.pending.join('\n') + '\n');
    this.pending = [];
  }
}

/** Telemetry that hands every event to several subscribers. */
export class FanoutTelemetry implements Telemetry {
  readonly enabled: boolean;
  constructor(private readonly sinks: Telemetry[]) {
    this.enabled = sinks.some((s) => s.enabled);
  }
  emit(event: TelemetryEvent): void {
    for (const s of this.sinks) if (s.enabled) s.emit(event);
  }
}
