import { describe, expect, it } from 'vitest';
import type { Telemetry } from '../../../firmware/ports/telemetry.ts';
import type { TelemetryEvent } from '../../../firmware/telemetry/events.ts';
import { LinkChecker } from '../../../hil/checker/link-checker.ts';
import type { Violation } from '../../../hil/checker/violation.ts';
import { buildTopology, type Topology, type TopologyOptions } from '../../../hil/emulator/topology.ts';
import { expectMirrorsEqual, linksUp, pattern, RecordingTelemetry, settle } from '../../support/harness.ts';
import { withPlantedBugs } from '../../support/planted-bugs.ts';

/** Short link supervision, so a restart and its probation take tens of virtual ms, not seconds. */
const LIMITS = { heartbeatMs: 5, interruptionMs: 20, probationMs: 40 };

/** A topology whose telemetry also feeds the link checker. */
function restartTopology(opts: Partial<TopologyOptions>) {
  const tel = new RecordingTelemetry();
  const violations: Violation[] = [];
  const links = new LinkChecker({ ...LIMITS, report: (v) => violations.push(v) });
  const telemetry: Telemetry = {
    enabled: true,
    emit: (e: TelemetryEvent) => {
      tel.emit(e);
      links.emit(e);
    },
  };
  // No metadata devices: a restart loses its tables, and its resync is the full copy these tests look at.
  const topo = buildTopology({ volumeSectors: 8192, lockRegionSectors: 64, telemetry, limits: LIMITS, metadataVolume: null, ...opts });
  topo.start();
  return { topo, tel, links, violations };
}

/**
 * Hosts writing to whichever start of each controller is current, `queueDepth` at a time, until
 * `stop()`: a crashed start's writes in flight never complete, so each write issues the next on the
 * controller of its own lane as the topology names it now.
 */
function keepWriting(topo: Topology, lun: 0 | 1, queueDepth: number, writesMax = 1500) {
  let n = 0;
  let stopped = false;
  const lane = (): void => {
    if (stopped || n >= writesMax) return;
    const c = lun === 0 ? topo.source : topo.target;
    const i = n++;
    c.submitWrite(lun, (i * 8) % 4096, pattern(i + lun * 1_000_003, 4096), () => topo.clock.setTimeout(lane, 0.05));
  };
  for (let q = 0; q < queueDepth; q++) lane();
  return {
    stop: () => (stopped = true),
    /** Restart the lanes whose writes died with a crashed start. */
    resume: () => {
      for (let q = 0; q < queueDepth; q++) lane();
    },
  };
}

