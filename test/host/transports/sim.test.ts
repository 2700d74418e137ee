import { describe, expect, it } from 'vitest';
import type { LinkHandler } from '../../../firmware/ports/link.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import type { LinkChannel } from '../../../host/transports/link.ts';
import { SIM_LINK_DEFAULTS, SimLink, type SimLinkOptions } from '../../../host/transports/sim.ts';

/** Everything one end hears, stamped with the virtual time. */
function recorder(clock: VirtualClock) {
  const log: string[] = [];
  const chunks: { t: number; conn: number | 'hb'; first: number; length: number }[] = [];
  const handler: LinkHandler = {
    opened: (conn) => log.push(`${clock.now()} opened ${conn}`),
    closed: (conn, why) => log.push(`${clock.now()} closed ${conn} ${why}`),
    bytes: (conn, chunk) => chunks.push({ t: clock.now(), conn, first: chunk[0]!, length: chunk.length }),
    datagram: (bytes) => chunks.push({ t: clock.now(), conn: 'hb', first: bytes[0]!, length: bytes.length }),
    writable: (conn) => log.push(`${clock.now()} writable ${conn}`),
    traffic: (conn) => log.push(`${clock.now()} traffic ${conn}`),
  };
  return { log, chunks, handler, firsts: (conn?: number | 'hb') => chunks.filter((c) => conn === undefined || c.conn === conn).map((c) => c.first) };
}

function setup(options: Partial<Omit<SimLinkOptions, 'clock' | 'names'>> = {}) {
  const clock = new VirtualClock();
  const link = new SimLink({ clock, names: ['A', 'B'], latencyMs: 1, bandwidthMbps: 1000, ...options });
  const a = recorder(clock);
  const b = recorder(clock);
  link.a.attach(a.handler);
  link.b.attach(b.handler);
  const at = (ms: number, fn: () => void) => clock.setTimeout(fn, ms - clock.now());
  const run = (ms?: number) => clock.run(ms === undefined ? {} : { untilMs: ms });
  return { clock, link, a, b, at, run };
}

/** Both ends open every connection; returns once they are established. */
async function opened(s: ReturnType<typeof setup>, ms = 10) {
  for (let k = 0; k < s.link.connections; k++) {
    s.link.a.open(k);
    s.link.b.open(k);
  }
  await s.clock.run({ untilMs: s.clock.now() + ms });
  for (let k = 0; k < s.link.connections; k++) expect([s.link.a.isOpen(k), s.link.b.isOpen(k)]).toEqual([true, true]);
  s.a.log.length = 0;
  s.b.log.length = 0;
}

const bytes = (first: number, length = 1) => new Uint8Array(length).fill(first);

