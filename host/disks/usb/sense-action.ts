import { DeviceFailedError, MediaError } from '../../../firmware/ports/block-device.ts';
import { SenseKey, senseText, type Sense } from './scsi.ts';

/**
 * What the driver does with the sense data of a failed command (docs/usb-serial-targets.md):
 *
 * - `retry`: the command did not happen for a passing reason (unit attention after a reset or a
 *   power-on, an aborted command, no sense at all): issue it again, within the attempt budget;
 * - `recheck`: a unit attention saying the medium or its capacity may have changed: read the
 *   capacity again before retrying (another medium is a failed device, never silently another disk);
 * - `wait`: the unit is becoming ready: pause, then retry;
 * - `fail`: the error the caller gets. Only a medium error is a {@link MediaError} (it names the
 *   LBA from the information field when the device gave one inside the request, else the request's
 *   first); a unit that is not ready for good, a missing medium, a hardware error, write protection
 *   or a refused command make the whole device {@link DeviceFailedError}.
 */
export type SenseAction =
  | { kind: 'retry' | 'recheck'; why: string }
  | { kind: 'wait'; why: string; ms: number }
  | { kind: 'fail'; error: MediaError | DeviceFailedError };

/** How long to wait for a unit that says it is becoming ready (ASC 04h, ASCQ 01h). */
export const BECOMING_READY_WAIT_MS = 100;

/** ASC 28h: not ready to ready change, medium may have changed. ASC 2Ah/09h: capacity data has changed. */
const MEDIUM_MAY_HAVE_CHANGED = (s: Sense): boolean => s.asc === 0x28 || (s.asc === 0x2a && s.ascq === 0x09);

export function senseAction(device: string, sense: Sense, request: { lba: number; blocks: number } | null): SenseAction {
  const text = senseText(sense);
  switch (sense.key) {
    case SenseKey.NoSense:
    case SenseKey.RecoveredError:
    case SenseKey.AbortedCommand:
      return { kind: 'retry', why: `the command was not completed (${text})` };
    case SenseKey.UnitAttention:
      return MEDIUM_MAY_HAVE_CHANGED(sense)
        ? { kind: 'recheck', why: `unit attention: the medium may have changed (${text})` }
        : { kind: 'retry', why: `unit attention (${text})` };
    case SenseKey.NotReady:
      if (sense.asc === 0x04 && sense.ascq === 0x01) return { kind: 'wait', why: `becoming ready (${text})`, ms: BECOMING_READY_WAIT_MS };
      return { kind: 'fail', error: new DeviceFailedError(device, sense.asc === 0x3a ? `no medium present (${text})` : `not ready (${text})`) };
    case SenseKey.MediumError: {
      const first = request?.lba ?? 0;
      const inside = request !== null && sense.information !== null && sense.information >= first && sense.information < first + request.blocks;
      return { kind: 'fail', error: new MediaError(device, inside ? sense.information! : first, `medium error (${text})`) };
    }
    case SenseKey.DataProtect:
      return { kind: 'fail', error: new DeviceFailedError(device, `write-protected (${text})`) };
    case SenseKey.HardwareError:
      return { kind: 'fail', error: new DeviceFailedError(device, `hardware error (${text})`) };
    case SenseKey.IllegalRequest:
      return { kind: 'fail', error: new DeviceFailedError(device, `the device refused the command (${text})`) };
    default:
      return { kind: 'fail', error: new DeviceFailedError(device, `unexpected ${text}`) };
  }
}
