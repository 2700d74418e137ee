import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { SimLink } from '../../../host/transports/sim.ts';
import type { LinkHandler } from '../../../firmware/ports/link.ts';

function recorder(clock: VirtualClock) {
  const log: { t: number; bytes: number[] }[] = [];
  const events: string[] = [];
  let writable = 0;
  const handler: LinkHandler = {
    bytes: (chunk) => log.push({ t: clock.now(), bytes: [...chunk] }),
    up: () => events.push('up'),
    down: (why) => events.push(`down:${why}`),
    writable: () => writable++,
  };
  return { log, events, handler, writable: () => writable };
}

describe('SimLink', () => {
  it('delivers in order after serialisation and latency, exactly', async () => {
    const clock = new VirtualClock();
    const link = new SimLink({ clock, names: ['A', 'B'], latencyMs: 0.1, bandwidthMbps: 1000 });
    const b = recorder(clock);
    link.b.attach(b.handler);
    link.a.attach(recorder(clock).handler);
    link.a.send(new Uint8Array(4148).fill(1));
    link.a.send(new Uint8Array(52).fill(2));
    await clock.run();
    // 4148 bytes at 1 Gbit/s = 33.184 us, then 0.1 ms of latency; the second frame queues behind.
    expect(b.log.map((x) => x.t)).toEqual([0.133184, 0.1336]);
    expect(b.log[1]!.bytes[0]).toBe(2);
    expect(link.stats('ab')).toMatchObject({ framesSent: 2, framesDelivered: 2, bytesDelivered: 4200 });
  });

  it('refuses sends beyond its queue and says when there is room again', async () => {
    const clock = new VirtualClock();
    const link = new SimLink({ clock, names: ['A', 'B'], latencyMs: 1, bandwidthMbps: 8, queueBytesMax: 2000 });
    const a = recorder(clock);
    link.a.attach(a.handler);
    link.b.attach(recorder(clock).handler);
    expect(link.a.send(new Uint8Array(1500))).toBe(true);
    expect(link.a.send(new Uint8Array(1000))).toBe(false);
    expect(link.stats('ab').framesRefused).toBe(1);
    await clock.run();
    expect(a.writable()).toBe(1);
    expect(link.a.send(new Uint8Array(1000))).toBe(true);
  });

  it('loses frames in flight when cut, and tells both ends; heal brings it back', async () => {
    const clock = new VirtualClock();
    const link = new SimLink({ clock, names: ['A', 'B'], latencyMs: 5, bandwidthMbps: 1000 });
    const a = recorder(clock);
    const b = recorder(clock);
    link.a.attach(a.handler);
    link.b.attach(b.handler);
    link.a.send(new Uint8Array([1]));
    clock.setTimeout(() => link.cut('partition'), 1);
    clock.setTimeout(() => link.a.send(new Uint8Array([2])), 2);
    clock.setTimeout(() => link.heal(), 3);
    clock.setTimeout(() => link.a.send(new Uint8Array([3])), 4);
    await clock.run();
    expect(b.log.map((x) => x.bytes[0])).toEqual([3]);
    expect(a.events).toEqual(['down:partition', 'up']);
    expect(b.events).toEqual(['down:partition', 'up']);
    expect(link.stats('ab').framesLostDown).toBe(1);
  });

  it('lets a fault hook drop, duplicate, alter and delay frames without touching the sender\'s bytes', async () => {
    const clock = new VirtualClock();
    const link = new SimLink({ clock, names: ['A', 'B'], latencyMs: 1, bandwidthMbps: 1000 });
    const b = recorder(clock);
    link.b.attach(b.handler);
    link.a.attach(recorder(clock).handler);
    let n = 0;
    link.setFaults({
      onSend: (_dir, bytes) => {
        n++;
        if (n === 1) return [];
        if (n === 2) return [{ bytes, extraDelayMs: 0 }, { bytes, extraDelayMs: 0.5 }];
        const copy = bytes.slice();
        copy[0] = 99;
        return [{ bytes: copy, extraDelayMs: 10 }];
      },
    });
    const third = new Uint8Array([3]);
    link.a.send(new Uint8Array([1]));
    link.a.send(new Uint8Array([2]));
    link.a.send(third);
    link.a.send(new Uint8Array([4]));
    await clock.run();
    expect(b.log.map((x) => x.bytes[0])).toEqual([2, 2, 99, 99]);
    expect(third[0]).toBe(3);
  });
});
