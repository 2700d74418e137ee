import { describe, expect, it } from 'vitest';
import type { Telemetry } from '../../../firmware/ports/telemetry.ts';
import { FrameType } from '../../../firmware/protocol/frame.ts';
import {
  expectMirrorsEqual, randomWrites, RecordingTelemetry, runConcurrentWrites, runWrites, scriptedFaults, sequentialWrites, settle, smallTopology,
} from '../../support/harness.ts';

const key = (e: { type: string; seq: number; lun: number }): string => `${e.type}:${e.seq}:${e.lun}`;

/** Both directions at once, a refused lock on each side, so every frame type goes both ways. */
async function busyRun(faults?: Parameters<typeof scriptedFaults>[0]) {
  const { topo, tel } = smallTopology({ mode: 'speculative', onLockReject: 'halt-resume', bidirectional: true, rttMs: 1 });
  if (faults) topo.link.setFaults(scriptedFaults(faults));
  const onB = await topo.target.localLock(0, 0, 64, 'write');
  const onA = await topo.source.localLock(1, 0, 64, 'write');
  topo.clock.setTimeout(() => onB.release(), 5);
  topo.clock.setTimeout(() => onA.release(), 7);
  const results = await runConcurrentWrites(topo, [
    { controller: topo.source, lun: 0, specs: sequentialWrites(20, 8) },
    { controller: topo.target, lun: 1, specs: sequentialWrites(20, 8) },
  ], 4);
  for (const r of results.flat()) expect(r.error).toBeUndefined();
  await settle(topo);
  await expectMirrorsEqual(topo);
  return { topo, tel };
}

describe('frame.sent telemetry', () => {
  it('is emitted for every frame each controller sends, with its real LUN, and matches what the peer received', async () => {
    const { tel } = await busyRun();
    for (const [node, peer] of [['A', 'B'], ['B', 'A']] as const) {
      const sent = tel.of('frame.sent').filter((e) => e.node === node);
      const received = tel.of('frame.received').filter((e) => e.node === peer);
      expect(new Set(sent.map((e) => e.type))).toEqual(new Set(['HELLO', 'LOCK', 'WRITE', 'UNLOCK', 'ACK', 'LOCK_REJECTED', 'LOCK_GRANTED']));
      // No faults: the link delivers every frame once, so sent and received are the same multiset.
      expect(sent.map(key).sort()).toEqual(received.map(key).sort());
      expect(sent.reduce((n, e) => n + e.bytes, 0)).toBe(received.reduce((n, e) => n + e.bytes, 0));
    }
    // A mirrors LUN 0 to B; B mirrors LUN 1 to A: the stream frames carry those LUNs.
    const streamLuns = (node: string) => new Set(tel.of('frame.sent').filter((e) => e.node === node && e.type === 'WRITE').map((e) => e.lun));
    expect(streamLuns('A')).toEqual(new Set([0]));
    expect(streamLuns('B')).toEqual(new Set([1]));
    expect(tel.of('frame.sent').filter((e) => e.type === 'LOCK_REJECTED').map((e) => `${e.node}:${e.lun}`).sort()).toEqual(['A:1', 'B:0']);
  });

  it('names each frame by its identity (type, seq, connection, bytes, CRC32C): every receive has a send with the same identity', async () => {
    const { tel } = await busyRun();
    const identity = (e: { type: string; seq: number; conn: number; bytes: number; crc: number }): string => `${e.type}:${e.seq}:${e.conn}:${e.bytes}:${e.crc}`;
    for (const [node, peer] of [['A', 'B'], ['B', 'A']] as const) {
      const sent = tel.of('frame.sent').filter((e) => e.node === node);
      const received = tel.of('frame.received').filter((e) => e.node === peer);
      expect(sent.map(identity).sort()).toEqual(received.map(identity).sort());
      // The link has two connections and both carry frames; every CRC is a u32.
      expect(new Set(sent.map((e) => e.conn))).toEqual(new Set([0, 1]));
      for (const e of sent) expect(Number.isInteger(e.crc) && e.crc >= 0 && e.crc <= 0xffffffff).toBe(true);
    }
    // Different frames, different CRCs: the identity tells apart WRITEs of one stream.
    const writes = tel.of('frame.sent').filter((e) => e.node === 'A' && e.type === 'WRITE' && !e.retransmit);
    expect(new Set(writes.map((e) => e.crc)).size).toBe(writes.length);
  });

  it('marks re-sent stream entries as retransmissions, and reports NAKs', async () => {
    const { tel } = await busyRun((dir, type, n) => (type === FrameType.Write && n === 3 ? 'corrupt' : 'pass'));
    const sent = tel.of('frame.sent');
    for (const node of ['A', 'B']) {
      expect(sent.some((e) => e.node === node && e.type === 'NAK')).toBe(true);
      expect(sent.some((e) => e.node === node && e.type === 'WRITE' && e.retransmit)).toBe(true);
    }
    expect(sent.filter((e) => e.type !== 'WRITE' && e.type !== 'LOCK' && e.type !== 'UNLOCK').every((e) => !e.retransmit)).toBe(true);
  });

  it('costs nothing when nobody listens: with telemetry disabled, emit is never called', async () => {
    const silent: Telemetry = {
      enabled: false,
      emit() {
        throw new Error('emit called with telemetry disabled');
      },
    };
    const { topo } = smallTopology({ mode: 'speculative', rttMs: 1, telemetry: silent });
    await runWrites(topo, topo.source, 0, randomWrites(30, 8, 8192), 8);
    await settle(topo);
    await expectMirrorsEqual(topo);
    expect(new RecordingTelemetry().enabled).toBe(true);
  });
});
