import { MirrorlabError } from '../../firmware/errors.ts';

/**
 * An attached storage target (a USB mass-storage device, a block device on a serial line) cannot
 * be used as asked: absent, in use, mounted, not a block device, of another sector size than the
 * spec says, silent on its line. Raised while the volume is being opened, before any I/O: an
 * operating error, so the CLI prints its one line and exits 2. The message names the device,
 * what was wrong and what would work.
 */
export type AttachedDeviceErrorCode =
  | 'ML_ERR_USB_UNAVAILABLE'
  | 'ML_ERR_USB_NOT_FOUND'
  | 'ML_ERR_USB_AMBIGUOUS'
  | 'ML_ERR_USB_IN_USE'
  | 'ML_ERR_USB_MOUNTED'
  | 'ML_ERR_USB_NOT_MASS_STORAGE'
  | 'ML_ERR_USB_LUN'
  | 'ML_ERR_USB_NOT_READY'
  | 'ML_ERR_SERIAL_DISK_PORT'
  | 'ML_ERR_SERIAL_DISK_IN_USE'
  | 'ML_ERR_SERIAL_DISK_SILENT'
  | 'ML_ERR_SERIAL_DISK_PROTOCOL'
  | 'ML_ERR_DISK_SECTOR_SIZE';

export class AttachedDeviceError extends MirrorlabError {
  declare readonly code: AttachedDeviceErrorCode;

  constructor(code: AttachedDeviceErrorCode, message: string, cause?: unknown) {
    super(code, message);
    if (cause !== undefined) this.cause = cause;
  }
}
