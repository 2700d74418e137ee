import { describe, expect, it } from 'vitest';
import type { BlockDevice } from '../../../firmware/ports/block-device.ts';
import { mergeRanges, rangeSectors } from '../../../firmware/tags/tag-table.ts';
import type { SectorRange, TelemetryEvent } from '../../../firmware/telemetry/events.ts';
import type { MemoryDisk } from '../../../host/disks/memory.ts';
import { buildTopology, type Topology, type TopologyOptions } from '../../../hil/emulator/topology.ts';
import {
  expectMirrorsEqual, linksUp, pattern, RecordingTelemetry, runConcurrentWrites, sequentialWrites, settle, type WriteSpec,
} from '../../support/harness.ts';
import { withPlantedBugs } from '../../support/planted-bugs.ts';

/**
 * Tag-table resync on the simulated pair (docs/tag-tables.md, "Resync"): a partition long enough to
 * suspend the mirror leaves known blocks different, and the resync after it copies exactly those,
 * measured against the volumes themselves at the instant it starts, with the controllers' own
 * tables and tokens.
 */

/** Short supervision and suspension, so a partition and its aftermath take tens of virtual ms. */
const LIMITS = { heartbeatMs: 5, interruptionMs: 20, probationMs: 40, suspendAfterMs: 30 };
/** Writes during the partition, some overlapping or adjacent: 46 sectors in 4 ranges once merged. */
const CUT: WriteSpec[] = [
  { lba: 1024, sectors: 8 }, { lba: 1040, sectors: 16 }, { lba: 1100, sectors: 8 }, { lba: 1104, sectors: 8 }, { lba: 1044, sectors: 4 }, { lba: 1270, sectors: 10 },
];
const CUT_RANGES: SectorRange[] = [[1024, 8], [1040, 16], [1100, 12], [1270, 10]];
/** The partition lasts this long: past the interruption and the suspension. */
const CUT_MS = 100;

function rig(opts: Partial<TopologyOptions> = {}) {
  const tel = new RecordingTelemetry();
  const observers: ((e: TelemetryEvent) => void)[] = [];
  const telemetry = {
    enabled: true,
    emit: (e: TelemetryEvent) => {
      tel.emit(e);
      for (const o of observers) o(e);
    },
  };
  const topo = buildTopology({ volumeSectors: 8192, lockRegionSectors: 64, telemetry, mode: 'async', ...opts, limits: { ...LIMITS, ...opts.limits } });
  topo.start();
  return { topo, tel, observers };
}

/** The sectors where two memory volumes differ right now, merged. */
function divergent(a: BlockDevice, b: BlockDevice): SectorRange[] {
  const ss = a.sectorSize;
  const x = (a as MemoryDisk).peek(0, a.sectorCount);
  const y = (b as MemoryDisk).peek(0, b.sectorCount);
  const sectors: { lba: number; count: number }[] = [];
  for (let s = 0; s < a.sectorCount; s++) {
    for (let i = s * ss; i < (s + 1) * ss; i++) {
      if (x[i] === y[i]) continue;
      sectors.push({ lba: s, count: 1 });
      break;
    }
  }
  return mergeRanges(sectors);
}

/** Both sides' tables of the mirror of `lun` (its source first). */
function tables(topo: Topology, lun: number) {
  const pair = topo.pairs.find((p) => p.lun === lun)!;
  const [src, dst] = [pair.primary, pair.secondary];
  return { source: src.tablesOf(dst.name, lun, 'source')!, target: dst.tablesOf(src.name, lun, 'target')! };
}

/** Writes outside the cut's ranges, all confirmed and their tokens back: every table empty again. */
async function firstPhase(topo: Topology, bidirectional = false): Promise<void> {
  await linksUp(topo);
  const jobs = [{ controller: topo.source, lun: 0, specs: sequentialWrites(16, 8, 2048) }];
  if (bidirectional) jobs.push({ controller: topo.target, lun: 1, specs: sequentialWrites(16, 8, 4096) });
  await runConcurrentWrites(topo, jobs, 4);
  await settle(topo);
  // Tokens travel back on heartbeats: a few heartbeat intervals, and the targets' tables are empty too.
  await topo.clock.run({ untilMs: topo.clock.now() + 50 });
  for (const lun of bidirectional ? [0, 1] : [0]) {
    const t = tables(topo, lun);
    expect([t.source.table.size, t.target.table.size], `LUN ${lun}: both tables empty before the cut`).toEqual([0, 0]);
  }
}

/** The link goes black for CUT_MS while hosts write `CUT` (async: acknowledged by the log, then locally once suspended). */
async function cut(topo: Topology, writers: { controller: Topology['source']; lun: number }[]): Promise<void> {
  topo.link.blackhole('both', true);
  for (const { controller, lun } of writers) {
    CUT.forEach((w, i) => controller.submitWrite(lun, w.lba, pattern(100 + i + lun * 1000, w.sectors * 512), () => {}));
  }
  topo.clock.setTimeout(() => topo.link.blackhole('both', false), CUT_MS);
}

