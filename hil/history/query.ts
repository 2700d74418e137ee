import type { Database, SqlValue } from 'sql.js';
import { HistoryError, readHistory } from './history-db.ts';

/** One seed's verdict in one record, as `mirrorlab history` shows it. */
export interface HistoryRun {
  recordId: string;
  kind: string;
  /** When its record finished (ISO 8601, UTC). */
  at: string;
  commit: string | null;
  version: string;
  sourceHash: string;
  seed: number;
  key: string;
  mode: string;
  onLockReject: string;
  verdict: 'consistent' | 'inconsistent' | 'crashed';
  /** The invariants broken (one each), or the crash's first line. */
  invariants: string[];
  violationsTotal: number;
  error: string | null;
  traceHash: string | null;
  reproduce: string;
}

/**
 * What a run's history says (docs/history.md 3), from its records in time order:
 * - `regression`: fails now, passed before;
 * - `always-failing`: fails now, never passed;
 * - `fixed`: passes now, failed before;
 * - `passing`: never failed.
 */
export const STATUSES = ['regression', 'always-failing', 'fixed', 'passing'] as const;
export type RunStatus = (typeof STATUSES)[number];

export interface RunStory {
  key: string;
  seed: number;
  status: RunStatus;
  /** Records of this run (this seed with these settings). */
  records: number;
  latest: HistoryRun;
  /** regression: the last pass before the failures; fixed: the last failure before the passes. */
  before: HistoryRun | null;
  /** regression: the first failure after that pass (or ever); fixed: the first pass after that failure. */
  turned: HistoryRun | null;
  /** always-failing: the first failure. */
  first: HistoryRun;
  /** fixed: the run passed before it failed (a regression, fixed); false otherwise. */
  regressionFixed: boolean;
}

export interface HistoryRecordRow {
  id: string;
  kind: string;
  startedAt: string;
  finishedAt: string;
  commit: string | null;
  version: string;
  sourceHash: string;
  host: string;
  seeds: number;
  failures: number;
}

export interface HistoryQuery {
  failures?: boolean;
  seed?: number;
  /** Only records that finished at or after this instant. */
  since?: Date;
}

export interface HistoryAnswer {
  path: string;
  query: { failures: boolean; seed: number | null; since: string | null };
  /** Records (campaigns, emulations) in the window, newest first. */
  records: HistoryRecordRow[];
  /** One per run with a record in the window: what its whole history says, worst first. */
  runs: RunStory[];
  /** With `seed`: every record of that seed, oldest first. */
  seedRuns: HistoryRun[];
}

const failed = (r: HistoryRun): boolean => r.verdict !== 'consistent';

/** Answers `mirrorlab history` from the file at `path` (an empty answer when it does not exist yet). */
export async function queryHistory(path: string, q: HistoryQuery): Promise<HistoryAnswer> {
  const db = await readHistory(path);
  try {
    return answer(db, path, q);
  } catch (err) {
    // The file passed SQLite's own check, yet holds something our queries cannot read.
    throw new HistoryError('ML_ERR_HISTORY_FORMAT', `history ${path} cannot be read (${(err as Error).message}); move it away or point --history elsewhere`);
  } finally {
    db.close();
  }
}

function answer(db: Database, path: string, q: HistoryQuery): HistoryAnswer {
  const since = q.since?.toISOString() ?? null;
  const all = loadRuns(db, q.seed);
  const byKey = new Map<string, HistoryRun[]>();
  for (const r of all) {
    const runs = byKey.get(r.key);
    if (runs) runs.push(r);
    else byKey.set(r.key, [r]);
  }
  let stories = [...byKey.values()].filter((rs) => since === null || rs.some((r) => r.at >= since)).map(story);
  if (q.failures) stories = stories.filter((s) => failed(s.latest));
  stories.sort((a, b) => STATUSES.indexOf(a.status) - STATUSES.indexOf(b.status) || b.latest.at.localeCompare(a.latest.at) || a.seed - b.seed);
  return {
    path,
    query: { failures: q.failures ?? false, seed: q.seed ?? null, since },
    records: loadRecords(db, since, q.seed),
    runs: stories,
    seedRuns: q.seed === undefined ? [] : all.filter((r) => since === null || r.at >= since),
  };
}

