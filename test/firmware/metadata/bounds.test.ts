import { describe, expect, it } from 'vitest';
import { MediaError, type BlockDevice } from '../../../firmware/ports/block-device.ts';
import { MetadataStore, MetadataLimitError } from '../../../firmware/metadata/metadata-store.ts';
import { areaSectorsMin, planLayout } from '../../../firmware/metadata/layout.ts';
import { MetadataModel, Workload, memoryDisk, openStore, recoveredState, runUntilSettled } from './helpers.ts';

const key = (n: number, role: 'source' | 'target' = 'source') => ({ peer: 'B', lun: n, role });

describe('bounds (docs/tag-tables.md, "Metadata format", "Bounds")', () => {
  it('the capacity of an area: 4 MiB holds 57,994 entries with 64 mirrors and 16 streams, whatever the sector size', () => {
    for (const sectorSize of [512, 4096]) {
      const l = planLayout({ name: 'd', sectorSize, sectorCount: (4 << 20) / sectorSize }, {});
      expect(l).toMatchObject({ entriesMax: 57_994, mirrorsMax: 64, streamsMax: 16, slotBytes: 1_572_864, ringBytes: 1_048_576 });
    }
    expect(planLayout({ name: 'd', sectorSize: 512, sectorCount: 2048 }, {}).entriesMax).toBe(14_303);
  });

  it('the smallest area for given bounds opens; one sector less is refused, saying how much is needed', () => {
    const bounds = { entriesMax: 1000, mirrorsMax: 8, streamsMax: 2 };
    const need = areaSectorsMin(bounds, 512);
    expect(() => planLayout({ name: 'd', sectorSize: 512, sectorCount: need }, bounds)).not.toThrow();
    expect(() => planLayout({ name: 'd', sectorSize: 512, sectorCount: need - 1 }, bounds)).toThrow(new RegExp(`need ${need} sectors`));
  });

  it('refuses options that make no sense, naming the option and what is allowed', () => {
    const dev = { name: 'd', sectorSize: 512, sectorCount: 4096 };
    expect(() => planLayout(dev, { entriesMax: 0 })).toThrow(/entriesMax is 0; allowed: an integer from 1 to 1048576/);
    expect(() => planLayout(dev, { ringSectors: 3 })).toThrow(/ringSectors is 3; allowed: 8 or more/);
    expect(() => planLayout(dev, { areaFirstLba: -1 })).toThrow(/area start -1 is not a sector of the device/);
    expect(() => planLayout(dev, { mirrorsMax: 1.5 })).toThrow(/mirrorsMax is 1.5/);
  });

  it('an entry past entriesMax is refused (false), its mirror marked overflowed durably; replacing a held tag still works', async () => {
    const { clock, disk } = memoryDisk({ sectorCount: 512 });
    const { store } = await openStore(clock, disk, { entriesMax: 3 });
    for (let t = 1; t <= 3; t++) expect(store.addEntry(key(0), { tag: t, lun: 0, lba: t, count: 1 })).toBe(true);
    expect(store.addEntry(key(1), { tag: 4, lun: 1, lba: 0, count: 1 })).toBe(false);
    expect(store.addEntry(key(0), { tag: 2, lun: 0, lba: 99, count: 1 })).toBe(true);
    await runUntilSettled(clock, store.commit());
    expect(store.stats()).toMatchObject({ entries: 3, entriesRefused: 1 });
    const { recovered, store: again } = await openStore(clock, disk, { entriesMax: 3 });
    const m1 = recovered.mirrors.find((m) => m.key.lun === 1)!;
    expect(m1).toMatchObject({ meta: { overflowed: true }, entries: [] });
    expect(recovered.mirrors.find((m) => m.key.lun === 0)!.meta.overflowed).toBe(false);
    again.dropEntries(key(0), [1]);
    expect(again.addEntry(key(1), { tag: 5, lun: 1, lba: 0, count: 1 })).toBe(true);
  });

  it('a mirror or a stream past its bound throws a typed error; nothing is half-added', async () => {
    const { clock, disk } = memoryDisk({ sectorCount: 512 });
    const { store } = await openStore(clock, disk, { mirrorsMax: 2, streamsMax: 1 });
    store.setMirror(key(0), { state: 'in-sync', doneSectors: 0, overflowed: false });
    store.addEntry(key(0, 'target'), { tag: 1, lun: 0, lba: 0, count: 1 });
    expect(() => store.setMirror(key(1), { state: 'in-sync', doneSectors: 0, overflowed: false })).toThrow(MetadataLimitError);
    expect(() => store.addEntry(key(2), { tag: 2, lun: 2, lba: 0, count: 1 })).toThrow(/at most 2 \(mirrorsMax\)/);
    store.setStream('B', { sourceSession: 1, targetSession: 2, confirmedSeq: 3 });
    expect(() => store.setStream('C', { sourceSession: 1, targetSession: 2, confirmedSeq: 3 })).toThrow(/at most 1 \(streamsMax\)/);
    await runUntilSettled(clock, store.commit());
    const { recovered } = await openStore(clock, disk, { mirrorsMax: 2, streamsMax: 1 });
    expect(recovered.mirrors).toHaveLength(2);
    expect([...recovered.streams.keys()]).toEqual(['B']);
  });

  it('a store full to every bound, with the longest names, checkpoints into its slot and recovers exactly', async () => {
    const bounds = { entriesMax: 500, mirrorsMax: 6, streamsMax: 3 };
    const sectors = areaSectorsMin(bounds, 512);
    const { clock, disk } = memoryDisk({ sectorCount: sectors });
    const { store } = await openStore(clock, disk, bounds);
    const model = new MetadataModel(500);
    const peers = ['x'.repeat(64), 'y'.repeat(64), 'z'.repeat(64)];
    peers.forEach((p, i) => {
      store.setStream(p, { sourceSession: 2 ** 53 - 1, targetSession: i, confirmedSeq: 2 ** 40 });
      model.setStream(p, { sourceSession: 2 ** 53 - 1, targetSession: i, confirmedSeq: 2 ** 40 });
    });
    for (let i = 0; i < 510; i++) {
      const k = { peer: peers[i % 3]!, lun: i % 2, role: 'source' as const };
      const e = { tag: i, lun: i % 2, lba: 2 ** 52, count: 2 ** 32 - 1 };
      expect(store.addEntry(k, e)).toBe(model.addEntry(k, e));
    }
    await runUntilSettled(clock, store.commit());
    expect(store.stats()).toMatchObject({ checkpoints: 1, entries: 500, entriesRefused: 10 });
    expect(recoveredState((await openStore(clock, disk, bounds)).recovered)).toBe(model.snapshot());
  });
});

