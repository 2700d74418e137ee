import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCampaignOutcome } from '../../../hil/campaign/campaign.ts';
import { runQueuedCampaign } from '../../../hil/campaign/queue-campaign.ts';
import { QUEUE_NAME, QUEUE_PREFIX, campaignKeys, jobIdOf } from '../../../hil/campaign/queue-protocol.ts';
import { parseQueueUrl, type QueueUrl } from '../../../hil/campaign/queue-url.ts';
import { startQueueWorker, type QueueWorker } from '../../../hil/campaign/queue-worker.ts';
import { bullConnection, connectRedis } from '../../../hil/campaign/redis-client.ts';
import { campaignExitCode, renderCampaign } from '../../../hil/cli/campaign-command.ts';
import { startLocalRedis, type LocalRedis } from '../../../hil/campaign/redis-server.ts';
import { sourceIdentity } from '../../../hil/campaign/source-identity.ts';
import { queryHistory } from '../../../hil/history/query.ts';
import { memoryLogger, mirrorlabChild, until, type Child } from './queue-support.ts';

/**
 * Queued campaigns against a real redis-server (started here, on a free loopback port, in a
 * temporary directory, without persistence, noeviction) and real worker processes. Workers use a
 * 2 s lock, so a killed worker's job goes back to the queue within seconds.
 */
let redis: LocalRedis;
let url: QueueUrl;
let dir: string;
const children: Child[] = [];
const workers: QueueWorker[] = [];

beforeAll(async () => {
  redis = await startLocalRedis();
  url = parseQueueUrl(redis.url);
  dir = await mkdtemp(join(tmpdir(), 'mirrorlab-queue-'));
});

afterAll(async () => {
  for (const c of children) c.proc.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.close({ force: true })));
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function worker(...extra: string[]): Child {
  const c = mirrorlabChild(['worker', '--queue', url.shown, '--concurrency', '1', '--stalled-ms', '2000', ...extra]);
  children.push(c);
  return c;
}

/** Every seed's verdict and trace hash, as the history recorded them. */
async function seedsIn(history: string) {
  const a = await queryHistory(history, {});
  return a.runs.map((s) => ({ seed: s.seed, verdict: s.latest.verdict, traceHash: s.latest.traceHash, reproduce: s.latest.reproduce })).sort((x, y) => x.seed - y.seed);
}

const comparable = (doc: Record<string, unknown>) => {
  const { wallSeconds: _w, workerRestarts: _r, queue: _q, ...rest } = doc;
  return rest;
};

