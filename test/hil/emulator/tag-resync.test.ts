import { describe, expect, it } from 'vitest';
import type { LocalLockHandle } from '../../../firmware/controller/storage-controller.ts';
import type { BlockDevice } from '../../../firmware/ports/block-device.ts';
import { mergeRanges, rangeSectors } from '../../../firmware/tags/tag-table.ts';
import type { SectorRange, TelemetryEvent } from '../../../firmware/telemetry/events.ts';
import type { MemoryDisk } from '../../../host/disks/memory.ts';
import { buildTopology, type Topology, type TopologyOptions } from '../../../hil/emulator/topology.ts';
import {
  expectMirrorsEqual, linksUp, pattern, RecordingTelemetry, runConcurrentWrites, runWrites, sequentialWrites, settle, type WriteSpec,
} from '../../support/harness.ts';
import { withPlantedBugs } from '../../support/planted-bugs.ts';
import { TagBook } from '../../support/tag-book.ts';

/**
 * Tag-table resync on the simulated pair (docs/tag-tables.md, "Resync"): a restart leaves known
 * blocks different, and the resync copies exactly those, measured against the volumes themselves
 * at the instant it starts. The tables come from a bookkeeper fed by telemetry (test/support/tag-book.ts).
 */

/** Short link supervision, so a restart and its probation take tens of virtual ms. */
const LIMITS = { heartbeatMs: 5, interruptionMs: 20, probationMs: 40 };
/** The region the second phase writes, held by a local lock on its copy so that none of it arrives. */
const R = { lba: 1024, sectors: 256 };
/** Writes inside R, some overlapping or adjacent: 46 sectors in 4 ranges once merged. */
const SECOND: WriteSpec[] = [
  { lba: 1024, sectors: 8 }, { lba: 1040, sectors: 16 }, { lba: 1100, sectors: 8 }, { lba: 1104, sectors: 8 }, { lba: 1044, sectors: 4 }, { lba: 1270, sectors: 10 },
];
const SECOND_RANGES: SectorRange[] = [[1024, 8], [1040, 16], [1100, 12], [1270, 10]];

