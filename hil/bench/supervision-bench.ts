import type { TelemetryEvent } from '../../firmware/telemetry/events.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from '../emulator/options.ts';
import { runEmulation } from '../emulator/run.ts';
import { parseLinkFaults } from '../faults/link-fault-plan.ts';
import type { TraceEvent, TraceSink } from '../trace/events.ts';

/** The cut of the supervision benchmark: silent both ways, from 50 ms, for 5 s. */
export const SUPERVISION_CUT = { atMs: 50, forMs: 5_000 } as const;
export const SUPERVISION_HEARTBEATS_MS = [20, 100, 500] as const;

export interface SupervisionRow {
  heartbeatMs: number;
  interruptionMs: number;
  probationMs: number;
  /** From the cut's start to the later of the two sides declaring the link down (virtual ms). */
  detectMs: number;
  /** From the cut's end to the link up again on both sides (probation and reconnection). */
  reconnectMs: number;
  /** From the cut's end until the source's rollback log, filled during the cut, is empty again. */
  drainMs: number;
  /** Bytes queued in the rollback log when the link came back. */
  queuedBytes: number;
}

export interface HeartbeatCost {
  heartbeatMs: number;
  /** Heartbeat bytes per second, both directions, over the link's capacity in both directions. */
  shareOfCapacity: number;
  /** Heartbeat bytes over every byte sent, in a steady run at the headline setting. */
  shareOfBytesSent: number;
}

/** Collects the few events the benchmark reads. */
class Watch implements TraceSink {
  readonly enabled = true;
  downs: number[] = [];
  ups: number[] = [];
  /** Times the source's rollback log became empty, and its size when the link came back. */
  empties: number[] = [];
  queuedAtUp = 0;
  private lastBytes = 0;
  emit(e: TraceEvent): void {
    const t = e as TelemetryEvent;
    if (t.kind === 'link.supervision' && t.event === 'down') this.downs.push(t.t);
    if (t.kind === 'link.supervision' && t.event === 'up') {
      this.ups.push(t.t);
      if (t.node === 'A') this.queuedAtUp = Math.max(this.queuedAtUp, this.lastBytes);
    }
    if ((t.kind === 'rollback.append' || t.kind === 'rollback.confirm') && t.node === 'A') {
      this.lastBytes = t.bytes;
      if (t.kind === 'rollback.confirm' && t.entries === 0) this.empties.push(t.t);
    }
  }
}

/**
 * Detection latency, reconnection and drain time after a 5 s silent cut, at heartbeat intervals
 * of 20, 100 and 500 ms (the interruption timeout and probation at their defaults), in virtual time:
 * exact, the same on every machine. Async mirroring, so the hosts keep writing through the cut and
 * the rollback log holds a backlog to drain when the link comes back.
 */
export async function measureSupervision(): Promise<SupervisionRow[]> {
  const rows: SupervisionRow[] = [];
  const { atMs, forMs } = SUPERVISION_CUT;
  const healMs = atMs + forMs;
  for (const heartbeatMs of SUPERVISION_HEARTBEATS_MS) {
    const watch = new Watch();
    const opts: EmulateOptions = {
      ...DEFAULT_EMULATE, mode: 'async', writes: 200_000, durationMs: healMs + 500, queueDepth: 32, heartbeatMs,
      faults: parseLinkFaults(`silent=${atMs}ms+${forMs}ms`),
    };
    const report = await runEmulation(opts, { tap: watch });
    if (report.verdict !== 'consistent') throw new Error(`supervision bench at ${heartbeatMs} ms heartbeats was inconsistent: ${report.reproduce}`);
    const downs = watch.downs.filter((t) => t >= atMs);
    const ups = watch.ups.filter((t) => t >= healMs);
    const drainedAt = watch.empties.find((t) => t >= healMs) ?? report.virtualTimeMs;
    rows.push({
      heartbeatMs, interruptionMs: opts.interruptionMs, probationMs: opts.probationMs,
      detectMs: round(Math.max(...downs) - atMs), reconnectMs: round(Math.max(...ups) - healMs), drainMs: round(drainedAt - healMs),
      queuedBytes: watch.queuedAtUp,
    });
  }
  return rows;
}

/**
 * What heartbeats cost at the defaults (one every 100 ms each way): their share of the link's
 * capacity, computed from the frame size and the rate, and their share of the bytes a steady run
 * at the headline setting sent (measured on the simulated link, which carries them with the data).
 */
export async function measureHeartbeatCost(): Promise<HeartbeatCost> {
  const heartbeatMs = DEFAULT_EMULATE.heartbeatMs;
  const heartbeatBytes = 48 + 8 + 4;
  const capacityBytesPerSec = (DEFAULT_EMULATE.bandwidthMbps * 1e6) / 8;
  const shareOfCapacity = (heartbeatBytes * (1000 / heartbeatMs)) / capacityBytesPerSec;
  const report = await runEmulation({ ...DEFAULT_EMULATE, writes: 20_000, queueDepth: 32 });
  const shares = Object.values(report.linkSupervision).map((l) => l.heartbeatShare);
  return { heartbeatMs, shareOfCapacity: round(shareOfCapacity), shareOfBytesSent: round(Math.max(...shares)) };
}

const round = (x: number): number => Math.round(x * 1e9) / 1e9;
