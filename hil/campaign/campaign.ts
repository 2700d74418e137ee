import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Violation } from '../checker/violation.ts';
import { newLinkFaultCounters, type LinkFaultCounters } from '../faults/link-fault-injector.ts';
import { drawRun, type CampaignSettings } from './draw-run.ts';
import type { RunSummary } from './summary.ts';
import type { WorkerReply, WorkerRequest } from './worker.ts';

export interface CampaignOptions extends CampaignSettings {
  seeds: number;
  from: number;
  /** Worker threads (default: one per core). */
  workers?: number;
}

export interface CampaignResult {
  seeds: number;
  from: number;
  runs: number;
  consistent: number;
  failures: { seed: number; mode: string; onLockReject: string; violations: Violation[]; reproduce: string }[];
  /** Runs that crashed (a bug in mirrorlab, not a verdict): the seed and the error. */
  errors: { seed: number; error: string }[];
  faultsInjected: LinkFaultCounters;
  byMode: Record<string, number>;
  writes: number;
  wallSeconds: number;
}

/**
 * Run seeds `from .. from + seeds - 1`, each with its own drawn configuration (swarm testing), on
 * worker threads (one per core by default). Results come back in any order and are reported in
 * seed order; every failure carries the one command that reproduces it.
 */
export async function runCampaign(opts: CampaignOptions, onRun?: (s: RunSummary, done: number) => void): Promise<CampaignResult> {
  const started = performance.now();
  const queue = Array.from({ length: opts.seeds }, (_, i) => opts.from + i);
  const summaries: RunSummary[] = [];
  const errors: { seed: number; error: string }[] = [];
  const workers = Math.max(1, Math.min(opts.workers ?? availableParallelism(), opts.seeds));
  await Promise.all(Array.from({ length: workers }, () => drive(queue, opts, (reply) => {
    if ('error' in reply) errors.push(reply);
    else {
      summaries.push(reply.summary);
      onRun?.(reply.summary, summaries.length + errors.length);
    }
  })));
  summaries.sort((a, b) => a.seed - b.seed);
  errors.sort((a, b) => a.seed - b.seed);
  return collect(opts, summaries, errors, (performance.now() - started) / 1000);
}

/** One worker thread taking seeds from the shared queue until it is empty. */
function drive(queue: number[], settings: CampaignSettings, onReply: (r: WorkerReply) => void): Promise<void> {
  const worker = new Worker(new URL('./worker-entry.mjs', import.meta.url));
  return new Promise((resolve, reject) => {
    const next = (): void => {
      const seed = queue.shift();
      const msg: WorkerRequest = seed === undefined ? { stop: true } : { seed, options: drawRun(seed, settings) };
      worker.postMessage(msg);
    };
    worker.on('message', (reply: WorkerReply) => {
      onReply(reply);
      next();
    });
    worker.on('error', reject);
    worker.on('exit', () => resolve());
    next();
  });
}

function collect(opts: CampaignOptions, runs: RunSummary[], errors: { seed: number; error: string }[], wallSeconds: number): CampaignResult {
  const faults = newLinkFaultCounters();
  const byMode: Record<string, number> = {};
  for (const r of runs) {
    for (const k of Object.keys(faults) as (keyof LinkFaultCounters)[]) faults[k] += r.faultsInjected[k];
    const key = `${r.mode}/${r.onLockReject}`;
    byMode[key] = (byMode[key] ?? 0) + 1;
  }
  const failures = runs.filter((r) => r.verdict !== 'consistent').map((r) => ({ seed: r.seed, mode: r.mode, onLockReject: r.onLockReject, violations: r.violations, reproduce: r.reproduce }));
  return {
    seeds: opts.seeds, from: opts.from, runs: runs.length, consistent: runs.length - failures.length, failures, errors,
    faultsInjected: faults, byMode, writes: runs.reduce((n, r) => n + r.writes, 0), wallSeconds: Math.round(wallSeconds * 10) / 10,
  };
}
