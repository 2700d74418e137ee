import { describe, expect, it } from 'vitest';
import { encodeFrame } from '../../../firmware/protocol/encode.ts';
import { FrameType } from '../../../firmware/protocol/frame.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { SeededRandom } from '../../../host/random.ts';
import { SimLink } from '../../../host/transports/sim.ts';
import { LinkFaultInjector } from '../../../hil/faults/link-fault-injector.ts';
import { LINK_FAULT_LIMITS, parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import type { LinkFaultEvent, TraceEvent, TraceSink } from '../../../hil/trace/events.ts';
import { TraceRecorder } from '../../../hil/trace/trace.ts';

const lock = (seq: number, lun = 0) => encodeFrame({ type: FrameType.Lock, lun, seq, flags: 0, lockId: 1, lba: 0, count: 8, mode: 1 });
const ack = (seq: number) => encodeFrame({ type: FrameType.Ack, lun: 0, seq, flags: 0 });

/** A sink that keeps the link.fault events, and what the clock held when each arrived. */
class Recorder implements TraceSink {
  readonly enabled = true;
  readonly events: LinkFaultEvent[] = [];
  pendingTimersMax = 0;
  constructor(private readonly clock?: VirtualClock) {}
  emit(e: TraceEvent): void {
    if (e.kind === 'link.fault') this.events.push(e);
    if (this.clock) this.pendingTimersMax = Math.max(this.pendingTimersMax, this.clock.pendingTimers);
  }
}

function setup(plan: string, seed = 1, sink?: (clock: VirtualClock) => TraceSink) {
  const clock = new VirtualClock();
  const link = new SimLink({ clock, names: ['A', 'B'], latencyMs: 1, bandwidthMbps: 1000 });
  const trace = sink?.(clock);
  const inj = new LinkFaultInjector(parseLinkFaults(plan), new SeededRandom(seed).fork('link-faults'), link, clock, 1000, trace);
  return { clock, link, inj, trace };
}

describe('LinkFaultInjector: timed faults', () => {
  it('arms one partition at a time, so the most partitions a plan may hold cost one timer', async () => {
    const n = LINK_FAULT_LIMITS.partitionsMax;
    const { clock, inj, trace } = setup(`partition=${n}`, 7, (c) => new Recorder(c));
    const rec = trace as Recorder;
    inj.start();
    expect(clock.pendingTimers).toBe(1);
    await clock.run({ untilMs: inj.timedFaultsEndMs + 1 });
    expect(rec.pendingTimersMax).toBeLessThanOrEqual(1);
    const starts = rec.events.filter((e) => e.fault === 'partition.start');
    const heals = rec.events.filter((e) => e.fault === 'partition.heal');
    expect([starts.length, heals.length, inj.counters.partitions]).toEqual([n, n, n]);
    // Cut, heal, cut, heal...: drawn partitions never overlap, and the last heal is the announced end.
    expect(rec.events.map((e) => e.fault)).toEqual(Array.from({ length: 2 * n }, (_, i) => (i % 2 === 0 ? 'partition.start' : 'partition.heal')));
    expect(heals.at(-1)!.t).toBe(inj.timedFaultsEndMs);
    expect(clock.pendingTimers).toBe(0);
  });

  it('draws the same partition schedule from the same seed, whatever the traffic, and another from another seed', async () => {
    const schedule = async (seed: number, frames: number) => {
      const { clock, link, inj, trace } = setup('partition=20,drop=0.5', seed, () => new Recorder());
      inj.start();
      for (let i = 0; i < frames; i++) link.a.send(lock(i + 1));
      await clock.run({ untilMs: inj.timedFaultsEndMs + 1 });
      return (trace as Recorder).events.filter((e) => e.node === 'link').map((e) => `${e.fault}@${e.t}`);
    };
    const a = await schedule(3, 0);
    expect(a.length).toBe(40);
    expect(await schedule(3, 500)).toEqual(a);
    expect(await schedule(4, 0)).not.toEqual(a);
  });

  it('merges overlapping partitions into one cut, and changes the bandwidth in time order', async () => {
    const { clock, link, inj, trace } = setup('partition=10ms+20ms,partition=15ms+30ms,partition=60ms+5ms,bandwidth=10@50ms,bandwidth=100@5ms', 1, () => new Recorder());
    expect(inj.timedFaultsEndMs).toBe(65);
    inj.start();
    await clock.run({ untilMs: 12 });
    expect(link.isUp).toBe(false);
    await clock.run({ untilMs: 44 });
    expect(link.isUp).toBe(false);
    await clock.run({ untilMs: 100 });
    expect(link.isUp).toBe(true);
    expect((trace as Recorder).events.map((e) => [e.fault, e.t, 'untilMs' in e ? e.untilMs : 'mbps' in e ? e.mbps : null])).toEqual([
      ['bandwidth', 5, 100], ['partition.start', 10, 45], ['partition.heal', 45, null], ['bandwidth', 50, 10], ['partition.start', 60, 65], ['partition.heal', 65, null],
    ]);
    expect(inj.counters).toMatchObject({ partitions: 2, bandwidthChanges: 2 });
  });

  it('heal() ends a partition in progress and restores the bandwidth, and says so in the trace', async () => {
    const { clock, link, inj, trace } = setup('partition=10ms+100ms,bandwidth=10@5ms', 1, () => new Recorder());
    inj.start();
    await clock.run({ untilMs: 20 });
    expect(link.isUp).toBe(false);
    inj.heal();
    expect(link.isUp).toBe(true);
    expect((trace as Recorder).events.slice(-2).map((e) => [e.fault, e.t])).toEqual([['bandwidth', 20], ['partition.heal', 20]]);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('LinkFaultInjector: per-frame faults', () => {
  it('applies each rule to its own frame kinds: drop=0.02:LOCK,drop=0.5:ACK', () => {
    const { inj } = setup('drop=0.02:LOCK,drop=0.5:ACK');
    let lockDrops = 0;
    let ackDrops = 0;
    for (let i = 1; i <= 4000; i++) {
      if (inj.onSend('ab', lock(i))?.length === 0) lockDrops++;
      if (inj.onSend('ba', ack(i))?.length === 0) ackDrops++;
    }
    expect(Math.abs(lockDrops - 80)).toBeLessThan(35);
    expect(Math.abs(ackDrops - 2000)).toBeLessThan(150);
  });

  it('publishes every fault it strikes as a link.fault event naming the frame, its direction and the time', () => {
    const { inj, trace } = setup('drop=1:LOCK,corrupt=1:ACK,duplicate=1:ACK,delay=1@2ms:ACK', 1, () => new Recorder());
    inj.onSend('ba', lock(0x1_0000_0007, 3));
    inj.onSend('ab', ack(9));
    const events = (trace as Recorder).events;
    expect(events[0]).toEqual({ kind: 'link.fault', t: 0, node: 'B', fault: 'drop', peer: 'A', type: 'LOCK', seq: 0x1_0000_0007, lun: 3, delayMs: 0 });
    expect(events.slice(1).map((e) => [e.fault, e.node, 'type' in e ? e.type : '', 'seq' in e ? e.seq : -1])).toEqual([
      ['corrupt', 'A', 'ACK', 9], ['delay', 'A', 'ACK', 9], ['duplicate', 'A', 'ACK', 9],
    ]);
    const delay = events.find((e) => e.fault === 'delay') as Extract<LinkFaultEvent, { peer: string }>;
    expect(delay.delayMs).toBeGreaterThanOrEqual(0);
    expect(delay.delayMs).toBeLessThanOrEqual(2);
    expect(inj.counters).toMatchObject({ framesDropped: 1, framesCorrupted: 1, framesDuplicated: 1, framesDelayed: 1 });
  });

  it('gives a trace whose hash depends on the faults: same seed, same hash; another seed, another hash', () => {
    const hash = (seed: number) => {
      const { inj, trace } = setup('drop=0.1,corrupt=0.1,reorder=0.1', seed, () => new TraceRecorder());
      for (let i = 1; i <= 200; i++) inj.onSend(i % 2 === 0 ? 'ab' : 'ba', lock(i));
      const t = trace as TraceRecorder;
      expect(t.count).toBe(inj.counters.framesDropped + inj.counters.framesCorrupted + inj.counters.framesReordered);
      expect(t.count).toBeGreaterThan(0);
      return t.digest();
    };
    expect(hash(5)).toBe(hash(5));
    expect(hash(6)).not.toBe(hash(5));
  });
});
