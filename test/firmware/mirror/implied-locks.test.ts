import { describe, expect, it } from 'vitest';
import { decodeFrame } from '../../../firmware/protocol/decoder.ts';
import { FEATURE_BITS, FrameFlag, FrameType, LockRejectPolicy } from '../../../firmware/protocol/frame.ts';
import { expectMirrorsEqual, runWrites, sequentialWrites, settle, smallTopology } from '../../support/harness.ts';
import { RawPeer } from './raw-peer.ts';

type Topo = ReturnType<typeof smallTopology>['topo'];

/** The target's own server holds [lba, lba + count) of LUN `lun` for `holdMs` from now. */
async function localLockFor(topo: Topo, lun: number, lba: number, count: number, holdMs: number): Promise<void> {
  const handle = await topo.target.localLock(lun, lba, count, 'write');
  topo.clock.setTimeout(() => handle.release(), holdMs);
}

/**
 * Implied locks (docs/implied-locks.md) through the firmware end to end: a refused implied lock
 * takes the same chart transitions as a refused LOCK, batches are re-sent per entry, and a peer's
 * HELLO decides what the stream may use.
 */
describe('a refused implied lock', () => {
  it.each(['halt-resume', 'retransmit'] as const)('(%s) goes through the same chart transitions as a refused LOCK; no LOCK is sent', async (policy) => {
    const { topo, tel } = smallTopology({ mode: 'speculative', onLockReject: policy, rttMs: 1, locks: 'implied', lockRegionSectors: 8 });
    await localLockFor(topo, 0, 0, 64, 10);
    const results = await runWrites(topo, topo.source, 0, sequentialWrites(20, 8), 4);
    for (const r of results) expect(r.error).toBeUndefined();
    await settle(topo);
    await expectMirrorsEqual(topo);
    const src = topo.source.status()[0]!.source!.counters;
    expect(src.impliedLocks).toBeGreaterThanOrEqual(20);
    expect(src.locksSent).toBe(0);
    expect(tel.of('frame.sent').filter((e) => e.type === 'LOCK' || e.type === 'UNLOCK')).toEqual([]);
    const refused = tel.of('target.lock').filter((e) => e.result === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((e) => e.implied === true)).toBe(true);
    if (policy === 'halt-resume') {
      expect(tel.states('source:A->B')).toEqual(expect.arrayContaining(['halted', 'resumed']));
      expect(src.halts).toBeGreaterThan(0);
      expect(src.resumes).toBe(src.halts);
    } else {
      expect(tel.states('source:A->B')).toEqual(expect.arrayContaining(['rollback.backoff', 'rollback.resending']));
      expect(tel.states('target:A->B')).toContain('discarding');
      expect(src.halts).toBe(0);
    }
    // Nothing was applied under the server's lock; every lock is gone at the end.
    expect(Math.min(...tel.of('target.apply').filter((e) => e.lba < 64).map((e) => e.t))).toBeGreaterThanOrEqual(10);
    expect(topo.target.lockTable).toEqual({ locks: 0, rejections: 0, localWaiting: 0 });
  });
});

describe('batches', () => {
  it('a rollback point inside a BATCH re-sends from that write, not from the start of the frame', async () => {
    const { topo } = smallTopology({ mode: 'speculative', onLockReject: 'retransmit', rttMs: 1, locks: 'implied', batch: true, lockRegionSectors: 8 });
    // Every stream frame the source sent, as the range of entries it carried, in order.
    const frames: { first: number; last: number; retransmit: boolean }[] = [];
    topo.link.setFaults({
      onSend(dir: 'ab' | 'ba', bytes: Uint8Array) {
        const f = dir === 'ab' ? decodeFrame(bytes) : null;
        if (f !== null && f.type !== FrameType.Hello) {
          const entries = f.type === FrameType.Batch ? f.entries.length : 1;
          frames.push({ first: f.seq, last: f.seq + entries - 1, retransmit: (f.flags & FrameFlag.Retransmit) !== 0 });
        }
        return null;
      },
    });
    // Write 4's lock is refused first; when the entries from it go again in a BATCH, write 8's is.
    await localLockFor(topo, 0, 24, 8, 6);
    await localLockFor(topo, 0, 56, 8, 15);
    const results = await runWrites(topo, topo.source, 0, sequentialWrites(64, 8), 16);
    for (const r of results) expect(r.error).toBeUndefined();
    await settle(topo);
    await expectMirrorsEqual(topo);
    const src = topo.source.status()[0]!.source!.counters;
    expect(src.batchesSent).toBeGreaterThan(0);
    expect(src.entriesRetransmitted).toBeGreaterThan(0);
    expect(topo.target.status()[0]!.target.counters.writesApplied).toBe(64);
    // Some re-sending starts strictly inside a BATCH sent before it.
    const insideBatch = frames.some((f, i) => f.retransmit && frames.slice(0, i).some((b) => b.last > b.first && b.first < f.first && f.first <= b.last));
    expect(insideBatch, JSON.stringify(frames)).toBe(true);
  });
});

describe('what the peer offers in HELLO decides', () => {
  it('a peer that lacks implied locks gets explicit LOCKs and UNLOCKs', async () => {
    const p = new RawPeer({ mirrorLun0: true, locks: 'implied', batch: true });
    p.controller.submitWrite(0, 0, new Uint8Array(512).fill(1), () => {});
    await p.clock.advance(1);
    expect(p.sent(FrameType.Lock)).toHaveLength(1);
    expect(p.sent(FrameType.Write).map((w) => w.flags & FrameFlag.ImpliedLock)).toEqual([0]);
    expect(p.sent(FrameType.Batch)).toEqual([]);
  });

  it('a peer that offers them gets each write with its own lock, even those queued before its HELLO', async () => {
    const p = new RawPeer({ mirrorLun0: true, locks: 'implied', features: FEATURE_BITS.impliedLocks, helloLater: true, mode: 'async' });
    for (let i = 0; i < 4; i++) p.controller.submitWrite(0, i * 8, new Uint8Array(512).fill(i + 1), () => {});
    await p.clock.advance(0.1);
    p.hello();
    await p.clock.advance(1);
    expect(p.sent(FrameType.Lock)).toEqual([]);
    const writes = p.sent(FrameType.Write);
    expect(writes.map((w) => [w.seq, w.flags & FrameFlag.ImpliedLock])).toEqual([1, 2, 3, 4].map((seq) => [seq, FrameFlag.ImpliedLock]));
  });

  it('a peer that requires a feature this firmware lacks is refused, with the reason', async () => {
    const p = new RawPeer({ mirrorLun0: true, helloLater: true });
    p.hello({ features: (0x80000000 | FEATURE_BITS.impliedLocks) >>> 0, requiredFeatures: 0x80000000, policy: LockRejectPolicy.HaltResume });
    await p.clock.advance(1);
    expect(p.controller.status()[0]!.link.state).toBe('down');
    const why = p.tel.of('link.supervision').map((e) => e.detail).join('\n');
    expect(why).toMatch(/incompatible peer: the peer requires features this firmware lacks: bit 31/);
  });
});