describe('a controller restart: new session, new stream, resynchronisation', () => {
  it.each(['speculative', 'async', 'sync'] as const)('the target restarts (%s): the survivor starts a new stream, re-sends what was unconfirmed, resyncs, and the mirrors end equal', async (mode) => {
    const { topo, tel, links, violations } = restartTopology({ mode });
    await linksUp(topo);
    const firstB = topo.target.session;
    const hosts = keepWriting(topo, 0, 8);
    topo.clock.setTimeout(() => topo.crash('B', 30), 10);
    topo.clock.setTimeout(() => hosts.stop(), 400);
    await topo.clock.run({ untilMs: topo.clock.now() + 400 });
    await settle(topo);
    links.finish(topo.clock.now());
    await expectMirrorsEqual(topo);
    expect(violations).toEqual([]);
    expect(topo.target.session).not.toBe(firstB);
    const a = topo.source.status()[0]!;
    expect(a.source!.counters.streamsStarted).toBe(1);
    expect(a.link.counters.peerRestarts).toBe(1);
    // The survivor resynchronised the mirror to the restarted target, in the background.
    const states = tel.of('mirror.state').filter((e) => e.node === 'A').map((e) => e.state);
    expect(states).toEqual(['needs-resync', 'resyncing', 'in-sync']);
    // Without tag tables it is a full copy, and its telemetry says so (docs/tag-tables.md, "Resync").
    const [start, ...moreStarts] = tel.of('resync.start');
    expect(moreStarts).toEqual([]);
    expect(start).toMatchObject({ node: 'A', peer: 'B', lun: 0, resync: 1, full: true, ranges: [[0, 8192]], sectors: 8192 });
    const chunks = tel.of('resync.chunk');
    expect(chunks.reduce((n, c) => n + c.count, 0)).toBe(8192);
    expect(tel.of('resync.done')).toEqual([expect.objectContaining({ node: 'A', resync: 1, sectorsCopied: 8192 })]);
    expect(tel.of('resync.abort')).toEqual([]);
    expect(tel.of('stream.start').filter((e) => e.node === 'A' && e.role === 'source').map((e) => e.targetSession)).toEqual([firstB, topo.target.session]);
  });

  it.each(['speculative', 'async'] as const)('the source restarts (%s): the survivor drops the old stream unapplied, says so in HELLO, and the restarted source resyncs', async (mode) => {
    const { topo, tel, links, violations } = restartTopology({ mode });
    await linksUp(topo);
    const hosts = keepWriting(topo, 0, 8);
    topo.clock.setTimeout(() => topo.crash('A', 30, () => hosts.resume()), 10);
    topo.clock.setTimeout(() => hosts.stop(), 400);
    await topo.clock.run({ untilMs: topo.clock.now() + 400 });
    await settle(topo);
    links.finish(topo.clock.now());
    await expectMirrorsEqual(topo);
    expect(violations).toEqual([]);
    const b = topo.target.status()[0]!;
    expect(b.target.counters.streamsStarted).toBe(2);
    expect(b.link.counters.peerRestarts).toBe(1);
    // The restarted source heard from its peer that it had restarted, and copied its volume again.
    const a2 = tel.of('mirror.state').filter((e) => e.node === 'A').map((e) => e.state);
    expect(a2).toEqual(['needs-resync', 'resyncing', 'in-sync']);
    expect(tel.of('controller.start').filter((e) => e.node === 'A')).toHaveLength(2);
  });

  it('both directions at once: each side resyncs what it sources', async () => {
    const { topo, links, violations } = restartTopology({ mode: 'speculative', bidirectional: true });
    await linksUp(topo);
    const a = keepWriting(topo, 0, 4);
    const b = keepWriting(topo, 1, 4);
    topo.clock.setTimeout(() => topo.crash('B', 25, () => b.resume()), 12);
    topo.clock.setTimeout(() => {
      a.stop();
      b.stop();
    }, 300);
    await topo.clock.run({ untilMs: topo.clock.now() + 300 });
    await settle(topo);
    links.finish(topo.clock.now());
    await expectMirrorsEqual(topo);
    expect(violations).toEqual([]);
  });

  it('the checker catches a target that keeps the old stream of a restarted source (session)', async () => {
    const run = async (): Promise<Violation[]> => {
      const { topo, links, violations } = restartTopology({ mode: 'async', lockRegionSectors: 8 });
      await linksUp(topo);
      // Stall B's applying (a local lock on the first region) so that its commit log holds entries when A crashes.
      const held = await topo.target.localLock(0, 0, 8, 'write');
      const hosts = keepWriting(topo, 0, 8);
      topo.clock.setTimeout(() => topo.crash('A', 30, () => hosts.resume()), 10);
      topo.clock.setTimeout(() => held.release(), 120);
      topo.clock.setTimeout(() => hosts.stop(), 300);
      await topo.clock.run({ untilMs: topo.clock.now() + 600 });
      links.finish(topo.clock.now());
      return violations;
    };
    expect(await run(), 'the same run with correct firmware').toEqual([]);
    const violations = await withPlantedBugs(['target-keeps-old-stream'], run);
    expect(violations.map((v) => v.invariant)).toContain('session');
    expect(violations.find((v) => v.invariant === 'session')!.message).toMatch(/an entry of another stream passed off as this one's/);
  });
});
