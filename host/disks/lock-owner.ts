import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';

/**
 * Who holds an image lock, as written in the lock file: the pid on its first line (so `cat`
 * answers the first question), then `key=value` lines. Besides the pid it records what makes a
 * recorded pid checkable after the fact, which a bare pid is not:
 * - `host`: a lock written by another machine (an image on a shared filesystem) cannot be
 *   checked from here at all, so it is never judged stale;
 * - `boot` (Linux's boot id): a lock from before the last reboot is stale whatever its pid;
 * - `start` (the process's start time in clock ticks since boot, /proc/PID/stat field 22): a
 *   running process with the recorded pid but another start time reused the pid, and the lock
 *   is stale. Without this a crashed owner whose pid was reused blocks the image for good.
 * - `token`: random, so that every acquisition writes distinct bytes, and a takeover or a release
 *   can tell "the lock I looked at" from "a new lock with the same pid".
 * `boot` and `start` are absent where /proc is not; the check then falls back to the pid alone.
 */
export interface LockOwner {
  pid: number;
  host: string | null;
  boot: string | null;
  start: string | null;
  token: string | null;
}

/** Who this process is, for a new lock file. */
export async function currentOwner(): Promise<LockOwner> {
  return {
    pid: process.pid,
    host: hostname(),
    boot: await bootId(),
    start: await startTicks(process.pid),
    token: randomBytes(8).toString('hex'),
  };
}

export function formatOwner(owner: LockOwner): string {
  const lines = [String(owner.pid)];
  for (const key of ['host', 'boot', 'start', 'token'] as const) {
    const value = owner[key];
    if (value !== null) lines.push(`${key}=${value}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The owner a lock file names, or null if it names none (empty, damaged, not ours). */
export function parseOwner(text: string): LockOwner | null {
  const [first, ...rest] = text.split('\n');
  const pid = Number(first?.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  const owner: LockOwner = { pid, host: null, boot: null, start: null, token: null };
  for (const line of rest) {
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    if (eq > 0 && (key === 'host' || key === 'boot' || key === 'start' || key === 'token')) owner[key] = line.slice(eq + 1).trim() || null;
  }
  return owner;
}

/** `alive`: it may be using the image; `dead`: it cannot be; `remote`: another machine's, cannot tell. */
export type OwnerVerdict = 'alive' | 'dead' | 'remote';

/** Judges whether the process a lock file names can still be holding it. */
export async function judgeOwner(owner: LockOwner): Promise<OwnerVerdict> {
  if (owner.host !== null && owner.host !== hostname()) return 'remote';
  const boot = await bootId();
  if (owner.boot !== null && boot !== null && owner.boot !== boot) return 'dead';
  if (!isRunning(owner.pid)) return 'dead';
  if (owner.start !== null) {
    const start = await startTicks(owner.pid);
    if (start !== null && start !== owner.start) return 'dead'; // the pid was reused
  }
  return 'alive';
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

async function bootId(): Promise<string | null> {
  try {
    return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim() || null;
  } catch {
    return null;
  }
}

/** Field 22 of /proc/PID/stat; the command name (field 2) may hold spaces and parentheses. */
async function startTicks(pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null; // fields[0] is field 3
  } catch {
    return null;
  }
}
