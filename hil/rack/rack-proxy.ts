import { emptyLinkFaultPlan, type LinkFaultPlan } from '../faults/link-fault-plan.ts';
import { newLinkFaultCounters, type LinkFaultCounters } from '../faults/link-fault-injector.ts';
import { startSerialFaultProxy, startTcpFaultProxy, type FaultProxy, type ProxyStats } from '../faults/proxy/index.ts';
import type { RackWiring } from './rack-configs.ts';

/** The proxy's ends of the two PTY pairs (serial) or the listener it relays to (TCP). */
export type ProxyWiring =
  | { link: 'tcp'; listenPort: number; proxyPort: number }
  | { link: 'serial'; innerA: string; innerB: string };

const BAUD = 115_200;
/** Tries to take the proxy's port again for the healed proxy, in case another process took it meanwhile. */
const RESTART_TRIES = 5;

/**
 * The fault proxy of a rack (docs/rack.md 1), and its heal. The proxy has no switch to stop
 * injecting, so healing puts a clean proxy (no faults) in the faulty one's place, on the same port
 * or the same PTY ends: the controllers' connections through the faulty one close, and their
 * supervisors reconnect through the clean one, as after any connection loss.
 */
export class RackProxy {
  private proxy: FaultProxy | null = null;
  private faultyStats: ProxyStats | null = null;

  private constructor(private readonly wiring: ProxyWiring, private readonly seed: number) {}

  static async start(wiring: ProxyWiring, plan: LinkFaultPlan, seed: number): Promise<RackProxy> {
    const p = new RackProxy(wiring, seed);
    p.proxy = await p.open(plan);
    return p;
  }

  /** The faulty proxy's stats (frozen at the heal). */
  stats(): ProxyStats | null {
    return this.faultyStats ?? this.proxy?.stats() ?? null;
  }

  get healed(): boolean {
    return this.faultyStats !== null;
  }

  /** Replaces the faulty proxy with a clean one. */
  async heal(): Promise<void> {
    if (this.faultyStats !== null || this.proxy === null) return;
    this.faultyStats = this.proxy.stats();
    await this.proxy.stop();
    this.proxy = null;
    for (let attempt = 1; ; attempt++) {
      try {
        this.proxy = await this.open(emptyLinkFaultPlan());
        return;
      } catch (error) {
        if (attempt >= RESTART_TRIES) throw error;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  }

  async stop(): Promise<void> {
    const p = this.proxy;
    this.proxy = null;
    await p?.stop();
  }

  private open(plan: LinkFaultPlan): Promise<FaultProxy> {
    const w = this.wiring;
    if (w.link === 'tcp') {
      const [listen, to] = [{ host: '127.0.0.1', port: w.proxyPort }, { host: '127.0.0.1', port: w.listenPort }];
      return startTcpFaultProxy({ plan, seed: this.seed, listen, to });
    }
    return startSerialFaultProxy({ plan, seed: this.seed, pathA: w.innerA, pathB: w.innerB, baud: BAUD });
  }
}

/** The proxy's stats as the simulator's fault counters (`hil/faults/link-fault-injector.ts`), both directions together. */
export function faultCountersOf(stats: ProxyStats | null): LinkFaultCounters {
  const c = newLinkFaultCounters();
  if (stats === null) return c;
  for (const d of Object.values(stats.directions)) {
    c.framesDropped += d.total.framesDropped;
    c.framesCorrupted += d.total.framesCorrupted;
    c.framesDuplicated += d.total.framesDuplicated;
    c.framesReordered += d.total.framesReordered;
    c.framesDelayed += d.total.framesDelayed;
    c.heartbeatsLost += d.total.heartbeatsLost;
  }
  c.partitions = stats.holes.partitions;
  c.silentCuts = stats.holes.silentCuts;
  c.onewayCuts = stats.holes.onewayCuts;
  c.flapCycles = stats.holes.flapCycles;
  c.bandwidthChanges = stats.holes.bandwidthChanges;
  c.resets = stats.connections.resets;
  return c;
}

/** Every fault counted, as one number (the progress line's). */
export function faultsTotal(c: LinkFaultCounters): number {
  return Object.values(c).reduce((n, v) => n + v, 0);
}

export type { RackWiring };
