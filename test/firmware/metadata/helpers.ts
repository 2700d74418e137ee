import { VirtualClock } from '../../../host/clock/virtual.ts';
import { MemoryDisk, type MemoryDiskOptions } from '../../../host/disks/memory.ts';
import { SeededRandom } from '../../../host/random.ts';
import type { Random } from '../../../firmware/ports/random.ts';
import type { MirrorSyncState } from '../../../firmware/telemetry/events.ts';
import type { TagEntry } from '../../../firmware/tags/tag-table.ts';
import {
  MetadataStore, type MetadataStoreOptions, type MirrorKey, type MirrorMeta, type RecoveredMetadata, type StreamMeta,
} from '../../../firmware/metadata/metadata-store.ts';
import { runUntilSettled } from '../../host/disks/helpers.ts';

export { runUntilSettled };

export function memoryDisk(opts: Partial<MemoryDiskOptions> & { sectorCount: number }): { clock: VirtualClock; disk: MemoryDisk } {
  const clock = opts.clock instanceof VirtualClock ? opts.clock : new VirtualClock();
  return { clock, disk: new MemoryDisk({ name: 'meta', ...opts, clock }) };
}

export async function openStore(clock: VirtualClock, disk: MemoryDisk, options: MetadataStoreOptions = {}) {
  return runUntilSettled(clock, MetadataStore.open(disk, options));
}

/**
 * What the metadata says, in one canonical string: the reference the tests compare recovered
 * state against. Mirrors in key order with entries in tag order, streams in peer order.
 */