describe('SimLink: timing and the shared queue', () => {
  it('delivers after serialisation and latency, exactly, with heartbeats queued behind data on the same wire', async () => {
    const s = setup({ latencyMs: 0.1 });
    await opened(s);
    const t0 = s.clock.now();
    s.link.a.send(0, bytes(1, 4148));
    s.link.a.sendDatagram(bytes(2, 52));
    s.link.a.send(1, bytes(3, 52));
    await s.run();
    // 4148 bytes at 1 Gbit/s = 33.184 us, then 0.1 ms of latency; the others queue behind it, 0.416 us each.
    expect(s.b.chunks.map((c) => [c.conn, c.first, Math.round((c.t - t0) * 1e6)])).toEqual([[0, 1, 133_184], ['hb', 2, 133_600], [1, 3, 134_016]]);
    expect(s.link.stats('ab').data).toMatchObject({ framesSent: 2, bytesSent: 4200, framesDelivered: 2, bytesDelivered: 4200 });
    expect(s.link.stats('ab').heartbeat).toMatchObject({ framesSent: 1, bytesSent: 52, framesDelivered: 1 });
    expect(s.link.heartbeatShare('ab')).toBeCloseTo(52 / 4252, 12);
    expect(s.link.heartbeatShare()).toBeCloseTo(52 / 4252, 12);
  });

  it('a long frame is heard arriving every 16 KiB of its serialisation before it arrives whole; none of it through a black hole', async () => {
    const s = setup({ latencyMs: 1, bandwidthMbps: 10 });
    await opened(s);
    const t0 = s.clock.now();
    // 40 KiB at 10 Mbit/s: 32.768 ms on the wire; 16 KiB every 13.1072 ms, the whole after 32.768 + 1 ms.
    s.link.a.send(1, bytes(7, 40 * 1024));
    await s.run();
    const heard = s.b.log.map((l) => l.split(' ')).map(([t, what, conn]) => [Math.round((Number(t) - t0) * 1e4) / 1e4, what, conn]);
    expect(heard).toEqual([[14.1072, 'traffic', '1'], [27.2144, 'traffic', '1']]);
    expect(s.b.chunks.map((c) => [c.conn, c.length, Math.round((c.t - t0) * 1e4) / 1e4])).toEqual([[1, 40 * 1024, 33.768]]);
    // A frame of 16 KiB or less is heard only whole; a black hole swallows the traffic with the frame.
    s.b.log.length = 0;
    s.link.a.send(0, bytes(8, 16 * 1024));
    await s.run();
    expect(s.b.log).toEqual([]);
    s.link.blackhole('ab', true);
    s.link.a.send(0, bytes(9, 40 * 1024));
    await s.run();
    expect(s.b.log).toEqual([]);
  });

  it('refuses any connection once the direction\'s queue is full, drops heartbeats, and tells each refused connection when there is room', async () => {
    const s = setup({ latencyMs: 1, bandwidthMbps: 8, queueBytesMax: 2000, connections: 3 });
    await opened(s);
    expect(s.link.a.send(0, bytes(1, 1500))).toBe(true);
    expect(s.link.a.send(2, bytes(2, 1000))).toBe(false);
    expect(s.link.a.send(1, bytes(3, 1000))).toBe(false);
    s.link.a.sendDatagram(bytes(4, 600));
    expect(s.link.b.send(0, bytes(5, 1000)), 'the other direction has its own queue').toBe(true);
    expect(s.link.stats('ab')).toMatchObject({ sendsRefused: 2 });
    expect(s.link.stats('ab').heartbeat.framesDroppedQueueFull).toBe(1);
    await s.run();
    // 1500 bytes at 8 Mbit/s take 1.5 ms; then both refused connections hear writable.
    expect(s.a.log).toEqual([`${10 + 1.5} writable 1`, `${10 + 1.5} writable 2`]);
    expect(s.link.a.send(1, bytes(3, 1000))).toBe(true);
  });

  it('starves no connection of a saturated link: greedy senders on n connections each carry about 1/n of the bytes', async () => {
    for (const n of [2, 3, 5]) {
      const clock = new VirtualClock();
      const link = new SimLink({ clock, names: ['A', 'B'], latencyMs: 1, bandwidthMbps: 100, queueBytesMax: 64 * 1024, connections: n });
      const delivered = new Array<number>(n).fill(0);
      // Every connection sends 4 KiB frames until refused, and again on every writable: the link alone decides the shares.
      const flood = (k: number) => {
        for (let i = 0; i < 1000 && link.a.send(k, bytes(k, 4096)); i++);
      };
      link.a.attach({ opened: flood, closed: () => undefined, bytes: () => undefined, datagram: () => undefined, writable: flood });
      link.b.attach({ opened: () => undefined, closed: () => undefined, bytes: (k, c) => (delivered[k]! += c.length), datagram: () => undefined, writable: () => undefined });
      for (let k = 0; k < n; k++) {
        link.a.open(k);
        link.b.open(k);
      }
      await clock.run({ untilMs: 200 });
      const total = delivered.reduce((x, y) => x + y, 0);
      expect(total / 1e6 / 0.2, 'the link runs at its bandwidth (MB/s)').toBeGreaterThan(12);
      for (const d of delivered) expect(d / total, `shares ${delivered.map((x) => (x / total).toFixed(3)).join(' ')}`).toBeGreaterThan(1 / (2 * n));
    }
  });

  it('tells the fault hook which channel each frame travels on, and lets it drop, duplicate, alter and delay frames', async () => {
    const s = setup();
    await opened(s);
    const seen: LinkChannel[] = [];
    let n = 0;
    s.link.setFaults({
      onSend: (_dir, frame, channel) => {
        seen.push(channel);
        n++;
        if (n === 1) return [];
        if (n === 2) return [{ bytes: frame, extraDelayMs: 0 }, { bytes: frame, extraDelayMs: 0.5 }];
        const copy = frame.slice();
        copy[0] = 99;
        return [{ bytes: copy, extraDelayMs: 10 }];
      },
    });
    const third = bytes(3);
    s.link.a.send(0, bytes(1));
    s.link.a.send(1, bytes(2));
    s.link.a.sendDatagram(third);
    s.link.a.send(0, bytes(4));
    await s.run();
    expect(seen).toEqual([0, 1, 'datagram', 0]);
    expect(s.b.chunks.map((c) => [c.conn, c.first])).toEqual([[1, 2], [1, 2], ['hb', 99], [0, 99]]);
    expect(third[0]).toBe(3);
  });

  it('refuses sends on a connection this end does not hold open, and counts them', async () => {
    const s = setup();
    expect(s.link.a.send(0, bytes(1))).toBe(false);
    s.link.a.open(0);
    expect(s.link.a.send(0, bytes(1))).toBe(false);
    expect(s.link.stats('ab').sendsNotOpen).toBe(2);
    await s.run();
    expect(s.a.log).toEqual([]);
  });
});

