import type { BlockDevice } from '../ports/block-device.ts';

/**
 * Group flush of one device (docs/tag-tables.md, "Durability"): `after(done)` calls `done` once
 * every write that completed before the call is durable. One `device.flush()` serves every caller
 * that asked before it was issued; whoever asks while it is on the device waits for the next one,
 * which goes as soon as the first returns and serves everyone who asked meanwhile. No timer: the
 * batching comes from callers arriving while a flush is under way, so an idle device flushes at
 * once and a busy one flushes back to back.
 */
export class GroupFlush {
  private waiting: ((error?: unknown) => void)[] = [];
  private onDevice = false;
  private flushes = 0;

  constructor(private readonly device: BlockDevice, private readonly flushed: () => void = () => {}) {}

  /** Flushes issued so far. */
  get count(): number {
    return this.flushes;
  }

  /** `done` runs once everything completed before this call is durable, or with the flush's error. */
  after(done: (error?: unknown) => void): void {
    this.waiting.push(done);
    if (!this.onDevice) this.issue();
  }

  private issue(): void {
    const batch = this.waiting;
    this.waiting = [];
    this.onDevice = true;
    this.flushes++;
    this.flushed();
    this.device.flush().then(
      () => this.finish(batch, undefined),
      (error: unknown) => this.finish(batch, error ?? new Error('flush failed')),
    );
  }

  private finish(batch: ((error?: unknown) => void)[], error: unknown): void {
    this.onDevice = false;
    if (this.waiting.length > 0) this.issue();
    for (const done of batch) done(error);
  }
}