export function canonical(s: { session: number; tagBase: number; streams: ReadonlyMap<string, StreamMeta>; mirrors: ReadonlyArray<{ key: MirrorKey; meta: MirrorMeta; entries: readonly TagEntry[] }> }): string {
  const mirrors = [...s.mirrors]
    .map((m) => ({
      key: `${m.key.role}:${m.key.lun}:${m.key.peer}`,
      meta: { state: m.meta.state, doneSectors: m.meta.doneSectors, overflowed: m.meta.overflowed },
      entries: [...m.entries].sort((a, b) => a.tag - b.tag).map((e) => ({ tag: e.tag, lun: e.lun, lba: e.lba, count: e.count })),
    }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const streams = [...s.streams].sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([peer, v]) => [peer, { sourceSession: v.sourceSession, targetSession: v.targetSession, confirmedSeq: v.confirmedSeq }]);
  return JSON.stringify({ session: s.session, tagBase: s.tagBase, streams, mirrors });
}

/**
 * A plain reference implementation of what the store should hold after a sequence of mutations
 * (docs/tag-tables.md, "Metadata format"): maps, no format, no device. Same rules: the entry bound
 * refuses new tags and marks the mirror overflowed; reservations round up to the block.
 */
export class MetadataModel {
  session = 0;
  tagsReserved = 0;
  readonly streams = new Map<string, StreamMeta>();
  readonly mirrors = new Map<string, { key: MirrorKey; meta: MirrorMeta; entries: Map<number, TagEntry> }>();

  constructor(readonly entriesMax = Infinity, readonly tagReservationBlock = 4096) {}

  private mirror(key: MirrorKey) {
    const k = `${key.role}:${key.lun}:${key.peer}`;
    let m = this.mirrors.get(k);
    if (!m) this.mirrors.set(k, (m = { key: { ...key }, meta: { state: 'in-sync', doneSectors: 0, overflowed: false }, entries: new Map() }));
    return m;
  }

  private get entryCount(): number {
    let n = 0;
    for (const m of this.mirrors.values()) n += m.entries.size;
    return n;
  }

  addEntry(key: MirrorKey, e: TagEntry): boolean {
    const m = this.mirror(key);
    if (!m.entries.has(e.tag) && this.entryCount >= this.entriesMax) {
      m.meta = { ...m.meta, overflowed: true };
      return false;
    }
    m.entries.set(e.tag, { ...e });
    return true;
  }

  dropEntries(key: MirrorKey, tags: Iterable<number>): void {
    const m = this.mirrors.get(`${key.role}:${key.lun}:${key.peer}`);
    if (m) for (const t of tags) m.entries.delete(t);
  }

  setMirror(key: MirrorKey, meta: MirrorMeta): void {
    this.mirror(key).meta = { ...meta };
  }

  setSession(s: number): void {
    this.session = s;
  }

  setStream(peer: string, s: StreamMeta): void {
    this.streams.set(peer, { ...s });
  }

  reserveTags(upTo: number): void {
    if (upTo > this.tagsReserved) this.tagsReserved = Math.ceil(upTo / this.tagReservationBlock) * this.tagReservationBlock;
  }

  snapshot(): string {
    let tagBase = this.tagsReserved;
    for (const m of this.mirrors.values()) if (m.key.role === 'source') for (const t of m.entries.keys()) tagBase = Math.max(tagBase, t + 1);
    return canonical({ session: this.session, tagBase, streams: this.streams, mirrors: [...this.mirrors.values()].map((m) => ({ ...m, entries: [...m.entries.values()] })) });
  }
}

export const BLANK = new MetadataModel().snapshot();

export function recoveredState(r: RecoveredMetadata): string {
  return canonical(r);
}

const KEYS: MirrorKey[] = [
  { peer: 'B', lun: 0, role: 'source' }, { peer: 'B', lun: 1, role: 'target' }, { peer: 'C', lun: 0, role: 'source' }, { peer: 'C', lun: 2, role: 'target' },
];
const STATES: MirrorSyncState[] = ['in-sync', 'needs-resync', 'resyncing', 'suspended'];

/**
 * A seeded stream of mutations applied to a store and a model alike: mostly entries added (fresh,
 * increasing tags) and dropped (tokens), sometimes a mirror state, the session, a stream or a
 * tag reservation. `step` makes one batch of `n` mutations.
 */
export class Workload {
  private nextTag: number;
  private readonly random: Random;
  private readonly keys: readonly MirrorKey[];

  constructor(seed: number, private readonly store: MetadataStore, readonly model: MetadataModel, opts: { keys?: readonly MirrorKey[]; firstTag?: number } = {}) {
    this.random = new SeededRandom(seed);
    this.keys = opts.keys ?? KEYS;
    this.nextTag = opts.firstTag ?? 1;
  }

  step(n: number): void {
    for (let i = 0; i < n; i++) this.one();
  }

  private one(): void {
    const r = this.random.int(100);
    const key = this.keys[this.random.int(this.keys.length)]!;
    if (r < 55) {
      const e: TagEntry = { tag: this.nextTag++, lun: key.lun, lba: this.random.int(1 << 20), count: 1 + this.random.int(64) };
      const a = this.store.addEntry(key, e);
      const b = this.model.addEntry(key, e);
      if (a !== b) throw new Error(`store and model disagree about adding tag ${e.tag}`);
    } else if (r < 80) {
      const m = this.model.mirrors.get(`${key.role}:${key.lun}:${key.peer}`);
      const held = m ? [...m.entries.keys()] : [];
      const tags = held.filter(() => this.random.chance(1, 4)).concat([this.nextTag + 1000]);
      this.store.dropEntries(key, tags);
      this.model.dropEntries(key, tags);
    } else if (r < 90) {
      const meta = { state: STATES[this.random.int(4)]!, doneSectors: this.random.int(1 << 30), overflowed: this.random.chance(1, 8) };
      this.store.setMirror(key, meta);
      this.model.setMirror(key, meta);
    } else if (r < 94) {
      const s = 1 + this.random.uint32() * 2 ** 21 + this.random.int(2 ** 21);
      this.store.setSession(s);
      this.model.setSession(s);
    } else if (r < 98) {
      const s = { sourceSession: this.random.uint32(), targetSession: this.random.uint32() * 1024, confirmedSeq: this.random.int(1e9) };
      this.store.setStream(key.peer, s);
      this.model.setStream(key.peer, s);
    } else {
      this.store.reserveTags(this.nextTag + 1);
      this.model.reserveTags(this.nextTag + 1);
    }
  }
}