describe('SimLink: connections', () => {
  it('establishes a connection one round trip after both ends want it, and tells both ends at once', async () => {
    const s = setup({ latencyMs: 2 });
    s.at(1, () => s.link.a.open(0));
    s.at(5, () => s.link.b.open(0));
    s.at(6, () => s.link.b.open(0));
    await s.run();
    expect(s.a.log).toEqual(['9 opened 0']);
    expect(s.b.log).toEqual(['9 opened 0']);
    expect([s.link.a.isOpen(1), s.link.b.isOpen(1)]).toEqual([false, false]);
  });

  it('fails a connection attempt through a black hole after the connect timeout, telling each end that wanted it', async () => {
    const s = setup();
    s.link.blackhole('ba', true);
    s.link.a.open(0);
    s.link.b.open(0);
    await s.run();
    const timeout = SIM_LINK_DEFAULTS.connectTimeoutMs;
    expect(timeout).toBe(3_000);
    expect(s.a.log).toEqual([`${timeout} closed 0 connect timed out`]);
    expect(s.b.log).toEqual([`${timeout} closed 0 connect timed out`]);
  });

  it('retries the handshake (SYN at 0, then 1 s): a black hole that lifts in time costs a retry, not a failure', async () => {
    const s = setup({ latencyMs: 5 });
    s.link.blackhole('both', true);
    s.link.a.open(0);
    s.link.b.open(0);
    s.at(500, () => s.link.blackhole('both', false));
    await s.run();
    expect(s.a.log).toEqual(['1010 opened 0']);
    const t = setup({ latencyMs: 5, connectTimeoutMs: 500 });
    t.link.blackhole('ab', true);
    t.link.a.open(0);
    t.link.b.open(0);
    t.at(400, () => t.link.blackhole('ab', false));
    await t.run();
    expect(t.a.log, 'no retry fits within a 500 ms timeout').toEqual(['500 closed 0 connect timed out']);
  });

  it('close: the closer stops at once, what is in flight is lost, and the peer hears one latency later', async () => {
    const s = setup({ latencyMs: 5 });
    await opened(s);
    s.link.a.send(0, bytes(1));
    s.link.b.send(0, bytes(2));
    s.link.a.send(1, bytes(3));
    s.at(12, () => s.link.a.close(0));
    s.at(13, () => expect(s.link.b.send(0, bytes(4)), 'b has not heard: its send is taken, and lost').toBe(true));
    await s.run();
    expect(s.b.log).toEqual(['17 closed 0 closed by peer']);
    expect(s.a.log).toEqual([]);
    expect(s.b.firsts()).toEqual([3]);
    expect(s.a.firsts()).toEqual([]);
    expect(s.link.stats('ab').data.framesLostClosed + s.link.stats('ba').data.framesLostClosed).toBe(3);
  });

  it('a close into a black hole is never heard; a frame from the peer after the hole ends draws a reset', async () => {
    const s = setup({ latencyMs: 5 });
    await opened(s);
    s.link.blackhole('ab', true);
    s.link.a.close(0);
    s.at(100, () => s.link.blackhole('ab', false));
    s.at(200, () => s.link.b.send(0, bytes(1)));
    s.at(201, () => s.link.b.send(0, bytes(2)));
    await s.run();
    // b's first frame (1 byte: 8 ns on the wire) reaches a at 205, which answers with one reset, heard at 210.
    expect(s.b.log).toEqual(['210.000008 closed 0 connection reset']);
    expect(s.a.log).toEqual([]);
    expect(s.a.chunks).toEqual([]);
  });

  it('a handshake that finds an end on a stale connection resets it first; that end then opens afresh', async () => {
    const s = setup({ latencyMs: 5 });
    await opened(s);
    s.link.blackhole('ab', true);
    s.link.a.close(0);
    s.at(50, () => s.link.blackhole('ab', false));
    s.at(60, () => s.link.a.open(0));
    await s.run(100);
    expect(s.b.log).toEqual(['70 closed 0 connection reset']);
    expect(s.a.log).toEqual([]);
    s.link.b.open(0);
    await s.run();
    expect([s.a.log, s.b.log.slice(1)]).toEqual([['110 opened 0'], ['110 opened 0']]);
  });

  it('an end that opens again from inside the reset notification is answered by that handshake, once', async () => {
    const s = setup({ latencyMs: 5 });
    await opened(s);
    const heard = s.b.handler.closed;
    s.b.handler.closed = (conn, why) => {
      heard(conn, why);
      s.link.b.open(conn);
    };
    s.link.blackhole('ab', true);
    s.link.a.close(0);
    s.at(50, () => s.link.blackhole('ab', false));
    s.at(60, () => s.link.a.open(0));
    await s.run(10_000);
    // One reset of b's stale end, one establishment; nothing after it (no reset storm).
    expect(s.b.log).toEqual(['70 closed 0 connection reset', '70 opened 0']);
    expect(s.a.log).toEqual(['70 opened 0']);
    expect([s.link.a.isOpen(0), s.link.b.isOpen(0)]).toEqual([true, true]);
  });

  it('never delivers a frame of an old incarnation on a new one, however late it arrives', async () => {
    const s = setup({ latencyMs: 1 });
    await opened(s);
    s.link.setFaults({ onSend: (_d, frame) => (frame[0] === 1 ? [{ bytes: frame, extraDelayMs: 100 }] : null) });
    s.link.a.send(0, bytes(1));
    s.at(12, () => s.link.a.close(0));
    s.at(20, () => (s.link.a.open(0), s.link.b.open(0)));
    s.at(30, () => s.link.a.send(0, bytes(2)));
    await s.run();
    expect(s.b.log).toEqual(['13 closed 0 closed by peer', '22 opened 0']);
    expect(s.b.firsts(0)).toEqual([2]);
  });

  it('reset: both ends hear it at once, what was in flight on that connection is lost, the others are untouched', async () => {
    const s = setup({ latencyMs: 5 });
    await opened(s);
    s.link.a.send(0, bytes(1));
    s.link.a.send(1, bytes(2));
    s.at(12, () => expect(s.link.reset(0)).toBe(true));
    await s.run();
    expect(s.a.log).toEqual(['12 closed 0 connection reset']);
    expect(s.b.log).toEqual(['12 closed 0 connection reset']);
    expect(s.b.firsts()).toEqual([2]);
    expect([s.link.a.isOpen(1), s.link.b.isOpen(1), s.link.resets]).toEqual([true, true, 1]);
    expect(s.link.reset(0), 'nobody holds connection 0 any more').toBe(false);
  });
});

