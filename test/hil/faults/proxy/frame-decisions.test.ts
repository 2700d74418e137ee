import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, FrameError, FrameType, LockMode } from '../../../../firmware/protocol/index.ts';
import { parseLinkFaults } from '../../../../hil/faults/link-fault-plan.ts';
import { applyFlips, FrameDecider, PASS, type ChannelKind, type FrameDecision } from '../../../../hil/faults/proxy/frame-decisions.ts';

const TCP0 = { dir: 'ab', channel: 'conn0#0', kind: 'tcp' } as const;

const decisions = (plan: string, seed: number, n: number, opts: { type?: number; kind?: ChannelKind; channel?: string; dir?: 'ab' | 'ba' } = {}): FrameDecision[] => {
  const d = new FrameDecider(parseLinkFaults(plan), seed);
  return Array.from({ length: n }, (_, i) => d.decide({ dir: opts.dir ?? 'ab', channel: opts.channel ?? 'conn0#0', kind: opts.kind ?? 'tcp' }, { index: i, type: opts.type ?? FrameType.Write, length: 200 }));
};
const struck = (ds: FrameDecision[], what: keyof FrameDecision): number[] => ds.flatMap((d, i) => (d[what] === true || (what === 'flips' && d.flips.length > 0) ? [i] : []));

describe('FrameDecider', () => {
  it('decides by (seed, direction, channel, frame index): the same key, the same decision, whatever was asked before', () => {
    const plan = 'drop=0.1,corrupt=0.1,duplicate=0.1,reorder=0.1,delay=0.1@20ms';
    const forward = decisions(plan, 7, 500);
    const d = new FrameDecider(parseLinkFaults(plan), 7);
    const backward = Array.from({ length: 500 }, (_, i) => d.decide(TCP0, { index: 499 - i, type: FrameType.Write, length: 200 })).reverse();
    expect(backward).toEqual(forward);
    expect(decisions(plan, 7, 500)).toEqual(forward);
    for (const f of ['drop', 'flips', 'duplicate', 'delayed'] as const) expect(struck(forward, f).length).toBeGreaterThan(20);
    expect(forward.filter((x) => x.overtakers > 0).length).toBeGreaterThan(20);
  });

  it('a different seed, direction or channel decides differently', () => {
    const base = struck(decisions('drop=0.2', 7, 400), 'drop');
    expect(struck(decisions('drop=0.2', 8, 400), 'drop')).not.toEqual(base);
    expect(struck(decisions('drop=0.2', 7, 400, { dir: 'ba' }), 'drop')).not.toEqual(base);
    expect(struck(decisions('drop=0.2', 7, 400, { channel: 'conn0#1' }), 'drop')).not.toEqual(base);
    // About 20%: the rate is honoured.
    expect(base.length).toBeGreaterThan(50);
    expect(base.length).toBeLessThan(110);
  });

  it('targets only the named frame kinds', () => {
    expect(struck(decisions('drop=1:LOCK', 1, 50, { type: FrameType.Lock }), 'drop')).toHaveLength(50);
    for (const type of [FrameType.Write, FrameType.Unlock, FrameType.Ack, FrameType.Heartbeat, FrameType.Hello]) {
      expect(decisions('drop=1:LOCK', 1, 50, { type }).every((d) => d === PASS)).toBe(true);
    }
    expect(struck(decisions('drop=1:ACK|NAK', 1, 10, { type: FrameType.Nak }), 'drop')).toHaveLength(10);
  });

  it('loses heartbeats to hbloss on datagrams and serial lines only, and resets only TCP connections', () => {
    const hb = { type: FrameType.Heartbeat };
    expect(struck(decisions('hbloss=1', 1, 20, { ...hb, kind: 'datagram', channel: 'datagram' }), 'heartbeatLost')).toHaveLength(20);
    expect(struck(decisions('hbloss=1', 1, 20, { ...hb, kind: 'serial', channel: 'serial' }), 'heartbeatLost')).toHaveLength(20);
    expect(decisions('hbloss=1', 1, 20, { ...hb, kind: 'tcp' }).every((d) => d === PASS)).toBe(true);
    expect(decisions('hbloss=1', 1, 20, { type: FrameType.Write, kind: 'serial' }).every((d) => d === PASS)).toBe(true);
    expect(struck(decisions('reset=1', 1, 20), 'reset')).toHaveLength(20);
    expect(decisions('reset=1', 1, 20, { kind: 'serial' }).every((d) => d === PASS)).toBe(true);
  });

  it('corrupts 1-3 distinct bits past the magic, so every corrupted frame fails a CRC', () => {
    const d = new FrameDecider(parseLinkFaults('corrupt=1'), 3);
    const frames = [
      encodeFrame({ type: FrameType.Ack, lun: 0, seq: 9, flags: 0 }),
      encodeFrame({ type: FrameType.Lock, lun: 1, seq: 2, flags: 0, lockId: 4, lba: 8, count: 8, mode: LockMode.Write }),
      encodeFrame({ type: FrameType.Write, lun: 1, seq: 3, flags: 0, lockId: 4, lba: 8, tag: 1, data: new Uint8Array(4096).fill(7) }),
    ];
    for (let i = 0; i < 3000; i++) {
      const frame = frames[i % 3]!;
      const { flips } = d.decide({ ...TCP0, channel: 'x' }, { index: i, type: frame[3]!, length: frame.length });
      expect(flips.length).toBeGreaterThanOrEqual(1);
      expect(flips.length).toBeLessThanOrEqual(3);
      expect(new Set(flips.map((f) => f.at * 8 + Math.log2(f.mask))).size).toBe(flips.length);
      expect(flips.every((f) => f.at >= 2 && f.at < frame.length)).toBe(true);
      const corrupted = applyFlips(frame, flips);
      expect(() => decodeFrame(corrupted)).toThrow(FrameError);
      expect([...frame.subarray(0, 2)]).toEqual([0x4d, 0x4c]);
    }
  });

  it('draws a delay within the maximum, and 1 to 3 overtakers for a reorder', () => {
    const ds = decisions('delay=1@20ms,reorder=1', 5, 300);
    expect(ds.every((x) => x.delayed && x.delayMs >= 0 && x.delayMs <= 20)).toBe(true);
    expect(new Set(ds.map((x) => x.overtakers))).toEqual(new Set([1, 2, 3]));
  });
});
