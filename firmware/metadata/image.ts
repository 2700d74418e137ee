import type { TagEntry } from '../tags/tag-table.ts';
import { OP_BYTES, type MetadataOp, type MirrorKey, type MirrorMeta, type StreamMeta } from './format.ts';

/** One mirror (peer, LUN, role) as the image holds it: its id in the format, its state, its tag-table entries. */
export interface MirrorImage {
  readonly id: number;
  readonly key: MirrorKey;
  meta: MirrorMeta;
  readonly entries: Map<number, TagEntry>;
}

export const DEFAULT_META: MirrorMeta = { state: 'in-sync', doneSectors: 0, overflowed: false };

/** The bytes a checkpoint body always holds: the session and tag-reservation ops. */
export const SNAPSHOT_FIXED_BYTES = OP_BYTES.session + OP_BYTES.tags;

export function keyText(k: MirrorKey): string {
  return `${k.role}:${k.lun}:${k.peer}`;
}

/** Undo steps of a record being replayed, run backwards if the record turns out impossible. */
export type Undo = (() => void)[];

/**
 * Everything the metadata holds, in memory (docs/tag-tables.md, "Metadata format"): what the last
 * checkpoint plus the log after it rebuild, and what the store mutates. It knows how big a
 * checkpoint of itself is at every moment (`snapshotBytes`), so the store can keep that within a
 * checkpoint slot. Mirror ids are dense, in the order mirrors were first named, and never reused.
 */
export class MetadataImage {
  session = 0;
  tagsReserved = 0;
  readonly streams = new Map<string, StreamMeta>();
  readonly mirrors: MirrorImage[] = [];
  private readonly byKey = new Map<string, MirrorImage>();
  entryCount = 0;
  /** Bytes of the ops a checkpoint of this image holds (the body, without its header). */
  snapshotBytes = SNAPSHOT_FIXED_BYTES;

  find(key: MirrorKey): MirrorImage | undefined {
    return this.byKey.get(keyText(key));
  }

  define(key: MirrorKey): MirrorImage {
    const m: MirrorImage = { id: this.mirrors.length, key: { peer: key.peer, lun: key.lun, role: key.role }, meta: DEFAULT_META, entries: new Map() };
    this.mirrors.push(m);
    this.byKey.set(keyText(key), m);
    this.snapshotBytes += OP_BYTES.mirror + key.peer.length + OP_BYTES.meta;
    return m;
  }

  setEntry(m: MirrorImage, e: TagEntry): void {
    if (!m.entries.has(e.tag)) {
      this.entryCount++;
      this.snapshotBytes += OP_BYTES.entry;
    }
    m.entries.set(e.tag, { tag: e.tag, lun: e.lun, lba: e.lba, count: e.count });
  }

  deleteEntry(m: MirrorImage, tag: number): void {
    if (!m.entries.delete(tag)) return;
    this.entryCount--;
    this.snapshotBytes -= OP_BYTES.entry;
  }

  setStream(peer: string, s: StreamMeta): void {
    if (!this.streams.has(peer)) this.snapshotBytes += OP_BYTES.stream + peer.length;
    this.streams.set(peer, { sourceSession: s.sourceSession, targetSession: s.targetSession, confirmedSeq: s.confirmedSeq });
  }

  /** The ops that rebuild this image from nothing: a checkpoint's body. */
  snapshotOps(): MetadataOp[] {
    const ops: MetadataOp[] = [{ op: 'session', session: this.session }, { op: 'tags', upTo: this.tagsReserved }];
    for (const [peer, stream] of this.streams) ops.push({ op: 'stream', peer, stream });
    for (const m of this.mirrors) {
      ops.push({ op: 'mirror', id: m.id, key: m.key }, { op: 'meta', id: m.id, meta: m.meta });
      for (const entry of m.entries.values()) ops.push({ op: 'entry', id: m.id, entry });
    }
    return ops;
  }

  /**
   * Applies one replayed op, pushing how to take it back onto `undo`; false when the op cannot be
   * (it names a mirror id never defined, redefines an id or a key differently, lowers the tag
   * reservation): the caller then undoes the whole record or refuses the whole checkpoint.
   */
  apply(o: MetadataOp, undo: Undo): boolean {
    switch (o.op) {
      case 'mirror': return this.applyMirror(o.id, o.key, undo);
      case 'session': {
        const before = this.session;
        this.session = o.session;
        undo.push(() => (this.session = before));
        return true;
      }
      case 'tags': {
        if (o.upTo < this.tagsReserved) return false;
        const before = this.tagsReserved;
        this.tagsReserved = o.upTo;
        undo.push(() => (this.tagsReserved = before));
        return true;
      }
      case 'stream': {
        const before = this.streams.get(o.peer);
        this.setStream(o.peer, o.stream);
        undo.push(() => {
          if (before !== undefined) this.streams.set(o.peer, before);
          else {
            this.streams.delete(o.peer);
            this.snapshotBytes -= OP_BYTES.stream + o.peer.length;
          }
        });
        return true;
      }
      default: return this.applyToMirror(o, undo);
    }
  }

  private applyMirror(id: number, key: MirrorKey, undo: Undo): boolean {
    const held = this.mirrors[id];
    if (held !== undefined) return keyText(held.key) === keyText(key);
    if (id !== this.mirrors.length || this.find(key) !== undefined) return false;
    this.define(key);
    undo.push(() => {
      this.mirrors.pop();
      this.byKey.delete(keyText(key));
      this.snapshotBytes -= OP_BYTES.mirror + key.peer.length + OP_BYTES.meta;
    });
    return true;
  }

  private applyToMirror(o: Extract<MetadataOp, { op: 'entry' | 'drop' | 'meta' }>, undo: Undo): boolean {
    const m = this.mirrors[o.id];
    if (m === undefined) return false;
    if (o.op === 'meta') {
      const before = m.meta;
      m.meta = o.meta;
      undo.push(() => (m.meta = before));
      return true;
    }
    const tag = o.op === 'entry' ? o.entry.tag : o.tag;
    const before = m.entries.get(tag);
    if (o.op === 'entry') this.setEntry(m, o.entry);
    else this.deleteEntry(m, tag);
    undo.push(() => {
      if (before !== undefined) this.setEntry(m, before);
      else this.deleteEntry(m, tag);
    });
    return true;
  }
}
