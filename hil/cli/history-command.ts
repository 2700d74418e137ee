import { Command, InvalidArgumentError } from 'commander';
import { shortHash } from '../campaign/source-identity.ts';
import { defaultHistoryPath } from '../history/history-db.ts';
import { queryHistory, type HistoryAnswer, type HistoryRun, type RunStory } from '../history/query.ts';
import { integer } from './parse.ts';

/** Lines of each list the text output shows; `--json` has everything. */
export const HISTORY_LIST_MAX = 50;

interface HistoryFlags {
  failures: boolean;
  seed?: number;
  since?: Date;
  json: boolean;
  history?: string;
}

const SINCE_SYNTAX = 'a date (2026-01-31, midnight UTC), a date and time (2026-01-31T12:00:00Z) or an age (7d, 12h, 30m)';

/** `--since`: an absolute instant, or an age before `now`. */
export function parseSince(text: string, now = new Date()): Date {
  const t = text.trim();
  const age = /^(\d{1,6})([dhm])$/.exec(t);
  if (age) return new Date(now.getTime() - Number(age[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[age[2] as 'd' | 'h' | 'm']);
  const date = /^\d{4}-\d{2}-\d{2}$/.test(t) ? new Date(`${t}T00:00:00Z`) : /^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})$/.test(t) ? new Date(t) : null;
  if (date === null || Number.isNaN(date.getTime())) throw new InvalidArgumentError(`--since takes ${SINCE_SYNTAX}, got "${text}"`);
  return date;
}

export function historyCommand(exit: (code: number) => void): Command {
  return new Command('history')
    .description('what the results history says: which seeds failed, when, on which commit; regressions, seeds that always failed, seeds fixed')
    .option('--failures', 'only runs that fail in their latest record (regressions and seeds that always failed)', false)
    .option('--seed <n>', 'every record of this seed', integer('--seed', 0, Number.MAX_SAFE_INTEGER))
    .option('--since <when>', `only records since then: ${SINCE_SYNTAX}`, (t: string) => parseSince(t))
    .option('--history <path>', 'the history database (default: $MIRRORLAB_HISTORY, else ~/.mirrorlab/history.db)')
    .option('--json', 'print exactly one JSON document on stdout', false)
    .action(async (flags: HistoryFlags) => {
      const answer = await queryHistory(flags.history ?? defaultHistoryPath(), { failures: flags.failures, seed: flags.seed, since: flags.since });
      process.stdout.write(flags.json ? `${JSON.stringify(answer, null, 2)}\n` : `${renderHistory(answer)}\n`);
      exit(0);
    });
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
const when = (iso: string): string => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
function commitOf(r: { commit: string | null; version: string; sourceHash: string }): string {
  const commit = r.commit === null ? 'commit unknown' : `commit ${r.commit.slice(0, 12)}${r.commit.endsWith('+dirty') ? '+dirty' : ''}`;
  return `${commit} (mirrorlab ${r.version}, source ${shortHash(r.sourceHash)})`;
}

function what(r: HistoryRun): string {
  if (r.verdict === 'crashed') return `crashed: ${(r.error ?? '').split('\n')[0]!.slice(0, 200)}`;
  return r.verdict === 'inconsistent' ? `inconsistent: ${r.invariants.join(', ')}` : 'consistent';
}
const where = (r: HistoryRun): string => `${r.recordId} (${r.kind}) at ${when(r.at)} on ${commitOf(r)}`;

export function renderHistory(a: HistoryAnswer): string {
  const lines: string[] = [];
  const q = a.query;
  const scope = [q.failures ? 'failures' : '', q.seed !== null ? `seed ${q.seed}` : '', q.since !== null ? `since ${when(q.since)}` : ''].filter(Boolean).join(', ');
  lines.push(`history ${a.path}${scope ? ` (${scope})` : ''}: ${plural(a.records.length, 'record')}`);
  if (a.records.length === 0) {
    lines.push('  nothing recorded yet: campaigns record themselves, and `emulate --record` records a run');
    return lines.join('\n');
  }
  for (const r of a.records.slice(0, HISTORY_LIST_MAX)) {
    lines.push(`  ${when(r.finishedAt)}  ${r.kind.padEnd(15)} ${r.id}  ${plural(r.seeds, 'seed')}, ${r.failures} failed, on ${commitOf(r)}`);
  }
  more(lines, a.records.length);
  if (a.query.seed !== null) {
    lines.push(`seed ${a.query.seed}, every record:`);
    for (const r of a.seedRuns.slice(0, HISTORY_LIST_MAX)) {
      lines.push(`  ${when(r.at)}  ${r.recordId}  ${r.mode}/${r.onLockReject}  ${what(r)}${r.traceHash ? `  trace ${shortHash(r.traceHash)}` : ''}`);
    }
    more(lines, a.seedRuns.length);
  }
  const shown = a.runs.filter((s) => s.status !== 'passing' || a.query.seed !== null);
  const passing = a.runs.length - a.runs.filter((s) => s.status !== 'passing').length;
  lines.push(`runs: ${a.runs.length - passing} that failed at some point${passing > 0 ? `, ${passing} that always passed` : ''}`);
  for (const s of shown.slice(0, HISTORY_LIST_MAX)) lines.push(...renderStory(s));
  more(lines, shown.length);
  return lines.join('\n');
}

const inRecords = (n: number): string => (n === 1 ? 'its only record' : `all ${n} records`);

function more(lines: string[], n: number): void {
  if (n > HISTORY_LIST_MAX) lines.push(`  ... and ${n - HISTORY_LIST_MAX} more (--json lists all)`);
}

function renderStory(s: RunStory): string[] {
  const head = `seed ${s.seed} (${s.latest.mode}/${s.latest.onLockReject})`;
  const lines: string[] = [];
  switch (s.status) {
    case 'regression':
      lines.push(`  REGRESSION ${head}: ${what(s.latest)}`, `    fails since ${where(s.turned!)}`, `    passed in ${where(s.before!)}`);
      break;
    case 'always-failing':
      lines.push(`  ALWAYS FAILED ${head}: ${what(s.latest)}`, `    failed in ${inRecords(s.records)}, first in ${where(s.first)}`);
      break;
    case 'fixed':
      lines.push(`  FIXED ${s.regressionFixed ? 'REGRESSION ' : ''}${head}: passes since ${where(s.turned!)}`, `    failed in ${where(s.before!)}: ${what(s.before!)}`);
      break;
    case 'passing':
      lines.push(`  PASSING ${head}: in ${inRecords(s.records)}`);
      break;
  }
  lines.push(`    reproduce: ${s.latest.reproduce}`);
  return lines;
}
