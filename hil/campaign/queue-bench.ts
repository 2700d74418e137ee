import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.ts';
import { runCampaignOutcome } from './campaign.ts';
import { runQueuedCampaign } from './queue-campaign.ts';
import { parseQueueUrl } from './queue-url.ts';
import { startLocalRedis } from './redis-server.ts';
import { REPO_ROOT } from './source-identity.ts';

/** How long a worker process may take to start and connect (real time, ms). */
export const WORKER_START_MS_MAX = 60_000;

export interface QueueBenchOptions {
  seeds: number;
  /** Writes per host per run: small, so that the queue's own cost shows. */
  writes: number;
  /** Worker threads locally, worker processes (one run each at a time) through the queue. */
  workers: number;
  from?: number;
  log?: Logger;
}

/** Local worker threads against the queue, on this machine, same seeds, same number of workers. */
export interface QueueBenchResult {
  seeds: number;
  writes: number;
  workers: number;
  localSeconds: number;
  queueSeconds: number;
  localSeedsPerMinute: number;
  queueSeedsPerMinute: number;
  /** The runs' own time, summed over seeds (each run times itself on its thread), ms. */
  localRunMs: number;
  queueRunMs: number;
  /**
   * What the queue adds per job, in one worker's time: the time a worker slot spends on a job
   * besides the run itself (wall x workers - runs' own time, per seed), queued minus local. Taking
   * the runs' own time out keeps a busier or quieter machine during one half from passing for
   * overhead. It covers enqueueing, the job's round trips, storing the outcome and the
   * coordinator's polling (POLL_MS: up to a quarter second, once, at the end).
   */
  overheadMsPerJob: number;
  /** Both runs found the same verdicts and trace hashes (they must). */
  sameResults: boolean;
}

/**
 * `mirrorlab bench --only queue`: starts a private redis-server and `workers` worker processes
 * (their start-up is not timed), runs the seeds on local worker threads, then through the queue.
 */
export async function measureQueue(opts: QueueBenchOptions): Promise<QueueBenchResult> {
  const from = opts.from ?? 1;
  const redis = await startLocalRedis();
  const procs: ChildProcess[] = [];
  try {
    for (let i = 0; i < opts.workers; i++) procs.push(startWorker(redis.url));
    await Promise.all(procs.map(ready));
    opts.log?.info({ workers: opts.workers, seeds: opts.seeds }, 'queue bench: workers ready, running locally');
    const settings = { seeds: opts.seeds, from, writes: opts.writes, faults: null };
    let t = performance.now();
    const local = await runCampaignOutcome({ ...settings, workers: opts.workers });
    const localSeconds = (performance.now() - t) / 1000;
    opts.log?.info({ localSeconds }, 'queue bench: running through the queue');
    t = performance.now();
    const queued = await runQueuedCampaign({ queue: parseQueueUrl(redis.url), ...settings });
    const queueSeconds = (performance.now() - t) / 1000;
    const runMs = (runs: { wallMs: number }[]): number => runs.reduce((n, r) => n + r.wallMs, 0);
    const besidesRun = (seconds: number, ms: number): number => (seconds * 1000 * opts.workers - ms) / opts.seeds;
    const same = JSON.stringify(local.runs.map((r) => [r.seed, r.verdict, r.traceHash])) === JSON.stringify(queued.runs.map((r) => [r.seed, r.verdict, r.traceHash]));
    return {
      seeds: opts.seeds, writes: opts.writes, workers: opts.workers,
      localSeconds: round(localSeconds, 2), queueSeconds: round(queueSeconds, 2),
      localSeedsPerMinute: round((opts.seeds / localSeconds) * 60, 0), queueSeedsPerMinute: round((opts.seeds / queueSeconds) * 60, 0),
      localRunMs: runMs(local.runs), queueRunMs: runMs(queued.runs),
      overheadMsPerJob: round(besidesRun(queueSeconds, runMs(queued.runs)) - besidesRun(localSeconds, runMs(local.runs)), 1),
      sameResults: same,
    };
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await redis.stop();
  }
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;

function startWorker(url: string): ChildProcess {
  return spawn(process.execPath, [join(REPO_ROOT, 'bin', 'mirrorlab.mjs'), 'worker', '--queue', url, '--concurrency', '1'], {
    cwd: REPO_ROOT, env: { ...process.env, MIRRORLAB_LOG: 'info' }, stdio: ['ignore', 'ignore', 'pipe'],
  });
}

/** Resolves when the worker logs that it is ready; rejects if it exits or takes too long. */
async function ready(p: ChildProcess): Promise<void> {
  let seen = '';
  const deadline = Date.now() + WORKER_START_MS_MAX;
  p.stderr!.on('data', (c: Buffer) => {
    if (seen.length < 65_536) seen += String(c);
  });
  const exited = once(p, 'exit').then(([code]) => {
    throw new Error(`a bench worker exited (${code}) before it was ready: ${seen.trim().split('\n').slice(-2).join(' | ')}`);
  });
  exited.catch(() => undefined);
  while (!seen.includes('worker ready')) {
    if (Date.now() > deadline) throw new Error(`a bench worker was not ready within ${WORKER_START_MS_MAX} ms`);
    await Promise.race([sleep(20), exited]);
  }
}
