import { assert } from '../errors.ts';
import type { BlockDevice } from '../ports/block-device.ts';
import type { TagEntry } from '../tags/tag-table.ts';
import {
  HEADER_BYTES, OP_BYTES, checkEntry, checkKey, checkMeta, checkU64, encodeCheckpoint, encodeRecord, isStorablePeerName, recordBytes,
  type MetadataOp, type MirrorKey, type MirrorMeta, type StreamMeta,
} from './format.ts';
import { MetadataImage, type MirrorImage } from './image.ts';
import { MetadataLimitError, planLayout, type MetadataLayout, type MetadataStoreOptions } from './layout.ts';
import { AreaReader, type ResumePoint } from './recovery.ts';

export type { MirrorKey, MirrorMeta, StreamMeta } from './format.ts';
export { MetadataAreaError, MetadataLimitError, type MetadataStoreOptions } from './layout.ts';

/** Device writes of a checkpoint are at most this big (bytes); the pieces go out together. */
export const WRITE_CHUNK_BYTES = 1024 * 1024;

export interface RecoveredMetadata {
  /** The area held no metadata that checks out: a new device (or one whose metadata is destroyed: then `discarded` > 0). */
  blank: boolean;
  /** The previous start's session (0 if blank). */
  session: number;
  /** Every tag at or above this was never used by a previous start: above the persisted reservation and every source entry's tag. */
  tagBase: number;
  streams: ReadonlyMap<string, StreamMeta>;
  mirrors: ReadonlyArray<{ key: MirrorKey; meta: MirrorMeta; entries: readonly TagEntry[] }>;
  /** Log records replayed after the checkpoint. */
  records: number;
  /** Bytes found and not trusted (torn or garbage checkpoints, the record that ended the log). */
  discarded: number;
}

export interface MetadataStats {
  /** commit() calls. */
  commitCalls: number;
  /** Device commits that completed: each one write (two when a record wraps the ring, more for a large checkpoint) and one flush. */
  commits: number;
  /** Device commits whose write or flush failed (their callers got the device's error). */
  commitsFailed: number;
  deviceWrites: number;
  flushes: number;
  bytesWritten: number;
  /** Log records written. */
  records: number;
  checkpoints: number;
  /** Tag-table entries held now. */
  entries: number;
  /** Bytes of log written since the newest durable checkpoint. */
  logBytes: number;
  /** Entry adds refused at the bound (each marked its mirror overflowed). */
  entriesRefused: number;
}

