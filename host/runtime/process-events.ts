import type { LiveLinkStats } from '../transports/live-link.ts';

/**
 * The controller process's own telemetry events, in the same stream as the firmware's
 * (docs/controller-process.md 3). Like firmware events they carry `t` (the process clock, ms since
 * it started) and `node` (the controller's name).
 */
export interface ProcessConfigSummary {
  id: number;
  onLockReject: string;
  luns: { lun: number; role: 'primary' | 'replica' | 'local'; peer: string | null; mode: string | null; volume: string; sectors: number; sectorSize: number }[];
  peers: { name: string; link: string }[];
  /** The limits the config file set (the rest are the firmware's defaults). */
  limits: Record<string, number>;
}

/** What was still queued when the process stopped: per peer, and host writes not yet acknowledged. */
export interface QueuedWork {
  hostWritesInFlight: number;
  peers: {
    peer: string;
    /** Entries in the rollback log: sent or not, none confirmed by the target yet. */
    rollbackEntries: number;
    rollbackBytes: number;
    /** Host writes waiting for room in the rollback log. */
    rollbackWaiting: number;
    commitEntries: number;
    mirrorsNotInSync: number[];
  }[];
}

export type ProcessEvent =
  | { kind: 'process.start'; t: number; node: string; session: number; proc: string; pid: number; host: string; version: string; control: string; config: ProcessConfigSummary }
  /** The firmware's link supervisor declared the link to `peer` up or down; the transport's figures at that moment. */
  | { kind: 'process.link'; t: number; node: string; peer: string; state: 'up' | 'down'; transport: LiveLinkStats | null }
  /** A stop began: `reason` says why (a signal, a control request, a firmware error). */
  | { kind: 'process.stopping'; t: number; node: string; reason: string }
  | { kind: 'process.stop'; t: number; node: string; reason: string; exitCode: number; forced: boolean; queued: QueuedWork }
  /** Lines `fromN`... (`events` of them) could not be written (a collector too far behind, a full disk). */
  | { kind: 'telemetry.lost'; t: number; node: string; fromN: number; events: number };
