import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { assert } from '../../firmware/errors.ts';
import { DeviceFailedError, checkRange, checkWrite, type BlockDevice } from '../../firmware/ports/block-device.ts';
import type { HostClock } from '../clock/clock.ts';
import { DiskImageError } from './errors.ts';
import { ImageLock } from './file-lock.ts';
import { imageError } from './image-errors.ts';
import { rejectLater } from './later.ts';
import { SECTOR_BYTES_MAX } from './memory.ts';
import { RangeLock } from './range-lock.ts';
import { ServiceModel, type ServiceTimeConfig } from './service-time.ts';

export interface FileDiskOptions {
  /** The image file; `<its real path>.lock` is created beside the real file while the disk is open (see ImageLock). */
  path: string;
  sectorSize?: number;
  sectorCount: number;
  clock: HostClock;
  /** Virtual service times (the real I/O's own duration never leaks into virtual time). */
  service?: ServiceTimeConfig;
  /** Create the image (sparse) if it does not exist. Default true. */
  create?: boolean;
  /** Default: the path. */
  name?: string;
  /**
   * Opens the image file (default: `fs/promises` `open`). A test seam: hand back a wrapped
   * handle to watch or fake the real I/O (count `sync` calls, fail a write with EIO).
   */
  openFile?: (path: string, flags: string) => Promise<FileHandle>;
}

/** The image, opened, with its path after symlinks. */
interface OpenedImage {
  handle: FileHandle;
  realPath: string;
}

/**
 * A disk backed by a real image file (docs/design.md 2.4): sparse, positioned reads and writes through
 * one FileHandle, `fsync` on flush. It survives a process restart: reopening the image sees the
 * data (what was flushed for certain; what the OS had written back, too).
 *
 * Every request settles through `clock.settle(io, serviceMs)`: in virtual time it completes
 * exactly `serviceMs` after it was issued, however long the real I/O took, so a simulation with
 * file disks stays a pure function of its seed.
 *
 * Overlapping writes are applied in issue order (each waits for the earlier ones it overlaps),
 * like the memory disk; libuv's thread pool would otherwise be free to reorder them.
 *
 * Power cuts are not modelled: the OS's page cache, not this process, holds what is unflushed.
 */
export class FileDisk implements BlockDevice {
  readonly name: string;
  readonly path: string;
  readonly sectorSize: number;
  readonly sectorCount: number;
  private readonly clock: HostClock;
  private readonly service: ServiceModel;
  private readonly writes = new RangeLock();
  private handle: FileHandle | null;
  private readonly lock: ImageLock;

  private constructor(options: FileDiskOptions, sectorSize: number, handle: FileHandle, lock: ImageLock) {
    this.name = options.name ?? options.path;
    this.path = options.path;
    this.sectorSize = sectorSize;
    this.sectorCount = options.sectorCount;
    this.clock = options.clock;
    this.service = new ServiceModel(options.service ?? {}, options.sectorCount);
    this.handle = handle;
    this.lock = lock;
  }

  /**
   * Opens (or creates) the image, then locks it under its real path (so a symlink to an image in
   * use is refused too), then checks it. Every failure is a `DiskImageError` with a one-line
   * message (path, what was wrong, what is expected): wrong size, in use, or any filesystem
   * error (missing directory, a directory as the path, no permission...).
   */
  static async open(options: FileDiskOptions): Promise<FileDisk> {
    const sectorSize = options.sectorSize ?? 512;
    assert(Number.isInteger(sectorSize) && sectorSize >= 512 && sectorSize <= SECTOR_BYTES_MAX && (sectorSize & (sectorSize - 1)) === 0,
      `${options.path}: sectorSize must be a power of two in [512, ${SECTOR_BYTES_MAX}], got ${sectorSize}`);
    assert(Number.isSafeInteger(options.sectorCount) && options.sectorCount >= 1, `${options.path}: bad sectorCount ${options.sectorCount}`);
    const { path } = options;
    const create = options.create ?? true;
    const bytes = sectorSize * options.sectorCount;
    let image: OpenedImage;
    try {
      image = await openImage(path, bytes, create, options.openFile ?? open);
    } catch (error) {
      throw imageError(error, path, create);
    }
    let lock: ImageLock | null = null;
    try {
      lock = await ImageLock.acquire(image.realPath, path);
      await checkImage(image, path, bytes);
      return new FileDisk(options, sectorSize, image.handle, lock);
    } catch (error) {
      await lock?.release();
      await image.handle.close();
      throw imageError(error, path, create);
    }
  }

