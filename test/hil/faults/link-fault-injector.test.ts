import { describe, expect, it } from 'vitest';
import type { LinkHandler } from '../../../firmware/ports/link.ts';
import { encodeFrame } from '../../../firmware/protocol/encode.ts';
import { FrameType } from '../../../firmware/protocol/frame.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { SeededRandom } from '../../../host/random.ts';
import { SimLink } from '../../../host/transports/sim.ts';
import { LinkFaultInjector } from '../../../hil/faults/link-fault-injector.ts';
import { HEARTBEAT_FRAME_TYPE, LINK_FAULT_LIMITS, parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import type { LinkFaultEvent, TraceEvent, TraceSink } from '../../../hil/trace/events.ts';
import { TraceRecorder } from '../../../hil/trace/trace.ts';

const lock = (seq: number, lun = 0) => encodeFrame({ type: FrameType.Lock, lun, seq, flags: 0, lockId: 1, lba: 0, count: 8, mode: 1 });
const ack = (seq: number) => encodeFrame({ type: FrameType.Ack, lun: 0, seq, flags: 0 });
/** A heartbeat-shaped frame: an ACK's bytes with the type byte the protocol reserves for HEARTBEAT. */
const heartbeat = (n: number) => {
  const f = ack(n).slice();
  f[3] = HEARTBEAT_FRAME_TYPE;
  return f;
};

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
  /** The link-wide events as [fault, t]. */
  holes(): [string, number][] {
    return this.events.filter((e) => e.node === 'link' && e.fault !== 'bandwidth').map((e) => [e.fault, e.t]);
  }
}

function setup(plan: string, seed = 1) {
  const clock = new VirtualClock();
  const link = new SimLink({ clock, names: ['A', 'B'], latencyMs: 1, bandwidthMbps: 1000 });
  const trace = new Recorder(clock);
  const inj = new LinkFaultInjector(parseLinkFaults(plan), new SeededRandom(seed).fork('link-faults'), link, clock, 1000, trace);
  /** What the link's black holes and the injector's faultActive say at `ms`. */
  const stateAt = async (ms: number) => {
    await clock.run({ untilMs: ms });
    return [link.isBlackholed('ab'), link.isBlackholed('ba'), inj.faultActive];
  };
  return { clock, link, inj, trace, stateAt };
}

/** Both ends of `link` attached to handlers that log what they hear, with every connection opened. */
async function openLink(s: ReturnType<typeof setup>) {
  const log: string[] = [];
  const handler = (end: string): LinkHandler => ({
    opened: () => undefined,
    closed: (conn, why) => log.push(`${end} closed ${conn} ${why}`),
    bytes: (conn, chunk) => log.push(`${end} bytes ${conn} ${chunk[3]}`),
    datagram: (bytes) => log.push(`${end} datagram ${bytes[3]}`),
    writable: () => undefined,
  });
  s.link.a.attach(handler('A'));
  s.link.b.attach(handler('B'));
  for (const k of [0, 1]) {
    s.link.a.open(k);
    s.link.b.open(k);
  }
  await s.clock.run({ untilMs: s.clock.now() + 5 });
  return log;
}

