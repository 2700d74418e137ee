import type { Redis } from 'ioredis';
import { z } from 'zod';
import { formatLinkFaults, parseLinkFaults } from '../faults/link-fault-plan.ts';
import type { CampaignSettings } from './draw-run.ts';
import { newLinkFaultCounters, type LinkFaultCounters } from '../faults/link-fault-injector.ts';
import type { RunSummary } from './summary.ts';

/**
 * What travels through Redis between a campaign's coordinator and its workers (docs/queue.md 2).
 * Everything read back is validated here, where it enters: Redis is shared, and whatever is in
 * it is input, not trusted state.
 */

/** BullMQ's key prefix and queue name: one queue for every campaign on a Redis database. */
export const QUEUE_PREFIX = 'mirrorlab';
export const QUEUE_NAME = 'runs';

/**
 * Our own keys beside BullMQ's: a campaign's settings, its results by seed, the seeds in the order
 * their results were stored (so the coordinator reads only what is new; a seed run twice appears
 * twice), and its refusals by worker.
 */
export const campaignKeys = (id: string) => ({
  meta: `${QUEUE_PREFIX}:campaign:${id}`,
  results: `${QUEUE_PREFIX}:campaign:${id}:results`,
  done: `${QUEUE_PREFIX}:campaign:${id}:done`,
  refusals: `${QUEUE_PREFIX}:campaign:${id}:refusals`,
});

/** A campaign id: `c` + start time + random, made of characters BullMQ job ids and Redis keys take. */
export const CAMPAIGN_ID = /^c[0-9a-z]{6,40}$/;
export const jobIdOf = (campaignId: string, seed: number): string => `${campaignId}-${seed}`;

/** Every limit a queued campaign has, by name (docs/conventions.md 6). */
export const QUEUE_LIMITS = {
  /** Seeds per campaign (the CLI's own maximum for `--seeds`). */
  seedsMax: 1_000_000,
  /** Writes per host per run (the CLI's maximum for `--writes`). */
  writesMax: 10_000_000,
  /** Bytes of one stored outcome: 100 violations of a few hundred bytes each fit many times over. */
  outcomeBytesMax: 1 << 20,
  /** Bytes of a fault plan's text. */
  faultsBytesMax: 64 * 1024,
  /** Jobs added to Redis per round trip. */
  addBatchJobs: 500,
  /** Results fetched per round trip. */
  fetchBatchResults: 500,
  /** Times a job may lose its worker (stalled) before its seed counts as crashed. */
  stalledRetriesMax: 2,
  /** Seconds a finished campaign's keys stay in Redis, for a late `--resume` or a look by hand. */
  keepFinishedSeconds: 7 * 24 * 3600,
} as const;

const identity = { version: z.string().max(64), sourceHash: z.string().regex(/^[0-9a-f]{64}$/) };
const seed = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** One job: a seed and the campaign's settings, never code. */
export const JobDataSchema = z.object({
  campaignId: z.string().regex(CAMPAIGN_ID),
  seed,
  writes: z.number().int().min(1).max(QUEUE_LIMITS.writesMax),
  /** The fixed fault plan as `--faults` takes it, or null: drawn per seed. */
  faults: z.string().max(QUEUE_LIMITS.faultsBytesMax).nullable(),
  ...identity,
}).strict();
export type JobData = z.infer<typeof JobDataSchema>;

/** A campaign as the coordinator stores it, for workers' refusals and for `--resume`. */
export const CampaignMetaSchema = z.object({
  id: z.string().regex(CAMPAIGN_ID),
  seeds: z.number().int().min(1).max(QUEUE_LIMITS.seedsMax),
  from: seed,
  writes: z.number().int().min(1).max(QUEUE_LIMITS.writesMax),
  faults: z.string().max(QUEUE_LIMITS.faultsBytesMax).nullable(),
  startedAt: z.string().max(64),
  ...identity,
}).strict();
export type CampaignMeta = z.infer<typeof CampaignMetaSchema>;

