import { Command, InvalidArgumentError, Option } from 'commander';
import { describeViolation } from '../checker/violation.ts';
import { runCampaignOutcome, type CampaignOutcome, type CampaignResult } from '../campaign/campaign.ts';
import { CAMPAIGN_ID, QUEUE_LIMITS } from '../campaign/queue-protocol.ts';
import { IDLE_SECONDS_DEFAULT, runQueuedCampaign, type QueueInfo, type QueueProgress } from '../campaign/queue-campaign.ts';
import { QUEUE_URL_SYNTAX, parseQueueUrl, type QueueUrl } from '../campaign/queue-url.ts';
import { LINK_FAULT_SYNTAX, formatLinkFaults, parseLinkFaults, type LinkFaultPlan } from '../faults/link-fault-plan.ts';
import { describeLinkFaultCounters } from '../faults/link-fault-injector.ts';
import { checkHistory, defaultHistoryPath } from '../history/history-db.ts';
import { campaignRuns, campaignSummary, newRecordId, recordHistory, type RecordKind } from '../history/record.ts';
import type { Logger } from '../log.ts';
import { UsageError } from '../plan-error.ts';
import { campaignHtml, campaignJUnit, viewCommand } from '../report/campaign-report.ts';
import { checkWritable, writeReport } from '../report/files.ts';
import { SHRINK_FAILURES_MAX, SHRINK_RUNS_DEFAULT, SHRINK_RUNS_MAX } from '../campaign/shrink.ts';
import { integer, plan } from './parse.ts';
import { progressReporter } from './progress.ts';

interface CampaignFlags {
  seeds?: number;
  from: number;
  faults?: LinkFaultPlan;
  writes: number;
  workers?: number;
  runBudgetS?: number;
  diskReorder: boolean;
  shrink: boolean;
  shrinkRuns: number;
  json: boolean;
  queue?: QueueUrl;
  resume?: string;
  idleMaxS: number;
  /** A path, or false for --no-history. */
  history?: string | false;
  /** Reports for a rack (docs/reports.md): JUnit XML, and a page a person reads. */
  junit?: string;
  html?: string;
}

/** A campaign's result, and for a queued one where it ran (`--json` adds it as `queue`). */
export type CampaignReport = CampaignResult & { queue?: QueueInfo };

