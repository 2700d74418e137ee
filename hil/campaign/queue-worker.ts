import { hostname } from 'node:os';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.ts';
import { drawRun } from './draw-run.ts';
import { JobDataSchema, QUEUE_LIMITS, QUEUE_NAME, QUEUE_PREFIX, campaignKeys, settingsOf, storeOutcome, type JobData, type Outcome } from './queue-protocol.ts';
import { bullConnection, connectRedis } from './redis-client.ts';
import { shortHash, sourceIdentity, type SourceIdentity } from './source-identity.ts';
import { ThreadPool } from './thread-pool.ts';
import type { QueueUrl } from './queue-url.ts';

/** Default for how long a job's lock lasts without renewal before its worker counts as dead (ms, BullMQ's own default). */
export const STALLED_MS_DEFAULT = 30_000;
/** A refused job goes back to the queue for this long, so that a matching worker can take it (ms). */
export const REFUSAL_DELAY_MS = 2_000;

export interface QueueWorkerOptions {
  queue: QueueUrl;
  /** Runs at once, each on its own thread (default: one per core, the CLI's choice). */
  concurrency: number;
  /** A job whose worker stops renewing its lock for this long goes back to the queue (ms; default {@link STALLED_MS_DEFAULT}). */
  stalledMs?: number;
  log?: Logger;
  /** Shown in results and Redis's client list (default `host:pid`). */
  name?: string;
  /** Testing aid, never set by the CLI: act as another mirrorlab, to watch jobs refused. */
  identity?: SourceIdentity;
}

export interface QueueWorker {
  readonly name: string;
  readonly identity: SourceIdentity;
  /** Seeds run, and jobs refused (from another mirrorlab), so far. */
  readonly stats: { ran: number; refused: number };
  /**
   * Stops taking jobs. Graceful: lets the runs in flight finish and store their outcomes. Forced:
   * drops them; their jobs go back to the queue once their locks lapse.
   */
  close(opts?: { force?: boolean }): Promise<void>;
}

/**
 * A campaign worker (docs/queue.md 4): takes seed jobs of any campaign from the queue, runs each
 * on a thread of its own, and stores the outcome in the campaign's results, keyed by seed. A job
 * from another mirrorlab (another source hash) is refused: the worker says so once per campaign,
 * in its log and in the campaign's refusals (which the coordinator prints), and puts the job back
 * for a matching worker.
 */
export async function startQueueWorker(opts: QueueWorkerOptions): Promise<QueueWorker> {
  const me = opts.identity ?? (await sourceIdentity());
  const name = opts.name ?? `${hostname()}:${process.pid}`;
  const log = opts.log;
  const redis = await connectRedis(opts.queue, log);
  const pool = new ThreadPool(opts.concurrency);
  const stats = { ran: 0, refused: 0 };
  const refusedCampaigns = new Set<string>();
  const stalledMs = opts.stalledMs ?? STALLED_MS_DEFAULT;

  const processor = async (job: Job, token?: string): Promise<{ seed: number; verdict: string }> => {
    const parsed = JobDataSchema.safeParse(job.data);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new UnrecoverableError(`job ${job.id} is not a mirrorlab seed job (${issue ? `${issue.path.join('.') || 'data'}: ${issue.message}` : 'invalid'})`);
    }
    const data = parsed.data;
    if (data.sourceHash !== me.sourceHash) {
      stats.refused++;
      await refuse(redis, { data, me, name, log, seen: refusedCampaigns });
      await job.moveToDelayed(Date.now() + REFUSAL_DELAY_MS, token);
      throw new DelayedError();
    }
    const outcome = await runSeed(pool, data, { worker: name, attempt: 1 + job.attemptsMade + job.stalledCounter });
    if (outcome === null) throw new Error(`worker ${name} is shutting down; seed ${data.seed} goes back to the queue`);
    await storeOutcome(redis, data.campaignId, outcome);
    stats.ran++;
    log?.debug({ campaign: data.campaignId, seed: data.seed, verdict: outcome.summary?.verdict ?? 'crashed' }, 'seed done');
    return { seed: data.seed, verdict: outcome.summary?.verdict ?? 'crashed' };
  };

  const worker = new Worker(QUEUE_NAME, processor, {
    prefix: QUEUE_PREFIX,
    connection: bullConnection(opts.queue, { maxRetriesPerRequest: null }),
    concurrency: opts.concurrency,
    name,
    lockDuration: stalledMs,
    stalledInterval: stalledMs,
    maxStalledCount: QUEUE_LIMITS.stalledRetriesMax,
    autorun: false,
  });
  worker.on('error', (err) => log?.warn({ err: err.message }, 'queue worker: Redis error (BullMQ retries)'));
  worker.on('failed', (job, err) => {
    if (job) log?.warn({ job: job.id, err: err.message }, 'job failed');
  });
  void worker.run().catch((err: unknown) => log?.error({ err: (err as Error).message }, 'queue worker stopped'));
  await worker.waitUntilReady();
  log?.info({ queue: opts.queue.shown, name, concurrency: opts.concurrency, stalledMs, version: me.version, source: shortHash(me.sourceHash) }, 'worker ready');

  let closing: Promise<void> | null = null;
  return {
    name, identity: me, stats,
    close: ({ force = false } = {}) => {
      closing ??= (async () => {
        if (force) await pool.close();
        await worker.close(force);
        await pool.close();
        redis.disconnect();
        log?.info({ name, ran: stats.ran, refused: stats.refused }, 'worker stopped');
      })();
      return closing;
    },
  };
}

/** Runs one seed on the pool; null when the pool closed under it (the run says nothing). */
async function runSeed(pool: ThreadPool, data: JobData, who: { worker: string; attempt: number }): Promise<Outcome | null> {
  let options;
  try {
    options = drawRun(data.seed, settingsOf(data));
  } catch (err) {
    // A fault plan that does not parse reached us through Redis: the seed cannot be run as asked.
    return { seed: data.seed, ...who, error: `the job's settings cannot be run: ${(err as Error).message}` };
  }
  const reply = await pool.run(options);
  if (reply === null) return null;
  return 'summary' in reply ? { seed: data.seed, ...who, summary: reply.summary } : { seed: data.seed, ...who, error: reply.error };
}

interface Refusal {
  data: JobData;
  me: SourceIdentity;
  name: string;
  log?: Logger;
  seen: Set<string>;
}

/** Says once per campaign why this worker will not run its jobs, in the log and where the coordinator looks. */
async function refuse(redis: Redis, r: Refusal): Promise<void> {
  if (r.seen.has(r.data.campaignId)) return;
  r.seen.add(r.data.campaignId);
  const message = `worker ${r.name} refuses campaign ${r.data.campaignId}: `
    + `the campaign was started from mirrorlab ${r.data.version} with source ${shortHash(r.data.sourceHash)}, `
    + `this worker runs mirrorlab ${r.me.version} with source ${shortHash(r.me.sourceHash)}, and runs from other sources need not give the same results; `
    + 'run workers from the same checkout as the campaign';
  r.log?.warn({ campaign: r.data.campaignId, campaignSource: shortHash(r.data.sourceHash), source: shortHash(r.me.sourceHash) }, message);
  const keys = campaignKeys(r.data.campaignId);
  await redis.multi().hset(keys.refusals, r.name, message).expire(keys.refusals, QUEUE_LIMITS.keepFinishedSeconds).exec();
}
