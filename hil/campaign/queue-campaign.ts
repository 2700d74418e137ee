import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.ts';
import { campaignResult, crashFailure, type CampaignFailure, type CampaignOutcome } from './campaign.ts';
import { drawRun, type CampaignSettings } from './draw-run.ts';
import {
  CampaignMetaSchema, OutcomeSchema, QUEUE_LIMITS, QUEUE_NAME, QUEUE_PREFIX, campaignKeys, faultsText, jobIdOf, parseStored, settingsOf, storeOutcome,
  type CampaignMeta, type JobData, type Outcome,
} from './queue-protocol.ts';
import { QueueError, type QueueUrl } from './queue-url.ts';
import { bullConnection, connectRedis } from './redis-client.ts';
import { shortHash, sourceIdentity, type SourceIdentity } from './source-identity.ts';
import type { RunSummary } from './summary.ts';

/** How often the coordinator looks for new results (real time, ms). */
export const POLL_MS = 250;
/** Default for how long a campaign may go without a seed finishing before the coordinator gives up (s). */
export const IDLE_SECONDS_DEFAULT = 3_600;
/** Failed jobs looked at per check (they are rare: a seed's job fails only once its workers died repeatedly). */
const FAILED_SCAN_MAX = 1_000;

export interface QueuedCampaignOptions {
  queue: QueueUrl;
  /** A new campaign: its seeds and settings. Ignored when `resume` names an existing one. */
  seeds: number;
  from: number;
  writes: number;
  faults: CampaignSettings['faults'];
  /** The id of a campaign whose coordinator died: take its settings from Redis and wait for it. */
  resume?: string;
  /** Give up when no seed finishes for this long (s; default {@link IDLE_SECONDS_DEFAULT}). */
  idleSecondsMax?: number;
  log?: Logger;
  /** Stops waiting (the campaign stays in Redis, resumable); the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
  onQueued?: (campaignId: string) => void;
  onRun?: (s: RunSummary, done: number) => void;
  /** At most once a second, and when the campaign completes. */
  onProgress?: (p: QueueProgress) => void;
  /** Testing aid, never set by the CLI: act as another mirrorlab. */
  identity?: SourceIdentity;
}

export interface QueueProgress {
  campaignId: string;
  done: number;
  failed: number;
  total: number;
  runsPerSecond: number;
  workersSeen: number;
  /** Workers that refused the campaign's jobs (they run other sources). */
  refusals: number;
}

/** What a queued campaign adds to a local campaign's result (the `queue` field of `--json`). */
export interface QueueInfo {
  campaignId: string;
  url: string;
  /** Distinct workers whose results the campaign kept. */
  workersSeen: number;
  /** Seeds whose job ran more than once (their worker died or failed first); each counted once. */
  retried: number;
  /** Why workers refused the campaign's jobs, one message per worker. */
  refusals: string[];
}

export interface QueuedCampaignOutcome extends CampaignOutcome {
  queue: QueueInfo;
  settings: CampaignSettings;
}

/**
 * A campaign on BullMQ (docs/queue.md): each seed is a job holding the seed and the campaign's
 * settings, run by `mirrorlab worker` processes on any machine that reaches the Redis server.
 * Results come back keyed by seed, so a retried job is counted once; the summary is the local
 * campaign's. With `resume`, picks up a campaign whose coordinator died: re-queues the seeds that
 * have neither a result nor a live job, and waits for the rest.
 */
export async function runQueuedCampaign(opts: QueuedCampaignOptions): Promise<QueuedCampaignOutcome> {
  const started = performance.now();
  const me = opts.identity ?? (await sourceIdentity());
  const redis = await connectRedis(opts.queue, opts.log);
  const queue = new Queue(QUEUE_NAME, { prefix: QUEUE_PREFIX, connection: bullConnection(opts.queue, { maxRetriesPerRequest: 3 }) });
  queue.on('error', (err) => opts.log?.warn({ err: err.message }, 'queue: Redis error (retrying)'));
  try {
    const meta = opts.resume === undefined ? await createCampaign(redis, opts, me) : await loadCampaign(redis, opts.resume, opts.queue, me);
    const settings = settingsOf(meta);
    const waiter = new Waiter(redis, queue, meta, settings, opts);
    const queued = await waiter.enqueueMissing();
    opts.log?.info({ campaign: meta.id, queue: opts.queue.shown, seeds: meta.seeds, from: meta.from, queued, source: shortHash(me.sourceHash),
      resume: `mirrorlab campaign --queue ${opts.queue.shown} --resume ${meta.id}` }, opts.resume === undefined ? 'campaign queued' : 'campaign resumed');
    opts.onQueued?.(meta.id);
    await waiter.wait();
    const keys = campaignKeys(meta.id);
    const keep = QUEUE_LIMITS.keepFinishedSeconds;
    await redis.multi().expire(keys.meta, keep).expire(keys.results, keep).expire(keys.done, keep).exec();
    return waiter.outcome((performance.now() - started) / 1000);
  } finally {
    await queue.close().catch(() => undefined);
    redis.disconnect();
  }
}

