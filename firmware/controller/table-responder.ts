import type { BlockDevice } from '../ports/block-device.ts';
import { encodeFrame } from '../protocol/encode.ts';
import { FrameType, TableState, type Frame, type ResyncDoneFrame, type ResyncEntry, type ResyncRequestFrame } from '../protocol/frame.ts';
import { trustworthy, type MirrorTables } from '../tags/mirror-tables.ts';

export interface TableResponderDeps {
  /** This controller's target-role table of the peer's mirror of `lun` (undefined: none kept). */
  table(lun: number): MirrorTables | undefined;
  /** The copy of `lun` this controller holds for the peer (undefined: it holds none). */
  device(lun: number): BlockDevice | undefined;
  /** Send a frame to the peer (a response: queued boundedly while the link is full). */
  send(bytes: Uint8Array): void;
}

export function newResponderCounters() {
  return {
    tableRequests: 0, tableChunksSent: 0, tableEntriesSent: 0, tablesUntrusted: 0, resyncsSettled: 0, entriesDeleted: 0, flushFailures: 0, framesIgnored: 0,
  };
}
export type ResponderCounters = ReturnType<typeof newResponderCounters>;

/**
 * What one exchange read of a mirror's table: its entries (when trusted), every tag it held (what
 * RESYNC_DONE deletes), and the table's overflow count then. `ready` once the copy's writes it
 * names are durable; a request that came before waits in `waiting`.
 */
interface Snapshot {
  readonly exchange: number;
  readonly state: TableState;
  readonly entries: readonly ResyncEntry[];
  readonly tags: readonly number[];
  readonly overflows: number;
  ready: boolean;
  waiting: ResyncRequestFrame | null;
  /** RESYNC_DONE arrived and its flush is under way: repeats of it wait for that. */
  settling: boolean;
}

/**
 * The target's side of the resync table exchange, for one peer (docs/tag-tables.md, "Resync";
 * docs/protocol.md, "Resync"). The peer, source of a mirror, asks for this controller's table of
 * that mirror: the first request of an exchange takes a snapshot of the table, makes this copy's
 * writes durable (a flush: the entries then name data that survives a power cut), and the
 * snapshot is sent in the chunks asked for. RESYNC_DONE ends the exchange: the copies the resync
 * wrote are made durable, every entry the snapshot held is deleted (each one was either held by
 * the source too, or its blocks were copied), an overflow older than the snapshot is forgotten,
 * and RESYNC_ACK says so; a repeated RESYNC_DONE is simply acknowledged again.
 *
 * Memory: one snapshot per LUN this controller holds for the peer (a copy of that table, so
 * bounded by its bound); a new exchange replaces the old one, and a restart of the peer or a
 * link that goes down drops them all (its source starts a new exchange anyway).
 */
export class TableResponder {
  readonly counters = newResponderCounters();
  private readonly snapshots = new Map<number, Snapshot>();
  private stopped = false;

  constructor(private readonly deps: TableResponderDeps) {}

  /** The largest snapshot held now (entries), for the fuzzer's bounds. */
  get snapshotEntries(): number {
    let n = 0;
    for (const s of this.snapshots.values()) n = Math.max(n, s.tags.length);
    return n;
  }

  onRequest(f: ResyncRequestFrame): void {
    this.counters.tableRequests++;
    const dev = this.deps.device(f.lun);
    const snap = this.snapshots.get(f.lun);
    if (dev === undefined || (snap?.exchange !== f.seq && f.first !== 0)) {
      // No copy of that LUN here, or a later part of an exchange this side no longer holds (it
      // restarted, or the link went down meanwhile): nothing it could say is about that exchange.
      this.counters.tablesUntrusted++;
      return this.sendData(f, { state: TableState.Untrusted, entries: [] }, 0);
    }
    if (snap?.exchange === f.seq) {
      if (snap.ready) this.answer(f, snap);
      else snap.waiting = f;
      return;
    }
    this.takeSnapshot(f, dev);
  }

