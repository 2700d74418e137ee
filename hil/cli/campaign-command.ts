import { Command, Option } from 'commander';
import { describeViolation } from '../checker/violation.ts';
import { runCampaign, type CampaignResult } from '../campaign/campaign.ts';
import { LINK_FAULT_SYNTAX, parseLinkFaults, type LinkFaultPlan } from '../faults/link-fault-plan.ts';
import type { Logger } from '../log.ts';
import { SHRINK_FAILURES_MAX, SHRINK_RUNS_DEFAULT, SHRINK_RUNS_MAX } from '../campaign/shrink.ts';
import { integer, plan } from './parse.ts';

interface CampaignFlags {
  seeds: number;
  from: number;
  faults?: LinkFaultPlan;
  writes: number;
  workers?: number;
  runBudgetS?: number;
  diskReorder: boolean;
  shrink: boolean;
  shrinkRuns: number;
  json: boolean;
}

export function campaignCommand(log: Logger, exit: (code: number) => void): Command {
  return new Command('campaign')
    .description('run many seeds, each with its own drawn fault plan, across every mode and lock-reject policy')
    .requiredOption('--seeds <n>', 'how many seeds to run', integer('--seeds', 1, 1_000_000))
    .option('--from <seed>', 'first seed', integer('--from', 0, Number.MAX_SAFE_INTEGER), 1)
    .addOption(new Option('--faults <plan>', `use this fault plan for every seed instead of drawing one; ${LINK_FAULT_SYNTAX}`).argParser(plan(parseLinkFaults)))
    .option('--writes <n>', 'writes each host issues per run', integer('--writes', 1, 10_000_000), 1000)
    .option('--workers <n>', 'worker threads (default: one per core)', integer('--workers', 1, 256))
    .option('--run-budget-s <s>', 'wall-clock budget of one run; a run over it is a stuck failure and its worker thread is replaced (default: 60 + 0.004 x --writes)', integer('--run-budget-s', 1, 604_800))
    .option('--no-disk-reorder', 'memory disks complete writes in the order they were issued (by default they reorder concurrent writes, as drives with command queues do)')
    .option('--shrink', 'search for a smaller reproduction of each inconsistent run (the default)', true)
    .option('--no-shrink', 'print failures as they were found, without searching for smaller ones')
    .option('--shrink-runs <n>', `runs the search may spend per failure (first ${SHRINK_FAILURES_MAX} failures)`, integer('--shrink-runs', 1, SHRINK_RUNS_MAX), SHRINK_RUNS_DEFAULT)
    .option('--json', 'print exactly one JSON document on stdout', false)
    .action(async (flags: CampaignFlags) => {
      const tty = process.stderr.isTTY === true && !flags.json;
      // runCampaign logs the milestones (start, each failure, the end) through `log`.
      const result = await runCampaign(
        { seeds: flags.seeds, from: flags.from, faults: flags.faults ?? null, writes: flags.writes, workers: flags.workers, log, diskReorder: flags.diskReorder, shrink: flags.shrink, shrinkRuns: flags.shrinkRuns,
          ...(flags.runBudgetS !== undefined ? { runBudgetMs: flags.runBudgetS * 1000 } : {}) },
        (s, done) => {
          if (tty) process.stderr.write(`\r\x1b[2Kcampaign ${done}/${flags.seeds}: seed ${s.seed} ${s.mode}/${s.onLockReject} ${s.verdict} (${s.wallMs} ms)`);
        },
      );
      if (tty) process.stderr.write('\r\x1b[2K');
      process.stdout.write(flags.json ? `${JSON.stringify(result, null, 2)}\n` : `${renderCampaign(result)}\n`);
      exit(campaignExitCode(result));
    });
}

/** 0 all consistent; 70 when a run crashed or seeds were left unrun (a bug in mirrorlab); else 1 when a run was inconsistent. */
export function campaignExitCode(r: CampaignResult): number {
  if (r.crashed > 0 || r.notRun > 0) return 70;
  return r.failures.length > 0 ? 1 : 0;
}

export function renderCampaign(r: CampaignResult): string {
  const f = r.faultsInjected;
  const inconsistent = r.failures.length - r.crashed - r.stuck;
  const stuck = r.stuck > 0 ? `, ${r.stuck} STUCK` : '';
  const headline = r.failures.length === 0 && r.notRun === 0 ? 'ALL CONSISTENT' : `${inconsistent} INCONSISTENT, ${r.crashed} CRASHED${stuck}${r.notRun > 0 ? `, ${r.notRun} NOT RUN` : ''}`;
  const lines = [
    `${headline}: seeds ${r.from}..${r.from + r.seeds - 1}, ${r.runs} runs, ${r.writes} writes, ${r.wallSeconds} s${r.workerRestarts > 0 ? `, ${r.workerRestarts} worker threads replaced` : ''}`,
    `  runs by mode/policy  ${Object.entries(r.byMode).map(([k, n]) => `${k} ${n}`).join(', ')}`,
    `  faults injected      ${f.framesDropped} dropped, ${f.framesCorrupted} corrupted, ${f.framesDuplicated} duplicated, ${f.framesReordered} reordered, ${f.framesDelayed} delayed, ${f.partitions} partitions, ${f.bandwidthChanges} bandwidth changes`,
  ];
  for (const fail of r.failures) {
    if (fail.verdict === 'crashed') lines.push(`  CRASH seed ${fail.seed} (${fail.mode}/${fail.onLockReject}): ${(fail.error ?? '').split('\n')[0]}`);
    else if (fail.verdict === 'stuck') lines.push(`  STUCK seed ${fail.seed} (${fail.mode}/${fail.onLockReject}): ${fail.error ?? ''}`);
    else lines.push(`  FAIL seed ${fail.seed} (${fail.mode}/${fail.onLockReject}):`);
    for (const v of fail.violations.slice(0, 3)) lines.push(`    ${describeViolation(v)}`);
    lines.push(`    reproduce: ${fail.reproduce}`);
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