describe('queued campaign', () => {
  it('with two worker processes, one killed mid-job, reports exactly what the local campaign reports for the same seeds', async () => {
    const settings = { seeds: 6, from: 26, writes: 400, faults: null };
    // The workers and the coordinator start together; the jobs wait in Redis for whoever is ready.
    const w1 = worker();
    const w2 = worker();
    const queuedHistory = join(dir, 'queued.db');
    const coordinator = mirrorlabChild(['campaign', '--seeds', '6', '--from', '26', '--writes', '400', '--json', '--queue', url.shown, '--history', queuedHistory]);
    children.push(coordinator);
    const local = runCampaignOutcome({ ...settings, workers: 2 });

    // Kill w1 while it runs a seed: its job must come back and be run once more, by w2.
    const queue = new Queue(QUEUE_NAME, { prefix: QUEUE_PREFIX, connection: bullConnection(url) });
    try {
      const w1Name = `${hostname()}:${w1.proc.pid}`;
      const victim = await until('w1 running a seed', async () => (await queue.getActive()).find((j) => j.processedBy === w1Name), 60_000);
      w1.proc.kill('SIGKILL');
      expect(await w1.exited).toBe('SIGKILL');
      expect(await coordinator.exited, coordinator.stderr()).toBe(0);
      const queued = JSON.parse(coordinator.stdout());
      expect(queued.queue).toMatchObject({ url: url.shown, refusals: [] });
      expect(queued.queue.retried, `seed ${victim.data.seed} was killed mid-run`).toBeGreaterThanOrEqual(1);

      const { result, runs } = await local;
      expect(comparable(queued)).toEqual(comparable(JSON.parse(JSON.stringify(result))));
      expect(queued.runs).toBe(6);
      const q = await seedsIn(queuedHistory);
      expect(q).toEqual(runs.map((r) => ({ seed: r.seed, verdict: r.verdict, traceHash: r.traceHash, reproduce: r.reproduce })));
      expect(q.map((s) => s.seed)).toEqual([26, 27, 28, 29, 30, 31]);
      expect(new Set(q.map((s) => s.traceHash)).size).toBe(6);
      const records = (await queryHistory(queuedHistory, {})).records;
      expect(records.map((r) => [r.id, r.kind])).toEqual([[queued.queue.campaignId, 'queued-campaign']]);
    } finally {
      await queue.close();
    }
    // SIGTERM: the surviving worker finishes what it runs and exits 0.
    w2.proc.kill('SIGTERM');
    expect(await w2.exited, w2.stderr()).toBe(0);
    expect(w2.stderr()).toMatch(/worker stopped/);
  }, 180_000); // three processes and a local campaign of the same seeds: on a busy 2-core machine this runs past the default 60 s

  it('resumes a campaign whose coordinator stopped, re-queuing nothing that is done, and sums it up like the local campaign', async () => {
    const settings = { seeds: 4, from: 90, writes: 200, faults: null };
    const abort = new AbortController();
    let id = '';
    const first = runQueuedCampaign({ queue: url, ...settings, signal: abort.signal, onQueued: (x) => {
      id = x;
      abort.abort(new Error('coordinator gone'));
    } });
    await expect(first).rejects.toThrow('coordinator gone');
    const queue = new Queue(QUEUE_NAME, { prefix: QUEUE_PREFIX, connection: bullConnection(url) });
    try {
      expect(await queue.getJobCountByTypes('waiting', 'prioritized')).toBe(4);
      workers.push(await startQueueWorker({ queue: url, concurrency: 2, stalledMs: 2000 }));
      const client = await connectRedis(url);
      const ttl = async () => Promise.all(Object.values(campaignKeys(id)).map((k) => client.ttl(k)));
      // Nothing lives for ever in Redis: the settings expire unless outcomes keep coming (-2: no such key yet).
      expect((await ttl()).map((t) => t > 0 ? 'expires' : t)).toEqual(['expires', -2, -2, -2]);
      const { log, lines } = memoryLogger();
      const resumed = await runQueuedCampaign({ queue: url, ...settings, resume: id, log });
      expect((await ttl()).map((t) => t > 0 ? 'expires' : t)).toEqual(['expires', 'expires', 'expires', -2]);
      client.disconnect();
      const local = await runCampaignOutcome({ ...settings, workers: 2 });
      expect({ ...resumed.result, wallSeconds: 0 }).toEqual({ ...local.result, wallSeconds: 0 });
      expect(resumed.runs.map((r) => [r.seed, r.traceHash])).toEqual(local.runs.map((r) => [r.seed, r.traceHash]));
      expect(renderCampaign({ ...resumed.result, queue: resumed.queue }))
        .toMatch(new RegExp(`^ALL CONSISTENT: seeds 90\\.\\.93, 4 runs, [^]*\n {2}queue {16}campaign ${id} on ${url.shown}, 1 worker seen, 0 seeds run again after their worker died$`));
      // Its four jobs were still queued: the resumed coordinator added none.
      expect(lines.find((l) => l.msg === 'campaign resumed')).toMatchObject({ campaign: id, queued: 0, seeds: 4, from: 90 });

      // Resuming it once more finds every result in Redis and queues nothing.
      const { log: log2, lines: lines2 } = memoryLogger();
      const again = await runQueuedCampaign({ queue: url, ...settings, resume: id, log: log2 });
      expect(again.runs.map((r) => r.traceHash)).toEqual(local.runs.map((r) => r.traceHash));
      expect(lines2.find((l) => l.msg === 'campaign resumed')).toMatchObject({ queued: 0 });
    } finally {
      await queue.close();
    }
  });

  it('refuses to resume a campaign that does not exist, or that other sources started', async () => {
    await expect(runQueuedCampaign({ queue: url, seeds: 1, from: 1, writes: 10, faults: null, resume: 'cnosuchcampaign' }))
      .rejects.toMatchObject({ code: 'ML_ERR_QUEUE_CAMPAIGN', message: expect.stringMatching(/no campaign cnosuchcampaign on redis:\/\/127\.0\.0\.1/) });
    const abort = new AbortController();
    let id = '';
    await runQueuedCampaign({ queue: url, seeds: 1, from: 1, writes: 10, faults: null, signal: abort.signal, onQueued: (x) => { id = x; abort.abort(); } }).catch(() => undefined);
    const other = { version: '0.0.9', sourceHash: 'e'.repeat(64) };
    await expect(runQueuedCampaign({ queue: url, seeds: 1, from: 1, writes: 10, faults: null, resume: id, identity: other }))
      .rejects.toMatchObject({ code: 'ML_ERR_QUEUE_VERSION', message: expect.stringMatching(/started from mirrorlab 0\.1\.0 with source [0-9a-f]{12}; this is mirrorlab 0\.0\.9 with source eeeeeeeeeeee/) });
  });

  it('a worker from other sources refuses the jobs, says why, and leaves them to a matching worker', async () => {
    const me = await sourceIdentity();
    const stranger = await startQueueWorker({ queue: url, concurrency: 1, stalledMs: 2000, name: 'stranger', identity: { version: me.version, sourceHash: 'f'.repeat(64) } });
    workers.push(stranger);
    const { log, lines } = memoryLogger('warn');
    let matching = false;
    const outcome = await runQueuedCampaign({
      queue: url, seeds: 3, from: 5, writes: 100, faults: null, log,
      onProgress: (p) => {
        // A matching worker starts only once the stranger has refused.
        if (p.refusals === 0 || matching) return;
        matching = true;
        void startQueueWorker({ queue: url, concurrency: 1, stalledMs: 2000, name: 'matching' }).then((w) => workers.push(w));
      },
    });
    expect(outcome.result.runs).toBe(3);
    expect(stranger.stats.ran).toBe(0);
    expect(stranger.stats.refused).toBeGreaterThanOrEqual(1);
    const why = `^worker stranger refuses campaign ${outcome.queue.campaignId}: the campaign was started from mirrorlab ${me.version} with source ${me.sourceHash.slice(0, 12)}, `
      + `this worker runs mirrorlab ${me.version} with source ffffffffffff`;
    expect(outcome.queue.refusals).toEqual([expect.stringMatching(new RegExp(why))]);
    expect(lines.some((l) => typeof l.msg === 'string' && new RegExp(why).test(l.msg))).toBe(true);
    await stranger.close();
  });

  it('a job that is not a mirrorlab seed job fails with a reason, and the worker carries on', async () => {
    const w = await startQueueWorker({ queue: url, concurrency: 1, stalledMs: 2000, name: 'robust' });
    workers.push(w);
    const queue = new Queue(QUEUE_NAME, { prefix: QUEUE_PREFIX, connection: bullConnection(url) });
    try {
      const bad = await queue.add('seed', { campaignId: 'c!', seed: -1, code: 'process.exit()' }, { jobId: 'hostile-1' });
      await until('the hostile job to fail', async () => (await queue.getJobState(bad.id!)) === 'failed');
      const failed = await queue.getJob(bad.id!);
      expect(failed?.failedReason).toMatch(/^job hostile-1 is not a mirrorlab seed job \(/);
      const outcome = await runQueuedCampaign({ queue: url, seeds: 1, from: 3, writes: 100, faults: null });
      expect(outcome.result.runs).toBe(1);
    } finally {
      await queue.close();
    }
  });

  it('turns jobs that cannot run into crashes of their seeds, with reproduce commands, when resuming', async () => {
    const me = await sourceIdentity();
    const id = 'cbrokenjobs01';
    const meta = { id, seeds: 3, from: 1, writes: 50, faults: null, startedAt: new Date().toISOString(), version: me.version, sourceHash: me.sourceHash };
    const client = await connectRedis(url);
    const queue = new Queue(QUEUE_NAME, { prefix: QUEUE_PREFIX, connection: bullConnection(url) });
    try {
      await client.set(campaignKeys(id).meta, JSON.stringify(meta));
      const job = { campaignId: id, writes: 50, faults: null, version: me.version, sourceHash: me.sourceHash };
      // Seed 1: data no worker accepts (the job fails); seed 2: a fault plan that does not parse (the run cannot start).
      const unreadable = await queue.add('seed', { ...job, seed: 1, writes: 0 }, { jobId: jobIdOf(id, 1) });
      await queue.add('seed', { ...job, seed: 2, faults: 'explode=0.5' }, { jobId: jobIdOf(id, 2) });
      if (workers.length === 0) workers.push(await startQueueWorker({ queue: url, concurrency: 1, stalledMs: 2000 }));
      await until('the unreadable job to fail', async () => (await queue.getJobState(unreadable.id!)) === 'failed');
      // Seed 3 has no job at all: resuming queues it.
      const { log, lines } = memoryLogger();
      const o = await runQueuedCampaign({ queue: url, seeds: 0, from: 0, writes: 1, faults: null, resume: id, log });
      expect([o.result.runs, o.result.crashed, o.result.failures.map((f) => [f.seed, f.verdict])]).toEqual([1, 2, [[1, 'crashed'], [2, 'crashed']]]);
      expect(lines.find((l) => l.msg === 'campaign resumed')).toMatchObject({ queued: 1 });
      const [one, two] = o.result.failures;
      expect(one!.error).toMatch(/^job failed in the queue: job cbrokenjobs01-1 is not a mirrorlab seed job \(writes: /);
      expect(two!.error).toMatch(/^the job's settings cannot be run: .*unknown fault "explode"/);
      expect(one!.reproduce).toMatch(/^npx mirrorlab emulate --seed 1 .*--writes 50/);
      expect(campaignExitCode(o.result)).toBe(70);
    } finally {
      await queue.close();
      client.disconnect();
    }
  });

  it('reads an outcome that is not what a worker writes as a crash of its seed, naming the key', async () => {
    const me = await sourceIdentity();
    const id = 'cgarbageoutcomes';
    const keys = campaignKeys(id);
    const client = await connectRedis(url);
    try {
      await client.set(keys.meta, JSON.stringify({ id, seeds: 3, from: 1, writes: 50, faults: null, startedAt: new Date().toISOString(), version: me.version, sourceHash: me.sourceHash }));
      await client.hset(keys.results, '1', '{"seed":1,', '2', JSON.stringify({ seed: 3, worker: 'w', attempt: 1, error: 'x' }), '3', JSON.stringify({ seed: 3, worker: 'w', attempt: 0, error: 'x' }));
      await client.rpush(keys.done, '1', '2', '3', '3', 'not-a-seed', '99');
      const o = await runQueuedCampaign({ queue: url, seeds: 0, from: 0, writes: 1, faults: null, resume: id });
      expect(o.result.failures.map((f) => [f.seed, f.error])).toEqual([
        [1, 'the stored outcome of seed 1 is not JSON'],
        [2, "the outcome stored under seed 2 is seed 3's"],
        [3, expect.stringMatching(/^the stored outcome of seed 3 is not what mirrorlab wrote: attempt: /)],
      ]);
      expect(o.queue.workersSeen).toBe(0);
    } finally {
      client.disconnect();
    }
  });

  it('gives up when no seed finishes for the idle limit, saying how to go on', async () => {
    // Workers of other sources only: nothing can finish.
    await Promise.all(workers.splice(0).map((w) => w.close({ force: true })));
    const stranger = await startQueueWorker({ queue: url, concurrency: 1, stalledMs: 2000, name: 'only-stranger', identity: { version: '9', sourceHash: '0'.repeat(64) } });
    workers.push(stranger);
    const err = await runQueuedCampaign({ queue: url, seeds: 2, from: 500, writes: 10, faults: null, idleSecondsMax: 1 }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'ML_ERR_QUEUE_IDLE',
      message: expect.stringMatching(new RegExp(`^campaign c\\w+: no seed finished for 1 s \\(0 of 2 done, 0 workers seen(, 1 refused)?\\); start workers with \`mirrorlab worker --queue ${url.shown}\` `
        + `and resume with \`mirrorlab campaign --queue ${url.shown} --resume c\\w+\`$`)),
    });
  });
});