async function createCampaign(redis: Redis, opts: QueuedCampaignOptions, me: SourceIdentity): Promise<CampaignMeta> {
  const id = `c${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
  const meta: CampaignMeta = CampaignMetaSchema.parse({
    id, seeds: opts.seeds, from: opts.from, writes: opts.writes, faults: faultsText({ writes: opts.writes, faults: opts.faults }),
    startedAt: new Date().toISOString(), version: me.version, sourceHash: me.sourceHash,
  });
  await redis.set(campaignKeys(id).meta, JSON.stringify(meta), 'EX', QUEUE_LIMITS.keepFinishedSeconds, 'NX');
  return meta;
}

async function loadCampaign(redis: Redis, id: string, url: QueueUrl, me: SourceIdentity): Promise<CampaignMeta> {
  const text = await redis.get(campaignKeys(id).meta);
  if (text === null) {
    const days = QUEUE_LIMITS.keepFinishedSeconds / 86_400;
    throw new QueueError('ML_ERR_QUEUE_CAMPAIGN',
      `no campaign ${id} on ${url.shown} (a finished campaign is kept ${days} days; the id is in the log line "campaign queued")`);
  }
  const meta = parseStored(CampaignMetaSchema, text, `campaign ${id}'s settings`);
  if (!meta.ok) throw new QueueError('ML_ERR_QUEUE_CAMPAIGN', `cannot resume ${id}: ${meta.error}`);
  if (meta.value.sourceHash !== me.sourceHash) {
    throw new QueueError('ML_ERR_QUEUE_VERSION', `campaign ${id} was started from mirrorlab ${meta.value.version} with source ${shortHash(meta.value.sourceHash)}; `
      + `this is mirrorlab ${me.version} with source ${shortHash(me.sourceHash)}: resume it from the checkout that started it`);
  }
  return meta.value;
}

/** The coordinator's view of one campaign in Redis: what is queued, what came back. */
class Waiter {
  private readonly outcomes = new Map<number, Outcome>();
  private readonly refusals = new Map<string, string>();
  private readonly workersSeen = new Set<string>();
  private failures = 0;
  /** How far into the campaign's done list this coordinator has read. */
  private doneRead = 0;
  private failedSeen = -1;
  private readonly keys: ReturnType<typeof campaignKeys>;

  constructor(
    private readonly redis: Redis,
    private readonly queue: Queue,
    private readonly meta: CampaignMeta,
    private readonly settings: CampaignSettings,
    private readonly opts: QueuedCampaignOptions,
  ) {
    this.keys = campaignKeys(meta.id);
  }

  private seeds(): number[] {
    return Array.from({ length: this.meta.seeds }, (_, i) => this.meta.from + i);
  }

  /**
   * Queues every seed that has no result and no job that will produce one. A new campaign has
   * neither; a resumed one may have both, and jobs in BullMQ's failed set, whose seeds count as
   * crashed. Adding a job whose id exists is a no-op in BullMQ, so a race with a live job is harmless.
   */
  async enqueueMissing(): Promise<number> {
    await this.collect();
    const missing = this.seeds().filter((s) => !this.outcomes.has(s));
    const toAdd: number[] = [];
    const failed: number[] = [];
    const fresh = this.opts.resume === undefined;
    for (let i = 0; i < missing.length; i += QUEUE_LIMITS.addBatchJobs) {
      const batch = missing.slice(i, i + QUEUE_LIMITS.addBatchJobs);
      const states = fresh ? batch.map(() => 'unknown') : await Promise.all(batch.map((s) => this.queue.getJobState(jobIdOf(this.meta.id, s))));
      batch.forEach((s, k) => {
        if (states[k] === 'unknown' || states[k] === 'completed') toAdd.push(s);
        else if (states[k] === 'failed') failed.push(s);
      });
    }
    for (const seed of failed) {
      const job = await this.queue.getJob(jobIdOf(this.meta.id, seed));
      if (job) await this.crashOfFailedJob(seed, job);
    }
    for (let i = 0; i < toAdd.length; i += QUEUE_LIMITS.addBatchJobs) {
      await this.queue.addBulk(toAdd.slice(i, i + QUEUE_LIMITS.addBatchJobs).map((seed) => this.job(seed)));
    }
    return toAdd.length;
  }

