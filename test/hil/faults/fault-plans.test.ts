import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { SeededRandom } from '../../../host/random.ts';
import { SimLink } from '../../../host/transports/sim.ts';
import { formatDiskFaults, parseDiskFaults } from '../../../hil/faults/disk-fault-plan.ts';
import { LinkFaultInjector } from '../../../hil/faults/link-fault-injector.ts';
import { formatLinkFaults, parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { encodeFrame } from '../../../firmware/protocol/encode.ts';
import { FrameType } from '../../../firmware/protocol/frame.ts';

describe('link fault plans', () => {
  it('parse every fault kind, with targeted frame kinds, and format back to the same plan', () => {
    const text = 'drop=0.02:LOCK,corrupt=1%,duplicate=0.001,reorder=0.05:ACK|NAK,delay=0.1@5ms,partition=2,partition=100ms+50ms,bandwidth=10@200ms';
    const plan = parseLinkFaults(text);
    expect(plan.drop).toEqual({ perMillion: 20_000, kinds: ['LOCK'] });
    expect(plan.corrupt).toEqual({ perMillion: 10_000, kinds: [] });
    expect(plan.reorder?.kinds).toEqual(['ACK', 'NAK']);
    expect(plan.delayMaxMs).toBe(5);
    expect(plan.partitionsDrawn).toBe(2);
    expect(plan.partitions).toEqual([{ atMs: 100, forMs: 50 }]);
    expect(plan.bandwidth).toEqual([{ atMs: 200, mbps: 10 }]);
    expect(parseLinkFaults(formatLinkFaults(plan))).toEqual(plan);
    expect(formatLinkFaults(parseLinkFaults('none'))).toBe('none');
  });

  it.each([
    ['drop', /has no value/],
    ['drop=1.5', /not a probability/],
    ['drop=-1', /not a probability/],
    ['teleport=0.1', /unknown fault "teleport"/],
    ['drop=0.1:FOO', /unknown frame kind "FOO"/],
    ['delay=0.1', /needs a maximum/],
    ['partition=soon', /partition takes a count/],
    ['partition=10ms+xyz', /not a duration/],
    ['bandwidth=0@1ms', /MBPS > 0/],
  ])('refuse %s with a message saying what is allowed', (text, message) => {
    expect(() => parseLinkFaults(text)).toThrow(message);
  });
});

describe('disk fault plans', () => {
  it('parse and format every item', () => {
    const items = parseDiskFaults('fail=source:1@50ms,bad=target:0:12,corrupt=target:1:3,slow=source:2:4');
    expect(items).toEqual([
      { kind: 'fail', side: 'source', member: 1, atMs: 50 },
      { kind: 'bad', side: 'target', member: 0, count: 12 },
      { kind: 'corrupt', side: 'target', member: 1, count: 3 },
      { kind: 'slow', side: 'source', member: 2, factor: 4 },
    ]);
    expect(parseDiskFaults(formatDiskFaults(items))).toEqual(items);
  });

  it.each(['fail=source:1', 'fail=left:1@5ms', 'bad=source:0', 'slow=target:0:0', 'bad=target:0:99999', 'melt=source:0:1'])('refuse %s', (text) => {
    expect(() => parseDiskFaults(text)).toThrow(/disk-faults/);
  });
});

describe('LinkFaultInjector', () => {
  const ack = encodeFrame({ type: FrameType.Ack, lun: 0, seq: 1, flags: 0 });
  const lock = encodeFrame({ type: FrameType.Lock, lun: 0, seq: 1, flags: 0, lockId: 1, lba: 0, count: 8, mode: 1 });

  function strike(plan: string, seed: number, frame: Uint8Array, n: number) {
    const clock = new VirtualClock();
    const link = new SimLink({ clock, names: ['A', 'B'], latencyMs: 1, bandwidthMbps: 1000 });
    const inj = new LinkFaultInjector(parseLinkFaults(plan), new SeededRandom(seed), link, clock, 1000);
    const fates = Array.from({ length: n }, () => inj.onSend('ab', frame));
    return { inj, fates };
  }

  it('strikes with the planned probability, only the targeted kinds, and the same frames for the same seed', () => {
    const a = strike('drop=0.25:LOCK', 5, lock, 4000);
    expect(Math.abs(a.inj.counters.framesDropped - 1000)).toBeLessThan(120);
    expect(strike('drop=0.25:LOCK', 5, ack, 1000).inj.counters.framesDropped).toBe(0);
    const b = strike('drop=0.25:LOCK', 5, lock, 4000);
    expect(b.fates.map((f) => f?.length ?? 1)).toEqual(a.fates.map((f) => f?.length ?? 1));
  });

  it('corrupts a copy, never the sender\'s bytes, and duplicates as two copies', () => {
    const before = lock.slice();
    const c = strike('corrupt=1', 1, lock, 10);
    expect(lock).toEqual(before);
    for (const f of c.fates) expect(f![0]!.bytes).not.toEqual(lock);
    const d = strike('duplicate=1', 1, ack, 3);
    for (const f of d.fates) expect(f!.length).toBe(2);
  });
});
