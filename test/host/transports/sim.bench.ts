// Wall-clock cost of the simulated link per frame (docs/conventions.md 11: a benchmark, not a test).
// Run: npx tsx test/host/transports/sim.bench.ts
// A sender keeps every connection of an open link busy with 4 KiB frames (a heartbeat every 100
// virtual ms), the virtual clock delivers them; the figure is frames through the link per wall
// second, scheduler included, beside the scheduler alone (as many timers, doing nothing).
import { performance } from 'node:perf_hooks';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { SimLink } from '../../../host/transports/sim.ts';

const FRAMES = 1_000_000;
const frame = new Uint8Array(4148);
const heartbeat = new Uint8Array(52);

async function throughLink(connections: number): Promise<number> {
  const clock = new VirtualClock();
  const link = new SimLink({ clock, names: ['A', 'B'], latencyMs: 0.5, bandwidthMbps: 10_000, queueBytesMax: 1024 * 1024, connections });
  let sent = 0;
  let delivered = 0;
  const flood = (k: number): void => {
    while (sent < FRAMES && link.a.send(k, frame)) sent++;
  };
  link.a.attach({ opened: flood, closed: () => undefined, bytes: () => undefined, datagram: () => undefined, writable: flood });
  link.b.attach({ opened: () => undefined, closed: () => undefined, bytes: () => void delivered++, datagram: () => undefined, writable: () => undefined });
  const beat = (): void => {
    link.a.sendDatagram(heartbeat);
    if (delivered < FRAMES) clock.setTimeout(beat, 100);
  };
  beat();
  for (let k = 0; k < connections; k++) {
    link.a.open(k);
    link.b.open(k);
  }
  const t0 = performance.now();
  await clock.run({ until: () => delivered >= FRAMES });
  const s = (performance.now() - t0) / 1000;
  return delivered / s;
}

/** The floor: the same number of timers, 256 pending at a time (about what the link keeps in flight), doing nothing else. */
async function schedulerAlone(): Promise<number> {
  const clock = new VirtualClock();
  let fired = 0;
  const tick = (): void => {
    if (++fired <= FRAMES - 256) clock.setTimeout(tick, 0.001);
  };
  for (let i = 0; i < 256; i++) clock.setTimeout(tick, i * 0.000004);
  const t0 = performance.now();
  await clock.run();
  return fired / ((performance.now() - t0) / 1000);
}

for (const n of [1, 2, 4]) console.log(`simulated link, ${n} connection(s): ${Math.round(await throughLink(n)).toLocaleString('en')} frames per wall second`);
console.log(`virtual clock alone, one timer per frame: ${Math.round(await schedulerAlone()).toLocaleString('en')} timers per wall second`);