/** A device whose writes fail while `failing` (after landing, if `land`): a media error, as a dying disk gives. */
class Flaky implements BlockDevice {
  failing = false;
  land = false;
  constructor(private readonly d: BlockDevice) {}
  get name() { return this.d.name; }
  get sectorSize() { return this.d.sectorSize; }
  get sectorCount() { return this.d.sectorCount; }
  read(lba: number, count: number) { return this.d.read(lba, count); }
  async write(lba: number, data: Uint8Array) {
    if (!this.failing) return this.d.write(lba, data);
    if (this.land) await this.d.write(lba, data);
    throw new MediaError(this.d.name, lba, 'write failed');
  }
  flush() { return this.d.flush(); }
}

describe('a failed device commit', () => {
  for (const land of [false, true]) {
    it(`rejects its callers with the device's error; the next commit is a checkpoint and makes everything durable (the failed write ${land ? 'landed' : 'did not land'})`, async () => {
      const { clock, disk } = memoryDisk({ sectorCount: 512 });
      const flaky = new Flaky(disk);
      const s = await runUntilSettled(clock, MetadataStore.open(flaky, {}));
      const model = new MetadataModel();
      const w = new Workload(3, s.store, model);
      for (let i = 0; i < 5; i++) {
        w.step(3);
        await runUntilSettled(clock, s.store.commit());
      }
      flaky.failing = true;
      flaky.land = land;
      w.step(3);
      const failed = await runUntilSettled(clock, s.store.commit()).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(MediaError);
      flaky.failing = false;
      const checkpoints = s.store.stats().checkpoints;
      await runUntilSettled(clock, s.store.commit()); // nothing new mutated: still written, since the last commit failed
      expect(s.store.stats()).toMatchObject({ checkpoints: checkpoints + 1, commitsFailed: 1 });
      w.step(3);
      await runUntilSettled(clock, s.store.commit());
      expect(recoveredState((await openStore(clock, disk)).recovered)).toBe(model.snapshot());
    });
  }
});