/** Once the divergence is measured at `resync.start` of `node`, run `then`. */
function atResyncStart(observers: ((e: TelemetryEvent) => void)[], topo: Topology, node: string, then: () => void = () => {}): { ranges: SectorRange[] | null } {
  const seen: { ranges: SectorRange[] | null } = { ranges: null };
  observers.push((e) => {
    if (e.kind !== 'resync.start' || e.node !== node || seen.ranges !== null) return;
    const pair = topo.pairs.find((p) => p.lun === e.lun)!;
    seen.ranges = divergent(pair.primaryVolume, pair.secondaryVolume);
    topo.clock.setTimeout(then, 0);
  });
  return seen;
}

function expectTablesEmpty(topo: Topology, lun: number): void {
  const t = tables(topo, lun);
  expect([t.source.table.size, t.target.table.size], `LUN ${lun}: source and target tables after the resync`).toEqual([0, 0]);
  expect([t.source.trusted, t.target.trusted]).toEqual([true, true]);
}

/** A partition that suspends the mirror of LUN 0 while its host writes CUT; runs until everything settled. */
async function partition(opts: Partial<TopologyOptions> = {}, atStart?: (topo: Topology) => void) {
  const r = rig(opts);
  const { topo, observers } = r;
  await firstPhase(topo);
  const seen = atResyncStart(observers, topo, 'A', () => atStart?.(topo));
  await cut(topo, [{ controller: topo.source, lun: 0 }]);
  await topo.clock.run({ untilMs: topo.clock.now() + CUT_MS + 300 });
  await settle(topo);
  return { ...r, seen };
}