function rig(opts: Partial<TopologyOptions> = {}) {
  const tel = new RecordingTelemetry();
  const book = new TagBook(opts.bidirectional ? { A: { 0: 'B' }, B: { 1: 'A' } } : { A: { 0: 'B' }, B: {} });
  const observers: ((e: TelemetryEvent) => void)[] = [];
  const telemetry = {
    enabled: true,
    emit: (e: TelemetryEvent) => {
      book.emit(e);
      tel.emit(e);
      for (const o of observers) o(e);
    },
  };
  const topo = buildTopology({
    volumeSectors: 8192, lockRegionSectors: 64, telemetry, mode: 'async', tagTables: (n) => book.tablesOf(n), ...opts, limits: { ...LIMITS, ...opts.limits },
  });
  topo.start();
  return { topo, tel, book, observers };
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

/** The first phase: writes outside R, all confirmed, so that every table is empty again. */
async function firstPhase(topo: Topology, book: TagBook, bidirectional = false): Promise<void> {
  await linksUp(topo);
  const jobs = [{ controller: topo.source, lun: 0, specs: sequentialWrites(16, 8, 2048) }];
  if (bidirectional) jobs.push({ controller: topo.target, lun: 1, specs: sequentialWrites(16, 8, 4096) });
  await runConcurrentWrites(topo, jobs, 4);
  await settle(topo);
  expect(book.ref('A', 'B', 0, 'source').table.size).toBe(0);
  expect(book.ref('B', 'A', 0, 'target').table.size).toBe(0);
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

function expectTablesEmpty(book: TagBook, lun: number, source: 'A' | 'B', target: 'A' | 'B'): void {
  expect(book.ref(source, target, lun, 'source').table.size, `${source}'s table of LUN ${lun}`).toBe(0);
  expect(book.ref(target, source, lun, 'target').table.size, `${target}'s table of LUN ${lun}`).toBe(0);
}

describe('tag-table resync: exactly the blocks that differ', () => {
  /**
   * The second phase's writes reach A's volume and never B's (B holds R); then A crashes. B drops
   * the old stream when it sees A's new session, and only then lets go of R.
   */
  async function sourceRestart() {
    const r = rig();
    const { topo, book, observers } = r;
    await firstPhase(topo, book);
    const hold = await topo.target.localLock(0, R.lba, R.sectors, 'write');
    await runWrites(topo, topo.source, 0, SECOND, 2);
    expect(book.ref('A', 'B', 0, 'source').table.size).toBe(SECOND.length);
    const crashAt = topo.clock.now();
    observers.push((e) => {
      if (e.kind === 'stream.start' && e.node === 'B' && e.role === 'target' && e.t > crashAt) topo.clock.setTimeout(() => hold.release(), 0);
    });
    const seen = atResyncStart(observers, topo, 'A');
    topo.crash('A', 30);
    await topo.clock.run({ untilMs: topo.clock.now() + 300 });
    await settle(topo);
    return { ...r, seen };
  }

  it('the source restarts: it copies the blocks its unconfirmed writes left different, measured at the start, no more', async () => {
    const { topo, tel, book, seen } = await sourceRestart();
    const starts = tel.of('resync.start');
    expect(starts).toEqual([expect.objectContaining({
      node: 'A', lun: 0, resync: 1, full: false, entriesCompared: SECOND.length, entriesMatched: 0, ranges: SECOND_RANGES, sectors: 46,
    })]);
    expect(seen.ranges, 'the blocks that differed when the resync began').toEqual(SECOND_RANGES);
    const copied = tel.of('resync.chunk').reduce((n, c) => n + c.count, 0);
    expect(copied).toBe(rangeSectors(seen.ranges!));
    expect(tel.of('resync.done')).toEqual([expect.objectContaining({ node: 'A', resync: 1, sectorsCopied: 46, virtualMs: 2.2648639999999887 })]);
    await expectMirrorsEqual(topo);
    expectTablesEmpty(book, 0, 'A', 'B');
    expect(topo.source.status()[0]!.mirrors[0]!.resync).toMatchObject({ runs: 1, fullRuns: 0, sectorsCopied: 46, entriesCompared: 6, entriesMatched: 0, aborts: 0 });
  });

  it('the checks above fail on a resync that leaves out a range (planted bug)', async () => {
    const { topo, tel, seen } = await withPlantedBugs(['resync-skips-a-range'], sourceRestart);
    const copied = tel.of('resync.chunk').reduce((n, c) => n + c.count, 0);
    expect(copied).toBe(36);
    expect(rangeSectors(seen.ranges!)).toBe(46);
    await expect(expectMirrorsEqual(topo)).rejects.toThrow(/first differing sector .*: expected 1270 to be -1/);
  });

  it('a target that lies about its table size is not believed: the resync copies everything, and the mirrors end equal (planted bug)', async () => {
    const { topo, tel } = await withPlantedBugs(['responder-lies-about-table-size'], sourceRestart);
    expect(tel.of('resync.start')).toEqual([expect.objectContaining({ node: 'A', full: true, ranges: [[0, 8192]], sectors: 8192 })]);
    expect(topo.source.status()[0]!.mirrors[0]!.lastRefusal).toBe('the target sent no entries from 0 of the 1 it counts');
    await expectMirrorsEqual(topo);
  });

  /**
   * The moment the resync starts, a host rewrites every range it copies, the first while its chunk
   * is being read: without the fence that write would reach the stream first and the chunk's older
   * data would land on top of it. Tags of its own: the restarted controller numbers from 1 again.
   */
  async function writesDuringResync() {
    // One chunk at a time: when the resync starts, its first chunk is being read, and nothing else.
    const { topo, tel, book, observers } = rig({ limits: { resyncChunkBytes: 8 * 512, resyncChunksInFlightMax: 1 } });
    await firstPhase(topo, book);
    const hold = await topo.target.localLock(0, R.lba, R.sectors, 'write');
    await runWrites(topo, topo.source, 0, SECOND, 2);
    const crashAt = topo.clock.now();
    observers.push((e) => {
      if (e.kind === 'stream.start' && e.node === 'B' && e.role === 'target' && e.t > crashAt) topo.clock.setTimeout(() => hold.release(), 0);
    });
    let acked = 0;
    atResyncStart(observers, topo, 'A', () => SECOND_RANGES.forEach(([lba, count], i) => {
      topo.source.submitWrite(0, lba, pattern(5000 + i, count * 512), () => acked++, 10_000 + i);
    }));
    topo.crash('A', 30);
    await topo.clock.run({ untilMs: topo.clock.now() + 300 });
    await settle(topo);
    const start = tel.of('resync.start')[0]!;
    const done = tel.of('resync.done')[0]!;
    expect(tel.of('host.write').filter((w) => w.node === 'A' && w.t >= start.t && w.t < done.t)).toHaveLength(4);
    expect(acked).toBe(4);
    return { topo, book };
  }

  it('a host writes to the very blocks being copied while the resync runs: no copy overwrites the newer write', async () => {
    const { topo, book } = await writesDuringResync();
    await expectMirrorsEqual(topo);
    expectTablesEmpty(book, 0, 'A', 'B');
  });

  it('without the fence a copy lands on top of the newer write (planted bug)', async () => {
    const { topo } = await withPlantedBugs(['resync-skips-fence'], writesDuringResync);
    await expect(expectMirrorsEqual(topo)).rejects.toThrow(/first differing sector .*: expected 1024 to be -1/);
  });

  it('the target restarts: the resync copies what it never applied (measured at the start), beside the stream that re-sends it', async () => {
    const { topo, tel, book, observers } = rig();
    await firstPhase(topo, book);
    await topo.target.localLock(0, R.lba, R.sectors, 'write');
    await runWrites(topo, topo.source, 0, SECOND, 2);
    // The restarted B holds R again at once, so that the re-sent stream cannot change it before the resync measures.
    let again: Promise<LocalLockHandle> | null = null;
    const seen = atResyncStart(observers, topo, 'A', () => void again!.then((h) => h.release()));
    topo.crash('B', 30, (b) => (again = b.localLock(0, R.lba, R.sectors, 'write')));
    await topo.clock.run({ untilMs: topo.clock.now() + 300 });
    await settle(topo);
    const [start, ...more] = tel.of('resync.start');
    expect(more).toEqual([]);
    expect(start).toMatchObject({ node: 'A', full: false, entriesCompared: SECOND.length, entriesMatched: 0, ranges: SECOND_RANGES, sectors: 46 });
    expect(seen.ranges).toEqual(SECOND_RANGES);
    expect(tel.of('resync.done')).toEqual([expect.objectContaining({ sectorsCopied: 46, virtualMs: 2.741184000000004 })]);
    await expectMirrorsEqual(topo);
    expectTablesEmpty(book, 0, 'A', 'B');
  });

  it('an interrupted resync leaves the tables as they were, and the next link-up compares again and finishes', async () => {
    // Chunks of 8 sectors, one at a time: the copy takes several round trips.
    const { topo, tel, book, observers } = rig({ limits: { resyncChunkBytes: 8 * 512, resyncChunksInFlightMax: 1 } });
    await firstPhase(topo, book);
    const hold = await topo.target.localLock(0, R.lba, R.sectors, 'write');
    await runWrites(topo, topo.source, 0, SECOND, 2);
    const crashAt = topo.clock.now();
    observers.push((e) => {
      if (e.kind === 'stream.start' && e.node === 'B' && e.role === 'target' && e.t > crashAt) topo.clock.setTimeout(() => hold.release(), 0);
    });
    // The second chunk confirmed, the link goes black for a while.
    observers.push((e) => {
      if (e.kind !== 'resync.chunk' || e.resync !== 1 || tel.of('resync.chunk').length !== 2) return;
      topo.link.blackhole('both', true);
      topo.clock.setTimeout(() => topo.link.blackhole('both', false), 60);
    });
    topo.crash('A', 30);
    await topo.clock.run({ untilMs: topo.clock.now() + 600 });
    await settle(topo);
    expect(tel.of('resync.abort')).toEqual([expect.objectContaining({ node: 'A', lun: 0, resync: 1, reason: 'the link went down' })]);
    const starts = tel.of('resync.start');
    expect(starts.map((s) => [s.resync, s.full, s.ranges])).toEqual([[1, false, SECOND_RANGES], [2, false, SECOND_RANGES]]);
    expect(tel.of('resync.done')).toEqual([expect.objectContaining({ resync: 2, sectorsCopied: 46 })]);
    expect(tel.of('mirror.state').filter((e) => e.node === 'A').map((e) => e.state)).toEqual(['needs-resync', 'resyncing', 'needs-resync', 'resyncing', 'in-sync']);
    await expectMirrorsEqual(topo);
    expectTablesEmpty(book, 0, 'A', 'B');
  });

  it('both directions: each controller resyncs the mirror it sources, each exactly', async () => {
    const { topo, tel, book, observers } = rig({ bidirectional: true });
    await firstPhase(topo, book, true);
    const holdB = await topo.target.localLock(0, R.lba, R.sectors, 'write');
    await topo.source.localLock(1, R.lba, R.sectors, 'write');
    await runConcurrentWrites(topo, [{ controller: topo.source, lun: 0, specs: SECOND }, { controller: topo.target, lun: 1, specs: SECOND }], 2);
    const crashAt = topo.clock.now();
    observers.push((e) => {
      if (e.kind === 'stream.start' && e.node === 'B' && e.role === 'target' && e.t > crashAt) topo.clock.setTimeout(() => holdB.release(), 0);
    });
    let againA: Promise<LocalLockHandle> | null = null;
    const seenA = atResyncStart(observers, topo, 'A');
    const seenB = atResyncStart(observers, topo, 'B', () => void againA!.then((h) => h.release()));
    topo.crash('A', 30, (a) => (againA = a.localLock(1, R.lba, R.sectors, 'write')));
    await topo.clock.run({ untilMs: topo.clock.now() + 300 });
    await settle(topo);
    const starts = tel.of('resync.start');
    expect(starts.map((s) => [s.node, s.lun, s.full, s.ranges])).toEqual(expect.arrayContaining([['A', 0, false, SECOND_RANGES], ['B', 1, false, SECOND_RANGES]]));
    expect(starts).toHaveLength(2);
    expect([seenA.ranges, seenB.ranges]).toEqual([SECOND_RANGES, SECOND_RANGES]);
    expect(tel.of('resync.done').map((d) => [d.node, d.sectorsCopied])).toEqual(expect.arrayContaining([['A', 46], ['B', 46]]));
    await expectMirrorsEqual(topo);
    expectTablesEmpty(book, 0, 'A', 'B');
    expectTablesEmpty(book, 1, 'B', 'A');
  });
});