  read(lba: number, count: number): Promise<Uint8Array> {
    const handle = this.handle;
    if (handle === null) return rejectLater(this.clock, new DeviceFailedError(this.name, 'closed'));
    try {
      checkRange(this, lba, count);
    } catch (error) {
      return rejectLater(this.clock, error);
    }
    const bytes = count * this.sectorSize;
    return this.clock.settle(readFully(handle, lba * this.sectorSize, bytes), this.service.transferMs(lba, count, bytes));
  }

  write(lba: number, data: Uint8Array): Promise<void> {
    const handle = this.handle;
    if (handle === null) return rejectLater(this.clock, new DeviceFailedError(this.name, 'closed'));
    const count = checkWrite(this, lba, data);
    if (typeof count !== 'number') return rejectLater(this.clock, count);
    const io = this.writes.with(lba, lba + count, () => writeFully(handle, lba * this.sectorSize, data));
    return this.clock.settle(io, this.service.transferMs(lba, count, data.length));
  }

  flush(): Promise<void> {
    const handle = this.handle;
    if (handle === null) return rejectLater(this.clock, new DeviceFailedError(this.name, 'closed'));
    return this.clock.settle(handle.sync(), this.service.flushMs());
  }

  /** Flushes, closes the image and releases its lock. Later requests fail with DeviceFailedError. */
  async close(): Promise<void> {
    const handle = this.handle;
    if (handle === null) return;
    this.handle = null;
    try {
      await handle.sync();
      await handle.close();
    } finally {
      await this.lock.release();
    }
  }
}

/** Opens the image at `path` (creating it, sparse, if asked and absent) and resolves its real path. */
async function openImage(path: string, bytes: number, create: boolean, openFile: NonNullable<FileDiskOptions['openFile']>): Promise<OpenedImage> {
  let handle: FileHandle;
  try {
    handle = await openFile(path, 'r+');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !create) throw error;
    handle = await openFile(path, 'wx+');
    try {
      await handle.truncate(bytes); // sparse: no blocks until written
    } catch (truncateError) {
      await handle.close();
      throw truncateError;
    }
  }
  try {
    if (!(await handle.stat()).isFile()) {
      throw new DiskImageError('ML_ERR_DISK_IMAGE', `disk image ${path} is not a regular file; expected an image file (or a new path to create one)`);
    }
    return { handle, realPath: await realpath(path) };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * Refuses an image of the wrong size, or one that is no longer the file at its real path
 * (replaced between opening and locking: the lock would guard the wrong file).
 */
async function checkImage(image: OpenedImage, path: string, bytes: number): Promise<void> {
  const [opened, named] = await Promise.all([image.handle.stat(), stat(image.realPath)]);
  if (opened.dev !== named.dev || opened.ino !== named.ino) {
    throw new DiskImageError('ML_ERR_DISK_IMAGE', `disk image ${path} was replaced while it was being opened; expected it to stay put: try again`);
  }
  if (opened.size !== bytes) {
    throw new DiskImageError('ML_ERR_DISK_IMAGE_SIZE',
      `disk image ${path} is ${opened.size} bytes, but the disk needs exactly ${bytes} (sectorCount x sectorSize); use an image of that size or a new path`);
  }
}

async function readFully(handle: FileHandle, position: number, bytes: number): Promise<Uint8Array> {
  const out = new Uint8Array(bytes);
  let done = 0;
  while (done < bytes) {
    const { bytesRead } = await handle.read(out, done, bytes - done, position + done);
    if (bytesRead === 0) break; // cannot happen within the checked size; zeros are right if it did
    done += bytesRead;
  }
  return out;
}

async function writeFully(handle: FileHandle, position: number, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