export function campaignCommand(log: Logger, exit: (code: number) => void): Command {
  return new Command('campaign')
    .description('run many seeds, each with its own drawn fault plan, across every mode and lock-reject policy; on worker threads, or queued for `mirrorlab worker`s')
    .option('--seeds <n>', 'how many seeds to run', integer('--seeds', 1, 1_000_000))
    .option('--from <seed>', 'first seed', integer('--from', 0, Number.MAX_SAFE_INTEGER), 1)
    .addOption(new Option('--faults <plan>', `use this fault plan for every seed instead of drawing one; ${LINK_FAULT_SYNTAX}`).argParser(plan(parseLinkFaults)))
    .option('--writes <n>', 'writes each host issues per run', integer('--writes', 1, 10_000_000), 1000)
    .option('--workers <n>', 'worker threads (default: one per core)', integer('--workers', 1, 256))
    .addOption(new Option('--queue <url>', `queue the seeds on this Redis server for \`mirrorlab worker\`s instead of running them here: ${QUEUE_URL_SYNTAX}`).argParser(plan(parseQueueUrl)))
    .option('--resume <id>', 'with --queue: wait for the campaign with this id, whose coordinator died, re-queuing what it lost (its settings come from Redis)', resumeId)
    .option('--idle-max-s <s>', 'with --queue: give up (exit 2, saying how to resume) when no seed finishes for this long', integer('--idle-max-s', 1, QUEUE_LIMITS.keepFinishedSeconds), IDLE_SECONDS_DEFAULT)
    .option('--history <path>', 'record the campaign in this results history (default: $MIRRORLAB_HISTORY, else ~/.mirrorlab/history.db)')
    .option('--no-history', 'record nothing')
    .option('--run-budget-s <s>', 'wall-clock budget of one run; a run over it is a stuck failure and its worker thread is replaced (default: 60 + 0.004 x --writes)', integer('--run-budget-s', 1, 604_800))
    .option('--no-disk-reorder', 'memory disks complete writes in the order they were issued (by default they reorder concurrent writes, as drives with command queues do)')
    .option('--shrink', 'search for a smaller reproduction of each inconsistent run (the default)', true)
    .option('--no-shrink', 'print failures as they were found, without searching for smaller ones')
    .option('--shrink-runs <n>', `runs the search may spend per failure (first ${SHRINK_FAILURES_MAX} failures)`, integer('--shrink-runs', 1, SHRINK_RUNS_MAX), SHRINK_RUNS_DEFAULT)
    .option('--json', 'print exactly one JSON document on stdout', false)
    .option('--junit <file>', 'also write a JUnit XML report: one testcase per seed, a failure with its violations and reproduce command')
    .option('--html <file>', 'also write a self-contained HTML report: summary, failures with reproduce commands, fault totals, plots')
    .action(async (flags: CampaignFlags, cmd: Command) => {
      checkCombination(flags, (name) => cmd.getOptionValueSource(name) === 'cli');
      // A report that cannot be written should stop the campaign before it runs, not after.
      if (flags.junit !== undefined) checkWritable(flags.junit, '--junit');
      if (flags.html !== undefined) checkWritable(flags.html, '--html');
      const historyPath = flags.history === false ? null : (flags.history ?? defaultHistoryPath());
      // A history that cannot be written should stop the campaign before it runs, not after.
      if (historyPath !== null) await checkHistory(historyPath);
      const tty = process.stderr.isTTY === true && !flags.json;
      const startedAt = new Date();
      // A local campaign's progress, as a queued one's (progressReporter).
      const showProgress = progressReporter(tty, log, 'campaign progress');
      let failed = 0;
      const onRun = (s: { seed: number; mode: string; onLockReject: string; verdict: string; wallMs: number }, done: number): void => {
        if (flags.queue) return;
        if (s.verdict !== 'consistent') failed++;
        const runsPerSecond = Math.round((done / ((Date.now() - startedAt.getTime()) / 1000)) * 100) / 100;
        showProgress(`campaign ${done}/${flags.seeds}: seed ${s.seed} ${s.mode}/${s.onLockReject} ${s.verdict} (${s.wallMs} ms)`, { done, total: flags.seeds, failed, runsPerSecond }, done === flags.seeds);
      };
      // Both log their milestones (start, each failure, the end) through `log`.
      let outcome: CampaignOutcome;
      let queueInfo: QueueInfo | undefined;
      let kind: RecordKind = 'campaign';
      let id: string;
      let settings: unknown;
      if (flags.queue) {
        const q = await runQueuedCampaign({
          queue: flags.queue, seeds: flags.seeds ?? 0, from: flags.from, writes: flags.writes, faults: flags.faults ?? null, resume: flags.resume,
          idleSecondsMax: flags.idleMaxS, log, onRun, onProgress: progressLine(progressReporter(tty, log, 'campaign progress')),
        });
        outcome = q;
        queueInfo = q.queue;
        kind = 'queued-campaign';
        id = q.queue.campaignId;
        settings = { seeds: q.result.seeds, from: q.result.from, writes: q.settings.writes, faults: q.settings.faults ? formatLinkFaults(q.settings.faults) : null, queue: q.queue.url };
      } else {
        outcome = await runCampaignOutcome({
          seeds: flags.seeds!, from: flags.from, faults: flags.faults ?? null, writes: flags.writes, workers: flags.workers, log,
          diskReorder: flags.diskReorder, shrink: flags.shrink, shrinkRuns: flags.shrinkRuns, ...(flags.runBudgetS !== undefined ? { runBudgetMs: flags.runBudgetS * 1000 } : {}),
        }, onRun);
        id = newRecordId('campaign');
        settings = { seeds: flags.seeds, from: flags.from, writes: flags.writes, faults: flags.faults ? formatLinkFaults(flags.faults) : null };
      }
      if (tty) process.stderr.write('\r\x1b[2K');
      const report: CampaignReport = queueInfo ? { ...outcome.result, queue: queueInfo } : outcome.result;
      const forRack = { result: outcome.result, runs: outcome.runs, started: startedAt, faults: flags.faults ? formatLinkFaults(flags.faults) : null };
      if (flags.junit !== undefined) writeReport(flags.junit, campaignJUnit(forRack));
      if (flags.html !== undefined) writeReport(flags.html, campaignHtml(forRack));
      // The report first: should recording fail after all (exit 2, one line), the results are still shown.
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderCampaign(report)}\n`);
      if (historyPath !== null) {
        await recordHistory(historyPath, { id, kind, startedAt, finishedAt: new Date(), settings, summary: campaignSummary(outcome.result), runs: campaignRuns(outcome.runs, outcome.result.failures) });
        log.info({ history: historyPath, record: id }, 'campaign recorded in the history');
      }
      exit(campaignExitCode(report));
    });
}

function resumeId(text: string): string {
  if (!CAMPAIGN_ID.test(text)) throw new InvalidArgumentError(`--resume takes a campaign id as the "campaign queued" log line names it (c followed by 6-40 lowercase letters and digits), got "${text}"`);
  return text;
}

/** What goes with what: a local campaign needs --seeds; a resumed one takes everything from Redis. */
function checkCombination(f: CampaignFlags, given: (option: string) => boolean): void {
  if (f.resume !== undefined) {
    if (!f.queue) throw new UsageError('--resume needs --queue URL: the campaign lives on that Redis server');
    if (['seeds', 'faults', 'from', 'writes'].some(given)) throw new UsageError('--resume takes the campaign\'s seeds and settings from Redis; leave out --seeds, --faults, --from and --writes');
    return;
  }
  if (f.seeds === undefined) throw new UsageError('campaign needs --seeds N (how many seeds to run), or --queue URL --resume ID to pick up a queued campaign');
  if (f.queue && f.workers !== undefined) throw new UsageError('--workers sets local worker threads; a queued campaign runs on `mirrorlab worker --concurrency N` processes instead');
  const localOnly = ['diskReorder', 'shrinkRuns', 'runBudgetS'].filter(given);
  if (f.queue && localOnly.length > 0) {
    throw new UsageError(`--no-disk-reorder, --shrink-runs and --run-budget-s apply to local campaigns; a queued campaign runs its seeds as drawn, on the workers (got ${localOnly.map((o) => `--${o.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')})`);
  }
}

/** The queued campaign's progress line. */
function progressLine(report: ReturnType<typeof progressReporter>): (p: QueueProgress) => void {
  return (p) => {
    const text = `campaign ${p.campaignId}: ${p.done}/${p.total} done, ${p.failed} failed, ${p.runsPerSecond} runs/s, ${p.workersSeen} workers seen${p.refusals > 0 ? `, ${p.refusals} refused` : ''}`;
    report(text, { ...p }, p.done === p.total);
  };
}

/** 0 all consistent; 70 when a run crashed or seeds were left unrun (a bug in mirrorlab); else 1 when a run was inconsistent. */
export function campaignExitCode(r: CampaignResult): number {
  if (r.crashed > 0 || r.notRun > 0) return 70;
  return r.failures.length > 0 ? 1 : 0;
}

const n = (count: number, word: string): string => `${count} ${word}${count === 1 ? '' : 's'}`;

export function renderCampaign(r: CampaignReport): string {
  const f = r.faultsInjected;
  const inconsistent = r.failures.length - r.crashed - r.stuck;
  const stuck = r.stuck > 0 ? `, ${r.stuck} STUCK` : '';
  const headline = r.failures.length === 0 && r.notRun === 0 ? 'ALL CONSISTENT' : `${inconsistent} INCONSISTENT, ${r.crashed} CRASHED${stuck}${r.notRun > 0 ? `, ${r.notRun} NOT RUN` : ''}`;
  const lines = [
    `${headline}: seeds ${r.from}..${r.from + r.seeds - 1}, ${r.runs} runs, ${r.writes} writes, ${r.wallSeconds} s${r.workerRestarts > 0 ? `, ${r.workerRestarts} worker threads replaced` : ''}`,
    `  runs by mode/policy  ${Object.entries(r.byMode).map(([k, n]) => `${k} ${n}`).join(', ')}`,
    `  faults injected      ${describeLinkFaultCounters(f)}`,
  ];
  const rs = r.resync;
  if (r.crashes > 0 || rs.runs > 0) {
    const mib = (b: number): string => (b / 2 ** 20).toFixed(1);
    lines.push(`  crashes and resyncs  ${r.crashes} crashes (${r.powerCuts} power cuts); ${rs.runs} resyncs (${rs.fullRuns} full) copied ${mib(rs.bytesCopied)} MiB where ${mib(rs.bytesDivergent)} MiB differed at their starts`);
  }
  if (r.queue) {
    const q = r.queue;
    lines.push(`  queue                campaign ${q.campaignId} on ${q.url}, ${n(q.workersSeen, 'worker')} seen, ${n(q.retried, 'seed')} run again after their worker died`
      + `${q.refusals.length > 0 ? `, refused by ${n(q.refusals.length, 'worker')} of other sources` : ''}`);
  }
  for (const fail of r.failures) {
    if (fail.verdict === 'crashed') lines.push(`  CRASH seed ${fail.seed} (${fail.mode}/${fail.onLockReject}): ${(fail.error ?? '').split('\n')[0]}`);
    else if (fail.verdict === 'stuck') lines.push(`  STUCK seed ${fail.seed} (${fail.mode}/${fail.onLockReject}): ${fail.error ?? ''}`);
    else lines.push(`  FAIL seed ${fail.seed} (${fail.mode}/${fail.onLockReject}):`);
    for (const v of fail.violations.slice(0, 3)) lines.push(`    ${describeViolation(v)}`);
    lines.push(`    reproduce: ${fail.reproduce}`);
    if (fail.verdict !== 'crashed') lines.push(`    view:      ${viewCommand(fail.reproduce, fail.seed)}`);
    const s = fail.shrunk;
    if (s) {
      const same = s.reproduce === fail.reproduce;
      lines.push(same
        ? `    smallest:  nothing smaller fails the same way (${s.runs} runs tried)`
        : `    smallest:  ${s.reproduce}\n               (${s.runs} runs; writes ${s.writes.from} -> ${s.writes.to}, faults ${s.faults.from} -> ${s.faults.to}; ${s.violations[0] ? describeViolation(s.violations[0]) : ''})`);
    }
  }
  return lines.join('\n');
}
