import { availableParallelism, loadavg } from 'node:os';
import { runCampaignOutcome } from '../campaign/campaign.ts';

/** The campaign README.md's "Campaign speed" quotes: `campaign --seeds 12 --from 300 --writes 10000`. */
export const CAMPAIGN_RATE_DEFAULTS = { seeds: 12, from: 300, writes: 10_000 } as const;

export interface CampaignRateOptions {
  seeds: number;
  from: number;
  /** Writes per host per run. */
  writes: number;
  /** Worker threads (default: one per core, as `campaign` runs). */
  workers?: number;
}

/** How fast a local campaign of drawn seeds runs on this machine, and how busy the machine was. */
export interface CampaignRateResult {
  seeds: number;
  from: number;
  writes: number;
  workers: number;
  wallSeconds: number;
  seedsPerMinute: number;
  /** CPU time (user + system, every thread) per seed: less sensitive than wall time to other work on the machine. */
  cpuSecondsPerSeed: number;
  /** The 1-minute load average when the campaign ended. */
  loadAverage: number;
  /** Seeds whose run was consistent (all, unless the firmware has a bug the campaign found). */
  consistent: number;
}

/**
 * A campaign as `mirrorlab campaign` runs it (drawn configurations and faults, worker threads),
 * timed in wall clock and CPU time. Not a test: what it measures depends on the machine
 * (docs/conventions.md 11).
 */
export async function measureCampaignRate(opts: CampaignRateOptions): Promise<CampaignRateResult> {
  const workers = Math.max(1, Math.min(opts.workers ?? availableParallelism(), opts.seeds));
  const cpu = process.cpuUsage();
  const started = performance.now();
  const { result } = await runCampaignOutcome({ seeds: opts.seeds, from: opts.from, writes: opts.writes, faults: null, workers, shrink: false });
  const wallSeconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return {
    seeds: opts.seeds, from: opts.from, writes: opts.writes, workers,
    wallSeconds: round(wallSeconds, 2), seedsPerMinute: round((opts.seeds / wallSeconds) * 60, 1),
    cpuSecondsPerSeed: round((used.user + used.system) / 1e6 / opts.seeds, 3), loadAverage: round(loadavg()[0]!, 2), consistent: result.consistent,
  };
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;