interface Waiters {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

function waiters(): Waiters {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** One device commit: a record at `pos`, or a checkpoint into `slot`. */
type CommitPlan =
  | { kind: 'record'; bytes: Uint8Array; pos: number }
  | { kind: 'checkpoint'; bytes: Uint8Array; slot: 0 | 1; logStart: number };

/** What changed since the last cut: which fields to write, and each touched entry as it was at that cut. */
class Changes {
  session = false;
  tags = false;
  readonly streams = new Set<string>();
  readonly mirrors: number[] = [];
  readonly metas = new Set<number>();
  readonly entries = new Map<number, Map<number, TagEntry | null>>();

  get any(): boolean {
    return this.session || this.tags || this.streams.size > 0 || this.mirrors.length > 0 || this.metas.size > 0 || this.entries.size > 0;
  }

  touch(id: number, tag: number, before: TagEntry | undefined): void {
    let m = this.entries.get(id);
    if (m === undefined) this.entries.set(id, (m = new Map()));
    if (!m.has(tag)) m.set(tag, before ?? null);
  }

  /** The ops that take the image as of the last cut to `image` now: new mirrors first, so the entries naming them follow. */
  ops(image: MetadataImage): MetadataOp[] {
    const ops: MetadataOp[] = this.mirrors.map((id) => ({ op: 'mirror', id, key: image.mirrors[id]!.key }));
    for (const id of this.metas) ops.push({ op: 'meta', id, meta: image.mirrors[id]!.meta });
    if (this.session) ops.push({ op: 'session', session: image.session });
    if (this.tags) ops.push({ op: 'tags', upTo: image.tagsReserved });
    for (const peer of this.streams) ops.push({ op: 'stream', peer, stream: image.streams.get(peer)! });
    for (const [id, tags] of this.entries) {
      const m = image.mirrors[id]!;
      for (const [tag, before] of tags) {
        const now = m.entries.get(tag);
        if (now !== undefined && !(before !== null && sameEntry(before, now))) ops.push({ op: 'entry', id, entry: now });
        else if (now === undefined && before !== null) ops.push({ op: 'drop', id, tag });
      }
    }
    return ops;
  }
}

function sameEntry(a: TagEntry, b: TagEntry): boolean {
  return a.tag === b.tag && a.lun === b.lun && a.lba === b.lba && a.count === b.count;
}

/**
 * A controller's persistent metadata (docs/tag-tables.md, "Metadata format"): tag-table entries
 * per mirror and role, each mirror's sync state, the session, per-peer stream state and the tag
 * reservation, on a `BlockDevice` with a volatile write cache and torn writes.
 *
 * Mutations change the in-memory image at once and become durable together at the next commit.
 * Commits are grouped without timers: one device commit (write, then flush) at a time; commits
 * asked for meanwhile wait for it and then share the next one, which takes everything mutated up
 * to the moment it starts. Each device commit is a single log record (all of its changes or none
 * survive a crash), or a full checkpoint when the record would overrun the log ring, after a
 * failed commit, and first after every open.
 *
 * Bounds: at most `entriesMax` entries, `mirrorsMax` mirrors and `streamsMax` streams. An entry
 * beyond the bound is not stored: {@link addEntry} returns false and marks the mirror overflowed
 * in its persisted meta (the next resync of that mirror is full), so nothing is lost silently. A
 * new mirror or stream beyond its bound throws {@link MetadataLimitError}.
 */
export class MetadataStore {
  private readonly changes = new Changes();
  private inFlight: Waiters | null = null;
  private next: Waiters | null = null;
  private pos: number;
  private seq: number;
  private generation: number;
  private durableSlot: 0 | 1 | null;
  /** Log position of the first record after the newest durable checkpoint. */
  private logStart: number;
  private needsCheckpoint = true;
  /** A device commit failed and no checkpoint has succeeded since: the image holds changes that may not be durable. */
  private unsynced = false;
  private readonly counters = { commitCalls: 0, commits: 0, commitsFailed: 0, deviceWrites: 0, flushes: 0, bytesWritten: 0, records: 0, checkpoints: 0, entriesRefused: 0 };

  private constructor(
    private readonly dev: BlockDevice,
    readonly layout: MetadataLayout,
    private readonly image: MetadataImage,
    resume: ResumePoint,
  ) {
    this.pos = resume.pos;
    this.seq = resume.seq;
    this.generation = resume.generation;
    this.durableSlot = resume.durableSlot;
    this.logStart = resume.pos;
  }

  /**
   * Reads and checks the area; a blank (or unreadable as metadata) area gives a blank result.
   * Throws {@link MetadataAreaError} when the options do not fit the device, and the device's own
   * errors when it cannot be read; never because of what the area holds.
   */
  static async open(device: BlockDevice, options: MetadataStoreOptions = {}): Promise<{ store: MetadataStore; recovered: RecoveredMetadata }> {
    const layout = planLayout(device, options);
    const r = await new AreaReader(device, layout).recover();
    const store = new MetadataStore(device, layout, r.image, r.resume);
    return { store, recovered: store.describe(r.blank, r.records, r.discarded) };
  }

  /**
   * A store on a device its caller knows has never held anything (a memory disk just made, all
   * zeros), without reading it: what {@link open} would find there, a blank area, at once. For
   * building a controller synchronously on a new device (the simulator's first start); every
   * later start reads what is there with {@link open}.
   */
  static fresh(device: BlockDevice, options: MetadataStoreOptions = {}): { store: MetadataStore; recovered: RecoveredMetadata } {
    const layout = planLayout(device, options);
    const store = new MetadataStore(device, layout, new MetadataImage(), { pos: 0, seq: 1, generation: 1, durableSlot: null });
    return { store, recovered: store.describe(true, 0, 0) };
  }

  // ---- mutations -------------------------------------------------------------------------------

  /**
   * Adds (or replaces, by tag) an entry of `key`'s table. False when the store holds `entriesMax`
   * entries already: the entry is not stored, and the mirror's meta is marked overflowed (durable
   * at the next commit), so its next resync copies everything.
   */
  addEntry(key: MirrorKey, e: TagEntry): boolean {
    checkKey(key);
    checkEntry(e);
    const m = this.mirror(key);
    const before = m.entries.get(e.tag);
    if (before === undefined && (this.image.entryCount >= this.layout.entriesMax || !this.fits(OP_BYTES.entry))) {
      this.counters.entriesRefused++;
      if (!m.meta.overflowed) this.setMeta(m, { ...m.meta, overflowed: true });
      return false;
    }
    this.changes.touch(m.id, e.tag, before);
    this.image.setEntry(m, e);
    return true;
  }

  /** Deletes entries of `key`'s table by tag; tags (and mirrors) it does not hold are ignored. */
  dropEntries(key: MirrorKey, tags: Iterable<number>): void {
    const m = this.image.find(key);
    if (m === undefined) return;
    for (const tag of tags) {
      const before = m.entries.get(tag);
      if (before === undefined) continue;
      this.changes.touch(m.id, tag, before);
      this.image.deleteEntry(m, tag);
    }
  }

  setMirror(key: MirrorKey, meta: MirrorMeta): void {
    checkKey(key);
    checkMeta(meta);
    this.setMeta(this.mirror(key), meta);
  }

  setSession(session: number): void {
    checkU64(session, 'session');
    if (session === this.image.session) return;
    this.image.session = session;
    this.changes.session = true;
  }

  setStream(peer: string, s: StreamMeta): void {
    assert(isStorablePeerName(peer), `metadata: peer name ${JSON.stringify(peer)} is not 1 to 64 printable ASCII characters`);
    checkU64(s.sourceSession, 'sourceSession');
    checkU64(s.targetSession, 'targetSession');
    checkU64(s.confirmedSeq, 'confirmedSeq');
    if (!this.image.streams.has(peer)) {
      if (this.image.streams.size >= this.layout.streamsMax || !this.fits(OP_BYTES.stream + peer.length)) {
        throw new MetadataLimitError(`metadata: no room for the stream state of peer "${peer}": the store holds ${this.image.streams.size}, at most ${this.layout.streamsMax} (streamsMax)`);
      }
    }
    this.image.setStream(peer, s);
    this.changes.streams.add(peer);
  }

  /**
   * Tags below `upTo` may be used by this start. Persists a reservation rounded up to a multiple
   * of `tagReservationBlock`, so that most calls change nothing and a later start's `tagBase` is
   * above every tag this one may use; durable at the next commit, which the caller awaits before a
   * tag above the previous reservation leaves the controller.
   */
  reserveTags(upTo: number): void {
    checkU64(upTo, 'tag reservation');
    if (upTo <= this.image.tagsReserved) return;
    const block = this.layout.tagReservationBlock;
    this.image.tagsReserved = Math.min(Math.ceil(upTo / block) * block, Number.MAX_SAFE_INTEGER);
    this.changes.tags = true;
  }

  /** The tags below which are reserved, durable or not. */
  get tagsReserved(): number {
    return this.image.tagsReserved;
  }

  // ---- commits ---------------------------------------------------------------------------------

  /**
   * Group commit: resolves once everything mutated before the call is durable (written and
   * flushed). Concurrent callers share one device commit; a commit asked for while one is on the
   * device waits for it and then takes everything mutated since. Rejects with the device's error
   * if the device commit failed; the next commit then writes a full checkpoint, so nothing that
   * failed is left half in the log.
   */
  commit(): Promise<void> {
    this.counters.commitCalls++;
    if (!this.changes.any && !this.unsynced) return this.inFlight?.promise ?? Promise.resolve();
    if (this.inFlight !== null) return (this.next ??= waiters()).promise;
    const w = waiters();
    this.start(w);
    return w.promise;
  }

  /** Where the next record goes: its absolute log position and sequence number (for status and tests). */
  get logEnd(): { pos: number; seq: number } {
    return { pos: this.pos, seq: this.seq };
  }

  stats(): MetadataStats {
    return { ...this.counters, entries: this.image.entryCount, logBytes: this.pos - this.logStart };
  }

  private start(w: Waiters): void {
    this.inFlight = w;
    const plan = this.cut();
    const done = (error?: unknown): void => {
      if (error === undefined) w.resolve();
      else w.reject(error);
      this.inFlight = null;
      const next = this.next;
      this.next = null;
      if (next !== null) this.start(next);
    };
    if (plan === null) done();
    else this.run(plan).then(() => done(), (error: unknown) => done(error ?? new Error('metadata: device commit failed')));
  }

  /**
   * Takes every change since the last cut into one plan: a record if it fits in the ring after
   * the live log, else (or when a checkpoint is due) a checkpoint of the whole image.
   */
  private cut(): CommitPlan | null {
    const ops = this.changes.ops(this.image);
    this.changes.session = this.changes.tags = false;
    this.changes.streams.clear();
    this.changes.mirrors.length = 0;
    this.changes.metas.clear();
    this.changes.entries.clear();
    if (ops.length === 0 && !this.needsCheckpoint) return null;
    const size = recordBytes(ops, this.layout.sectorSize);
    if (!this.needsCheckpoint && this.pos + size - this.logStart <= this.layout.ringBytes) {
      const plan: CommitPlan = { kind: 'record', bytes: encodeRecord(this.seq, this.pos, ops, this.layout.sectorSize), pos: this.pos };
      this.seq++;
      this.pos += size;
      return plan;
    }
    return this.checkpointPlan();
  }

  /**
   * A checkpoint of the whole image. It takes a sequence number of its own, so its log starts one
   * past where the log before it would have gone on: recovery falling back to the older checkpoint
   * (the newer one damaged after the fact) stops where that older log ended, and never runs on into
   * records that are deltas from the newer checkpoint.
   */
  private checkpointPlan(): CommitPlan {
    const { layout } = this;
    const slot = this.checkpointSlot();
    this.seq++;
    const bytes = encodeCheckpoint(
      { generation: this.generation++, logStart: this.pos, logSeq: this.seq, slotSectors: layout.slotSectors, ringSectors: layout.ringSectors, sectorSize: layout.sectorSize },
      this.image.snapshotOps(),
    );
    assert(bytes.length <= layout.slotBytes, `metadata: a checkpoint of ${bytes.length} bytes outgrew its ${layout.slotBytes}-byte slot`);
    return { kind: 'checkpoint', bytes, slot, logStart: this.pos };
  }

  /** The slot that does not hold the newest durable checkpoint: overwriting it never loses the state recovery falls back to. */
  private checkpointSlot(): 0 | 1 {
    return this.durableSlot === 0 ? 1 : 0;
  }

  private async run(plan: CommitPlan): Promise<void> {
    try {
      await Promise.all(this.pieces(plan).map(([lba, data]) => {
        this.counters.deviceWrites++;
        this.counters.bytesWritten += data.length;
        return this.dev.write(lba, data);
      }));
      await this.flushDevice();
    } catch (error) {
      this.counters.commitsFailed++;
      this.needsCheckpoint = true;
      this.unsynced = true;
      throw error;
    }
    this.counters.commits++;
    if (plan.kind === 'record') {
      this.counters.records++;
      return;
    }
    this.counters.checkpoints++;
    this.durableSlot = plan.slot;
    this.logStart = plan.logStart;
    this.needsCheckpoint = false;
    this.unsynced = false;
  }

  private async flushDevice(): Promise<void> {
    this.counters.flushes++;
    await this.dev.flush();
  }

  /** The device writes of a plan: a record split where it wraps the ring, a checkpoint in pieces of at most {@link WRITE_CHUNK_BYTES}. */
  private pieces(plan: CommitPlan): [lba: number, data: Uint8Array][] {
    const { sectorSize: ss, ringBytes, ringLba, slotLba } = this.layout;
    if (plan.kind === 'record') {
      const at = plan.pos % ringBytes;
      const first = Math.min(plan.bytes.length, ringBytes - at);
      const out: [number, Uint8Array][] = [[ringLba + at / ss, plan.bytes.subarray(0, first)]];
      if (first < plan.bytes.length) out.push([ringLba, plan.bytes.subarray(first)]);
      return out;
    }
    const out: [number, Uint8Array][] = [];
    for (let at = 0; at < plan.bytes.length; at += WRITE_CHUNK_BYTES) {
      out.push([slotLba[plan.slot] + at / ss, plan.bytes.subarray(at, Math.min(plan.bytes.length, at + WRITE_CHUNK_BYTES))]);
    }
    return out;
  }

  // ---- internals -------------------------------------------------------------------------------

  /** The image's mirror for `key`, defined (and its definition logged) if new. */
  private mirror(key: MirrorKey): MirrorImage {
    const held = this.image.find(key);
    if (held !== undefined) return held;
    const cost = OP_BYTES.mirror + key.peer.length + OP_BYTES.meta;
    if (this.image.mirrors.length >= this.layout.mirrorsMax || !this.fits(cost)) {
      throw new MetadataLimitError(`metadata: no room for mirror ${key.role} ${key.peer} LUN ${key.lun}: the store holds ${this.image.mirrors.length}, at most ${this.layout.mirrorsMax} (mirrorsMax)`);
    }
    const m = this.image.define(key);
    this.changes.mirrors.push(m.id);
    this.changes.metas.add(m.id);
    return m;
  }

  private setMeta(m: MirrorImage, meta: MirrorMeta): void {
    m.meta = { state: meta.state, doneSectors: meta.doneSectors, overflowed: meta.overflowed };
    this.changes.metas.add(m.id);
  }

  /** Whether `bytes` more of snapshot still fit a checkpoint slot (the bounds guarantee it; this guards images recovered under other bounds). */
  private fits(bytes: number): boolean {
    return HEADER_BYTES + this.image.snapshotBytes + bytes <= this.layout.slotBytes;
  }

  private describe(blank: boolean, records: number, discarded: number): RecoveredMetadata {
    let tagBase = this.image.tagsReserved;
    const mirrors = this.image.mirrors.map((m) => {
      const entries = [...m.entries.values()];
      if (m.key.role === 'source') for (const e of entries) tagBase = Math.max(tagBase, e.tag + 1);
      return { key: { ...m.key }, meta: { ...m.meta }, entries };
    });
    const streams = new Map([...this.image.streams].map(([peer, s]) => [peer, { ...s }]));
    return { blank, session: this.image.session, tagBase, streams, mirrors, records, discarded };
  }
}
