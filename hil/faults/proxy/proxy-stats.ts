/** What one direction of one channel (a connection, the datagram channel, the serial line) saw and did. */
export function newChannelCounters() {
  return {
    framesSeen: 0, framesForwarded: 0, framesDropped: 0, framesCorrupted: 0, framesDuplicated: 0, framesReordered: 0, framesDelayed: 0,
    heartbeatsLost: 0, framesSwallowed: 0, framesDroppedQueueFull: 0, reorderLimitHits: 0, queuePauses: 0,
    bytesIn: 0, bytesOut: 0, bytesSwallowed: 0, noiseBytes: 0,
  };
}
export type ChannelCounters = ReturnType<typeof newChannelCounters>;

export function newConnectionCounters() {
  return {
    accepted: 0, open: 0, refused: 0, upstreamFailures: 0, preambleTimeouts: 0, badPreambles: 0, resets: 0,
    closesPropagated: 0, closesSwallowed: 0, orphansReset: 0, heldDuringHole: 0, datagramsUnroutable: 0,
  };
}
export type ConnectionCounters = ReturnType<typeof newConnectionCounters>;

export function newHoleCounters() {
  return { partitions: 0, silentCuts: 0, onewayCuts: 0, flapCycles: 0, bandwidthChanges: 0 };
}
export type HoleCounters = ReturnType<typeof newHoleCounters>;

export interface DirectionStats {
  /** Every channel of the direction, closed ones included. */
  total: ChannelCounters;
  /** Per channel: open ones, and the last closed ones (PROXY_LIMITS.channelStatsMax). */
  channels: Record<string, ChannelCounters & { open: boolean }>;
}

/** The proxy's stats (docs/fault-proxy.md 6); directions are keyed `A->B` by the ends' names. */
export interface ProxyStats {
  link: 'tcp' | 'serial';
  seed: number;
  faults: string;
  uptimeMs: number;
  directions: Record<string, DirectionStats>;
  connections: ConnectionCounters;
  holes: HoleCounters & { activeNow: string[] };
  events: { emitted: number; dropped: number };
}

interface Channel {
  name: string;
  counters: ChannelCounters;
  open: boolean;
}

/**
 * The channels of one direction: open ones, the last `closedMax` closed ones, and the totals of
 * those forgotten, so a proxy that outlives thousands of reconnections keeps constant memory.
 */
export class DirectionTally {
  private readonly channels = new Map<string, Channel>();
  private readonly closedOrder: string[] = [];
  private readonly forgotten = newChannelCounters();

  constructor(private readonly closedMax: number) {}

  open(name: string): ChannelCounters {
    const existing = this.channels.get(name);
    if (existing !== undefined) return existing.counters;
    const c: Channel = { name, counters: newChannelCounters(), open: true };
    this.channels.set(name, c);
    return c.counters;
  }

  close(name: string): void {
    const c = this.channels.get(name);
    if (c === undefined || !c.open) return;
    c.open = false;
    this.closedOrder.push(name);
    while (this.closedOrder.length > this.closedMax) {
      const old = this.channels.get(this.closedOrder.shift()!)!;
      addInto(this.forgotten, old.counters);
      this.channels.delete(old.name);
    }
  }

  snapshot(): DirectionStats {
    const total = { ...this.forgotten };
    const channels: DirectionStats['channels'] = {};
    for (const c of this.channels.values()) {
      addInto(total, c.counters);
      channels[c.name] = { ...c.counters, open: c.open };
    }
    return { total, channels };
  }
}

function addInto(into: ChannelCounters, from: ChannelCounters): void {
  for (const k of Object.keys(into) as (keyof ChannelCounters)[]) into[k] += from[k];
}
