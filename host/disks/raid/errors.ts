import { MirrorlabError } from '../../../firmware/errors.ts';
import { DeviceFailedError } from '../../../firmware/ports/block-device.ts';

/**
 * The array has lost more members than its layout tolerates: it is a failed device to its user
 * (so a `DeviceFailedError`, which is what an array of arrays — RAID-10 — sees of a dead pair),
 * with a code of its own.
 */
export class ArrayFailedError extends DeviceFailedError {
  override readonly code: string = 'ML_ERR_RAID_FAILED';
  constructor(array: string, detail: string) {
    super(array, `array failed: ${detail}`);
  }
}

/** The array object was stopped by a power cut; reassemble a new one over the same members. */
export class ArrayStoppedError extends MirrorlabError {
  constructor(array: string) {
    super('ML_ERR_RAID_STOPPED', `${array}: the array was stopped by a power cut; assemble it again from its members`);
  }
}

/** A request the array cannot carry out as asked: bad geometry, no redundancy to rebuild, a rebuild already running. */
export class RaidConfigError extends MirrorlabError {
  constructor(code: 'ML_ERR_RAID_CONFIG' | 'ML_ERR_RAID_BUSY' | 'ML_ERR_RAID_NO_REDUNDANCY', message: string) {
    super(code, message);
  }
}
