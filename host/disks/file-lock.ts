import { randomBytes } from 'node:crypto';
import { link, open, readFile, stat, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { DiskImageError } from './errors.ts';
import { currentOwner, formatOwner, judgeOwner, parseOwner, type LockOwner } from './lock-owner.ts';

/** Tries to create the lock before giving up; each failed takeover race costs one. */
export const LOCK_ATTEMPTS_MAX = 20;
/** Pause between attempts while another opener holds the takeover mutex (real time, ms). */
export const LOCK_RETRY_MS = 5;
/**
 * A lock file that names no owner (empty or damaged) is stale once it is this old (ms, by its
 * mtime). Ours are never empty (see {@link ImageLock}); one can be after a machine crash that lost
 * its data, or if some other tool made it. Younger ones are treated as in use, to be safe.
 */
export const LOCK_UNREADABLE_STALE_MS = 10_000;
/** A takeover mutex is held for a few syscalls; one older than this (ms) was left by a crash. */
export const TAKEOVER_STALE_MS = 2_000;

/**
 * An exclusive lock on a disk image: `<real path of the image>.lock`, naming its owner
 * ({@link LockOwner}: pid, host, boot id, process start time, a random token). What it decides:
 *
 * - **One name per image.** The caller passes the image's real path (symlinks and `..` resolved
 *   by `realpath` once the image is open), so a symlink to an image in use is refused too. Hard
 *   links (two names of one inode) are not caught: nobody makes those to disk images by accident.
 * - **Never empty.** The owner is written to a private temporary file (and fsynced), then
 *   `link()`ed into place: the link fails if the lock exists, and a lock file that exists is
 *   complete. (`open('wx')` then write would leave an empty file in between, which another
 *   opener must not mistake for a stale lock.) The filesystem must support hard links.
 * - **Stale locks are taken over, by one process.** A lock whose owner cannot be running (dead
 *   pid, reused pid, previous boot) is stale. To remove it an opener takes a short mutex
 *   (`<lock>.takeover`, created the same way), re-reads the lock, and unlinks it only if it still
 *   holds the very bytes judged stale; then it retries the atomic create. Two openers that both
 *   judged one lock stale thus cannot both end up holding the image: the second re-reads the
 *   winner's lock and refuses.
 * - **Advisory.** It keeps mirrorlab processes (and two disks in one process) off one image,
 *   which is what goes wrong in practice; other programs do not look at it.
 */
export class ImageLock {
  readonly path: string;
  private readonly text: string;
  private held = true;

  private constructor(path: string, text: string) {
    this.path = path;
    this.text = text;
  }

  /**
   * Locks the image at `realPath` or throws `DiskImageError` (`ML_ERR_DISK_IN_USE`) naming the
   * owner and how to clear a wrong lock. `shownPath`: the path as the user gave it, for messages.
   * Filesystem errors are thrown as they are (the caller describes them).
   */
  static async acquire(realPath: string, shownPath = realPath, owner?: LockOwner): Promise<ImageLock> {
    const path = `${realPath}.lock`;
    const text = formatOwner(owner ?? (await currentOwner()));
    for (let attempt = 0; attempt < LOCK_ATTEMPTS_MAX; attempt++) {
      if (await createExclusive(path, text)) return new ImageLock(path, text);
      const seen = await readLock(path);
      if (seen === null) continue; // released meanwhile: try again at once
      const refusal = await refusalFor(seen, shownPath, path);
      if (refusal !== null) throw refusal;
      if (!(await removeIfUnchanged(path, seen.text, text))) await sleep(LOCK_RETRY_MS);
    }
    throw new DiskImageError('ML_ERR_DISK_IN_USE',
      `disk image ${shownPath}: could not take over the stale lock file ${path} in ${LOCK_ATTEMPTS_MAX} attempts (other openers kept racing); try again, or delete ${path}`);
  }

  /** Removes the lock file, unless someone else's lock has replaced it (then it is theirs). */
  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    const now = await readFile(this.path, 'utf8').catch(() => null);
    if (now === this.text) await unlink(this.path).catch(() => undefined);
  }
}

interface SeenLock {
  text: string;
  owner: LockOwner | null;
  mtimeMs: number;
}

/** Creates `path` holding `text`, atomically and only if it does not exist. False if it exists. */
async function createExclusive(path: string, text: string): Promise<boolean> {
  const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(temp, 'wx');
  try {
    try {
      await fh.writeFile(text);
      await fh.sync(); // a lock that survives a machine crash is complete, not empty
    } finally {
      await fh.close();
    }
    await link(temp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

async function readLock(path: string): Promise<SeenLock | null> {
  try {
    const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { text, owner: parseOwner(text), mtimeMs: st.mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** The error to refuse with if the lock `seen` is live (or cannot be judged), else null: it is stale. */
async function refusalFor(seen: SeenLock, image: string, path: string): Promise<DiskImageError | null> {
  const remedy = `stop that process, or, if it is not using the image (it crashed and its pid was reused), delete ${path}`;
  if (seen.owner === null) {
    if (Date.now() - seen.mtimeMs >= LOCK_UNREADABLE_STALE_MS) return null;
    return new DiskImageError('ML_ERR_DISK_IN_USE',
      `disk image ${image} is locked by ${path}, which names no owner (being written by another tool?); wait ${LOCK_UNREADABLE_STALE_MS / 1000} s for it to count as stale, or delete it`);
  }
  const verdict = await judgeOwner(seen.owner);
  if (verdict === 'dead') return null;
  const who = `process ${seen.owner.pid}${seen.owner.host === null ? '' : ` on ${seen.owner.host}`}`;
  if (verdict === 'remote') {
    return new DiskImageError('ML_ERR_DISK_IN_USE',
      `disk image ${image} is in use by ${who}, another machine, which cannot be checked from here (lock file ${path}); ${remedy}`);
  }
  return new DiskImageError('ML_ERR_DISK_IN_USE', `disk image ${image} is in use by ${who} (lock file ${path}); ${remedy}`);
}

/**
 * Removes the lock at `path` if it still holds `staleText`, under the takeover mutex. False if
 * the mutex was busy (another opener is taking over: wait, then look again).
 */
async function removeIfUnchanged(path: string, staleText: string, ownText: string): Promise<boolean> {
  const mutex = `${path}.takeover`;
  if (!(await createExclusive(mutex, ownText))) {
    await clearStaleMutex(mutex);
    return false;
  }
  try {
    const now = await readFile(path, 'utf8').catch(() => null);
    if (now === staleText) await unlink(path).catch(() => undefined);
    return true;
  } finally {
    await unlink(mutex).catch(() => undefined);
  }
}

/** A takeover mutex whose owner died, or that is far older than a takeover takes, is removed. */
async function clearStaleMutex(mutex: string): Promise<void> {
  const seen = await readLock(mutex);
  if (seen === null) return;
  const old = Date.now() - seen.mtimeMs >= TAKEOVER_STALE_MS;
  if (old || (seen.owner !== null && (await judgeOwner(seen.owner)) === 'dead')) {
    const now = await readFile(mutex, 'utf8').catch(() => null);
    if (now === seen.text) await unlink(mutex).catch(() => undefined);
  }
}
