import type { VirtualClock } from '../../../host/clock/virtual.ts';
import type { MemoryDisk, MemoryDiskOptions } from '../../../host/disks/memory.ts';
import { SeededRandom } from '../../../host/random.ts';
import type { BlockDevice } from '../../../firmware/ports/block-device.ts';
import { MetadataStore, type MetadataStoreOptions, type MirrorKey, type RecoveredMetadata } from '../../../firmware/metadata/metadata-store.ts';
import { MetadataModel, Workload, memoryDisk, recoveredState, runUntilSettled } from './helpers.ts';

/**
 * The crash-consistency check of the metadata store (docs/tag-tables.md, "Metadata format",
 * "Crash safety"): writers mutate and commit against a memory disk with a volatile cache or torn
 * writes; the power is cut at a chosen virtual instant (the controller dies with it: nothing it
 * had not yet sent reaches the disk); the area is recovered. The recovered state must be exactly
 * one the writers produced at a mutation-batch boundary (group commits cut only there), no older
 * than the last commit any writer saw acknowledged. A run with no cut reports how long it took,
 * so that cuts can be swept over it.
 */
export interface CrashRunOptions {
  seed: number;
  disk: Partial<MemoryDiskOptions>;
  sectorCount: number;
  store?: MetadataStoreOptions;
  writers: number;
  /** Steps per writer: one batch of mutations, then a commit. */
  steps: number;
  /** Mutations per batch: 1 to this many. */
  batchMax: number;
  /** Virtual instant of the power cut; none: run to the end. */
  cutAtMs?: number;
  /** Start from this recovered state (a run after an earlier crash) on this disk. */
  resume?: { clock: VirtualClock; disk: MemoryDisk; recovered: RecoveredMetadata };
}

export interface CrashRunResult {
  clock: VirtualClock;
  disk: MemoryDisk;
  /** Virtual ms when the writers finished or the power was cut. */
  endedMs: number;
  cut: boolean;
  recovered: RecoveredMetadata;
  /** Null when the recovered state is allowed; else what was wrong. */
  violation: string | null;
  /** States produced, and the index of the newest acknowledged one. */
  states: number;
  acked: number;
  stats: ReturnType<MetadataStore['stats']>;
}

/** A device the controller reaches the disk through; once it is dead, nothing more gets through. */
class Fence implements BlockDevice {
  dead = false;
  constructor(private readonly d: MemoryDisk) {}
  get name() { return this.d.name; }
  get sectorSize() { return this.d.sectorSize; }
  get sectorCount() { return this.d.sectorCount; }
  read(lba: number, count: number) { return this.dead ? Promise.reject(new Error('controller is down')) : this.d.read(lba, count); }
  write(lba: number, data: Uint8Array) { return this.dead ? Promise.reject(new Error('controller is down')) : this.d.write(lba, data); }
  flush() { return this.dead ? Promise.reject(new Error('controller is down')) : this.d.flush(); }
}

const WRITER_KEYS: MirrorKey[][] = [0, 1, 2, 3, 4, 5, 6, 7].map((w) => [
  { peer: `P${w % 3}`, lun: w, role: 'source' }, { peer: `P${w % 3}`, lun: w, role: 'target' }, { peer: 'Q', lun: 100 + (w % 2), role: 'source' },
]);

export function modelFrom(r: RecoveredMetadata, entriesMax?: number): MetadataModel {
  const m = new MetadataModel(entriesMax);
  m.session = r.session;
  for (const [peer, s] of r.streams) m.setStream(peer, s);
  for (const x of r.mirrors) {
    m.setMirror(x.key, x.meta);
    for (const e of x.entries) m.addEntry(x.key, e);
  }
  // The reservation is not reported apart from tagBase; what the model needs is the same tagBase.
  m.tagsReserved = r.tagBase;
  return m;
}

export async function crashRun(o: CrashRunOptions): Promise<CrashRunResult> {
  const { clock, disk } = o.resume ?? memoryDisk({ ...o.disk, sectorCount: o.sectorCount, random: new SeededRandom(o.seed, 7) });
  const fence = new Fence(disk);
  const { store } = await runUntilSettled(clock, MetadataStore.open(fence, o.store));
  const model = o.resume ? modelFrom(o.resume.recovered, o.store?.entriesMax) : new MetadataModel(o.store?.entriesMax);
  const states = [o.resume ? recoveredState(o.resume.recovered) : model.snapshot()];
  let acked = 0;
  let cut = false;
  const random = new SeededRandom(o.seed, 11);
  const tagBase = o.resume ? o.resume.recovered.tagBase : 0;
  const writer = async (w: number): Promise<void> => {
    const work = new Workload(o.seed * 31 + w, store, model, { keys: WRITER_KEYS[w % WRITER_KEYS.length]!, firstTag: tagBase + 1 + w * 1_000_000 });
    for (let i = 0; i < o.steps && !cut; i++) {
      work.step(1 + random.int(o.batchMax));
      states.push(model.snapshot());
      const index = states.length - 1;
      try {
        await store.commit();
      } catch {
        return;
      }
      acked = Math.max(acked, index);
    }
  };
  if (o.cutAtMs !== undefined) {
    clock.setTimeout(() => {
      cut = true;
      fence.dead = true;
      disk.powerCut();
    }, o.cutAtMs);
  }
  const t0 = clock.now();
  await runUntilSettled(clock, Promise.all(Array.from({ length: o.writers }, (_, w) => writer(w))));
  const endedMs = clock.now() - t0;
  const stats = store.stats();
  const { recovered } = await runUntilSettled(clock, MetadataStore.open(disk, o.store));
  const got = recoveredState(recovered);
  const at = states.indexOf(got, acked);
  let violation: string | null = null;
  if (at === -1) {
    const older = states.lastIndexOf(got, acked);
    violation = older === -1
      ? `recovered a state no commit produced (${states.length} states, last acknowledged #${acked})`
      : `recovered state #${older}, older than the last acknowledged #${acked}`;
  }
  return { clock, disk, endedMs, cut, recovered, violation, states: states.length, acked, stats };
}
