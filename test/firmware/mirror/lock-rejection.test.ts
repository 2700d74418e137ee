import { describe, expect, it } from 'vitest';
import { FrameType, RejectAction } from '../../../firmware/protocol/frame.ts';
import { expectMirrorsEqual, runWrites, sequentialWrites, settle, smallTopology } from '../../support/harness.ts';
import { RawPeer } from './raw-peer.ts';

/**
 * A refused mirror lock leaves a rejection record in the target's lock table, which holds new
 * local locks off its region until the mirror lock is granted (docs/design.md 1.1, no starvation). The
 * record must end with the retry it protects, whatever the policy, or local locks on the region
 * would wait for ever; `settled()` counts a left-over record as unfinished work.
 */
describe('rejection records', () => {
  it.each(['retransmit', 'halt-resume'] as const)('(%s) end once the refused lock is granted: local locks on the region are granted again', async (policy) => {
    const { topo } = smallTopology({ mode: 'speculative', onLockReject: policy, rttMs: 1 });
    const local = await topo.target.localLock(0, 0, 64, 'write');
    topo.clock.setTimeout(() => local.release(), 10);
    await runWrites(topo, topo.source, 0, sequentialWrites(20, 8), 4);
    await settle(topo);
    await expectMirrorsEqual(topo);
    expect(topo.target.status()[0]!.target.counters.locksRejected).toBeGreaterThan(0);
    expect(topo.target.lockTable).toEqual({ locks: 0, rejections: 0, localWaiting: 0 });
    let granted = false;
    void topo.target.localLock(0, 0, 8, 'write').then(() => (granted = true));
    expect(topo.target.lockTable).toEqual({ locks: 1, rejections: 0, localWaiting: 0 }); // granted at once, not queued
    await topo.clock.advance(1);
    expect(granted).toBe(true);
  });

  it('(retransmit) a discarded lock keeps its record until the peer re-sends; settled() waits for it', async () => {
    const p = new RawPeer({ onLockReject: 'retransmit' });
    const local = await p.controller.localLock(0, 0, 64, 'write');
    p.lock(1, 5, 0, 64);
    await p.clock.advance(1);
    expect(p.sent(FrameType.LockRejected).map((r) => r.action)).toEqual([RejectAction.Discarded]);
    local.release();
    await p.clock.advance(1);
    // Nothing is held and both logs are empty, but the refused lock is still owed a retry.
    expect(p.controller.lockTable).toEqual({ locks: 0, rejections: 1, localWaiting: 0 });
    expect(p.controller.settled()).toBe(false);
    // The peer re-sends the LOCK (a new commit-log entry); granting it ends the record.
    p.lock(1, 5, 0, 64);
    await p.clock.advance(1);
    expect(p.controller.lockTable).toEqual({ locks: 1, rejections: 0, localWaiting: 0 });
    p.unlock(2, 5);
    await p.clock.advance(1);
    expect(p.controller.settled()).toBe(true);
  });

  it('(retransmit) the record goes when the peer sends something else where the lock was, or the link drops', async () => {
    const gaveUp = new RawPeer({ onLockReject: 'retransmit' });
    const held = await gaveUp.controller.localLock(0, 0, 64, 'write');
    gaveUp.lock(1, 5, 0, 64);
    await gaveUp.clock.advance(1);
    expect(gaveUp.controller.lockTable.rejections).toBe(1);
    gaveUp.unlock(1, 6); // not lock 5 again: the peer gave it up
    await gaveUp.clock.advance(1);
    expect(gaveUp.controller.lockTable.rejections).toBe(0);
    held.release();

    const dropped = new RawPeer({ onLockReject: 'retransmit' });
    await dropped.controller.localLock(0, 0, 64, 'write');
    dropped.lock(1, 5, 0, 64);
    await dropped.clock.advance(1);
    expect(dropped.controller.lockTable.rejections).toBe(1);
    await dropped.silence();
    expect(dropped.controller.status()[0]!.link.state).toBe('down');
    expect(dropped.controller.lockTable.rejections).toBe(0);
  });

  it('(halt-resume) a held lock keeps its record through a link drop, and is granted once the local lock goes', async () => {
    const p = new RawPeer({ onLockReject: 'halt-resume' });
    const local = await p.controller.localLock(0, 0, 64, 'write');
    p.lock(1, 5, 0, 64);
    await p.clock.advance(1);
    await p.silence();
    expect(p.controller.status()[0]!.link.state).toBe('down');
    expect(p.controller.lockTable.rejections).toBe(1);
    // A new local lock on the region waits behind the refused mirror lock.
    let second = false;
    void p.controller.localLock(0, 8, 8, 'write').then(() => (second = true));
    local.release();
    await p.clock.advance(1);
    expect(p.controller.lockTable).toEqual({ locks: 1, rejections: 0, localWaiting: 1 });
    expect(second).toBe(false);
  });
});
