import type { MirrorlabError } from '../errors.ts';
import type { LogEntry } from '../logs/sequenced-log.ts';
import type { StreamEntryKind } from '../telemetry/events.ts';
import type { ChannelWrite } from './types.ts';

/** One entry of a source's rollback log: an encoded stream frame kept until the target confirms it. */
export interface RollbackEntry extends LogEntry {
  readonly kind: StreamEntryKind;
  readonly frame: Uint8Array;
  readonly lockId: number;
  readonly write: ChannelWrite | null;
  /** Times sent (0: never). */
  sends: number;
  /** When it was last sent (ms), -1 if never. */
  sentAt: number;
  /** The data connection it was last sent on (-1 if never): a connection lost with it in flight re-sends from here. */
  conn: number;
  /** The target refused it (range, lock, media); the host hears this error when it is confirmed. */
  failed: MirrorlabError | null;
  /** A WRITE carrying its own lock (docs/implied-locks.md): it stands for a LOCK too. */
  readonly implied: boolean;
  /** Its LUN batches: it may travel in a BATCH with its neighbours (if the peer takes them). */
  readonly batch: boolean;
  /** Bytes the target had confirmed when this entry was last sent (for delivery-rate samples). */
  delivered: number;
}