  private job(seed: number): { name: string; data: JobData; opts: JobsOptions } {
    const m = this.meta;
    return {
      name: 'seed',
      data: { campaignId: m.id, seed, writes: m.writes, faults: m.faults, version: m.version, sourceHash: m.sourceHash },
      opts: {
        jobId: jobIdOf(m.id, seed),
        // A processor error (Redis gone while storing the outcome) is retried; a run's own crash is an outcome, not an error.
        attempts: 3, backoff: { type: 'fixed', delay: 1_000 },
        removeOnComplete: true, removeOnFail: { age: QUEUE_LIMITS.keepFinishedSeconds },
      },
    };
  }

  /** Waits until every seed has an outcome; rejects on abort, or after the idle limit with how to resume. */
  async wait(): Promise<void> {
    const idleMs = (this.opts.idleSecondsMax ?? IDLE_SECONDS_DEFAULT) * 1000;
    const started = performance.now();
    let lastNews = performance.now();
    let lastProgress = 0;
    let startDone = this.outcomes.size;
    while (this.outcomes.size < this.meta.seeds) {
      this.opts.signal?.throwIfAborted();
      await sleep(POLL_MS, undefined, { signal: this.opts.signal }).catch(() => undefined);
      this.opts.signal?.throwIfAborted();
      const before = this.outcomes.size;
      try {
        await this.collect();
        await this.collectFailed();
        await this.collectRefusals();
      } catch (err) {
        this.opts.log?.warn({ err: (err as Error).message }, 'cannot read the campaign from Redis; retrying');
      }
      const now = performance.now();
      if (this.outcomes.size > before) lastNews = now;
      if (now - lastProgress >= 1000 || this.outcomes.size === this.meta.seeds) {
        lastProgress = now;
        this.opts.onProgress?.(this.progress((this.outcomes.size - startDone) / Math.max(0.001, (now - started) / 1000)));
      }
      if (now - lastNews > idleMs) {
        const p = this.progress(0);
        const refused = p.refusals > 0 ? `, ${p.refusals} refused` : '';
        throw new QueueError('ML_ERR_QUEUE_IDLE', `campaign ${this.meta.id}: no seed finished for ${idleMs / 1000} s `
          + `(${p.done} of ${p.total} done, ${p.workersSeen} workers seen${refused}); start workers with \`mirrorlab worker --queue ${this.opts.queue.shown}\` and resume with `
          + `\`mirrorlab campaign --queue ${this.opts.queue.shown} --resume ${this.meta.id}\``);
      }
      if (startDone > this.outcomes.size) startDone = this.outcomes.size;
    }
  }

  private progress(runsPerSecond: number): QueueProgress {
    return {
      campaignId: this.meta.id, done: this.outcomes.size, failed: this.failures, total: this.meta.seeds, runsPerSecond: Math.round(runsPerSecond * 10) / 10,
      workersSeen: this.workersSeen.size, refusals: this.refusals.size,
    };
  }

  /**
   * Reads the outcomes stored since the last look: the new part of the done list, a batch at a
   * time, then those seeds' outcomes. An outcome that does not parse is a crash of its seed, saying why.
   */
  private async collect(): Promise<void> {
    const length = await this.redis.llen(this.keys.done);
    while (this.doneRead < length) {
      const items = await this.redis.lrange(this.keys.done, this.doneRead, this.doneRead + QUEUE_LIMITS.fetchBatchResults - 1);
      if (items.length === 0) break;
      this.doneRead += items.length;
      const fields = [...new Set(items)].filter((f) => {
        const seed = Number(f);
        return /^\d+$/.test(f) && seed >= this.meta.from && seed < this.meta.from + this.meta.seeds && !this.outcomes.has(seed);
      });
      if (fields.length === 0) continue;
      const texts = await this.redis.hmget(this.keys.results, ...fields);
      fields.forEach((field, k) => this.accept(Number(field), texts[k] ?? null));
    }
  }