describe('SimLink: black holes', () => {
  it('loses frames sent into a hole, in flight when it begins, or across a hole that began and ended in flight; tells nobody', async () => {
    const s = setup({ latencyMs: 10 });
    await opened(s, 30);
    const t0 = s.clock.now();
    s.link.a.send(0, bytes(1));
    s.link.a.sendDatagram(bytes(2));
    s.at(t0 + 2, () => s.link.blackhole('ab', true));
    s.at(t0 + 3, () => s.link.a.send(0, bytes(3)));
    s.at(t0 + 4, () => s.link.blackhole('ab', false));
    s.at(t0 + 5, () => s.link.a.send(0, bytes(4)));
    s.at(t0 + 5, () => s.link.b.send(0, bytes(5)));
    await s.run();
    expect(s.b.firsts()).toEqual([4]);
    expect(s.a.firsts()).toEqual([5]);
    expect([s.a.log, s.b.log]).toEqual([[], []]);
    expect(s.link.stats('ab').data.framesLostBlackhole).toBe(2);
    expect(s.link.stats('ab').heartbeat.framesLostBlackhole).toBe(1);
    expect([s.link.isBlackholed('ab'), s.link.isBlackholed('ba')]).toEqual([false, false]);
  });
});

describe('SimLink: inline heartbeats (a serial line)', () => {
  it('carries heartbeats on connection 0\'s stream, in order with the data, whether or not either end holds it open', async () => {
    const s = setup({ connections: 1, heartbeats: 'inline' });
    s.link.a.sendDatagram(bytes(1, 52));
    await s.run();
    expect(s.b.chunks.map((c) => [c.conn, c.first])).toEqual([[0, 1]]);
    s.link.a.open(0);
    await s.run();
    expect(s.a.log, 'open is this end\'s own bookkeeping').toEqual(['1.000416 opened 0']);
    s.link.a.send(0, bytes(2, 100));
    s.link.a.sendDatagram(bytes(3, 52));
    await s.run();
    expect(s.b.chunks.map((c) => [c.conn, c.first])).toEqual([[0, 1], [0, 2], [0, 3]]);
    expect(s.link.stats('ab').heartbeat.bytesSent).toBe(104);
    expect(s.link.stats('ab').data.bytesSent).toBe(100);
    s.link.a.close(0);
    expect(s.link.a.send(0, bytes(4))).toBe(false);
    await s.run();
    expect(s.b.log, 'a close on a serial line tells the peer nothing').toEqual([]);
  });

  it('a reset of the line loses what is in flight, heartbeats included, and tells each end that held it', async () => {
    const s = setup({ connections: 1, heartbeats: 'inline', latencyMs: 5 });
    s.link.a.open(0);
    await s.run();
    s.link.a.send(0, bytes(1));
    s.link.b.sendDatagram(bytes(2));
    s.link.reset(0);
    await s.run();
    expect([s.a.chunks, s.b.chunks]).toEqual([[], []]);
    expect(s.a.log.slice(1).map((l) => l.split(' ').slice(1).join(' '))).toEqual(['closed 0 connection reset']);
    expect(s.b.log).toEqual([]);
  });
});

describe('SimLink: options', () => {
  it.each([
    [{ connections: 0 }, /1 to 64 data connections, got 0/],
    [{ connections: 65 }, /1 to 64/],
    [{ connections: 2, heartbeats: 'inline' as const }, /connections must be 1, got 2/],
    [{ latencyMs: -1 }, /latency must be a finite number >= 0/],
    [{ bandwidthMbps: 0 }, /bandwidth must be a finite number > 0/],
    [{ queueBytesMax: 0 }, /queueBytesMax must be an integer >= 1/],
    [{ connectTimeoutMs: 0 }, /connectTimeoutMs must be > 0/],
  ])('refuses %j', (options, message) => {
    expect(() => setup(options)).toThrow(message);
  });

  it('refuses a connection number it does not have, without printing the argument', () => {
    const s = setup();
    expect(() => s.link.a.open(2)).toThrow(/connection 2 does not exist: this link has 2 \(0 to 1\)/);
    expect(() => s.link.a.send(new Uint8Array(5000) as unknown as number, bytes(1))).toThrow(/^connection a object does not exist/);
  });
});