describe('LinkFaultInjector: partitions, now silent black holes', () => {
  it('arms one partition at a time, so the most partitions a plan may hold cost one timer', async () => {
    const n = LINK_FAULT_LIMITS.partitionsMax;
    const { clock, inj, trace } = setup(`partition=${n}`, 7);
    inj.start();
    expect(clock.pendingTimers).toBe(1);
    await clock.run({ untilMs: inj.timedFaultsEndMs + 1 });
    expect(trace.pendingTimersMax).toBeLessThanOrEqual(1);
    const faults = trace.events.map((e) => e.fault);
    // Cut, heal, cut, heal...: drawn partitions never overlap, and the last heal is the announced end.
    expect(faults).toEqual(Array.from({ length: 2 * n }, (_, i) => (i % 2 === 0 ? 'partition.start' : 'partition.heal')));
    expect(trace.events.at(-1)!.t).toBe(inj.timedFaultsEndMs);
    expect(inj.counters.partitions).toBe(n);
    expect(clock.pendingTimers).toBe(0);
  });

  it('draws the same partition schedule from the same seed, whatever the traffic, and another from another seed', async () => {
    const schedule = async (seed: number, frames: number) => {
      const { clock, inj, trace } = setup('partition=20,drop=0.5', seed);
      inj.start();
      for (let i = 0; i < frames; i++) inj.onSend('ab', lock(i + 1), 0);
      await clock.run({ untilMs: inj.timedFaultsEndMs + 1 });
      return trace.holes().map(([f, t]) => `${f}@${t}`);
    };
    const a = await schedule(3, 0);
    expect(a.length).toBe(40);
    expect(await schedule(3, 500)).toEqual(a);
    expect(await schedule(4, 0)).not.toEqual(a);
  });

  it('merges overlapping partitions into one black hole both ways, tells nobody, and changes the bandwidth in time order', async () => {
    const s = setup('partition=10ms+20ms,partition=15ms+30ms,partition=60ms+5ms,bandwidth=10@50ms,bandwidth=100@5ms');
    const log = await openLink(s);
    expect(s.inj.timedFaultsEndMs).toBe(65);
    s.inj.start();
    expect(await s.stateAt(12)).toEqual([true, true, true]);
    expect(await s.stateAt(44)).toEqual([true, true, true]);
    expect(await s.stateAt(100)).toEqual([false, false, false]);
    expect(s.trace.events.map((e) => [e.fault, e.t, 'untilMs' in e ? e.untilMs : 'mbps' in e ? e.mbps : null])).toEqual([
      ['bandwidth', 5, 100], ['partition.start', 10, 45], ['partition.heal', 45, null], ['bandwidth', 50, 10], ['partition.start', 60, 65], ['partition.heal', 65, null],
    ]);
    expect(s.inj.counters).toMatchObject({ partitions: 2, bandwidthChanges: 2 });
    expect(log, 'a black hole is announced to nobody').toEqual([]);
  });

  it('heal() ends a partition in progress and restores the bandwidth, and says so in the trace', async () => {
    const { clock, link, inj, trace, stateAt } = setup('partition=10ms+100ms,bandwidth=10@5ms');
    inj.start();
    expect(await stateAt(20)).toEqual([true, true, true]);
    inj.heal();
    expect([link.isBlackholed('ab'), link.isBlackholed('ba'), inj.faultActive]).toEqual([false, false, false]);
    expect(trace.events.slice(-2).map((e) => [e.fault, e.t])).toEqual([['bandwidth', 20], ['partition.heal', 20]]);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('LinkFaultInjector: silent cuts, one-way cuts, flaps', () => {
  it('a silent cut is a black hole both ways from AT for FOR; frames sent meanwhile are lost and nobody hears of it', async () => {
    const s = setup('silent=10ms+20ms');
    const log = await openLink(s);
    expect(s.inj.timedFaultsEndMs).toBe(30);
    s.inj.start();
    s.clock.setTimeout(() => (s.link.a.send(0, lock(1)), s.link.b.send(1, ack(1))), 15 - s.clock.now());
    expect(await s.stateAt(9)).toEqual([false, false, false]);
    expect(await s.stateAt(10)).toEqual([true, true, true]);
    expect(await s.stateAt(30)).toEqual([false, false, false]);
    s.link.a.send(0, lock(2));
    await s.clock.run();
    expect(log).toEqual([`B bytes 0 ${FrameType.Lock}`]);
    expect(s.trace.events).toEqual([
      { kind: 'link.fault', t: 10, node: 'link', fault: 'silent.start', untilMs: 30 },
      { kind: 'link.fault', t: 30, node: 'link', fault: 'silent.end' },
    ]);
    expect(s.inj.counters.silentCuts).toBe(1);
  });

  it('a one-way cut loses only the named direction; cuts of different kinds add up', async () => {
    const s = setup('oneway=A>B@15ms+30ms,silent=10ms+20ms,oneway=B>A@50ms+5ms');
    expect(s.inj.timedFaultsEndMs).toBe(55);
    s.inj.start();
    expect(await s.stateAt(12)).toEqual([true, true, true]);
    expect(await s.stateAt(35)).toEqual([true, false, true]);
    expect(await s.stateAt(47)).toEqual([false, false, false]);
    expect(await s.stateAt(52)).toEqual([false, true, true]);
    expect(await s.stateAt(60)).toEqual([false, false, false]);
    expect(s.trace.events.filter((e) => e.fault.startsWith('oneway'))).toEqual([
      { kind: 'link.fault', t: 15, node: 'link', fault: 'oneway.start', from: 'A', to: 'B', untilMs: 45 },
      { kind: 'link.fault', t: 45, node: 'link', fault: 'oneway.end', from: 'A', to: 'B' },
      { kind: 'link.fault', t: 50, node: 'link', fault: 'oneway.start', from: 'B', to: 'A', untilMs: 55 },
      { kind: 'link.fault', t: 55, node: 'link', fault: 'oneway.end', from: 'B', to: 'A' },
    ]);
    expect(s.inj.counters).toMatchObject({ onewayCuts: 2, silentCuts: 1 });
  });

  it('refuses a one-way cut between controllers the link does not join, saying which it does', () => {
    expect(() => setup('oneway=A>C@1ms+1ms')).toThrow(/oneway=A>C: the link's controllers are A and B; write A>B or B>A/);
  });

  it('a flap is N cycles of PERIOD: silent for the first half, up for the second', async () => {
    const s = setup('flap=3@10ms@5ms');
    expect(s.inj.timedFaultsEndMs).toBe(30);
    s.inj.start();
    const states: string[] = [];
    for (let t = 4; t <= 32; t += 2) states.push((await s.stateAt(t))[2] ? 'D' : 'u');
    // t = 4, 6, ... 32: down 5-10, 15-20, 25-30.
    expect(states.join('')).toBe('uDDuuuDDuuuDDuu');
    expect(s.trace.events.map((e) => [e.fault, e.t, 'cycle' in e ? e.cycle : null])).toEqual([
      ['flap.down', 5, 1], ['flap.up', 10, 1], ['flap.down', 15, 2], ['flap.up', 20, 2], ['flap.down', 25, 3], ['flap.up', 30, 3],
    ]);
    expect(s.trace.events[0]).toEqual({ kind: 'link.fault', t: 5, node: 'link', fault: 'flap.down', cycle: 1, cycles: 3, untilMs: 10 });
    expect(s.inj.counters.flapCycles).toBe(3);
  });

  it('heal() ends every black hole in progress, each with its closing event, and leaves no timer', async () => {
    const s = setup('silent=10ms+100ms,oneway=B>A@5ms+100ms,flap=5@40ms,partition=1ms+1000ms');
    s.inj.start();
    expect(await s.stateAt(12)).toEqual([true, true, true]);
    s.inj.heal();
    expect([s.link.isBlackholed('ab'), s.link.isBlackholed('ba'), s.inj.faultActive]).toEqual([false, false, false]);
    expect(s.trace.events.filter((e) => e.t === 12).map((e) => e.fault)).toEqual(['partition.heal', 'silent.end', 'oneway.end', 'flap.up']);
    expect(s.clock.pendingTimers).toBe(0);
  });
});

describe('LinkFaultInjector: heartbeat loss and connection resets', () => {
  it('hbloss strikes heartbeats only, with the planned probability', () => {
    const s = setup('hbloss=0.25');
    let lost = 0;
    for (let i = 0; i < 4000; i++) {
      if (s.inj.onSend('ab', heartbeat(i), 'datagram')?.length === 0) lost++;
      expect(s.inj.onSend('ba', lock(i + 1), 0)).toBeNull();
    }
    expect(Math.abs(lost - 1000)).toBeLessThan(120);
    expect(s.inj.counters.heartbeatsLost).toBe(lost);
    expect(s.trace.events[0]).toEqual({ kind: 'link.fault', t: 0, node: 'A', fault: 'hbloss', peer: 'B', type: 'HEARTBEAT' });
  });

  it('a per-frame rule may target HEARTBEAT frames by kind, on the heartbeat channel or inline', () => {
    const s = setup('drop=1:HEARTBEAT');
    expect(s.inj.onSend('ab', heartbeat(1), 'datagram')).toEqual([]);
    expect(s.inj.onSend('ab', heartbeat(2), 0)).toEqual([]);
    expect(s.inj.onSend('ab', lock(1), 0)).toBeNull();
    expect(s.trace.events.map((e) => [e.fault, 'type' in e ? e.type : ''])).toEqual([['drop', 'HEARTBEAT'], ['drop', 'HEARTBEAT']]);
  });

  it('reset=P resets the connection carrying a data frame (the frame is lost with it); the other connection and the heartbeats go on', async () => {
    const s = setup('reset=1');
    const log = await openLink(s);
    s.inj.start();
    expect(s.link.b.send(1, lock(7, 3))).toBe(true);
    s.link.a.sendDatagram(heartbeat(1));
    await s.clock.run();
    expect(log).toEqual(['A closed 1 connection reset', 'B closed 1 connection reset', `B datagram ${HEARTBEAT_FRAME_TYPE}`]);
    expect([s.link.a.isOpen(0), s.link.b.isOpen(0)]).toEqual([true, true]);
    expect(s.trace.events).toEqual([{ kind: 'link.fault', t: 5, node: 'B', fault: 'reset', peer: 'A', conn: 1, type: 'LOCK', seq: 7, lun: 3 }]);
    expect([s.inj.counters.resets, s.link.resets]).toEqual([1, 1]);
  });
});

describe('LinkFaultInjector: per-frame faults', () => {
  it('applies each rule to its own frame kinds: drop=0.02:LOCK,drop=0.5:ACK', () => {
    const { inj } = setup('drop=0.02:LOCK,drop=0.5:ACK');
    let lockDrops = 0;
    let ackDrops = 0;
    for (let i = 1; i <= 4000; i++) {
      if (inj.onSend('ab', lock(i), 0)?.length === 0) lockDrops++;
      if (inj.onSend('ba', ack(i), 1)?.length === 0) ackDrops++;
    }
    expect(Math.abs(lockDrops - 80)).toBeLessThan(35);
    expect(Math.abs(ackDrops - 2000)).toBeLessThan(150);
  });

  it('publishes every fault it strikes as a link.fault event naming the frame, its direction and the time', () => {
    const { inj, trace } = setup('drop=1:LOCK,corrupt=1:ACK,duplicate=1:ACK,delay=1@2ms:ACK');
    inj.onSend('ba', lock(0x1_0000_0007, 3), 0);
    inj.onSend('ab', ack(9), 1);
    const events = trace.events;
    expect(events[0]).toEqual({ kind: 'link.fault', t: 0, node: 'B', fault: 'drop', peer: 'A', type: 'LOCK', seq: 0x1_0000_0007, lun: 3, delayMs: 0 });
    expect(events.slice(1).map((e) => [e.fault, e.node, 'type' in e ? e.type : '', 'seq' in e ? e.seq : -1])).toEqual([
      ['corrupt', 'A', 'ACK', 9], ['delay', 'A', 'ACK', 9], ['duplicate', 'A', 'ACK', 9],
    ]);
    const delay = events.find((e) => e.fault === 'delay') as Extract<LinkFaultEvent, { delayMs: number }>;
    expect(delay.delayMs).toBeGreaterThanOrEqual(0);
    expect(delay.delayMs).toBeLessThanOrEqual(2);
    expect(inj.counters).toMatchObject({ framesDropped: 1, framesCorrupted: 1, framesDuplicated: 1, framesDelayed: 1 });
  });

  it('gives a trace whose hash depends on the faults: same seed, same hash; another seed, another hash', () => {
    const hash = (seed: number) => {
      const clock = new VirtualClock();
      const link = new SimLink({ clock, names: ['A', 'B'], latencyMs: 1, bandwidthMbps: 1000 });
      const trace = new TraceRecorder();
      const inj = new LinkFaultInjector(parseLinkFaults('drop=0.1,corrupt=0.1,reorder=0.1,hbloss=0.1,reset=0.05'), new SeededRandom(seed), link, clock, 1000, trace);
      for (let i = 1; i <= 200; i++) inj.onSend(i % 2 === 0 ? 'ab' : 'ba', i % 3 === 0 ? heartbeat(i) : lock(i), i % 3 === 0 ? 'datagram' : 0);
      const c = inj.counters;
      expect(trace.count).toBe(c.framesDropped + c.framesCorrupted + c.framesReordered + c.heartbeatsLost + c.resets);
      expect([c.heartbeatsLost, c.resets].every((n) => n > 0)).toBe(true);
      return trace.digest();
    };
    expect(hash(5)).toBe(hash(5));
    expect(hash(6)).not.toBe(hash(5));
  });

  it('strikes nothing once healed', () => {
    const { inj } = setup('drop=1,hbloss=1,reset=1');
    inj.heal();
    expect([inj.onSend('ab', lock(1), 0), inj.onSend('ab', heartbeat(1), 'datagram')]).toEqual([null, null]);
  });
});
