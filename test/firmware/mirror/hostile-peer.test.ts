import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameType, LockMode, LockRejectPolicy, NakReason, RejectAction, RejectReason, type Frame } from '../../../firmware/protocol/frame.ts';
import { sealedHeader } from '../protocol/helpers.ts';
import { RawPeer } from './raw-peer.ts';

/**
 * A peer that sends well-formed frames with hostile contents. Whatever it sends, nothing may
 * throw out of the link callback and no chart may stop: each case ends as a NAK, a refusal, or a
 * frame ignored and counted.
 */
describe('a hostile but well-formed peer', () => {
  it('stream frames outside the LUNs or the device are NAKed OutOfRange', async () => {
    const p = new RawPeer();
    p.lock(1, 1, 0, 8, 5); // no LUN 5
    p.lock(2, 2, 1020, 64); // past the end of a 1024-sector device
    p.lock(3, 3, 0, 64);
    p.write(4, 3, 1024, 1); // beyond the device, under a lock on another range
    p.send({ type: FrameType.Write, lun: 0, seq: 5, flags: 0, lockId: 3, lba: 0, tag: 1, data: new Uint8Array(100) }); // not whole sectors
    p.write(6, 99, 0, 1, 7); // LUN 7
    await p.clock.advance(5);
    expect(p.controller.failure).toBeNull();
    const naks = p.sent(FrameType.Nak).map((n) => [n.seq, n.reason]);
    expect(naks).toEqual([[1, NakReason.OutOfRange], [2, NakReason.OutOfRange], [4, NakReason.OutOfRange], [5, NakReason.OutOfRange], [6, NakReason.OutOfRange]]);
    expect(p.target().entriesRefused).toBe(5);
    expect(p.sent(FrameType.Ack).at(-1)?.seq).toBe(6); // refused entries are still confirmed: the stream moves on
  });

  it('a WRITE under no lock is NAKed NotLocked; an UNLOCK of an unknown lock id is taken quietly', async () => {
    const p = new RawPeer();
    p.write(1, 7, 0, 1);
    p.unlock(2, 42);
    await p.clock.advance(5);
    expect(p.controller.failure).toBeNull();
    expect(p.sent(FrameType.Nak).map((n) => [n.seq, n.reason])).toEqual([[1, NakReason.NotLocked]]);
    expect(p.target().unlocks).toBe(1);
    expect(p.controller.lockTable.locks).toBe(0);
  });

  it('a LOCK that re-uses a held lock id for another range is NAKed LockInUse; the same lock again is harmless', async () => {
    const p = new RawPeer();
    p.lock(1, 1, 0, 64);
    p.lock(2, 1, 64, 64);
    p.lock(3, 1, 0, 64);
    await p.clock.advance(5);
    expect(p.controller.failure).toBeNull();
    expect(p.sent(FrameType.Nak).map((n) => [n.seq, n.reason])).toEqual([[2, NakReason.LockInUse]]);
    expect(p.controller.lockTable.locks).toBe(1);
    p.unlock(4, 1);
    await p.clock.advance(5);
    expect(p.controller.lockTable.locks).toBe(0);
  });

  it('a LOCK beyond the locksWindow its HELLO advertised is NAKed LocksExceeded', async () => {
    const p = new RawPeer({ limits: { locksMax: 2 } });
    expect(p.sent(FrameType.Hello)[0]!.locksWindow).toBe(2); // one peer: the whole table is its share
    p.lock(1, 1, 0, 64);
    p.lock(2, 2, 64, 64);
    p.lock(3, 3, 128, 64);
    p.unlock(4, 1);
    p.lock(5, 4, 192, 64);
    await p.clock.advance(5);
    expect(p.controller.failure).toBeNull();
    expect(p.sent(FrameType.Nak).map((n) => [n.seq, n.reason])).toEqual([[3, NakReason.LocksExceeded]]);
    expect(p.controller.lockTable.locks).toBe(2); // locks 2 and 4
  });

  it.each([['halt-resume', RejectAction.Held], ['retransmit', RejectAction.Discarded]] as const)(
    'a table filled by local locks (%s): the LOCK is refused TableFull like any conflict, and granted once a local lock goes',
    async (policy, action) => {
      const p = new RawPeer({ onLockReject: policy, limits: { locksMax: 2 } });
      const local = await p.controller.localLock(0, 500, 8, 'write');
      p.lock(1, 1, 0, 64);
      p.lock(2, 2, 64, 64);
      await p.clock.advance(1);
      expect(p.sent(FrameType.LockRejected).map((r) => [r.seq, r.reason, r.action])).toEqual([[2, RejectReason.TableFull, action]]);
      expect(p.target().tableFullRejections).toBe(1);
      local.release();
      if (policy === 'retransmit') p.lock(2, 2, 64, 64); // the source re-sends what was discarded
      await p.clock.advance(1);
      expect(p.controller.failure).toBeNull();
      expect(p.sent(FrameType.Ack).at(-1)?.seq).toBe(2);
      expect(p.controller.lockTable).toEqual({ locks: 2, rejections: 0, localWaiting: 0 });
    },
  );

  it('responses with no stream of ours to answer are ignored and counted', async () => {
    const p = new RawPeer();
    p.send({ type: FrameType.Ack, lun: 0, seq: 9, flags: 0 });
    p.send({ type: FrameType.Nak, lun: 0, seq: 1, flags: 0, reason: NakReason.Gap });
    p.send({ type: FrameType.LockGranted, lun: 0, seq: 1, flags: 0, lockId: 1 });
    p.send({ type: FrameType.LockRejected, lun: 0, seq: 1, flags: 0, lockId: 1, reason: RejectReason.LocalLock, action: RejectAction.Discarded });
    await p.clock.advance(5);
    expect(p.controller.failure).toBeNull();
    expect(p.controller.status()[0]!.link.counters.unexpected).toBe(4);
  });

  it('a LUN this controller mirrors to the peer is no LUN to that peer: its LOCK and WRITE are NAKed, the primary copy untouched', async () => {
    // Found by the controller fuzz (docs/fuzzing.md): a peer's stream naming a LUN whose primary
    // copy is here wrote it behind its own mirror, and its locks refused this controller's hosts.
    const p = new RawPeer({ mirrorLun0: true });
    p.lock(1, 1, 0, 64);
    p.write(2, 1, 0, 1);
    p.unlock(3, 1);
    await p.clock.advance(5);
    expect(p.controller.failure).toBeNull();
    expect(p.sent(FrameType.Nak).map((n) => [n.seq, n.reason])).toEqual([[1, NakReason.OutOfRange], [2, NakReason.OutOfRange]]);
    expect(p.lun0.peek(0, 1)).toEqual(new Uint8Array(512));
    expect(p.controller.lockTable.locks).toBe(0);
  });

  it.each([
    ['an unknown type', { type: 0xee, payloadLength: 0xffff_ffff }],
    ['a payload past payloadBytesMax', { type: FrameType.Write, lun: 0, lockId: 1, payloadLength: 0xffff_fff0 }],
  ] as const)('a sound header of %s declaring 4 GiB does not swallow the frames behind it', async (_what, header) => {
    // Found by the controller fuzz (docs/fuzzing.md): the decoder skipped the declared length, so
    // every later frame on the connection vanished while the bytes arriving kept it looking alive.
    const p = new RawPeer();
    p.sendBytes(sealedHeader(header));
    p.lock(1, 1, 0, 64);
    await p.clock.advance(5);
    expect(p.controller.failure).toBeNull();
    expect(p.controller.status()[0]!.link.counters.frameErrors).toBe(1);
    expect(p.controller.lockTable.locks).toBe(1);
    expect(p.sent(FrameType.Ack).at(-1)?.seq).toBe(1);
  });

  it('responses about entries the source never sent are ignored and counted', async () => {
    const p = new RawPeer({ mirrorLun0: true });
    p.send({ type: FrameType.Ack, lun: 0, seq: 3, flags: 0 });
    p.send({ type: FrameType.Nak, lun: 0, seq: 1, flags: 0, reason: NakReason.MediaError });
    p.send({ type: FrameType.LockGranted, lun: 0, seq: 1, flags: 0, lockId: 1 });
    p.send({ type: FrameType.LockRejected, lun: 0, seq: 1, flags: 0, lockId: 1, reason: RejectReason.LocalLock, action: RejectAction.Held });
    await p.clock.advance(1);
    // Now one write goes out (LOCK seq 1, WRITE seq 2); forged answers about it are checked too.
    let acked: unknown = 'pending';
    p.controller.submitWrite(0, 0, new Uint8Array(512).fill(1), (err) => (acked = err));
    await p.clock.advance(0.1);
    p.send({ type: FrameType.LockGranted, lun: 0, seq: 2, flags: 0, lockId: 1 }); // seq 2 is the WRITE, not the LOCK
    p.send({ type: FrameType.Ack, lun: 0, seq: 3, flags: 0 }); // 3 is a reservation, never sent
    await p.clock.advance(0.1);
    expect(p.controller.failure).toBeNull();
    const c = p.controller.status()[0]!.source!.counters;
    expect(c.acksIgnored).toBe(2);
    expect(c.naksIgnored).toBe(2); // the NAK and the LOCK_REJECTED before anything was sent
    expect(c.grantsIgnored).toBe(2);
    expect(c.writesRefused).toBe(0);
    expect(acked).toBe('pending');
    p.send({ type: FrameType.Ack, lun: 0, seq: 2, flags: 0 });
    await p.clock.advance(0.1);
    expect(acked).toBeUndefined();
  });

  it('random well-formed frames never throw out of the link callback, under either policy', async () => {
    // Stream frames mostly carry the next sequence number (so they reach the commit log and get
    // processed), sometimes an old or a future one; lock ids and ranges are few, so they clash.
    // LUN 1 is the peer's to write (this controller mirrors LUN 0 to it, so a stream naming 0 is refused).
    const lun = fc.oneof({ arbitrary: fc.constant(1), weight: 6 }, { arbitrary: fc.constantFrom(0, 2), weight: 1 });
    const small = { lun, lockId: fc.integer({ min: 1, max: 6 }) };
    const seq = fc.oneof({ arbitrary: fc.constant(0), weight: 8 }, { arbitrary: fc.integer({ min: 1, max: 12 }), weight: 1 });
    const range = { lba: fc.constantFrom(0, 64, 128, 192, 256, 1000, 1100), count: fc.constantFrom(1, 8, 8, 64, 200) };
    const lock = fc.record({ type: fc.constant(FrameType.Lock as const), ...small, seq, flags: fc.constantFrom(0, 1, 2), ...range, mode: fc.constantFrom(LockMode.Write, LockMode.Read) });
    const frame: fc.Arbitrary<Frame> = fc.oneof(
      { arbitrary: lock, weight: 4 },
      fc.record({
        type: fc.constant(FrameType.Write as const), ...small, seq, flags: fc.constantFrom(0, 2), lba: range.lba, tag: fc.nat(9),
        data: fc.constantFrom(1, 512, 1024, 4096).map((n) => new Uint8Array(n)),
      }),
      fc.record({ type: fc.constant(FrameType.Unlock as const), ...small, seq, flags: fc.constantFrom(0, 2) }),
      fc.record({ type: fc.constant(FrameType.Ack as const), lun: small.lun, seq: fc.nat(12), flags: fc.constant(0) }),
      fc.record({ type: fc.constant(FrameType.LockGranted as const), ...small, seq: fc.integer({ min: 1, max: 12 }), flags: fc.constant(0) }),
      fc.record({
        type: fc.constant(FrameType.LockRejected as const), ...small, seq: fc.integer({ min: 1, max: 12 }), flags: fc.constant(0),
        reason: fc.constantFrom(RejectReason.LocalLock, RejectReason.MirrorLock, RejectReason.TableFull), action: fc.constantFrom(RejectAction.Held, RejectAction.Discarded),
      }),
      fc.record({
        type: fc.constant(FrameType.Hello as const), lun: fc.constant(0), seq: fc.nat(12), flags: fc.constantFrom(0, 2, 8, 10), controllerId: fc.nat(3),
        sessionId: fc.integer({ min: 1, max: 3 }), windowBytes: fc.constantFrom(0, 1, 100, 1 << 20), windowEntries: fc.constantFrom(0, 1, 3, 1024),
        policy: fc.constantFrom(LockRejectPolicy.HaltResume, LockRejectPolicy.Retransmit), locksWindow: fc.constantFrom(1, 2, 64),
        features: fc.constantFrom(0, 1, 0x80000000), requiredFeatures: fc.constant(0), connection: fc.constant(0), connections: fc.constantFrom(1, 2),
        peerSession: fc.nat(3),
      }),
      fc.record({
        type: fc.constant(FrameType.Heartbeat as const), lun: fc.constant(0), seq: fc.integer({ min: 1, max: 12 }), flags: fc.constantFrom(0, 4),
        controllerId: fc.nat(3), sessionId: fc.integer({ min: 1, max: 3 }), confirmedSeq: fc.nat(12), peerSession: fc.nat(3),
      }),
      fc.record({ type: fc.constant(FrameType.Nak as const), lun: small.lun, seq: fc.integer({ min: 1, max: 12 }), flags: fc.constant(0), reason: fc.integer({ min: 1, max: 7 }) as fc.Arbitrary<NakReason> }),
    );
    const step = fc.oneof({ arbitrary: frame, weight: 8 }, { arbitrary: fc.constantFrom('write' as const, 'tick' as const, 'local' as const), weight: 1 });
    let tableFull = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 40 }), fc.constantFrom('halt-resume' as const, 'retransmit' as const), async (steps, policy) => {
        const p = new RawPeer({ mirrorLun0: true, lun1: true, onLockReject: policy, limits: { locksMax: 2 } });
        let next = 1;
        let lba = 0;
        for (const s of steps) {
          if (s === 'tick') await p.clock.advance(1);
          else if (s === 'write') p.controller.submitWrite(0, (lba++ % 16) * 8, new Uint8Array(4096), () => {});
          else if (s === 'local') void p.controller.localLock(1, 0, 64, 'write').then((h) => p.clock.setTimeout(() => h.release(), 3), () => {});
          else if (s.type === FrameType.Lock || s.type === FrameType.Write || s.type === FrameType.Unlock) p.send({ ...s, seq: s.seq === 0 ? next++ : s.seq });
          else p.send(s); // a throw here fails the property
        }
        await p.clock.advance(200);
        expect(p.controller.failure).toBeNull();
        tableFull += p.target().tableFullRejections;
        p.controller.stop();
      }),
      { numRuns: 400 },
    );
    expect(tableFull).toBeGreaterThan(0); // the runs did reach a full lock table
  });
});
