import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { SeededRandom } from '../../../host/random.ts';
import { SimLink } from '../../../host/transports/sim.ts';
import { formatDiskFaults, parseDiskFaults } from '../../../hil/faults/disk-fault-plan.ts';
import { LinkFaultInjector } from '../../../hil/faults/link-fault-injector.ts';
import { LINK_FAULT_LIMITS, formatLinkFaults, parseLinkFaults, timedFaultsEndMsMax } from '../../../hil/faults/link-fault-plan.ts';
import { encodeFrame } from '../../../firmware/protocol/encode.ts';
import { FrameType } from '../../../firmware/protocol/frame.ts';

describe('link fault plans', () => {
  it('parse every fault kind, with targeted frame kinds, and format back to the same plan', () => {
    const text = 'drop=0.02:LOCK,corrupt=1%,duplicate=0.001,reorder=0.05:ACK|NAK,delay=0.1@5ms,partition=2,partition=100ms+50ms,bandwidth=10@200ms';
    const plan = parseLinkFaults(text);
    expect(plan.drop).toEqual([{ perMillion: 20_000, kinds: ['LOCK'] }]);
    expect(plan.corrupt).toEqual([{ perMillion: 10_000, kinds: [] }]);
    expect(plan.reorder[0]?.kinds).toEqual(['ACK', 'NAK']);
    expect(plan.delay).toEqual([{ perMillion: 100_000, kinds: [], maxMs: 5 }]);
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
    ['bandwidth=0@1ms', /MBPS above 0/],
  ])('refuse %s with a message saying what is allowed', (text, message) => {
    expect(() => parseLinkFaults(text)).toThrow(message);
  });

  it('keep one rule per fault and frame kind: different kinds are two rules, the same kind twice is refused', () => {
    const plan = parseLinkFaults('drop=0.02:LOCK,drop=0.1:ACK|NAK,delay=0.1@5ms:LOCK,delay=0.2@1ms:ACK');
    expect(plan.drop).toEqual([{ perMillion: 20_000, kinds: ['LOCK'] }, { perMillion: 100_000, kinds: ['ACK', 'NAK'] }]);
    expect(plan.delay).toEqual([{ perMillion: 100_000, kinds: ['LOCK'], maxMs: 5 }, { perMillion: 200_000, kinds: ['ACK'], maxMs: 1 }]);
    expect(parseLinkFaults(formatLinkFaults(plan))).toEqual(plan);
    expect(() => parseLinkFaults('drop=0.1,drop=0.9')).toThrow(/drop is given twice \("drop=0.1" and "drop=0.9"\)/);
    expect(() => parseLinkFaults('drop=0.1,drop=0.9:LOCK')).toThrow(/drop is given twice/);
    expect(() => parseLinkFaults('corrupt=0.02:LOCK|ACK,corrupt=0.1:ACK')).toThrow(/corrupt is given twice for ACK/);
    expect(() => parseLinkFaults('drop=0.1:LOCK|LOCK')).toThrow(/names LOCK twice/);
    expect(() => parseLinkFaults('partition=2,partition=3')).toThrow(/partition=N is given twice/);
    expect(() => parseLinkFaults('partition=10ms+5ms,partition=10ms+5ms')).toThrow(/given twice/);
    expect(() => parseLinkFaults('bandwidth=10@5ms,bandwidth=20@5ms')).toThrow(/two bandwidth changes at 5 ms/);
    expect(parseLinkFaults('partition=10ms+5ms,partition=10ms+6ms').partitions.length).toBe(2);
  });

  it.each([
    ['', /the plan is empty; write none/],
    ['  ', /the plan is empty/],
    ['drop=0.1,,corrupt=0.1', /item 2 of "drop=0.1,,corrupt=0.1" is empty/],
    ['drop=0.1,', /item 2 .* is empty/],
    [',drop=0.1', /item 1 .* is empty/],
  ])('refuse the empty plan or item %j', (text, message) => {
    expect(() => parseLinkFaults(text)).toThrow(message);
  });

  it.each([
    ['partition=999999999', /drawn partitions must be 1 to 10000/],
    ['partition=0', /must be 1 to 10000/],
    ['partition=10001', /must be 1 to 10000/],
    ['partition=9999,partition=1ms+1ms,partition=2ms+1ms', /10001 partitions in all; allowed at most 10000/],
    ['partition=3600001ms+1ms', /partition start .* is 3600001 ms; allowed from 0 to 3600000 ms/],
    ['partition=1ms+3600001ms', /partition length .* allowed above 0 to 3600000 ms/],
    ['partition=1ms+0ms', /allowed above 0/],
    ['partition=1ms+99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999ms', /allowed above 0 to 3600000 ms/],
    ['bandwidth=10@3600001ms', /bandwidth change time .* allowed from 0 to 3600000 ms/],
    ['bandwidth=Infinity@1ms', /MBPS above 0 and at most 1000000/],
    ['bandwidth=2000000@1ms', /at most 1000000/],
    ['delay=0.1@60001ms', /delay maximum 60001 ms is too long; allowed 0 to 60000 ms/],
  ])('bound the timed faults: refuse %s', (text, message) => {
    expect(() => parseLinkFaults(text)).toThrow(message);
  });

  it('accept the limits themselves, and bound the bandwidth changes in number', () => {
    const L = LINK_FAULT_LIMITS;
    expect(parseLinkFaults(`partition=${L.partitionsMax}`).partitionsDrawn).toBe(L.partitionsMax);
    expect(parseLinkFaults(`partition=${L.timedFaultMsMax}ms+${L.timedFaultMsMax}ms,delay=0.1@${L.delayMsMax}ms`).partitions.length).toBe(1);
    const changes = (n: number) => Array.from({ length: n }, (_, i) => `bandwidth=10@${i}ms`).join(',');
    expect(parseLinkFaults(changes(L.bandwidthChangesMax)).bandwidth.length).toBe(L.bandwidthChangesMax);
    expect(() => parseLinkFaults(changes(L.bandwidthChangesMax + 1))).toThrow(/more than 1000 bandwidth changes/);
  });

  it('bound the end of the timed faults whatever the seed', () => {
    expect(timedFaultsEndMsMax(parseLinkFaults('none'))).toBe(0);
    expect(timedFaultsEndMsMax(parseLinkFaults('partition=100ms+50ms,bandwidth=10@400ms'))).toBe(400);
    expect(timedFaultsEndMsMax(parseLinkFaults('partition=2'))).toBe(20 + 2 * 30 + 50);
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

  it.each([
    ['', /the plan is empty; write none/],
    ['bad=target:0:3,,slow=source:0:2', /item 2 .* is empty/],
    ['bad=target:0:3,', /item 2 .* is empty/],
    ['bad=target:0:3,bad=target:0:5', /bad is given twice for target member 0 \("bad=target:0:3" and "bad=target:0:5"\)/],
    ['fail=source:1@5ms,fail=source:1@5ms', /fail is given twice for source member 1/],
    ['fail=source:1@3600001ms', /fail time .* allowed from 0 to 3600000 ms/],
  ])('refuse %j', (text, message) => {
    expect(() => parseDiskFaults(text)).toThrow(message);
  });

  it('accept the same fault on other members or sides, and none', () => {
    expect(parseDiskFaults('bad=target:0:3,bad=target:1:3,bad=source:0:3').length).toBe(3);
    expect(parseDiskFaults('none')).toEqual([]);
    // A slot may fail again later: the second failure hits the spare rebuilt into it.
    expect(parseDiskFaults('fail=source:1@5ms,fail=source:1@9ms').map((f) => f.kind === 'fail' && f.atMs)).toEqual([5, 9]);
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
