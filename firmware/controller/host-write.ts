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

  private emit(kind: 'host.write' | 'host.ack' | 'local.applied', mode = ''): void {
    const t = this.ctx.telemetry;
    if (!t.enabled) return;
    const base = { t: this.ctx.clock.now(), node: this.ctx.node, tag: this.tag, lun: this.lun, lba: this.lba, count: this.count };
    if (kind === 'host.ack') t.emit({ kind, ...base, mode });
    else t.emit({ kind, ...base });
  }
}

/** A host write to a mirrored LUN: it is also the write its source channel mirrors. */
export class MirroredHostWrite extends HostWrite implements ChannelWrite {
  constructor(
    ctx: HostWriteContext, tag: number, lun: number, lba: number, count: number, data: Uint8Array, done: WriteDone,
    readonly mode: MirrorMode,
  ) {
    super(ctx, tag, lun, lba, count, data, done, 2);
  }

  /** Async mode acknowledges the host once the rollback log has taken the write. */
  admitted(): void {
    if (this.mode === 'async') this.finish();
  }

  /** The other modes once the target confirmed it; in async mode the host has its ack already. */
  confirmed(error?: MirrorlabError): void {
    if (this.mode !== 'async') this.finish(error);
    else if (error) this.emitError(error);
  }

  protected override ackMode(): string {
    return this.mode;
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
