import type { RedisOptions as BullRedisOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../log.ts';
import { QueueError, type QueueUrl } from './queue-url.ts';

/** How long the first connection to Redis may take before the command gives up (real time, ms). */
export const REDIS_CONNECT_MS_MAX = 5_000;
/** Longest pause between reconnection attempts once a client has been connected (ms). */
export const RECONNECT_MS_MAX = 2_000;

/** ioredis options for `url`. */
export function redisOptions(url: QueueUrl, extra: RedisOptions = {}): RedisOptions {
  return { ...bullConnection(url), ...extra };
}

/** The same, as BullMQ's queues and workers take them (they open their own connections). */
export function bullConnection(url: QueueUrl, extra: BullRedisOptions = {}): BullRedisOptions {
  return {
    host: url.host, port: url.port, db: url.db,
    ...(url.password !== undefined ? { password: url.password } : {}),
    ...(url.username !== undefined ? { username: url.username } : {}),
    connectTimeout: REDIS_CONNECT_MS_MAX,
    ...extra,
  };
}

/**
 * A connected client for our own keys, or a QueueError saying why not (one line: the CLI exits
 * 2). Checks that the server can hold a queue: Redis 5 or newer, and warns when its eviction
 * policy could drop keys (a dropped job is a seed silently not run; docs/queue.md 2).
 */
export async function connectRedis(url: QueueUrl, log?: Logger): Promise<Redis> {
  // The first connection is tried once, so that a wrong address fails at once with its reason;
  // once connected, the client reconnects (after at most RECONNECT_MS_MAX) like BullMQ's own.
  const client = new Redis(redisOptions(url, { lazyConnect: true, maxRetriesPerRequest: 3, retryStrategy: () => null }));
  let lastError: Error | null = null;
  // Errors after the first connection surface as failed commands, where the caller handles them.
  client.on('error', (err: Error) => {
    lastError = err;
  });
  try {
    await withDeadline(client.connect(), REDIS_CONNECT_MS_MAX, `no answer within ${REDIS_CONNECT_MS_MAX} ms`).catch((err: Error) => {
      throw lastError ?? err;
    });
    client.options.retryStrategy = (times: number) => Math.min(times * 100, RECONNECT_MS_MAX);
    const info = await client.info('server');
    const major = Number(/redis_version:(\d+)/.exec(info)?.[1] ?? 0);
    if (major < 5) throw new QueueError('ML_ERR_QUEUE_REDIS', `Redis at ${url.shown} is version ${major || 'unknown'}; BullMQ needs 5 or newer`);
    const policy = await client.config('GET', 'maxmemory-policy').then((r) => (r as string[])[1], () => null);
    if (policy !== null && policy !== undefined && policy !== 'noeviction') {
      log?.warn({ queue: url.shown, policy },
        'Redis may evict keys under memory pressure (maxmemory-policy is not noeviction): a queued job could vanish; set maxmemory-policy noeviction');
    }
    return client;
  } catch (err) {
    client.disconnect();
    if (err instanceof QueueError) throw err;
    throw new QueueError('ML_ERR_QUEUE_REDIS', `cannot reach Redis at ${url.shown}: ${(err as Error).message}`);
  }
}

function withDeadline<T>(p: Promise<T>, ms: number, why: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(why)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
