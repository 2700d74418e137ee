import type { MirrorTables, TableCounters } from './mirror-tables.ts';

export interface TargetTokensDeps {
  /** The target-role table of `lun`'s mirror from this channel's peer (none: the LUN keeps no table). */
  table(lun: number): MirrorTables | undefined;
  /**
   * Make durable every write applied so far to `luns` (flush their volumes, batched with whoever
   * else flushes them), then the tables' metadata (a commit of the metadata store, if any): `done`
   * once both are, or with the error that stopped it.
   */
  makeDurable(luns: ReadonlySet<number>, done: (error?: unknown) => void): void;
  counters: TableCounters;
  /** Most applied writes waiting for their tokens to come back (the tables' bound). */
  waitingMax: number;
}

/**
 * A target's side of the token exchange for one stream (docs/tag-tables.md, "Tokens"). A write the
 * target applies enters its table at once; the token for it is the watermark {@link tokens},
 * raised only once the write is durable on the volume and its entry in the table's metadata: one
 * flush (and one metadata commit) covers every write confirmed before it started, and the next
 * starts when it ends, so nothing waits on a timer. The watermark rides on ACKs and heartbeats;
 * what the source sends back ({@link back}) deletes the entries it covers.
 *
 * Why a watermark names exactly the right writes: the target applies and confirms the stream in
 * sequence order, so "every WRITE through seq N" is exactly the writes it confirmed through N; and
 * the source keeps, in the same order, what it confirmed. A write the target refused is confirmed
 * without being applied: it has no entry here, and the source keeps its own (docs/tag-tables.md).
 */
export class TargetTokens {
  private seqs: number[] = [];
  private luns: number[] = [];
  private tags: number[] = [];
  private head = 0;
  /** Index of the first write whose token has not been given yet (for the counters). */
  private unsent = 0;
  private confirmedSeq = 0;
  private durable = 0;
  private dirty = new Set<number>();
  private flushing = false;
  /** Bumped by a new stream: a flush that finishes for an older one raises nothing. */
  private generation = 0;

  constructor(private readonly deps: TargetTokensDeps) {}

  /** Every WRITE of the stream through this seq is durable here (with its entry): the token watermark. */
  get tokens(): number {
    return this.durable;
  }

  /** Applied writes whose tokens have not come back yet. */
  get waiting(): number {
    return this.seqs.length - this.head;
  }

  /** WRITE `seq` was applied (on the disk, not yet durable): it enters the table and waits for its token's return. */
  applied(seq: number, lun: number, tag: number, lba: number, count: number): void {
    this.dirty.add(lun);
    if (tag === 0) return; // a resync's copy: no host write, no entry
    const table = this.deps.table(lun);
    if (table === undefined || !table.add({ tag, lun, lba, count })) return;
    this.seqs.push(seq);
    this.luns.push(lun);
    this.tags.push(tag);
    if (this.waiting > this.deps.waitingMax) this.head++; // forgotten here; its entry waits for the next resync
    this.compact();
  }

  /** The stream is confirmed through `seq`: make what that covers durable, if no flush is under way. */
  confirmed(seq: number): void {
    if (seq <= this.confirmedSeq) return;
    this.confirmedSeq = seq;
    this.flush();
  }

  /** The source deleted its entries through `seq` of this stream: delete ours (only for tokens we gave). */
  back(seq: number): void {
    const through = Math.min(seq, this.durable);
    let taken = 0;
    while (this.head < this.seqs.length && this.seqs[this.head]! <= through) {
      this.deps.table(this.luns[this.head]!)?.drop([this.tags[this.head]!]);
      this.head++;
      taken++;
    }
    this.deps.counters.tokensTaken += taken;
    this.compact();
  }

  /** A new stream from the source: the old one's tokens will never come back; its entries wait for the next resync. */
  newStream(): void {
    this.generation++;
    this.seqs = [];
    this.luns = [];
    this.tags = [];
    this.head = 0;
    this.unsent = 0;
    this.confirmedSeq = 0;
    this.durable = 0;
    this.flushing = false;
  }

  private flush(): void {
    if (this.flushing || this.confirmedSeq <= this.durable) return;
    const upTo = this.confirmedSeq;
    if (this.dirty.size === 0) {
      this.raise(upTo); // nothing written since the last flush (LOCKs, UNLOCKs, refusals)
      return;
    }
    const luns = this.dirty;
    this.dirty = new Set();
    this.flushing = true;
    const generation = this.generation;
    this.deps.makeDurable(luns, (error) => {
      if (generation !== this.generation) return;
      this.flushing = false;
      if (error !== undefined) {
        for (const l of luns) this.dirty.add(l); // tried again with the next confirmation
        return;
      }
      this.raise(upTo);
      this.flush();
    });
  }

  private raise(upTo: number): void {
    this.unsent = Math.max(this.unsent, this.head);
    const from = this.unsent;
    while (this.unsent < this.seqs.length && this.seqs[this.unsent]! <= upTo) this.unsent++;
    this.deps.counters.tokensSent += this.unsent - from;
    this.durable = upTo;
  }

  private compact(): void {
    if (this.head < 1024 || this.head * 2 < this.seqs.length) return;
    this.seqs = this.seqs.slice(this.head);
    this.luns = this.luns.slice(this.head);
    this.tags = this.tags.slice(this.head);
    this.unsent = Math.max(0, this.unsent - this.head);
    this.head = 0;
  }
}
