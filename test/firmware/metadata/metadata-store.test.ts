import { describe, expect, it } from 'vitest';
import { MetadataStore } from '../../../firmware/metadata/metadata-store.ts';
import { BLANK, MetadataModel, Workload, memoryDisk, openStore, recoveredState, runUntilSettled } from './helpers.ts';

const SRC = { peer: 'B', lun: 0, role: 'source' } as const;
const TGT = { peer: 'B', lun: 0, role: 'target' } as const;

describe('MetadataStore round trips (docs/tag-tables.md, "Metadata format")', () => {
  it('a blank device recovers blank, with nothing written by opening it', async () => {
    const { clock, disk } = memoryDisk({ sectorCount: 2048 });
    const { store, recovered } = await openStore(clock, disk);
    expect(recovered).toMatchObject({ blank: true, session: 0, tagBase: 0, records: 0, discarded: 0 });
    expect(recovered.mirrors).toEqual([]);
    expect(recoveredState(recovered)).toBe(BLANK);
    expect(store.stats()).toMatchObject({ commits: 0, deviceWrites: 0, bytesWritten: 0 });
    expect(disk.allocatedBytes).toBe(0);
  });

  it('everything set before a commit comes back on the next open: session, streams, mirror states, entries, the tag reservation', async () => {
    const { clock, disk } = memoryDisk({ sectorCount: 2048 });
    const { store } = await openStore(clock, disk);
    store.setSession(2 ** 52 + 7);
    store.setStream('B', { sourceSession: 11, targetSession: 2 ** 53 - 1, confirmedSeq: 99 });
    store.setMirror(SRC, { state: 'resyncing', doneSectors: 4096, overflowed: false });
    expect(store.addEntry(SRC, { tag: 5, lun: 0, lba: 100, count: 8 })).toBe(true);
    expect(store.addEntry(SRC, { tag: 6, lun: 0, lba: 200, count: 1 })).toBe(true);
    expect(store.addEntry(TGT, { tag: 900_000, lun: 0, lba: 7, count: 3 })).toBe(true);
    store.reserveTags(10);
    await runUntilSettled(clock, store.commit());
    store.dropEntries(SRC, [5, 12345]);
    store.addEntry(SRC, { tag: 6, lun: 0, lba: 300, count: 2 }); // replaces tag 6
    await runUntilSettled(clock, store.commit());

    const { recovered } = await openStore(clock, disk);
    expect(recovered.blank).toBe(false);
    expect(recovered.session).toBe(2 ** 52 + 7);
    expect(recovered.tagBase).toBe(4096); // the reservation, rounded up to its block
    expect(recovered.streams.get('B')).toEqual({ sourceSession: 11, targetSession: 2 ** 53 - 1, confirmedSeq: 99 });
    const src = recovered.mirrors.find((m) => m.key.role === 'source')!;
    expect(src.meta).toEqual({ state: 'resyncing', doneSectors: 4096, overflowed: false });
    expect(src.entries).toEqual([{ tag: 6, lun: 0, lba: 300, count: 2 }]);
    const tgt = recovered.mirrors.find((m) => m.key.role === 'target')!;
    expect(tgt.meta).toEqual({ state: 'in-sync', doneSectors: 0, overflowed: false });
    expect(tgt.entries).toEqual([{ tag: 900_000, lun: 0, lba: 7, count: 3 }]);
    // The first commit after an open is a checkpoint; the second a record after it.
    expect(recovered.records).toBe(1);
    expect(recovered.discarded).toBe(0);
  });

  it('tagBase is above every tag of a source table even past the reservation; target tables hold the peer\'s tags and do not count', async () => {
    const { clock, disk } = memoryDisk({ sectorCount: 2048 });
    const { store } = await openStore(clock, disk);
    store.addEntry(SRC, { tag: 10_000, lun: 0, lba: 0, count: 1 });
    store.addEntry(TGT, { tag: 50_000, lun: 0, lba: 0, count: 1 });
    await runUntilSettled(clock, store.commit());
    const { recovered } = await openStore(clock, disk);
    expect(recovered.tagBase).toBe(10_001);
  });

  it('a seeded workload of many commits, reopened after each of several, always recovers exactly what was committed', async () => {
    for (const seed of [1, 2, 3]) {
      const { clock, disk } = memoryDisk({ sectorCount: 512, service: { fixedMs: 0.05 } });
      let { store } = await openStore(clock, disk, { areaSectors: 512 });
      const model = new MetadataModel();
      for (let round = 0; round < 4; round++) {
        const w = new Workload(seed * 100 + round, store, model);
        for (let i = 0; i < 40; i++) {
          w.step(1 + (i % 7));
          await runUntilSettled(clock, store.commit());
        }
        const reopened = await openStore(clock, disk, { areaSectors: 512 });
        expect(recoveredState(reopened.recovered)).toBe(model.snapshot());
        expect(reopened.recovered.discarded).toBe(0);
        store = reopened.store;
      }
    }
  });

  it('a commit with nothing changed writes nothing; one asked while another is on the device with nothing new shares it', async () => {
    const { clock, disk } = memoryDisk({ sectorCount: 2048, service: { fixedMs: 1 } });
    const { store } = await openStore(clock, disk);
    await runUntilSettled(clock, store.commit());
    expect(store.stats().deviceWrites).toBe(0);
    store.setSession(1);
    const a = store.commit();
    const b = store.commit(); // nothing mutated since a: a's commit covers it
    await runUntilSettled(clock, Promise.all([a, b]));
    expect(store.stats()).toMatchObject({ commitCalls: 3, commits: 1, flushes: 1 });
  });

  it('refuses an area that does not fit: typed errors saying what is needed', async () => {
    const { clock, disk } = memoryDisk({ sectorCount: 64 });
    const small = await runUntilSettled(clock, MetadataStore.open(disk, { entriesMax: 10_000 })).catch((e: unknown) => e);
    expect(small).toMatchObject({ code: 'ML_ERR_METADATA_AREA' });
    expect((small as Error).message).toMatch(/too small for 10000 entries, 64 mirrors and 16 streams: .* need \d+ sectors/);
    const outside = await runUntilSettled(clock, MetadataStore.open(disk, { areaFirstLba: 32, areaSectors: 64 })).catch((e: unknown) => e);
    expect(outside).toMatchObject({ code: 'ML_ERR_METADATA_AREA', message: expect.stringMatching(/does not lie within the device's 64 sectors/) });
  });
});
