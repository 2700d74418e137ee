import type { TelemetryEvent } from '../../firmware/telemetry/events.ts';

/** Per-frame link faults, by the names the fault plan uses. */
export type FrameFaultName = 'drop' | 'corrupt' | 'duplicate' | 'reorder' | 'delay';

/**
 * What the harness's link fault injector did, in the same stream as the firmware's telemetry, so
 * that a trace (and its `traceHash`) shows the fault schedule itself and not only its effects.
 * These are the harness's events, not the firmware's: the firmware never sees them.
 *
 * - A per-frame fault: `node` sent the frame to `peer`; `type`, `seq` and `lun` are read from the
 *   frame's header as sent (before any corruption); `delayMs` is the extra delay given (reorder,
 *   delay; for duplicate, the second copy's), 0 for drop and corrupt.
 * - A connection reset (`reset`): `node` sent the frame on data connection `conn` to `peer`; the
 *   connection was reset and the frame lost with it. A lost heartbeat (`hbloss`): `node` sent it
 *   to `peer`; `type` is what its type byte says (HEARTBEAT).
 * - A black hole (docs/simulated-link.md 5), `node` is `link`; each begins with a `.start` (or
 *   `flap.down`) saying `untilMs`, when it will end, and ends with its pair: `partition.start` /
 *   `partition.heal` (a partition of the plan, now a silent black hole both ways),
 *   `silent.start` / `silent.end`, `oneway.start` / `oneway.end` (only frames `from` -> `to`
 *   are lost), `flap.down` / `flap.up` (cycle `cycle` of `cycles`). Episodes of one kind that
 *   overlap make one; the fault phase's end closes every open one at that instant.
 * - `bandwidth` sets the link's speed (also when the fault phase ends and the original returns).
 *
 * Keys are always built in this order, so the same run serialises to the same bytes.
 */
export type HoleFaultEvent =
  | { kind: 'link.fault'; t: number; node: 'link'; fault: 'partition.start' | 'silent.start'; untilMs: number }
  | { kind: 'link.fault'; t: number; node: 'link'; fault: 'partition.heal' | 'silent.end' }
  | { kind: 'link.fault'; t: number; node: 'link'; fault: 'oneway.start'; from: string; to: string; untilMs: number }
  | { kind: 'link.fault'; t: number; node: 'link'; fault: 'oneway.end'; from: string; to: string }
  | { kind: 'link.fault'; t: number; node: 'link'; fault: 'flap.down'; cycle: number; cycles: number; untilMs: number }
  | { kind: 'link.fault'; t: number; node: 'link'; fault: 'flap.up'; cycle: number; cycles: number };

export type LinkFaultEvent =
  | { kind: 'link.fault'; t: number; node: string; fault: FrameFaultName; peer: string; type: string; seq: number; lun: number; delayMs: number }
  | { kind: 'link.fault'; t: number; node: string; fault: 'reset'; peer: string; conn: number; type: string; seq: number; lun: number }
  | { kind: 'link.fault'; t: number; node: string; fault: 'hbloss'; peer: string; type: string }
  | HoleFaultEvent
  | { kind: 'link.fault'; t: number; node: 'link'; fault: 'bandwidth'; mbps: number };

/** Every `fault` a link.fault event can name. */
export type LinkFaultName = LinkFaultEvent['fault'];
/**
 * The harness's own record of a run, for whoever reads the trace alone (the visualizer): what the
 * run was (`run.start`, first, at time 0), and every violation the checker found (`violation`,
 * emitted once the checks are done, so `t` is when the run ended and `atMs` when it happened).
 * `node` is `harness`, or for a violation the controller it names. See trace/run-events.ts.
 */
export type RunRecordEvent =
  | {
    kind: 'run.start'; t: number; node: 'harness'; seed: number; mode: string; onLockReject: string; bidirectional: boolean;
    sectorSize: number; writeBytes: number; rttMs: number; bandwidthMbps: number; faults: string; diskFaults: string; reproduce: string;
  }
  | { kind: 'violation'; t: number; node: string; invariant: string; atMs: number; lun: number; lba: number; seq: number; message: string };

/** Every event a run's trace holds: the firmware's telemetry and the harness's own. */
export type TraceEvent = TelemetryEvent | LinkFaultEvent | RunRecordEvent;

/**
 * A subscriber to the whole trace stream. The firmware's Telemetry port is the narrower
 * interface (it never emits harness events); every TraceSink is also a Telemetry.
 */
export interface TraceSink {
  readonly enabled: boolean;
  emit(event: TraceEvent): void;
}

export const silentTraceSink: TraceSink = { enabled: false, emit() {} };
