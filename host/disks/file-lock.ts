import { open, readFile, unlink } from 'node:fs/promises';
import { DiskImageError } from './errors.ts';

/** How many times a stale lock may be taken over in one attempt (another opener may race us). */
const STALE_TAKEOVERS_MAX = 3;

/**
 * An exclusive lock on a disk image: `<image>.lock`, created with 'wx' (fails if it exists),
 * holding the owner's pid. A lock whose pid is no longer running is stale (its owner crashed)
 * and is taken over. Advisory: it keeps mirrorlab processes (and two disks in one process) off
 * one image, which is what goes wrong in practice.
 */
export class ImageLock {
  readonly path: string;
  private held = true;

  private constructor(path: string) {
    this.path = path;
  }

  static async acquire(imagePath: string, pid = process.pid): Promise<ImageLock> {
    const path = `${imagePath}.lock`;
    for (let attempt = 0; ; attempt++) {
      try {
        const fh = await open(path, 'wx');
        try {
          await fh.writeFile(`${pid}\n`);
        } finally {
          await fh.close();
        }
        return new ImageLock(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = await lockOwner(path);
      if (owner !== undefined && isRunning(owner)) {
        throw new DiskImageError('ML_ERR_DISK_IN_USE',
          `disk image ${imagePath} is in use by process ${owner} (lock file ${path}); stop that process, or delete the lock file if it is wrong`);
      }
      if (attempt >= STALE_TAKEOVERS_MAX) {
        throw new DiskImageError('ML_ERR_DISK_IN_USE', `disk image ${imagePath}: could not take over the stale lock file ${path}`);
      }
      await unlink(path).catch(() => undefined); // stale: its owner is gone
    }
  }

  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    await unlink(this.path).catch(() => undefined);
  }
}

async function lockOwner(path: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await readFile(path, 'utf8'), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined; // vanished or unreadable: treat as stale
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else; only ESRCH says it is gone.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
