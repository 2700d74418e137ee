import type { Violation } from '../checker/violation.ts';
import type { EmulateOptions } from '../emulator/options.ts';
import { reproduceCommand } from '../emulator/reproduce.ts';
import { formatDiskFaults } from '../faults/disk-fault-plan.ts';
import { formatLinkFaults } from '../faults/link-fault-plan.ts';
import type { RunRecordEvent } from './events.ts';

/**
 * The first event of a run's trace: what the run was, so that a trace file explains itself (its
 * seed, mode, sector size, and the command that makes it again). Keys in a fixed order, like every
 * trace event, so the same run serialises to the same bytes.
 */
export function runStartEvent(o: EmulateOptions): RunRecordEvent {
  return {
    kind: 'run.start', t: 0, node: 'harness', seed: o.seed, mode: o.mode, onLockReject: o.onLockReject, bidirectional: o.bidirectional,
    sectorSize: o.sourceVolume.sectorSize, writeBytes: o.writeBytes, rttMs: o.rttMs, bandwidthMbps: o.bandwidthMbps,
    faults: formatLinkFaults(o.faults), diskFaults: formatDiskFaults(o.diskFaults), reproduce: reproduceCommand(o),
  };
}

/** A violation the checker found, as a trace event at `nowMs` (when the checks ended). */
export function violationEvent(v: Violation, nowMs: number): RunRecordEvent {
  return { kind: 'violation', t: nowMs, node: v.node, invariant: v.invariant, atMs: v.tMs, lun: v.lun, lba: v.lba, seq: v.seq, message: v.message };
}
