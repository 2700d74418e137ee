import { MirrorlabError } from '../errors.ts';
import type { ChannelWrite, MirrorMode } from '../mirror/types.ts';
import type { Clock } from '../ports/clock.ts';
import type { Telemetry } from '../ports/telemetry.ts';

export type WriteDone = (error?: MirrorlabError) => void;

/** What a host write needs from its controller; one per controller, shared by every write. */
export interface HostWriteContext {
  readonly node: string;
  readonly clock: Clock;
  readonly telemetry: Telemetry;
  /** A write completed (successfully or not), just before its host is told. */
  finished(): void;
  /** A mirrored write's target confirmed it (or refused it): it is no longer on its way through the mirror. */
  mirrorDone?(lun: number, tag: number): void;
}

/**
 * One host write in flight: done once the local disk and, for a mirrored LUN, the mirror are done
 * (see the controller's class doc for when the host is acknowledged in each mode).
 *
 * A class and not a set of closures because it is made once per host write: one object with
 * shared methods costs a fraction of an object literal plus the three or four closures it would
 * otherwise take to say the same thing.
 */
export class HostWrite {
  private pending: number;
  private failure: MirrorlabError | undefined = undefined;

  constructor(
    protected readonly ctx: HostWriteContext,
    readonly tag: number,
    readonly lun: number,
    readonly lba: number,
    readonly count: number,
    readonly data: Uint8Array,
    private readonly done: WriteDone,
    /** Completions to wait for: the local disk, and the mirror if there is one. */
    pending = 1,
  ) {
    this.pending = pending;
  }

  /**
   * The write goes to the disk (and, mirrored, into the stream) now. Its `host.write` event says
   * so: a write that waited behind an overlapping one, or behind a resync, takes its place in the
   * history here, where it takes it on the disk and in the mirror.
   */
  issued(): void {
    this.emit('host.write');
  }

  /** The local disk finished the write (`error` undefined) or failed it. */
  localWritten(error: unknown): void {
    if (error !== undefined) return this.finish(asMirrorlabError(error));
    this.emit('local.applied');
    this.finish();
  }

  /** The write could not go to the disk at all (its tag-table entry could not be made durable): it fails whole. */
  failWhole(error: unknown): void {
    this.issued();
    this.pending = 1;
    this.finish(asMirrorlabError(error));
  }

  protected finish(error?: MirrorlabError): void {
    if (error && !this.failure) this.failure = error;
    if (--this.pending > 0) return;
    this.ctx.finished();
    if (this.failure) this.emitError(this.failure);
    else this.emit('host.ack', this.ackMode());
    this.done(this.failure);
  }

  /** How the host was acknowledged, for telemetry. */
  protected ackMode(): string {
    return 'local';
  }

  protected emitError(err: MirrorlabError): void {
    emitHostError(this.ctx, this, err);
  }

  protected emit(kind: 'host.write' | 'host.ack' | 'local.applied' | 'local.durable', mode = ''): void {
    const t = this.ctx.telemetry;
    if (!t.enabled) return;
    const base = { t: this.ctx.clock.now(), node: this.ctx.node, tag: this.tag, lun: this.lun, lba: this.lba, count: this.count };
    if (kind === 'host.ack') t.emit({ kind, ...base, mode });
    else if (kind === 'local.applied') t.emit({ kind, ...base, durable: this.durableWhenApplied() });
    else t.emit({ kind, ...base });
  }

  /** Whether the local half is reported only once flushed (a mirrored write in sync or speculative mode). */
  protected durableWhenApplied(): boolean {
    return false;
  }
}

/**
 * A host write to a mirrored LUN: it is also the write its source channel mirrors. Its local half
 * is done, in sync and speculative mode, once the write is durable on the source's volume (the
 * controller's group flush, docs/tag-tables.md, "Durability"); in async mode once it is on the
 * disk, the flush following behind (the tag table needs it before the entry may go).
 */
export class MirroredHostWrite extends HostWrite implements ChannelWrite {
  /** Whether the local copy is flushed, in an object of its own: a spill keeps it without the write. */
  private readonly flushed = { done: false };
  /** The mirror was suspended before the target confirmed this write: the host was acknowledged locally. */
  private suspendedAck = false;
  /** Async: the mirror's half is done (the log took the write, or a suspension spared it the log). */
  private admittedOnce = false;

  constructor(
    ctx: HostWriteContext, tag: number, lun: number, lba: number, count: number, data: Uint8Array, done: WriteDone,
    readonly mode: MirrorMode,
  ) {
    super(ctx, tag, lun, lba, count, data, done, 2);
  }

  /** Whether the host's acknowledgement waits for the local flush (sync and speculative: docs/tag-tables.md, "Durability"). */
  get waitsForFlush(): boolean {
    return this.mode !== 'async';
  }

  /** Async mode acknowledges the host once the rollback log has taken the write. */
  admitted(): void {
    if (this.mode !== 'async' || this.admittedOnce) return;
    this.admittedOnce = true;
    this.finish();
  }

  /** The other modes once the target confirmed it; in async mode the host has its ack already. */
  confirmed(error?: MirrorlabError): void {
    this.ctx.mirrorDone?.(this.lun, this.tag);
    if (this.mode !== 'async') this.finish(error);
    else if (error) this.emitError(error);
  }

  /**
   * The mirror is suspended (docs/tag-tables.md, "Suspension"): the write is not mirrored now, its
   * sectors stay named by the source's tag table, and the host is acknowledged on the local copy
   * alone (`host.ack` mode `suspended`). In async mode the host has its ack already.
   */
  suspended(): void {
    this.ctx.mirrorDone?.(this.lun, this.tag);
    if (this.mode === 'async' && this.admittedOnce) return;
    this.admittedOnce = true;
    this.suspendedAck = true;
    this.finish();
  }

  protected override ackMode(): string {
    return this.suspendedAck ? 'suspended' : this.mode;
  }

  /** The local copy is flushed: with the target's token, the tag-table entry may go. */
  get durable(): boolean {
    return this.flushed.done;
  }

  set durable(done: boolean) {
    this.flushed.done = done;
    // Async reported its local half before the flush: say when it is durable (a power cut may lose it until then).
    if (done && !this.waitsForFlush) this.emit('local.durable');
  }

  protected override durableWhenApplied(): boolean {
    return this.waitsForFlush;
  }

  /** Reads {@link durable} later, holding none of this write's data. */
  durability(): () => boolean {
    const flushed = this.flushed;
    return () => flushed.done;
  }

  /** A refusal after the host was acknowledged is reported as this write's `host.error`; the reporter keeps no data. */
  refusalReporter(): (error: MirrorlabError) => void {
    const { ctx, tag, lun, lba, count } = this;
    return (error) => emitHostError(ctx, { tag, lun, lba, count }, error);
  }
}

function emitHostError(ctx: HostWriteContext, w: { tag: number; lun: number; lba: number; count: number }, err: MirrorlabError): void {
  const t = ctx.telemetry;
  if (!t.enabled) return;
  t.emit({ kind: 'host.error', t: ctx.clock.now(), node: ctx.node, tag: w.tag, lun: w.lun, lba: w.lba, count: w.count, code: err.code, message: err.message });
}

export function asMirrorlabError(err: unknown): MirrorlabError {
  if (err instanceof MirrorlabError) return err;
  return new MirrorlabError('ML_ERR_UNEXPECTED', err instanceof Error ? err.message : String(err));
}