  private accept(seed: number, text: string | null): void {
    if (text === null) return;
    const parsed = text.length > QUEUE_LIMITS.outcomeBytesMax
      ? { ok: false as const, error: `the stored outcome of seed ${seed} is ${text.length} bytes, above ${QUEUE_LIMITS.outcomeBytesMax}` }
      : parseStored(OutcomeSchema, text, `the stored outcome of seed ${seed}`);
    const error = parsed.ok ? `the outcome stored under seed ${seed} is seed ${parsed.value.seed}'s` : parsed.error;
    const outcome: Outcome = parsed.ok && parsed.value.seed === seed ? (parsed.value as Outcome) : { seed, worker: 'unknown', attempt: 1, error };
    this.outcomes.set(seed, outcome);
    if (outcome.worker !== 'unknown') this.workersSeen.add(outcome.worker);
    if (outcome.error !== undefined || outcome.summary?.verdict !== 'consistent') this.failures++;
    if (outcome.summary) this.opts.onRun?.(outcome.summary, this.outcomes.size);
    if (outcome.error !== undefined) this.opts.log?.warn({ seed, error: outcome.error.split('\n')[0] }, 'run crashed');
    else if (outcome.summary?.verdict !== 'consistent') this.opts.log?.warn({ seed, reproduce: outcome.summary?.reproduce }, 'inconsistent run');
  }

  /**
   * Jobs in BullMQ's failed set: their workers died more often than a job may stall, or the job
   * could not be read. Each becomes its seed's crash (HSETNX: an outcome a worker stored wins).
   */
  private async collectFailed(): Promise<void> {
    const count = await this.queue.getFailedCount();
    if (count === this.failedSeen) return;
    this.failedSeen = count;
    const prefix = `${this.meta.id}-`;
    // Newest first: what failed since the last look (250 ms ago) is at the front.
    for (const job of await this.queue.getFailed(0, FAILED_SCAN_MAX - 1)) {
      if (typeof job.id !== 'string' || !job.id.startsWith(prefix)) continue;
      const seed = Number(job.id.slice(prefix.length));
      if (Number.isSafeInteger(seed) && !this.outcomes.has(seed)) await this.crashOfFailedJob(seed, job);
    }
  }

  private async crashOfFailedJob(seed: number, job: { processedBy?: string; attemptsMade: number; stalledCounter: number; failedReason: string }): Promise<void> {
    const attempt = 1 + job.attemptsMade + job.stalledCounter;
    await storeOutcome(this.redis, this.meta.id, { seed, worker: job.processedBy ?? 'unknown', attempt, error: `job failed in the queue: ${job.failedReason}` }, { onlyIfNone: true });
  }

  private async collectRefusals(): Promise<void> {
    const all = await this.redis.hgetall(this.keys.refusals);
    for (const [worker, message] of Object.entries(all)) {
      if (this.refusals.has(worker)) continue;
      this.refusals.set(worker, message.slice(0, 1000));
      this.opts.log?.warn({ worker }, message.slice(0, 1000));
    }
  }

  outcome(wallSeconds: number): QueuedCampaignOutcome {
    const runs: RunSummary[] = [];
    const crashes: CampaignFailure[] = [];
    for (const o of [...this.outcomes.values()].sort((a, b) => a.seed - b.seed)) {
      if (o.summary) runs.push(o.summary);
      else crashes.push(crashFailure(drawRun(o.seed, this.settings), o.error ?? 'no outcome'));
    }
    const result = campaignResult(this.meta, runs, crashes, { notRun: 0, workerRestarts: 0, wallSeconds });
    const queue: QueueInfo = {
      campaignId: this.meta.id, url: this.opts.queue.shown,
      workersSeen: this.workersSeen.size,
      retried: [...this.outcomes.values()].filter((o) => o.attempt > 1).length,
      refusals: [...this.refusals.values()],
    };
    return { result, runs, queue, settings: this.settings };
  }
}
