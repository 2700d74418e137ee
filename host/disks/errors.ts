import { MirrorlabError } from '../../firmware/errors.ts';

/**
 * Operating errors of the host's disks beyond the three the BlockDevice port defines
 * (`OutOfRangeError`, `MediaError`, `DeviceFailedError` in firmware/ports/block-device.ts).
 */

/**
 * A request was in flight when the power was cut ({@link MemoryDisk.powerCut}). Its data may
 * or may not have reached the media; whoever issued it is gone too (the host restarted), so
 * nobody should act on it. Not a `DeviceFailedError`: the disk itself is fine afterwards.
 */
export class PowerLossError extends MirrorlabError {
  constructor(device: string) {
    super('ML_ERR_DISK_POWER_LOST', `${device}: power was cut while the request was in flight`);
  }
}

/**
 * A disk image cannot be used: wrong size (`ML_ERR_DISK_IMAGE_SIZE`), already in use
 * (`ML_ERR_DISK_IN_USE`), or anything else that went wrong opening or creating it
 * (`ML_ERR_DISK_IMAGE`: missing directory, a directory given as the path, no permission...). The
 * message is one line: the path, what was wrong, what is expected. The filesystem error, if
 * there was one, is the `cause`, and its errno code (`ENOENT`, `EISDIR`...) is `errno`.
 */
export class DiskImageError extends MirrorlabError {
  readonly errno: string | null;

  constructor(code: 'ML_ERR_DISK_IMAGE_SIZE' | 'ML_ERR_DISK_IN_USE' | 'ML_ERR_DISK_IMAGE', message: string, cause?: unknown) {
    super(code, message);
    if (cause !== undefined) this.cause = cause;
    const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
    this.errno = typeof errno === 'string' ? errno : null;
  }
}
