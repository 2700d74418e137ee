import { dirname } from 'node:path';
import { MirrorlabError } from '../../firmware/errors.ts';
import { DiskImageError } from './errors.ts';

/** What a filesystem error code means for a disk image, and what would work instead. */
const EXPLAINED: Record<string, (path: string, create: boolean) => string> = {
  ENOENT: (path, create) => (create
    ? `directory ${dirname(path)} does not exist (or the path is a dangling symbolic link); expected a path in an existing directory`
    : 'no such image, and creating one was not asked for; expected an existing image file'),
  EISDIR: () => 'the path is a directory; expected the path of an image file, e.g. DIR/disk.img',
  ENOTDIR: () => 'a component of the path is not a directory; expected a path through directories to an image file',
  EACCES: () => 'permission denied; expected read and write access to the image and to its directory (the lock file is created beside it)',
  EPERM: () => 'operation not permitted; expected read and write access to the image and to its directory, on a filesystem that supports hard links (the lock needs them)',
  EROFS: () => 'the filesystem is read-only; expected the image on a writable filesystem',
  ELOOP: () => 'too many levels of symbolic links; expected a path that resolves to an image file',
  ENAMETOOLONG: () => 'the path is too long; expected a shorter one',
  ENOSPC: () => 'no space left on the device; expected room for the image\'s metadata and its lock file',
  EMFILE: () => 'this process has too many files open; expected fewer disks open at once',
  ENFILE: () => 'the system has too many files open; expected fewer files open',
  ENOTSUP: () => 'the filesystem does not support an operation the image lock needs (hard links); expected a local filesystem such as ext4, xfs, btrfs or tmpfs',
  EOPNOTSUPP: () => 'the filesystem does not support an operation the image lock needs (hard links); expected a local filesystem such as ext4, xfs, btrfs or tmpfs',
  EEXIST: () => 'something appeared at the path while the image was being created (another opener?); expected to create it alone: try again',
};

/**
 * Turns whatever opening or creating the image at `path` threw into a `DiskImageError` with one
 * line saying what was wrong and what is expected (the filesystem error becomes its `cause`).
 * Mirrorlab's own errors (in use, wrong size) pass through; so does anything that is not a
 * filesystem error (a bug stays a bug).
 */
export function imageError(error: unknown, path: string, create: boolean): unknown {
  if (error instanceof MirrorlabError) return error;
  const errno = (error as NodeJS.ErrnoException | null)?.code;
  if (typeof errno !== 'string') return error;
  const explain = EXPLAINED[errno];
  const what = explain ? explain(path, create) : `${(error as Error).message}; expected a readable and writable regular file`;
  return new DiskImageError('ML_ERR_DISK_IMAGE', `disk image ${path}: ${what} (${errno})`, error);
}
