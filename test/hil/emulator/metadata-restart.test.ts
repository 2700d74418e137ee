import { describe, expect, it } from 'vitest';
import type { StorageController } from '../../../firmware/controller/storage-controller.ts';
import { buildTopology, type TopologyOptions } from '../../../hil/emulator/topology.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { expectMirrorsEqual, linksUp, RecordingTelemetry, settle } from '../../support/harness.ts';

/**
 * A controller restarting on its metadata device (docs/tag-tables.md, "Metadata", "Tag tables"):
 * it recovers its tables (still trusted, so the resync after the restart is exact), its tag
 * reservation (no tag of an earlier start is used again), and a crash with a power cut strikes
 * the metadata device like the volumes.
 */
const LIMITS = { heartbeatMs: 5, interruptionMs: 20, probationMs: 40 };

function rig(opts: Partial<TopologyOptions> = {}) {
  const tel = new RecordingTelemetry();
  const topo = buildTopology({ volumeSectors: 8192, lockRegionSectors: 64, telemetry: tel, mode: 'speculative', limits: LIMITS, ...opts });
  topo.start();
  return { topo, tel };
}

/** `n` writes to `c`, numbered by the controller (no host tag), `depth` at a time; resolves when all are done or `untilMs` passes. */
function writeSome(c: () => StorageController, n: number, depth: number): { done: () => number } {
  let issued = 0;
  let done = 0;
  const lane = (): void => {
    if (issued >= n) return;
    const i = issued++;
    c().submitWrite(0, (i * 8) % 4096, new Uint8Array(4096).fill((i % 250) + 1), () => {
      done++;
      lane();
    });
  };
  for (let q = 0; q < depth; q++) lane();
  return { done: () => done };
}

describe('a restart on the metadata device', () => {
  it('the target crashes with writes it never applied: its table comes back from its metadata, trusted, and the resync copies no more than those', async () => {
    const { topo, tel } = rig();
    await linksUp(topo);
    // B holds a region under a local lock: the writes to it are accepted by A and never applied by B.
    const hold = await topo.target.localLock(0, 1024, 64, 'write');
    for (const [i, lba] of [1024, 1032, 1048].entries()) topo.source.submitWrite(0, lba, new Uint8Array(4096).fill(i + 1), () => undefined, 100 + i);
    await topo.clock.run({ untilMs: topo.clock.now() + 20 });
    expect(topo.source.tablesOf('B', 0, 'source')!.table.size).toBe(3);
    // The crash takes the local lock with it (it was in B's memory).
    void hold;
    topo.crash('B', 30);
    await topo.clock.run({ untilMs: topo.clock.now() + 400 });
    await settle(topo);
    const recovered = tel.of('metadata.recovered').filter((e) => e.node === 'B');
    expect(recovered.map((e) => e.blank)).toEqual([true, false]);
    const starts = tel.of('resync.start');
    expect(starts).toHaveLength(1);
    // Not a full copy: both tables were trusted, the restarted target's recovered from its metadata.
    // The stream re-sends the three writes too (a new stream after the restart), so some may be
    // matched by the time the tables are compared; never more than their 24 sectors are copied.
    expect(starts[0]).toMatchObject({ node: 'A', full: false });
    expect(starts[0]!.sectors).toBeGreaterThan(0);
    expect(starts[0]!.sectors).toBeLessThanOrEqual(24);
    for (const [lba, count] of starts[0]!.ranges) expect(lba >= 1024 && lba + count <= 1056, `range [${lba}, +${count})`).toBe(true);
    expect(topo.target.tablesOf('A', 0, 'target')!.trusted).toBe(true);
    await expectMirrorsEqual(topo);
  });

  it('without a metadata device the same restart loses the tables: a full copy', async () => {
    const { topo, tel } = rig({ metadataVolume: null });
    await linksUp(topo);
    writeSome(() => topo.source, 50, 4);
    await topo.clock.run({ untilMs: topo.clock.now() + 5 });
    topo.crash('B', 30);
    await topo.clock.run({ untilMs: topo.clock.now() + 400 });
    await settle(topo);
    expect(tel.of('metadata.recovered')).toEqual([]);
    expect(tel.of('resync.start').map((e) => e.full)).toEqual([true]);
    await expectMirrorsEqual(topo);
  });

  it('tags are never used again: a restart on its metadata numbers above every tag before; one without numbers from its own block', async () => {
    for (const metadataVolume of [undefined, null] as const) {
      const { topo, tel } = rig(metadataVolume === null ? { metadataVolume } : {});
      await linksUp(topo);
      const first = writeSome(() => topo.source, 40, 4);
      await topo.clock.run({ until: () => first.done() === 40 });
      const before = tel.of('host.write').filter((e) => e.node === 'A').map((e) => e.tag);
      topo.crash('A', 20);
      await topo.clock.run({ untilMs: topo.clock.now() + 30 });
      const second = writeSome(() => topo.source, 40, 4);
      await topo.clock.run({ until: () => second.done() === 40, untilMs: topo.clock.now() + 5_000 });
      const after = tel.of('host.write').filter((e) => e.node === 'A').map((e) => e.tag).slice(before.length);
      expect(after).toHaveLength(40);
      const old = new Set(before);
      expect(after.filter((t) => old.has(t)), `metadata ${metadataVolume === null ? 'off' : 'on'}`).toEqual([]);
      if (metadataVolume === undefined) expect(Math.min(...after)).toBeGreaterThan(Math.max(...before));
      await settle(topo);
      await expectMirrorsEqual(topo);
    }
  });

  it('a crash with a power cut drops the volatile cache of every device of the side, its metadata device included', async () => {
    const cached = (name: string, clock: Parameters<NonNullable<TopologyOptions['makeVolume']>>[1], random: Parameters<NonNullable<TopologyOptions['makeVolume']>>[2]) =>
      new MemoryDisk({ name, sectorCount: 8192, clock, random: random.fork(name), writeCacheBytesMax: 1 << 20, service: { fixedMs: 0.02 } });
    const { topo, tel } = rig({ makeVolume: cached, metadataVolume: (name, clock, random) => cached(`${name}/metadata`, clock, random) });
    await linksUp(topo);
    const meta = topo.metadata.A as MemoryDisk;
    const volume = topo.pairs[0]!.primaryVolume as MemoryDisk;
    // Something unflushed on each of A's devices (the same bytes written back: nothing changes but the cache).
    for (const dev of [meta, volume]) {
      void dev.write(4000, dev.peek(4000, 1));
      await topo.clock.advance(1);
      expect(dev.unflushedBytes, dev.name).toBeGreaterThan(0);
    }
    const other = topo.metadata.B as MemoryDisk;
    void other.write(4000, other.peek(4000, 1));
    await topo.clock.advance(1);
    topo.crash('A', 20, undefined, { power: true });
    expect([meta.unflushedBytes, volume.unflushedBytes]).toEqual([0, 0]);
    expect(other.unflushedBytes, 'the other side keeps its cache').toBeGreaterThan(0);
    expect(tel.of('controller.crash')).toEqual([expect.objectContaining({ node: 'A', power: true, downForMs: 20 })]);
    await topo.clock.run({ untilMs: topo.clock.now() + 300 });
    await settle(topo);
    expect(tel.of('metadata.recovered').filter((e) => e.node === 'A').map((e) => e.blank)).toEqual([true, false]);
    await expectMirrorsEqual(topo);
  });
});
