import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Database } from 'sql.js';
import type { CampaignFailure, CampaignResult } from '../campaign/campaign.ts';
import { gitCommit, sourceIdentity, type SourceIdentity } from '../campaign/source-identity.ts';
import { summarise, type RunSummary } from '../campaign/summary.ts';
import type { EmulateOptions } from '../emulator/options.ts';
import type { EmulationReport } from '../emulator/run.ts';
import type { Logger } from '../log.ts';
import type { RackReport } from '../rack/report.ts';
import { writeHistory } from './history-db.ts';

/** Violations kept per run (the rest are counted): enough to see what broke, not a trace. */
export const VIOLATIONS_KEPT_MAX = 20;

/** What produced a record: a local or queued campaign, one `emulate --record`, or one `rack run --record`. */
export const RECORD_KINDS = ['campaign', 'queued-campaign', 'emulate', 'rack'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

/** One seed's verdict as the history keeps it. */
export interface RecordedRun {
  seed: number;
  mode: string;
  onLockReject: string;
  verdict: 'consistent' | 'inconsistent' | 'crashed';
  violations: RunSummary['violations'];
  error?: string;
  traceHash?: string;
  reproduce: string;
  wallMs?: number;
  writes?: number;
}

export interface HistoryRecord {
  id: string;
  kind: RecordKind;
  startedAt: Date;
  finishedAt: Date;
  /** What ran (campaign settings, or the run's options), as JSON. */
  settings: unknown;
  /** The command's summary (a campaign's result without its failures, which are in `runs`). */
  summary: unknown;
  runs: RecordedRun[];
  /** Default: this process's; the git commit is looked up when not given (null: unknown). */
  identity?: SourceIdentity;
  commit?: string | null;
}

/**
 * The run's identity across records: its reproduce command, which names the seed and every
 * setting the run was drawn or given, without a trailing shell comment. Planted mutations follow
 * in such a comment: they stand for a change to the firmware, like another commit, so a seed that
 * failed with them and passes without is the same run, fixed (docs/history.md 3).
 */
export function runKey(reproduce: string): string {
  const hash = reproduce.indexOf(' # ');
  return (hash < 0 ? reproduce : reproduce.slice(0, hash)).trim();
}

/** A record id for a local campaign or an emulation (queued campaigns keep their queue id). */
export function newRecordId(kind: RecordKind): string {
  return `${kind === 'emulate' ? 'e' : kind === 'rack' ? 'r' : 'l'}${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

/** Adds (or replaces: a resumed campaign may finish twice) one record and its runs. */
export async function recordHistory(path: string, rec: HistoryRecord, opts: { lockWaitMsMax?: number } = {}): Promise<void> {
  const identity = rec.identity ?? (await sourceIdentity());
  const commit = rec.commit !== undefined ? rec.commit : await gitCommit();
  await writeHistory(path, (db) => insert(db, rec, identity, commit), opts);
}

function insert(db: Database, rec: HistoryRecord, identity: SourceIdentity, commit: string | null): void {
  db.run('DELETE FROM runs WHERE record_id = ?', [rec.id]);
  db.run('DELETE FROM records WHERE id = ?', [rec.id]);
  db.run('INSERT INTO records (id, kind, started_at, finished_at, version, source_hash, git_commit, host, settings, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [
    rec.id, rec.kind, rec.startedAt.toISOString(), rec.finishedAt.toISOString(), identity.version, identity.sourceHash, commit, hostname(),
    JSON.stringify(rec.settings), JSON.stringify(rec.summary),
  ]);
  const stmt = db.prepare(`INSERT INTO runs
    (record_id, seed, run_key, mode, on_lock_reject, verdict, violations, violations_total, error, trace_hash, reproduce, wall_ms, writes)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  try {
    for (const r of rec.runs) {
      stmt.run([
        rec.id, r.seed, runKey(r.reproduce), r.mode, r.onLockReject, r.verdict, JSON.stringify(r.violations.slice(0, VIOLATIONS_KEPT_MAX)), r.violations.length,
        r.error ?? null, r.traceHash ?? null, r.reproduce, r.wallMs ?? null, r.writes ?? null,
      ]);
    }
  } finally {
    stmt.free();
  }
}

/** A campaign's runs as the history keeps them: every seed that ran, and every crash. */
export function campaignRuns(runs: readonly RunSummary[], failures: readonly CampaignFailure[]): RecordedRun[] {
  const recorded: RecordedRun[] = runs.map(fromSummary);
  for (const f of failures) {
    if (f.verdict !== 'crashed') continue;
    recorded.push({ seed: f.seed, mode: f.mode, onLockReject: f.onLockReject, verdict: 'crashed', violations: [], error: f.error, reproduce: f.reproduce });
  }
  return recorded.sort((a, b) => a.seed - b.seed);
}

export function fromSummary(s: RunSummary): RecordedRun {
  return {
    seed: s.seed, mode: s.mode, onLockReject: s.onLockReject, verdict: s.verdict, violations: s.violations,
    traceHash: s.traceHash, reproduce: s.reproduce, wallMs: s.wallMs, writes: s.writes,
  };
}

/** A campaign result without its failures (they are the runs' rows). */
export function campaignSummary(r: CampaignResult): Omit<CampaignResult, 'failures'> {
  const { failures: _failures, ...rest } = r;
  return rest;
}

/** Records one `emulate --record` run: its options as settings, its report's headline as summary. */
export interface RecordedEmulation {
  report: EmulationReport;
  options: EmulateOptions;
  startedAt: Date;
  wallMs: number;
}

export async function recordEmulation(path: string, run: RecordedEmulation, log?: Logger): Promise<string> {
  const id = newRecordId('emulate');
  const s = summarise(run.report, run.wallMs);
  const r = run.report;
  await recordHistory(path, {
    id, kind: 'emulate', startedAt: run.startedAt, finishedAt: new Date(), settings: run.options,
    summary: { verdict: r.verdict, writes: r.writes, virtualTimeMs: r.virtualTimeMs, throughputMBps: r.throughputMBps, traceHash: r.traceHash },
    runs: [fromSummary(s)],
  });
  log?.info({ history: path, record: id }, 'run recorded in the history');
  return id;
}

/**
 * Records one `rack run --record` (docs/history.md): its settings and headline as the record, the
 * run as its one row, keyed like any run by its reproduce command (so `history --seed N` shows
 * rack runs beside emulations of that seed, each its own command). A live run has no trace hash.
 */
export async function recordRack(path: string, run: { report: RackReport; startedAt: Date }, log?: Logger): Promise<string> {
  const id = newRecordId('rack');
  const r = run.report;
  await recordHistory(path, {
    id, kind: 'rack', startedAt: run.startedAt, finishedAt: new Date(),
    settings: { seed: r.seed, link: r.link, mode: r.mode, onLockReject: r.onLockReject, bidirectional: r.bidirectional, faults: r.faults, durationS: r.durationS, kill: r.kill },
    summary: { verdict: r.verdict, writes: r.writes, restarts: r.restarts, drained: r.drained, faultsInjected: r.faultsInjected, images: r.images },
    runs: [{
      seed: r.seed, mode: r.mode, onLockReject: r.onLockReject, verdict: r.verdict, violations: r.violations.slice(0, VIOLATIONS_KEPT_MAX),
      reproduce: r.reproduce, wallMs: Math.round(r.wallMs), writes: r.writes.acknowledged,
    }],
  });
  log?.info({ history: path, record: id }, 'rack run recorded in the history');
  return id;
}
