import { describe, expect, it } from 'vitest';
import { expectMirrorsEqual, randomWrites, runWrites, settle, smallTopology } from '../../support/harness.ts';

/**
 * The target's lock table holds at most `locksMax` locks, far fewer than the source's lock
 * sessions (`lockSessionsMax` 64). The target advertises its share in HELLO (locksWindow) and the
 * source never holds more: otherwise it would fill the table with its own locks, whose UNLOCKs
 * sit behind the LOCK waiting for room (halting deadlocks, discarding livelocks). A table filled
 * by local locks is an ordinary refusal (TableFull), retried like any other.
 */
describe('a small lock table at the target', () => {
  const modes = ['speculative', 'sync', 'async'] as const;
  const policies = ['halt-resume', 'retransmit'] as const;

  for (const mode of modes) {
    it(`${mode}: the source keeps to the advertised locksWindow; every write mirrored`, async () => {
      const { topo, tel } = smallTopology({ mode, rttMs: 1, lockRegionSectors: 8, limits: { locksMax: 2 } });
      let held = 0;
      let heldMax = 0;
      const emit = tel.emit.bind(tel);
      tel.emit = (e) => {
        if (e.kind === 'target.lock' && e.node === 'B') held += e.result === 'granted' ? 1 : e.result === 'released' ? -1 : 0;
        heldMax = Math.max(heldMax, held);
        emit(e);
      };
      await topo.clock.advance(5); // HELLOs exchanged: the source knows the window (before it, it holds one lock at a time)
      const results = await runWrites(topo, topo.source, 0, randomWrites(50, 8, 8192), 16, 2000);
      for (const r of results) expect(r.error).toBeUndefined();
      await settle(topo);
      await expectMirrorsEqual(topo);
      expect(tel.of('frame.sent').filter((f) => f.node === 'B' && f.type === 'HELLO').length).toBeGreaterThan(0);
      expect(heldMax).toBe(2);
      const tgt = topo.target.status()[0]!.target.counters;
      expect(tgt.locksRejected).toBe(0);
      expect(tgt.entriesRefused).toBe(0); // no LocksExceeded
      expect(tgt.writesApplied).toBe(50);
    });
  }

  for (const mode of modes) {
    for (const policy of policies) {
      it(`${mode}/${policy}: local locks fill the table; the mirror's LOCK is refused TableFull, retried, and every write mirrored`, async () => {
        const { topo, tel } = smallTopology({ mode, onLockReject: policy, rttMs: 1, lockRegionSectors: 8, limits: { locksMax: 2 } });
        const server = await topo.target.localLock(0, 8000, 8, 'write');
        topo.clock.setTimeout(() => server.release(), 20);
        await topo.clock.advance(5);
        const results = await runWrites(topo, topo.source, 0, randomWrites(50, 8, 4096), 16, 2000);
        for (const r of results) expect(r.error).toBeUndefined();
        await settle(topo);
        await expectMirrorsEqual(topo);
        const tgt = topo.target.status()[0]!.target.counters;
        const src = topo.source.status()[0]!.source!.counters;
        expect(tgt.tableFullRejections).toBeGreaterThan(0);
        expect(src.tableFullRejections).toBeGreaterThan(0);
        expect(tel.of('frame.sent').some((f) => f.node === 'B' && f.type === 'LOCK_REJECTED')).toBe(true);
        expect(tgt.writesApplied).toBe(50);
        expect(topo.target.lockTable).toEqual({ locks: 0, rejections: 0, localWaiting: 0 });
      });
    }
  }
});
