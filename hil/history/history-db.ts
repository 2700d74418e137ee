import { randomBytes } from 'node:crypto';
import { access, constants, mkdir, open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import initSqlJs, { type Database, type SqlJsStatic } from 'sql.js';
import { MirrorlabError } from '../../firmware/errors.ts';
import { ImageLock } from '../../host/disks/file-lock.ts';

/**
 * The results history: one SQLite file, read and written through sql.js (SQLite compiled to
 * WebAssembly: nothing to build or download at install time). sql.js holds a database in memory,
 * so a write is read-modify-write of the whole file; docs/history.md 2 says how concurrent writers
 * and crashes are handled: a lock file around the write, and the new file renamed into place.
 */

/** `ML_ERR_HISTORY_BUSY` (lock held too long), `ML_ERR_HISTORY_FORMAT` (not our database), `ML_ERR_HISTORY_SIZE`. */
export class HistoryError extends MirrorlabError {}

/** A history file larger than this is refused (sql.js holds it in memory twice while writing). */
export const HISTORY_BYTES_MAX = 512 * 1024 * 1024;
/** How long a writer waits for another writer's lock before giving up (real time, ms). */
export const LOCK_WAIT_MS_MAX = 30_000;
const LOCK_POLL_MS = 25;
/** The schema this code reads and writes (SQLite's `user_version`). */
export const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS records (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  version TEXT NOT NULL,
  source_hash TEXT NOT NULL,
  git_commit TEXT,
  host TEXT NOT NULL,
  settings TEXT NOT NULL,
  summary TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
  record_id TEXT NOT NULL,
  seed INTEGER NOT NULL,
  run_key TEXT NOT NULL,
  mode TEXT NOT NULL,
  on_lock_reject TEXT NOT NULL,
  verdict TEXT NOT NULL,
  violations TEXT NOT NULL,
  violations_total INTEGER NOT NULL,
  error TEXT,
  trace_hash TEXT,
  reproduce TEXT NOT NULL,
  wall_ms INTEGER,
  writes INTEGER,
  PRIMARY KEY (record_id, seed)
);
CREATE INDEX IF NOT EXISTS runs_seed ON runs (seed);
CREATE INDEX IF NOT EXISTS runs_key ON runs (run_key);
`;

let sql: Promise<SqlJsStatic> | null = null;
const engine = (): Promise<SqlJsStatic> => (sql ??= initSqlJs());

/** `--history`'s default: `$MIRRORLAB_HISTORY`, else `~/.mirrorlab/history.db`. */
export function defaultHistoryPath(): string {
  return process.env.MIRRORLAB_HISTORY || join(homedir(), '.mirrorlab', 'history.db');
}

/** Opens the history at `path` for reading: an empty database when the file does not exist yet. */
export async function readHistory(path: string): Promise<Database> {
  return load(path, await readBytes(path));
}

/**
 * Checks, before a long command, that it will be able to record at `path`: the directory can be
 * made and written, and the file, if there is one, is a history this code can read.
 */
export async function checkHistory(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await access(dirname(path), constants.W_OK);
  (await readHistory(path)).close();
}

/**
 * Changes the history at `path` under its lock: `change` sees the current contents (as another
 * writer may just have left them) and edits them; the result replaces the file atomically.
 * Creates the file and its directory when missing.
 */
export async function writeHistory(path: string, change: (db: Database) => void, opts: { lockWaitMsMax?: number } = {}): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const lock = await lockHistory(path, opts.lockWaitMsMax ?? LOCK_WAIT_MS_MAX);
  try {
    const db = await load(path, await readBytes(path));
    try {
      db.run('BEGIN');
      change(db);
      db.run('COMMIT');
      await replaceFile(path, db.export());
    } finally {
      db.close();
    }
  } finally {
    await lock.release();
  }
}

async function readBytes(path: string): Promise<Uint8Array | null> {
  try {
    const st = await stat(path);
    if (st.size > HISTORY_BYTES_MAX) {
      throw new HistoryError('ML_ERR_HISTORY_SIZE',
        `history ${path} is ${st.size} bytes, above the ${HISTORY_BYTES_MAX}-byte maximum; move it away (mirrorlab starts a new one) or point --history elsewhere`);
    }
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function load(path: string, bytes: Uint8Array | null): Promise<Database> {
  const SQL = await engine();
  let db: Database;
  try {
    db = new SQL.Database(bytes ?? undefined);
    const version = Number(db.exec('PRAGMA user_version')[0]?.values[0]?.[0] ?? 0);
    if (version > SCHEMA_VERSION) {
      db.close();
      throw new HistoryError('ML_ERR_HISTORY_FORMAT',
        `history ${path} has schema ${version}, newer than this mirrorlab's ${SCHEMA_VERSION}; use a newer mirrorlab or another --history`);
    }
    if (version === 0 && bytes !== null && bytes.length > 0) {
      const tables = db.exec("SELECT name FROM sqlite_master WHERE type = 'table'")[0]?.values.map((v) => String(v[0])) ?? [];
      if (tables.length > 0 && !tables.includes('records')) {
        db.close();
        throw new HistoryError('ML_ERR_HISTORY_FORMAT',
          `${path} is an SQLite database but not a mirrorlab history (tables ${tables.slice(0, 5).join(', ')}); point --history elsewhere`);
      }
    }
    if (bytes !== null && bytes.length > 0) {
      // A damaged page would otherwise surface in the middle of a query, or be written back.
      const check = String(db.exec('PRAGMA quick_check(1)')[0]?.values[0]?.[0] ?? 'no answer');
      if (check !== 'ok') {
        db.close();
        throw new Error(`damaged: ${check}`);
      }
    }
    db.run(SCHEMA);
    db.run(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    return db;
  } catch (err) {
    if (err instanceof HistoryError) throw err;
    throw new HistoryError('ML_ERR_HISTORY_FORMAT', `${path} is not a mirrorlab history database (${(err as Error).message}); move it away or point --history elsewhere`);
  }
}

/**
 * The history's lock, `<history>.lock`: the disk images' lock (atomic create, owner named inside,
 * a dead owner's lock taken over by one process), waited for while a live writer holds it.
 */
async function lockHistory(path: string, waitMsMax: number): Promise<ImageLock> {
  const real = join(await realpath(dirname(path)), basename(path));
  const deadline = Date.now() + waitMsMax;
  for (;;) {
    try {
      return await ImageLock.acquire(real, path);
    } catch (err) {
      if ((err as MirrorlabError).code !== 'ML_ERR_DISK_IN_USE') throw err;
      if (Date.now() >= deadline) {
        const who = /in use by (process \d+(?: on [^\s,]+)?)/.exec((err as Error).message)?.[1] ?? 'another process';
        throw new HistoryError('ML_ERR_HISTORY_BUSY', `history ${path} stayed locked by ${who} for ${waitMsMax / 1000} s (lock file ${real}.lock); `
          + 'try again, or delete the lock file if that process is not mirrorlab');
      }
      await sleep(LOCK_POLL_MS);
    }
  }
}

/** Writes `bytes` to a temporary file beside `path`, syncs it, renames it over `path`, syncs the directory. */
async function replaceFile(path: string, bytes: Uint8Array): Promise<void> {
  const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fh = await open(temp, 'wx', 0o644);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  const dir = await open(dirname(path), 'r').catch(() => null);
  if (dir !== null) await dir.sync().catch(() => undefined).finally(() => dir.close());
}
