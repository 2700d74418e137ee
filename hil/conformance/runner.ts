import { randomInt } from 'node:crypto';
import { createConnection } from 'node:net';
import { MirrorlabError } from '../../firmware/errors.ts';
import type { LinkLogger } from '../../host/transports/link-logger.ts';
import { RealClock } from '../../host/clock/real.ts';
import { formatLiveLinkSpec, openLiveLink, type LiveLinkSpec } from '../../host/transports/live-link.ts';
import type { JUnitCase, JUnitSuite } from '../report/junit.ts';
import { AREA_SECTORS, CASES, CaseFailure, LOCK_REGION_SECTORS, type ConformanceCase, type ControlNeed, type TargetControl } from './cases.ts';

/** The battery could not be run at all (nothing answers, a case name unknown): exit 2. */
export class ConformanceError extends MirrorlabError {}

export interface ConformanceOptions {
  link: LiveLinkSpec;
  lun: number;
  /** The source volume: 512-byte sectors; the battery's areas must fit in it, and so in the target's LUN. */
  sectorCount: number;
  /** Our controller id, sent in HELLO. */
  id: number;
  control: TargetControl | null;
  /** Run only these cases (all when absent). */
  only?: readonly string[];
  logger: LinkLogger;
  /** Told of each result as it is known (the per-case lines). */
  onResult?(result: CaseResult): void;
}

export interface CaseResult {
  name: string;
  verdict: 'pass' | 'fail' | 'skip';
  reason: string;
  seconds: number;
  proves: string;
  control: ControlNeed;
}

export interface ConformanceReport {
  target: string;
  started: Date;
  seconds: number;
  results: CaseResult[];
  passed: number;
  failed: number;
  skipped: number;
}

/** How long a case that was cut off gets to stop its source before the next case starts (ms). */
const CUT_OFF_GRACE_MS = 20_000;
/** How long the reachability probe waits for a TCP connection (ms). */
const PROBE_MS = 3_000;

export const CASE_NAMES: readonly string[] = CASES.map((c) => c.name);

/** The sectors the whole battery touches on the LUN: every case's area. */
export function sectorsNeeded(): number {
  return CASES.length * AREA_SECTORS;
}

/** The cases `names` picks (in battery order), or a ConformanceError naming the unknown ones and the known ones. */
export function pickCases(names: readonly string[] | undefined): ConformanceCase[] {
  if (names === undefined || names.length === 0) return [...CASES];
  const unknown = names.filter((n) => !CASE_NAMES.includes(n));
  if (unknown.length > 0) throw new ConformanceError('ML_ERR_CONFORMANCE_CASE', `unknown case ${unknown.join(', ')}; the cases are ${CASE_NAMES.join(', ')}`);
  return CASES.filter((c) => names.includes(c.name));
}

/**
 * Runs the battery (docs/conformance.md): each case in turn, each with a source of its own and a
 * bounded time; a case that throws anything but its verdict fails with what it threw.
 */
export async function runConformance(opts: ConformanceOptions): Promise<ConformanceReport> {
  const cases = pickCases(opts.only);
  if (opts.sectorCount < sectorsNeeded()) {
    throw new ConformanceError('ML_ERR_CONFORMANCE_VOLUME', `the battery writes ${sectorsNeeded()} sectors; a volume of ${opts.sectorCount} is too small`);
  }
  await probe(opts.link, opts.logger);
  const started = new Date();
  const t0 = performance.now();
  // Tags are 32-bit in the sectors' self-description; a new base each run, so no earlier run's data reads back as this one's.
  const tagBase = randomInt(1, 2 ** 20) * 1000;
  const results: CaseResult[] = [];
  for (const c of cases) {
    const index = CASES.indexOf(c);
    const ctx = {
      settings: { link: opts.link, lun: opts.lun, sectorCount: opts.sectorCount, id: opts.id, lockRegionSectors: LOCK_REGION_SECTORS, logger: opts.logger },
      control: opts.control, area: index * AREA_SECTORS, tagBase: tagBase + index * 100,
    };
    const result = await runCase(c, ctx);
    results.push(result);
    opts.onResult?.(result);
  }
  const count = (v: CaseResult['verdict']): number => results.filter((r) => r.verdict === v).length;
  return {
    target: formatLiveLinkSpec(opts.link), started, seconds: (performance.now() - t0) / 1000, results,
    passed: count('pass'), failed: count('fail'), skipped: count('skip'),
  };
}

async function runCase(c: ConformanceCase, ctx: Parameters<ConformanceCase['run']>[0]): Promise<CaseResult> {
  const t0 = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CaseFailure(`the case did not finish within ${c.timeoutMs} ms`)), c.timeoutMs);
  });
  let verdict: CaseResult['verdict'];
  let reason: string;
  const running = c.run(ctx);
  try {
    const outcome = await Promise.race([running, timeout]);
    verdict = outcome.verdict;
    reason = outcome.reason;
  } catch (error) {
    verdict = 'fail';
    reason = error instanceof CaseFailure ? error.message : `the case could not be carried out: ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    clearTimeout(timer);
  }
  // A case cut off is still stopping its source: the next one must not meet it on the target's link.
  await Promise.race([running.catch(() => undefined), new Promise((r) => setTimeout(r, CUT_OFF_GRACE_MS).unref())]);
  return { name: c.name, verdict, reason, seconds: (performance.now() - t0) / 1000, proves: c.proves, control: c.control };
}

/** Something must listen at a TCP target; a serial port must open (absent, busy or forbidden: one line, exit 2). */
async function probe(link: LiveLinkSpec, logger: LinkLogger): Promise<void> {
  if (link.kind !== 'tcp') {
    const port = await openLiveLink(link, { clock: new RealClock(), logger, localName: 'conformance', peerName: 'target' });
    await port.shutdown();
    return;
  }
  const where = formatLiveLinkSpec(link).replace(/^tcp:/, '');
  await new Promise<void>((resolve, reject) => {
    const s = createConnection({ host: link.host, port: link.port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new ConformanceError('ML_ERR_CONFORMANCE_UNREACHABLE', `no target answered at ${where} within ${PROBE_MS} ms`));
    }, PROBE_MS);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve();
    });
    s.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = error.code ?? error.message;
      reject(new ConformanceError('ML_ERR_CONFORMANCE_UNREACHABLE', `nothing listens at ${where} (${why}); start the target first (its peer link listening there)`));
    });
  });
}

function failureDetails(r: CaseResult, reproduce: string): string {
  return `${r.reason}\n\nwhat the case proves: ${r.proves}\nrerun: ${reproduce} --case ${r.name}`;
}

/** The report as a JUnit suite (hil/report/junit.ts): one testcase per case; a failure carries its reason. */
export function conformanceSuite(report: ConformanceReport, reproduce: string): JUnitSuite {
  const cases: JUnitCase[] = report.results.map((r) => ({
    name: r.name,
    classname: 'mirrorlab.conformance',
    seconds: r.seconds,
    outcome: r.verdict === 'pass' ? { kind: 'passed' }
      : r.verdict === 'skip' ? { kind: 'skipped', message: r.reason }
        : { kind: 'failed', message: r.reason, type: 'conformance', details: failureDetails(r, reproduce) },
    stdout: r.verdict === 'pass' ? r.reason : undefined,
  }));
  return {
    name: 'mirrorlab.conformance', started: report.started, seconds: report.seconds, cases,
    properties: [['target', report.target], ['command', reproduce]],
  };
}
