import { MirrorlabError } from '../errors.ts';

/**
 * The BlockDevice port (docs/design.md 2.1, 2.4): a disk, an array of disks, an image file or a USB
 * mass-storage unit, addressed in sectors.
 *
 * Contract, checked for every implementation by the shared contract suite:
 * - `lba` and `count` are integers; `[lba, lba + count)` must lie within `[0, sectorCount)`, else
 *   the call rejects with {@link OutOfRangeError}. `data.length` must be a positive multiple of
 *   `sectorSize`, else {@link OutOfRangeError} with code `ML_ERR_DISK_ALIGNMENT`.
 * - `write` may keep reading `data` until its promise settles; the caller must not change the
 *   buffer before then. `read` returns a fresh buffer the caller owns.
 * - A read issued after a write's promise resolved returns that write's data (read-after-write).
 *   Requests still in flight together may complete in any order.
 * - `flush` resolves once every write that resolved before it was called is durable.
 * - Failures are typed: {@link MediaError} names the failing LBA; {@link DeviceFailedError} means
 *   the whole device is gone.
 */
export interface BlockDevice {
  readonly name: string;
  readonly sectorSize: number;
  readonly sectorCount: number;
  read(lba: number, count: number): Promise<Uint8Array>;
  write(lba: number, data: Uint8Array): Promise<void>;
  flush(): Promise<void>;
  /**
   * Optional callback form of `write` for hot paths: the same contract and errors, `done` called
   * exactly once and never before this returns. Like a bio's end_io, it costs no promise, and in a
   * simulation its completion runs at its exact virtual instant without a trip through the event
   * loop. Callers use {@link submitWrite}, which falls back to `write`.
   */
  writeCallback?(lba: number, data: Uint8Array, done: (error?: unknown) => void): void;
}

/** Write through the device's callback path if it has one, else its promise. */
export function submitWrite(dev: BlockDevice, lba: number, data: Uint8Array, done: (error?: unknown) => void): void {
  if (dev.writeCallback) dev.writeCallback(lba, data, done);
  else dev.write(lba, data).then(() => done(), done);
}

export class OutOfRangeError extends MirrorlabError {
  constructor(message: string, code = 'ML_ERR_DISK_RANGE') {
    super(code, message);
  }
}

export class MediaError extends MirrorlabError {
  readonly lba: number;
  constructor(device: string, lba: number, detail = 'unrecoverable read error') {
    super('ML_ERR_DISK_MEDIA', `${device}: ${detail} at LBA ${lba}`);
    this.lba = lba;
  }
}

export class DeviceFailedError extends MirrorlabError {
  constructor(device: string, detail = 'device failed') {
    super('ML_ERR_DISK_FAILED', `${device}: ${detail}`);
  }
}

/**
 * Validates a request against a device's geometry; every implementation calls it first so the
 * errors are the same everywhere.
 */
export function checkRange(dev: BlockDevice, lba: number, count: number): void {
  if (!Number.isInteger(lba) || !Number.isInteger(count) || count < 1 || lba < 0 || lba + count > dev.sectorCount) {
    throw new OutOfRangeError(
      `${dev.name}: request [${lba}, +${count}) is outside the device (sectors 0..${dev.sectorCount - 1}, count >= 1)`,
    );
  }
}

/**
 * A write's sector count after both checks (alignment, then range), or the typed error the device
 * must reject it with. Every device's write path starts with this, so the errors are the same.
 */
export function checkWrite(dev: BlockDevice, lba: number, data: Uint8Array): number | OutOfRangeError {
  try {
    const count = sectorsOf(dev, data);
    checkRange(dev, lba, count);
    return count;
  } catch (error) {
    return error as OutOfRangeError;
  }
}

/** The whole number of sectors in `data`, or an alignment error. */
export function sectorsOf(dev: BlockDevice, data: Uint8Array): number {
  if (data.length === 0 || data.length % dev.sectorSize !== 0) {
    throw new OutOfRangeError(
      `${dev.name}: write of ${data.length} bytes is not a positive multiple of the ${dev.sectorSize}-byte sector`,
      'ML_ERR_DISK_ALIGNMENT',
    );
  }
  return data.length / dev.sectorSize;
}
