import type { ChannelWrite } from '../mirror/types.ts';
import type { MirrorTables, TableCounters } from './mirror-tables.ts';

export interface SourceTokensDeps {
  /** The source-role table of `lun`'s mirror to this channel's peer (none: the LUN keeps no table). */
  table(lun: number): MirrorTables | undefined;
  counters: TableCounters;
  /** Most writes waiting (the tables' bound): beyond it the oldest is forgotten here, its entry left for the next resync. */
  waitingMax: number;
}

/**
 * A source's side of the token exchange for one stream (docs/tag-tables.md, "Tokens"). The target
 * returns tokens as a watermark over the stream's sequence numbers: every WRITE through it is
 * durable there. Since the stream is applied in order, the writes it names are exactly those this
 * channel had confirmed through that number; they wait here, in stream order, from their
 * confirmation to their token. An entry is deleted from the source's table once its token is in
 * and its local copy is durable; the watermark of what was deleted, in turn, goes back to the
 * target on later frames ({@link tokensBack}) so it can delete its own entries.
 *
 * Bounded by what the tables hold: a write waits here only while its entry is in its table (a
 * table full of them makes the mirror's resync a full one, and a new stream forgets them all).
 */
export class SourceTokens {
  private seqs: number[] = [];
  private writes: ChannelWrite[] = [];
  private head = 0;
  /** The target's token watermark for this stream, and what went back to it. */
  private durable = 0;
  private back = 0;

  constructor(private readonly deps: SourceTokensDeps) {}

  /** Writes confirmed and waiting for their token or their local flush. */
  get waiting(): number {
    return this.seqs.length - this.head;
  }

  /** Tokens of this stream through this seq are back with us: the target may delete its entries through it. */
  get tokensBack(): number {
    return this.back;
  }

  /** The target confirmed WRITE `seq` (applied it): its token will follow. A write with no entry (tag 0) is not tracked. */
  confirmed(seq: number, w: ChannelWrite): void {
    if (w.tag === 0 || w.durable === undefined) return;
    this.seqs.push(seq);
    this.writes.push(w);
    if (this.waiting > this.deps.waitingMax) {
      this.head++;
      this.compact();
    }
  }

  /** The target says every WRITE of the stream through `seq` is durable there. */
  tokens(seq: number): void {
    if (seq <= this.durable) return;
    this.durable = seq;
    this.settle();
  }

  /** A local flush finished: writes waiting for it may go now. */
  localDurable(): void {
    if (this.waiting > 0) this.settle();
  }

  /** A new stream: the old one's tokens will never come. Their entries stay in the tables, for the next resync to match. */
  newStream(): void {
    this.seqs = [];
    this.writes = [];
    this.head = 0;
    this.durable = 0;
    this.back = 0;
  }

  /** Delete the entries whose token is in and whose copy is durable, in stream order, and move the watermark back. */
  private settle(): void {
    let taken = 0;
    while (this.head < this.seqs.length && this.seqs[this.head]! <= this.durable && this.writes[this.head]!.durable === true) {
      const w = this.writes[this.head]!;
      this.deps.table(w.lun)?.drop([w.tag]);
      this.head++;
      taken++;
    }
    this.deps.counters.tokensReceived += taken;
    // Back through the durable watermark, but never past the first write still waiting for its flush.
    const stop = this.head < this.seqs.length ? this.seqs[this.head]! - 1 : this.durable;
    this.back = Math.max(this.back, Math.min(this.durable, stop));
    this.compact();
  }

  private compact(): void {
    if (this.head < 1024 || this.head * 2 < this.seqs.length) return;
    this.seqs = this.seqs.slice(this.head);
    this.writes = this.writes.slice(this.head);
    this.head = 0;
  }
}
