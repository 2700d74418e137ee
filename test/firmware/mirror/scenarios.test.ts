import { describe, expect, it } from 'vitest';
import { FrameType } from '../../../firmware/protocol/frame.ts';
import {
  linksUp,
  expectMirrorsEqual, randomWrites, runWrites, scriptedFaults, sequentialWrites, settle, smallTopology,
} from '../../support/harness.ts';

/**
 * The source and target statecharts driven on the simulated link and virtual clock through every
 * named state, one scenario at a time; after each, the mirrors must hold the same bytes.
 */
describe('mirroring scenarios', () => {
  it('speculative: LOCK and data go back to back; the host is acked after one round trip', async () => {
    const { topo, tel } = smallTopology({ mode: 'speculative', rttMs: 2, limits: { lockSessionIdleMs: 10 } });
    const results = await runWrites(topo, topo.source, 0, sequentialWrites(40, 8), 4);
    await settle(topo);
    await expectMirrorsEqual(topo);
    for (const r of results) {
      expect(r.error).toBeUndefined();
      const latency = r.ackedAt - r.issuedAt;
      expect(latency).toBeGreaterThanOrEqual(2);
      expect(latency).toBeLessThan(2 * 2); // one round trip, not two
    }
    expect(tel.states('source:A->B')).toEqual(expect.arrayContaining(['linkDown', 'idle', 'speculativeSent']));
    expect(tel.states('target:A->B')).toEqual(['streaming']);
    const c = topo.source.status()[0]!.source!.counters;
    expect(c.writesConfirmed).toBe(40);
    expect(c.rollbacks).toBe(0);
    // Sequential 4 KiB writes in 32 KiB regions share a LOCK per region.
    expect(c.locksSent).toBe(5);
  });

  it('sync: waits for LOCK_GRANTED before the data, so a write in a new region costs two round trips', async () => {
    const { topo, tel } = smallTopology({ mode: 'sync', rttMs: 2 });
    const results = await runWrites(topo, topo.source, 0, randomWrites(30, 8, 8192), 1);
    await settle(topo);
    await expectMirrorsEqual(topo);
    expect(tel.states('source:A->B')).toContain('lockPending');
    const fresh = results.filter((r) => r.ackedAt - r.issuedAt >= 4);
    expect(fresh.length).toBeGreaterThan(0);
    for (const r of results) expect(r.ackedAt - r.issuedAt).toBeGreaterThanOrEqual(2);
  });

  it('async: the host is acked after the local write; the target catches up', async () => {
    const { topo } = smallTopology({ mode: 'async', rttMs: 10 });
    const results = await runWrites(topo, topo.source, 0, randomWrites(50, 8, 8192), 8);
    for (const r of results) expect(r.ackedAt - r.issuedAt).toBeLessThan(1);
    await settle(topo);
    await expectMirrorsEqual(topo);
  });

  it.each(['speculative', 'sync'] as const)('halt-resume (%s): a refused lock halts the source until the target grants it', async (mode) => {
    const { topo, tel } = smallTopology({ mode, onLockReject: 'halt-resume', rttMs: 1 });
    const local = await lockOnTarget(topo, 0, 64, 20);
    const results = await runWrites(topo, topo.source, 0, sequentialWrites(20, 8), 4);
    expect(local.releasedAt).toBe(20);
    for (const r of results) expect(r.error).toBeUndefined();
    await settle(topo);
    await expectMirrorsEqual(topo);
    const states = tel.states('source:A->B');
    expect(states).toEqual(expect.arrayContaining(['halted', 'resumed']));
    expect(tel.states('target:A->B')).toContain('lockWaiting');
    const c = topo.source.status()[0]!.source!.counters;
    expect(c.locksRejected).toBeGreaterThanOrEqual(1);
    expect(c.halts).toBeGreaterThanOrEqual(1);
    expect(c.resumes).toBe(c.halts);
    // Nothing was applied under the target's local lock.
    const applied = tel.of('target.apply').filter((e) => e.lba < 64);
    expect(Math.min(...applied.map((e) => e.t))).toBeGreaterThanOrEqual(20);
  });

  it('retransmit: the target discards the refused lock and what followed; the source re-sends it after a back-off', async () => {
    const { topo, tel } = smallTopology({ mode: 'speculative', onLockReject: 'retransmit', rttMs: 1 });
    await lockOnTarget(topo, 0, 64, 10);
    await runWrites(topo, topo.source, 0, sequentialWrites(20, 8), 4);
    await settle(topo);
    await expectMirrorsEqual(topo);
    expect(tel.states('source:A->B')).toEqual(expect.arrayContaining(['rollback.backoff', 'rollback.resending']));
    expect(tel.states('target:A->B')).toContain('discarding');
    const c = topo.source.status()[0]!.source!.counters;
    expect(c.locksRejected).toBeGreaterThanOrEqual(1);
    expect(c.halts).toBe(0);
    expect(c.entriesRetransmitted).toBeGreaterThan(0);
    expect(topo.target.status()[0]!.target.counters.entriesDiscarded).toBeGreaterThan(0);
  });

  it('a corrupt frame mid-stream: the target NAKs it, the source rolls back and re-sends from it', async () => {
    const { topo, tel } = smallTopology({ mode: 'speculative', rttMs: 1 });
    topo.link.setFaults(scriptedFaults((dir, type, n) => (dir === 'ab' && type === FrameType.Write && n === 10 ? 'corrupt' : 'pass')));
    await runWrites(topo, topo.source, 0, randomWrites(40, 8, 8192), 8);
    await settle(topo);
    await expectMirrorsEqual(topo);
    expect(tel.states('source:A->B')).toContain('rollback.resending');
    const src = topo.source.status()[0]!.source!.counters;
    const tgt = topo.target.status()[0]!.target.counters;
    expect(tgt.corrupt).toBe(1);
    expect(src.rollbacks).toBeGreaterThanOrEqual(1);
    expect(src.entriesRetransmitted).toBeGreaterThan(0);
    expect(src.ackTimeouts).toBe(0);
  });

  it('a lost frame with nothing behind it is found by the ack timeout', async () => {
    const { topo, tel } = smallTopology({ mode: 'speculative', rttMs: 1 });
    // 10 sequential writes span two lock regions; the second UNLOCK is the last frame of the run.
    topo.link.setFaults(scriptedFaults((dir, type, n) => (dir === 'ab' && type === FrameType.Unlock && n === 1 ? 'drop' : 'pass')));
    await runWrites(topo, topo.source, 0, sequentialWrites(10, 8), 10);
    await settle(topo);
    await expectMirrorsEqual(topo);
    const src = topo.source.status()[0]!.source!.counters;
    expect(src.ackTimeouts).toBeGreaterThanOrEqual(1);
    expect(tel.states('source:A->B')).toContain('rollback.resending');
  });

  it('lost ACKs: the source times out and re-sends; the target drops the duplicates and re-acks', async () => {
    const { topo } = smallTopology({ mode: 'speculative', rttMs: 1 });
    topo.link.setFaults(scriptedFaults((dir, type, n) => (dir === 'ba' && type === FrameType.Ack && n >= 2 && n < 12 ? 'drop' : 'pass')));
    await runWrites(topo, topo.source, 0, sequentialWrites(8, 8), 8);
    await settle(topo);
    await expectMirrorsEqual(topo);
    expect(topo.target.status()[0]!.target.counters.duplicates).toBeGreaterThan(0);
  });

  it('duplicated frames are dropped by sequence number and change nothing', async () => {
    const { topo } = smallTopology({ mode: 'speculative', rttMs: 1 });
    topo.link.setFaults(scriptedFaults(() => 'duplicate'));
    await runWrites(topo, topo.source, 0, randomWrites(30, 8, 8192), 4);
    await settle(topo);
    await expectMirrorsEqual(topo);
    const tgt = topo.target.status()[0]!.target.counters;
    expect(tgt.duplicates).toBeGreaterThanOrEqual(30);
    expect(tgt.writesApplied).toBe(30);
  });

  it('a lost LOCK_GRANTED in sync mode is recovered (the LOCK is re-sent and granted again)', async () => {
    const { topo } = smallTopology({ mode: 'sync', rttMs: 1 });
    topo.link.setFaults(scriptedFaults((dir, type, n) => (dir === 'ba' && type === FrameType.LockGranted && n === 0 ? 'drop' : 'pass')));
    await runWrites(topo, topo.source, 0, sequentialWrites(4, 8), 1);
    await settle(topo);
    await expectMirrorsEqual(topo);
  });

  it('a full rollback log makes the host wait; nothing is dropped', async () => {
    const { topo } = smallTopology({ mode: 'async', rttMs: 5, limits: { rollbackLogEntriesMax: 12, rollbackLogBytesMax: 64 * 1024, payloadBytesMax: 16 * 1024 } });
    let sawWaiting = false;
    const probe = (): void => {
      const log = topo.source.status()[0]!.source!.rollbackLog;
      if (log.waiting > 0) sawWaiting = true;
      if (!sawWaiting) topo.clock.setTimeout(probe, 0.1);
    };
    probe();
    const results = await runWrites(topo, topo.source, 0, randomWrites(100, 8, 8192), 32);
    expect(sawWaiting).toBe(true);
    // The host waited: later writes were acked only as confirmations made room.
    expect(Math.max(...results.map((r) => r.ackedAt - r.issuedAt))).toBeGreaterThan(5);
    await settle(topo);
    await expectMirrorsEqual(topo);
    expect(topo.target.status()[0]!.target.counters.writesApplied).toBe(100);
  });

  it('bidirectional: both controllers mirror to each other at once', async () => {
    const { topo, tel } = smallTopology({ mode: 'speculative', bidirectional: true, rttMs: 1 });
    const a = runWrites(topo, topo.source, 0, randomWrites(40, 8, 8192, 1), 8);
    const bWrites = randomWrites(40, 8, 8192, 2);
    let done = 0;
    bWrites.forEach((w, i) => {
      topo.target.submitWrite(1, w.lba, new Uint8Array(4096).fill(i), () => done++);
    });
    await a;
    await topo.clock.run({ until: () => done === bWrites.length });
    await settle(topo);
    await expectMirrorsEqual(topo);
    expect(tel.states('source:B->A')).toContain('speculativeSent');
  });

  it('a silent cut: the supervisor takes the link down, writes queue in linkDown; after probation the source rolls back and drains', async () => {
    const { topo, tel } = smallTopology({ mode: 'async', rttMs: 1, limits: { heartbeatMs: 5, interruptionMs: 20, probationMs: 40 } });
    await linksUp(topo);
    const cutAt = topo.clock.now() + 2;
    topo.clock.setTimeout(() => topo.link.blackhole('both', true), 2);
    topo.clock.setTimeout(() => topo.link.blackhole('both', false), 80);
    await runWrites(topo, topo.source, 0, randomWrites(200, 8, 8192), 4);
    await settle(topo);
    await expectMirrorsEqual(topo);
    const states = tel.states('source:A->B');
    expect(states.filter((s) => s === 'linkDown').length).toBe(2); // at start, and the cut
    expect(states).toContain('rollback.resending');
    // Both sides noticed on their own, within the interruption timeout and a heartbeat of the cut.
    const downs = tel.of('link.supervision').filter((e) => e.event === 'down');
    expect(downs.map((e) => e.node).sort()).toEqual(['A', 'B']);
    for (const d of downs) expect(d.t - cutAt).toBeLessThanOrEqual(20 + 5);
    expect(tel.states('link:A->B')).toEqual(['connecting.asking', 'up', 'suspect', 'down', 'probation.clean', 'connecting.asking', 'up']);
  });

  it('read locks are not speculative: granted only after earlier writes are confirmed; writes to the region wait', async () => {
    const { topo } = smallTopology({ mode: 'speculative', rttMs: 2 });
    await linksUp(topo);
    const writes = runWrites(topo, topo.source, 0, sequentialWrites(8, 8), 8);
    let grantedAt = -1;
    let release: (() => void) | undefined;
    void topo.source.readLock(0, 0, 64).then((h) => {
      grantedAt = topo.clock.now();
      release = h.release;
    });
    await writes;
    await topo.clock.run({ until: () => grantedAt >= 0 });
    const firstAcks = topo.source.status()[0]!.source!.counters.writesConfirmed;
    expect(firstAcks).toBe(8);
    expect(grantedAt).toBeGreaterThanOrEqual(4); // after the writes' round trip, then its own
    let lateAckAt = -1;
    topo.source.submitWrite(0, 8, new Uint8Array(4096).fill(7), () => (lateAckAt = topo.clock.now()));
    await topo.clock.advance(20);
    expect(lateAckAt).toBe(-1);
    const releasedAt = topo.clock.now();
    release!();
    await topo.clock.run({ until: () => lateAckAt >= 0 });
    expect(lateAckAt).toBeGreaterThan(releasedAt);
    await settle(topo);
    await expectMirrorsEqual(topo);
  });

  it('keeps the chart budget: well under one chart event per mirrored write at queue depth 32', async () => {
    const { topo } = smallTopology({ mode: 'speculative', rttMs: 1, lockRegionSectors: 8 });
    await runWrites(topo, topo.source, 0, randomWrites(2000, 8, 8192), 32);
    await settle(topo);
    const events = topo.source.chartEvents() + topo.target.chartEvents();
    expect(events / 2000).toBeLessThan(0.05);
  });
});

/** Take a local lock on the target for `holdMs` from now (the target's own server workload). */
async function lockOnTarget(topo: ReturnType<typeof smallTopology>['topo'], lba: number, count: number, holdMs: number) {
  const result = { releasedAt: -1 };
  const handle = await topo.target.localLock(0, lba, count, 'write');
  topo.clock.setTimeout(() => {
    handle.release();
    result.releasedAt = topo.clock.now();
  }, holdMs);
  return result;
}