/** What the records of one run, oldest first, say about it. */
export function story(records: HistoryRun[]): RunStory {
  const latest = records[records.length - 1]!;
  const lastOpposite = findLastIndex(records, (r) => failed(r) !== failed(latest));
  const firstFailure = records.find(failed) ?? latest;
  const base = { key: latest.key, seed: latest.seed, records: records.length, latest, first: firstFailure };
  if (lastOpposite < 0) return { ...base, status: failed(latest) ? 'always-failing' : 'passing', before: null, turned: null, regressionFixed: false };
  const status = failed(latest) ? 'regression' : 'fixed';
  const regressionFixed = status === 'fixed' && records.slice(0, lastOpposite).some((r) => !failed(r));
  return { ...base, status, before: records[lastOpposite]!, turned: records[lastOpposite + 1]!, regressionFixed };
}

function findLastIndex<T>(xs: T[], p: (x: T) => boolean): number {
  for (let i = xs.length - 1; i >= 0; i--) if (p(xs[i]!)) return i;
  return -1;
}

function rows(db: Database, sql: string, params: SqlValue[]): Record<string, SqlValue>[] {
  const stmt = db.prepare(sql);
  try {
    stmt.bind(params);
    const out: Record<string, SqlValue>[] = [];
    while (stmt.step()) out.push(stmt.getAsObject());
    return out;
  } finally {
    stmt.free();
  }
}

/** Every run (of one seed, if given), in the order their records were written. */
function loadRuns(db: Database, seed: number | undefined): HistoryRun[] {
  const where = seed === undefined ? '' : 'WHERE runs.seed = ?';
  const found = rows(db, `SELECT runs.*, records.kind, records.finished_at, records.git_commit, records.version, records.source_hash
    FROM runs JOIN records ON records.id = runs.record_id ${where} ORDER BY records.rowid, runs.seed`, seed === undefined ? [] : [seed]);
  return found.map((r): HistoryRun => {
    const violations = parseJson(r.violations ?? null) as { invariant?: unknown }[];
    const invariants = [...new Set(violations.map((v) => String(v.invariant)))];
    return {
      recordId: String(r.record_id), kind: String(r.kind), at: String(r.finished_at), commit: r.git_commit === null ? null : String(r.git_commit),
      version: String(r.version), sourceHash: String(r.source_hash), seed: Number(r.seed), key: String(r.run_key), mode: String(r.mode),
      onLockReject: String(r.on_lock_reject), verdict: String(r.verdict) as HistoryRun['verdict'], invariants, violationsTotal: Number(r.violations_total),
      error: r.error === null ? null : String(r.error), traceHash: r.trace_hash === null ? null : String(r.trace_hash), reproduce: String(r.reproduce),
    };
  });
}

function loadRecords(db: Database, since: string | null, seed: number | undefined): HistoryRecordRow[] {
  const conditions: string[] = [];
  const params: SqlValue[] = [];
  if (since !== null) {
    conditions.push('records.finished_at >= ?');
    params.push(since);
  }
  if (seed !== undefined) {
    conditions.push('EXISTS (SELECT 1 FROM runs r WHERE r.record_id = records.id AND r.seed = ?)');
    params.push(seed);
  }
  const found = rows(db, `SELECT records.*, (SELECT COUNT(*) FROM runs WHERE runs.record_id = records.id) AS seeds,
      (SELECT COUNT(*) FROM runs WHERE runs.record_id = records.id AND runs.verdict != 'consistent') AS failures
    FROM records ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''} ORDER BY records.rowid DESC`, params);
  return found.map((r) => ({
    id: String(r.id), kind: String(r.kind), startedAt: String(r.started_at), finishedAt: String(r.finished_at),
    commit: r.git_commit === null ? null : String(r.git_commit), version: String(r.version), sourceHash: String(r.source_hash), host: String(r.host),
    seeds: Number(r.seeds), failures: Number(r.failures),
  }));
}

function parseJson(v: SqlValue): unknown[] {
  try {
    const parsed = JSON.parse(String(v)) as unknown;
    return Array.isArray(parsed) ? parsed : [];
  } catch {
    return [];
  }
}