  onDone(f: ResyncDoneFrame): void {
    const snap = this.snapshots.get(f.lun);
    const dev = this.deps.device(f.lun);
    if (snap === undefined || snap.exchange !== f.seq || dev === undefined) return this.ack(f);
    if (snap.settling) return;
    snap.settling = true;
    dev.flush().then(
      () => {
        if (this.stopped || this.snapshots.get(f.lun) !== snap) return;
        this.settle(f.lun, snap);
        this.ack(f);
      },
      () => {
        // Not durable: no ACK, so the source asks again (and this flush is tried again).
        this.counters.flushFailures++;
        snap.settling = false;
      },
    );
  }

  /** The peer restarted, or the link went down: every exchange in progress is over. */
  reset(): void {
    this.snapshots.clear();
  }

  stop(): void {
    this.stopped = true;
    this.snapshots.clear();
  }

  private takeSnapshot(f: ResyncRequestFrame, dev: BlockDevice): void {
    const ref = this.deps.table(f.lun);
    const trusted = trustworthy(ref);
    if (!trusted) this.counters.tablesUntrusted++;
    const all = ref === undefined ? [] : [...ref.table.entries()];
    const snap: Snapshot = {
      exchange: f.seq, state: trusted ? TableState.Trusted : TableState.Untrusted,
      entries: trusted ? all.map((e) => ({ tag: e.tag, lba: e.lba, count: e.count })) : [],
      tags: all.map((e) => e.tag), overflows: ref?.table.overflows ?? 0, ready: false, waiting: f, settling: false,
    };
    this.snapshots.set(f.lun, snap);
    dev.flush().then(
      () => this.ready(f.lun, snap, true),
      () => this.ready(f.lun, snap, false),
    );
  }

  /** The flush after a snapshot finished: answer what waited (an untrusted table if the flush failed). */
  private ready(lun: number, snap: Snapshot, flushed: boolean): void {
    if (this.stopped || this.snapshots.get(lun) !== snap) return;
    let s = snap;
    if (!flushed) {
      // The entries may name writes a power cut would lose: they cannot vouch for anything.
      this.counters.flushFailures++;
      s = { ...snap, state: TableState.Untrusted, entries: [] };
      this.snapshots.set(lun, s);
    }
    s.ready = true;
    const waiting = s.waiting;
    s.waiting = null;
    if (waiting !== null) this.answer(waiting, s);
  }

  private answer(f: ResyncRequestFrame, snap: Snapshot): void {
    this.sendData(f, snap, snap.entries.length);
  }

  /** Entries `f.first` onwards of `snap` (as many as asked for), within a table of `total`. */
  private sendData(f: ResyncRequestFrame, snap: { state: TableState; entries: readonly ResyncEntry[] }, total: number): void {
    const first = Math.min(f.first, total);
    const entries = snap.entries.slice(first, first + Math.min(f.entriesMax, total - first));
    this.counters.tableChunksSent++;
    this.counters.tableEntriesSent += entries.length;
    this.send({ type: FrameType.ResyncData, lun: f.lun, seq: f.seq, flags: 0, first, total, state: snap.state, entries });
  }

  /** Delete what the exchange read, and forget an overflow older than it (docs/tag-tables.md, "Resync"). */
  private settle(lun: number, snap: Snapshot): void {
    this.snapshots.delete(lun);
    this.counters.resyncsSettled++;
    const ref = this.deps.table(lun);
    if (ref === undefined) return;
    const before = ref.table.size;
    // An untrusted snapshot means the source copied everything: that ends a loss too.
    ref.resynced({ tags: snap.tags, overflowsBefore: snap.overflows, full: snap.state === TableState.Untrusted });
    this.counters.entriesDeleted += before - ref.table.size;
  }

  private ack(f: ResyncDoneFrame): void {
    this.send({ type: FrameType.ResyncAck, lun: f.lun, seq: f.seq, flags: 0 });
  }

  private send(frame: Frame): void {
    if (!this.stopped) this.deps.send(encodeFrame(frame));
  }
}
