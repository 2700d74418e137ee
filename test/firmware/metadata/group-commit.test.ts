import { describe, expect, it } from 'vitest';
import { MetadataStore } from '../../../firmware/metadata/metadata-store.ts';
import { memoryDisk, openStore, recoveredState, runUntilSettled, MetadataModel } from './helpers.ts';

/**
 * Group commit (docs/tag-tables.md, "Metadata format", "Group commit"): the many-writer workload
 * of a source controller. Each writer stands for a host stream: it enters a write's tag, waits
 * for the commit that makes it durable (the write's local data is issued only then), and drops
 * the entry of its previous write (that write's token came back). Virtual time on a disk that
 * takes 0.1 ms per request plus 10 ns per byte, flushes included: every figure is exact.
 */
async function manyWriters(writers: number, steps: number) {
  const { clock, disk } = memoryDisk({ sectorCount: 8192, service: { fixedMs: 0.1, perByteMs: 0.00001 } });
  const { store } = await openStore(clock, disk);
  const model = new MetadataModel();
  const writer = async (w: number): Promise<void> => {
    const key = { peer: 'B', lun: w % 4, role: 'source' } as const;
    for (let i = 0; i < steps; i++) {
      const tag = 1 + w * steps + i;
      const e = { tag, lun: key.lun, lba: (w * steps + i) * 8, count: 8 };
      store.addEntry(key, e);
      model.addEntry(key, e);
      if (i > 0) {
        store.dropEntries(key, [tag - 1]);
        model.dropEntries(key, [tag - 1]);
      }
      await store.commit();
    }
  };
  const t0 = clock.now();
  await runUntilSettled(clock, Promise.all(Array.from({ length: writers }, (_, w) => writer(w))));
  const virtualMs = clock.now() - t0;
  const s = store.stats();
  const entries = writers * steps;
  const { recovered } = await runUntilSettled(clock, MetadataStore.open(disk, {}));
  expect(recoveredState(recovered)).toBe(model.snapshot());
  return { ...s, virtualMs, entriesAdded: entries, writesPerEntry: s.deviceWrites / entries, bytesPerEntry: s.bytesWritten / entries };
}

describe('group commit under many writers (docs/tag-tables.md, "Group commit")', () => {
  it('one writer: one device commit (write and flush) per entry, one sector each', async () => {
    const r = await manyWriters(1, 64);
    expect(r).toMatchObject({ commitCalls: 64, commits: 64, deviceWrites: 64, flushes: 64, checkpoints: 1, records: 63 });
    expect(r.bytesWritten).toBe(64 * 512);
    expect(r.virtualMs).toBeCloseTo(64 * (0.1 + 512 * 0.00001 + 0.1), 9);
  });

  it('64 writers: commits batch behind the one on the device, so device writes and bytes per entry fall by an order of magnitude', async () => {
    const r = await manyWriters(64, 16);
    expect(r).toMatchObject({ commitCalls: 1024, entriesAdded: 1024, commits: 32, deviceWrites: 32, flushes: 32, checkpoints: 1, records: 31 });
    expect(r.bytesWritten).toBe(48_640);
    expect(r.writesPerEntry).toBe(0.03125);
    expect(r.bytesPerEntry).toBe(47.5);
    // Sixteen times the entries of the one-writer run in about half its virtual time.
    expect(r.virtualMs).toBeCloseTo(6.8864, 9);
  });
});