describe('tag-table resync: exactly the blocks that differ', () => {
  it('after a partition that suspended the mirror, it copies the blocks the cut left different, measured at its start, no more', async () => {
    const { topo, tel, seen } = await partition();
    expect(tel.of('mirror.state').filter((e) => e.node === 'A').map((e) => e.state)).toEqual(['suspended', 'needs-resync', 'resyncing', 'in-sync']);
    expect(tel.of('resync.start')).toEqual([expect.objectContaining({
      node: 'A', lun: 0, resync: 1, full: false, entriesCompared: CUT.length, entriesMatched: 0, ranges: CUT_RANGES, sectors: 46,
    })]);
    expect(seen.ranges, 'the blocks that differed when the resync began').toEqual(CUT_RANGES);
    expect(tel.of('resync.chunk').reduce((n, c) => n + c.count, 0)).toBe(rangeSectors(seen.ranges!));
    expect(tel.of('resync.done')).toEqual([expect.objectContaining({ node: 'A', resync: 1, sectorsCopied: 46, virtualMs: 2.2648639999999887 })]);
    await expectMirrorsEqual(topo);
    expectTablesEmpty(topo, 0);
    expect(topo.source.status()[0]!.mirrors[0]!.resync).toMatchObject({ runs: 1, fullRuns: 0, sectorsCopied: 46, entriesCompared: 6, entriesMatched: 0, aborts: 0 });
  });

  it('the checks above fail on a resync that leaves out a range (planted bug)', async () => {
    const { topo, tel, seen } = await withPlantedBugs(['resync-skips-a-range'], () => partition());
    expect(tel.of('resync.chunk').reduce((n, c) => n + c.count, 0)).toBe(36);
    expect(rangeSectors(seen.ranges!)).toBe(46);
    await expect(expectMirrorsEqual(topo)).rejects.toThrow(/first differing sector .*: expected 1270 to be -1/);
  });

  it('a target that lies about its table size is not believed: the resync copies everything, and the mirrors end equal (planted bug)', async () => {
    const { topo, tel } = await withPlantedBugs(['responder-lies-about-table-size'], () => partition());
    expect(tel.of('resync.start')).toEqual([expect.objectContaining({ node: 'A', full: true, ranges: [[0, 8192]], sectors: 8192 })]);
    expect(topo.source.status()[0]!.mirrors[0]!.lastRefusal).toBe('the target sent no entries from 0 of the 1 it counts');
    await expectMirrorsEqual(topo);
    expectTablesEmpty(topo, 0);
  });

  /**
   * The moment the resync starts, a host rewrites every range it copies, the first while its chunk
   * is being read (one chunk at a time): without the fence that write would reach the stream first
   * and the chunk's older data would land on top of it.
   */
  async function writesDuringResync() {
    let acked = 0;
    // Without metadata devices the host's writes go to the stream at once, not after their entries'
    // commit: they meet the chunk being read exactly as the fence must handle.
    const r = await partition({ metadataVolume: null, limits: { resyncChunkBytes: 8 * 512, resyncChunksInFlightMax: 1 } }, (topo) => {
      CUT_RANGES.forEach(([lba, count], i) => topo.source.submitWrite(0, lba, pattern(5000 + i, count * 512), () => acked++));
    });
    const start = r.tel.of('resync.start')[0]!;
    const done = r.tel.of('resync.done')[0]!;
    expect(r.tel.of('host.write').filter((w) => w.node === 'A' && w.t >= start.t && w.t < done.t)).toHaveLength(4);
    expect(acked).toBe(4);
    return r;
  }

  it('a host writes to the very blocks being copied while the resync runs: no copy overwrites the newer write', async () => {
    const { topo } = await writesDuringResync();
    await expectMirrorsEqual(topo);
    expectTablesEmpty(topo, 0);
  });

  it('without the fence a copy lands on top of the newer write (planted bug)', async () => {
    const { topo } = await withPlantedBugs(['resync-skips-fence'], writesDuringResync);
    await expect(expectMirrorsEqual(topo)).rejects.toThrow(/first differing sector .*: expected 1024 to be -1/);
  });

  it('an interrupted resync leaves the tables as they were, and the next link-up compares again and finishes', async () => {
    // Chunks of 8 sectors, one at a time: the copy takes several round trips.
    const { topo, tel, observers } = rig({ limits: { resyncChunkBytes: 8 * 512, resyncChunksInFlightMax: 1 } });
    await firstPhase(topo);
    // The second chunk confirmed, the link goes black again, long enough to suspend the mirror once more.
    observers.push((e) => {
      if (e.kind !== 'resync.chunk' || e.resync !== 1 || tel.of('resync.chunk').length !== 2) return;
      topo.link.blackhole('both', true);
      topo.clock.setTimeout(() => topo.link.blackhole('both', false), CUT_MS);
    });
    await cut(topo, [{ controller: topo.source, lun: 0 }]);
    await topo.clock.run({ untilMs: topo.clock.now() + 2 * CUT_MS + 400 });
    await settle(topo);
    expect(tel.of('resync.abort')).toEqual([expect.objectContaining({ node: 'A', lun: 0, resync: 1, reason: 'the link went down' })]);
    expect(tel.of('resync.start').map((s) => [s.resync, s.full, s.ranges])).toEqual([[1, false, CUT_RANGES], [2, false, CUT_RANGES]]);
    expect(tel.of('resync.done')).toEqual([expect.objectContaining({ resync: 2, sectorsCopied: 46 })]);
    expect(tel.of('mirror.state').filter((e) => e.node === 'A').map((e) => e.state)).toEqual([
      'suspended', 'needs-resync', 'resyncing', 'needs-resync', 'suspended', 'needs-resync', 'resyncing', 'in-sync',
    ]);
    await expectMirrorsEqual(topo);
    expectTablesEmpty(topo, 0);
  });

  it('both directions: each controller resyncs the mirror it sources, each exactly', async () => {
    const { topo, tel, observers } = rig({ bidirectional: true });
    await firstPhase(topo, true);
    const seenA = atResyncStart(observers, topo, 'A');
    const seenB = atResyncStart(observers, topo, 'B');
    await cut(topo, [{ controller: topo.source, lun: 0 }, { controller: topo.target, lun: 1 }]);
    await topo.clock.run({ untilMs: topo.clock.now() + CUT_MS + 300 });
    await settle(topo);
    const starts = tel.of('resync.start');
    expect(starts.map((s) => [s.node, s.lun, s.full, s.ranges, s.entriesCompared, s.entriesMatched]).sort()).toEqual([
      ['A', 0, false, CUT_RANGES, 6, 0], ['B', 1, false, CUT_RANGES, 6, 0],
    ]);
    expect([seenA.ranges, seenB.ranges]).toEqual([CUT_RANGES, CUT_RANGES]);
    expect(tel.of('resync.done').map((d) => [d.node, d.sectorsCopied]).sort()).toEqual([['A', 46], ['B', 46]]);
    await expectMirrorsEqual(topo);
    expectTablesEmpty(topo, 0);
    expectTablesEmpty(topo, 1);
  });

  it('a restart without metadata loses the tables: the resync is a full copy, and ends with the tables trusted again', async () => {
    const { topo, tel } = rig({ metadataVolume: null });
    await firstPhase(topo);
    topo.crash('B', 30);
    await topo.clock.run({ untilMs: topo.clock.now() + 300 });
    await settle(topo);
    expect(tel.of('resync.start')).toEqual([expect.objectContaining({ node: 'A', full: true, ranges: [[0, 8192]] })]);
    expect(topo.source.status()[0]!.mirrors[0]!.resync).toMatchObject({ runs: 1, fullRuns: 1, tablesUntrusted: 1 });
    await expectMirrorsEqual(topo);
    expectTablesEmpty(topo, 0);
  });
});
