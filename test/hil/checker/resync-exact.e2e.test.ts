import { describe, expect, it } from 'vitest';
import type { TelemetryEvent } from '../../../firmware/telemetry/events.ts';
import { ConsistencyChecker } from '../../../hil/checker/consistency-checker.ts';
import { ResyncChecker } from '../../../hil/checker/resync-checker.ts';
import type { Violation } from '../../../hil/checker/violation.ts';
import { copiesDiffer } from '../../../hil/emulator/divergence.ts';
import { FootprintDevice } from '../../../hil/emulator/footprint.ts';
import { buildTopology } from '../../../hil/emulator/topology.ts';
import { linksUp, pattern, RecordingTelemetry, runWrites, sequentialWrites, settle, type WriteSpec } from '../../support/harness.ts';
import { withPlantedBugs } from '../../support/planted-bugs.ts';

/**
 * resync-exact on the simulated pair (docs/tag-tables.md, "What the checker checks"): the checker
 * measures the divergence from the volumes themselves when each resync starts and follows its
 * chunks. A partition long enough to suspend the mirror leaves the writes made during it on the
 * source's volume only; after the heal the controllers' own tag tables name them, and the resync
 * must copy exactly those.
 */
const LIMITS = { heartbeatMs: 5, interruptionMs: 20, probationMs: 40, suspendAfterMs: 30 };
const CUT_MS = 100;
const DURING: WriteSpec[] = [{ lba: 1024, sectors: 8 }, { lba: 1040, sectors: 16 }, { lba: 1100, sectors: 8 }, { lba: 1270, sectors: 10 }];

async function partitionedWrites(): Promise<{ violations: Violation[]; resyncs: ResyncChecker; tel: RecordingTelemetry }> {
  const tel = new RecordingTelemetry();
  const checker = new ConsistencyChecker();
  let resyncs: ResyncChecker | null = null;
  const telemetry = {
    enabled: true,
    emit: (e: TelemetryEvent) => {
      tel.emit(e);
      checker.emit(e);
      resyncs?.emit(e);
    },
  };
  const topo = buildTopology({ volumeSectors: 8192, lockRegionSectors: 64, telemetry, mode: 'async', limits: LIMITS });
  const pair = topo.pairs[0]!;
  resyncs = new ResyncChecker([{
    source: 'A', target: 'B', lun: 0, sectorSize: 512,
    differing: () => copiesDiffer({ primary: new FootprintDevice(pair.primaryVolume), secondary: new FootprintDevice(pair.secondaryVolume), sparse: false }),
  }], checker, (v) => checker.report(v));
  topo.start();
  await linksUp(topo);
  await runWrites(topo, topo.source, 0, sequentialWrites(16, 8, 2048), 4);
  await settle(topo);
  topo.link.blackhole('both', true);
  DURING.forEach((w, i) => topo.source.submitWrite(0, w.lba, pattern(100 + i, w.sectors * 512), () => {}));
  topo.clock.setTimeout(() => topo.link.blackhole('both', false), CUT_MS);
  await topo.clock.run({ untilMs: topo.clock.now() + CUT_MS + 300 });
  await settle(topo);
  return { violations: checker.violations, resyncs, tel };
}

describe('resync-exact end to end', () => {
  it('holds for the tag-table resync after a partition that suspended the mirror: it copies exactly what differed', async () => {
    const { violations, resyncs, tel } = await partitionedWrites();
    expect(violations).toEqual([]);
    expect(tel.of('resync.start').map((e) => e.full)).toEqual([false]);
    expect(resyncs.totals).toMatchObject({ runs: 1, fullRuns: 0, aborted: 0, bytesDivergent: 42 * 512, bytesCopied: 42 * 512, entriesCompared: 4, entriesMatched: 0, unmeasured: 0 });
  });

  it('fails on a resync that leaves out a range its comparison found (planted bug)', async () => {
    const { violations, resyncs } = await withPlantedBugs(['resync-skips-a-range'], partitionedWrites);
    // At its start it does not name the range; at its end it has not copied it.
    expect(violations.map((v) => [v.invariant, v.node, v.lun, v.lba])).toEqual([['resync-exact', 'A', 0, 1270], ['resync-exact', 'A', 0, 1270]]);
    expect(violations[0]!.message).toMatch(/LBA 1270 differs between the copies .* but the resync does not name it/);
    expect(violations[1]!.message).toMatch(/finished without copying LBA 1270 \(10 sectors in all\)/);
    expect(resyncs.totals.bytesCopied).toBe(32 * 512);
  });
});
