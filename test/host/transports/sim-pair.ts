import { VirtualClock } from '../../../host/clock/virtual.ts';
import { SimLink, type SimLinkOptions } from '../../../host/transports/sim.ts';
import type { LinkPair } from './link-contract.ts';

/**
 * A simulated pair on its own virtual clock, for the link contract: 1 ms latency, 1 Gbit/s, a
 * 256 KiB queue per direction (small enough to fill); time passes only through `wait`.
 */
export function simPair(options: Partial<Omit<SimLinkOptions, 'clock' | 'names'>> = {}): LinkPair & { link: SimLink; clock: VirtualClock } {
  const clock = new VirtualClock();
  const link = new SimLink({ clock, names: ['A', 'B'], latencyMs: 1, bandwidthMbps: 1000, queueBytesMax: 256 * 1024, ...options });
  return {
    link, clock, a: link.a, b: link.b,
    wait: async (ms) => void (await clock.run({ untilMs: clock.now() + ms })),
    blackhole: (dir, on) => link.blackhole(dir, on),
    reset: (conn) => void link.reset(conn),
  };
}
