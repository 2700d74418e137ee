import { MirrorlabError } from '../../firmware/errors.ts';
import { UsageError } from '../plan-error.ts';

/**
 * An operating error of a queued campaign or a worker: Redis unreachable or refusing, a campaign
 * that does not exist or was started from other sources. Codes: `ML_ERR_QUEUE_REDIS`,
 * `ML_ERR_QUEUE_CAMPAIGN`, `ML_ERR_QUEUE_VERSION`, `ML_ERR_QUEUE_IDLE`.
 */
export class QueueError extends MirrorlabError {}

/** Where the queue lives: a Redis server and database. */
export interface QueueUrl {
  host: string;
  port: number;
  db: number;
  /** As the user wrote it, without a password, for messages and reproduce lines. */
  shown: string;
  password?: string;
  username?: string;
}

export const QUEUE_URL_SYNTAX = 'redis://HOST:PORT[/DB] (PORT defaults to 6379, DB to 0; redis://:PASSWORD@HOST:PORT for a server with a password)';
/** Redis's default number of databases is 16; servers configured with more are rare but legal. */
const REDIS_DB_MAX = 1_000_000;

/** Parses a `--queue` URL, or throws a UsageError saying what is allowed. */
export function parseQueueUrl(text: string): QueueUrl {
  const bad = (why: string): UsageError => new UsageError(`--queue: "${text}" ${why}; write ${QUEUE_URL_SYNTAX}`);
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw bad('is not a URL');
  }
  if (url.protocol !== 'redis:') throw bad(`uses ${url.protocol.replace(/:$/, '') || 'no scheme'}, not redis`);
  if (url.hostname === '') throw bad('names no host');
  if (url.search !== '' || url.hash !== '') throw bad('has a query or fragment, which mirrorlab does not read');
  const port = url.port === '' ? 6379 : Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw bad('has a port outside 1-65535');
  const path = url.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,7}$/.test(path)) throw bad(`has "/${path}" where a database number belongs`);
  const db = path === '' ? 0 : Number(path);
  if (db > REDIS_DB_MAX) throw bad(`names database ${db}, above ${REDIS_DB_MAX}`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const shown = `redis://${url.host}${path === '' ? '' : `/${db}`}`;
  return {
    host, port, db, shown,
    ...(url.password !== '' ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.username !== '' ? { username: decodeURIComponent(url.username) } : {}),
  };
}