const violation = z.object({
  invariant: z.string().max(64), node: z.string().max(256), lun: z.number(), lba: z.number(), seq: z.number(), tMs: z.number(), message: z.string().max(4096),
});
/** Every counter the injector keeps, so a counter added there is carried by queued outcomes too. */
const counters = z.object(
  Object.fromEntries(Object.keys(newLinkFaultCounters()).map((k) => [k, z.number()])) as Record<keyof LinkFaultCounters, z.ZodNumber>,
);
const summary = z.object({
  seed, mode: z.string().max(64), onLockReject: z.string().max(64), verdict: z.enum(['consistent', 'inconsistent']),
  violations: z.array(violation).max(1000), faultsInjected: counters, writes: z.number().int().min(0),
  crashes: z.number().int().min(0), powerCuts: z.number().int().min(0),
  resync: z.object({ runs: z.number().int().min(0), fullRuns: z.number().int().min(0), bytesCopied: z.number().min(0), bytesDivergent: z.number().min(0) }),
  traceHash: z.string().max(128), reproduce: z.string().max(16_384), wallMs: z.number().min(0),
});

/**
 * What a worker stores for a seed, keyed by the seed in the campaign's results hash: a retried
 * job writes the same field again, so a seed is counted once however often it ran.
 */
export const OutcomeSchema = z.object({
  seed,
  /** Who ran it (host:pid/slot), for the "workers seen" count. */
  worker: z.string().max(256),
  /** The attempt that stored this outcome (1: the first; more: its earlier worker died or failed). */
  attempt: z.number().int().min(1).max(1000),
  summary: summary.optional(),
  /** The run threw or killed its thread (a crash of the seed), or the job could not be run at all. */
  error: z.string().max(QUEUE_LIMITS.outcomeBytesMax).optional(),
}).strict().refine((o) => (o.summary === undefined) !== (o.error === undefined), 'an outcome has a summary or an error, not both');
export type Outcome = Omit<z.infer<typeof OutcomeSchema>, 'summary'> & { summary?: RunSummary };

/**
 * Stores a seed's outcome and notes it in the campaign's done list, in one transaction. With
 * `onlyIfNone`, keeps an outcome already stored (a worker's wins over the coordinator's verdict on
 * a failed job). True if this one was stored. Every store keeps the campaign's keys for
 * `keepFinishedSeconds` more, so that a campaign nobody waits for any more leaves nothing behind.
 */
export async function storeOutcome(redis: Redis, campaignId: string, outcome: Outcome, opts: { onlyIfNone?: boolean } = {}): Promise<boolean> {
  const keys = campaignKeys(campaignId);
  const field = String(outcome.seed);
  const text = JSON.stringify(outcome);
  const keep = QUEUE_LIMITS.keepFinishedSeconds;
  if (opts.onlyIfNone && (await redis.hsetnx(keys.results, field, text)) === 0) return false;
  const store = opts.onlyIfNone ? redis.multi() : redis.multi().hset(keys.results, field, text);
  const replies = await store.rpush(keys.done, field).expire(keys.results, keep).expire(keys.done, keep).expire(keys.meta, keep).exec();
  const failed = replies?.find(([err]) => err !== null);
  if (replies === null || failed) throw new Error(`storing seed ${outcome.seed}'s outcome failed: ${failed?.[0]?.message ?? 'transaction aborted'}`);
  return true;
}

/** The campaign settings a job carries, as the local campaign takes them. */
export function settingsOf(data: Pick<JobData, 'writes' | 'faults'>): CampaignSettings {
  return { writes: data.writes, faults: data.faults === null ? null : parseLinkFaults(data.faults) };
}

export function faultsText(settings: CampaignSettings): string | null {
  return settings.faults === null ? null : formatLinkFaults(settings.faults);
}

/** Parses and checks JSON read from Redis; the error says which key held what. */
export function parseStored<T>(schema: z.ZodType<T>, text: string, where: string): { ok: true; value: T } | { ok: false; error: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, error: `${where} is not JSON` };
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0];
  return { ok: false, error: `${where} is not what mirrorlab wrote: ${issue ? `${issue.path.join('.') || 'value'}: ${issue.message}` : 'invalid'}` };
}
