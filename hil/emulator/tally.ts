import type { Telemetry } from '../../firmware/ports/telemetry.ts';
import type { TelemetryEvent } from '../../firmware/telemetry/events.ts';

/**
 * Figures of a run that only the targets can give, counted from their telemetry as it happens
 * (a checker-style subscriber: it never looks inside the firmware):
 *
 * - lock grants and refusals *as the target decided them* (the source's own counter of granted
 *   locks counts confirmed LOCK entries, which is every lock sent once the run has drained, so it
 *   cannot show contention); a lock refused several times (retransmit policy) counts each refusal;
 * - the bytes of host writes applied on a target and when the last one was, from which the
 *   mirrored throughput is taken (in async mode the host's own rate can be far above the link's).
 */
export class RunTally implements Telemetry {
  readonly enabled = true;
  locksGranted = 0;
  locksRejected = 0;
  /** Locks granted after at least one refusal. */
  locksGrantedAfterRejection = 0;
  mirroredBytes = 0;
  lastApplyMs = 0;
  /** Locks refused and not yet granted, by `node|peer|lockId`. */
  private readonly refused = new Set<string>();

  constructor(private readonly sectorSize: number) {}

  emit(e: TelemetryEvent): void {
    if (e.kind === 'target.apply') {
      this.mirroredBytes += e.count * this.sectorSize;
      this.lastApplyMs = e.t;
    } else if (e.kind === 'target.lock') {
      if (e.result === 'granted') {
        this.locksGranted++;
        if (this.refused.size > 0 && this.refused.delete(`${e.node}|${e.peer}|${e.lockId}`)) this.locksGrantedAfterRejection++;
      } else if (e.result === 'rejected') {
        this.locksRejected++;
        this.refused.add(`${e.node}|${e.peer}|${e.lockId}`);
      }
    }
  }
}
