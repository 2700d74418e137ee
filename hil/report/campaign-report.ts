import type { CampaignFailure, CampaignResult } from '../campaign/campaign.ts';
import type { RunSummary } from '../campaign/summary.ts';
import { describeViolation } from '../checker/violation.ts';
import { LINK_FAULT_COUNTER_LABELS } from '../faults/link-fault-injector.ts';
import { esc, htmlPage, htmlTable } from './html.ts';
import { junitXml, type JUnitCase } from './junit.ts';
import { barChart, lineChart } from './svg.ts';
import { VERSION } from '../version.ts';

/** What a campaign report is made from: the result, every run's summary, and what the campaign was asked. */
export interface CampaignReportInput {
  result: CampaignResult;
  /** Every run that reached a verdict (consistent ones too), in any order. */
  runs: readonly RunSummary[];
  started: Date;
  /** The fault plan every seed used, or null when each drew its own. */
  faults: string | null;
}

/** Violations listed per failing seed (a report states how many more there were). */
const VIOLATIONS_LISTED_MAX = 50;


/**
 * The command that reproduces a failing seed and opens it in the visualizer, in one line
 * (docs/viz.md, "From a failure to its trace"). A reproduce command may end in a shell comment
 * (planted mutations, a testing aid): the trace flag must go before it, or the shell would drop it.
 * `;`, not `&&`: an inconsistent run exits 1, and that is exactly the run worth looking at.
 */
export function viewCommand(reproduce: string, seed: number): string {
  const hash = reproduce.indexOf(' # ');
  const [command, comment] = hash < 0 ? [reproduce, ''] : [reproduce.slice(0, hash), reproduce.slice(hash)];
  const trace = `mirrorlab-seed-${seed}.jsonl`;
  return `${command} --trace ${trace}; npx mirrorlab viz --trace ${trace}${comment}`;
}

/** One testcase per seed: passed, failed (violations), error (crashed), or skipped (never run). */
export function campaignCases(input: CampaignReportInput): JUnitCase[] {
  const { result } = input;
  const runs = new Map(input.runs.map((r) => [r.seed, r]));
  const crashes = new Map(result.failures.filter((f) => f.verdict === 'crashed').map((f) => [f.seed, f]));
  const cases: JUnitCase[] = [];
  for (let seed = result.from; seed < result.from + result.seeds; seed++) {
    const run = runs.get(seed);
    const crash = crashes.get(seed);
    if (run) cases.push(runCase(run));
    else if (crash) cases.push(crashCase(crash));
    else cases.push({ name: `seed ${seed}`, classname: 'mirrorlab.campaign', seconds: 0, outcome: { kind: 'skipped', message: 'not run: more worker threads died than the campaign may replace' } });
  }
  return cases;
}

function runCase(r: RunSummary): JUnitCase {
  const base = { name: `seed ${r.seed} ${r.mode}/${r.onLockReject}`, classname: `mirrorlab.campaign.${r.mode}`, seconds: r.wallMs / 1000 };
  if (r.verdict === 'consistent') return { ...base, outcome: { kind: 'passed' }, stdout: `consistent; ${r.writes} writes; traceHash ${r.traceHash}\nreproduce: ${r.reproduce}` };
  const invariants = [...new Set(r.violations.map((v) => v.invariant))];
  const listed = r.violations.slice(0, VIOLATIONS_LISTED_MAX).map(describeViolation);
  if (r.violations.length > listed.length) listed.push(`… and ${r.violations.length - listed.length} more`);
  const details = [...listed, '', `reproduce: ${r.reproduce}`, `view:      ${viewCommand(r.reproduce, r.seed)}`, `traceHash: ${r.traceHash}`].join('\n');
  const first = r.violations[0];
  return {
    ...base,
    outcome: { kind: 'failed', type: invariants.join(',') || 'inconsistent', message: first ? describeViolation(first) : 'inconsistent', details },
    stdout: `reproduce: ${r.reproduce}`,
  };
}

function crashCase(f: CampaignFailure): JUnitCase {
  const error = f.error ?? 'crashed';
  return {
    name: `seed ${f.seed} ${f.mode}/${f.onLockReject}`, classname: `mirrorlab.campaign.${f.mode}`, seconds: 0,
    outcome: { kind: 'error', type: 'crash', message: error.split('\n')[0]!, details: `${error}\n\nreproduce: ${f.reproduce}` },
    stdout: `reproduce: ${f.reproduce}`,
  };
}

/** `campaign --junit FILE`: one suite, one testcase per seed. */
export function campaignJUnit(input: CampaignReportInput): string {
  const r = input.result;
  return junitXml('mirrorlab campaign', [{
    name: `mirrorlab campaign seeds ${r.from}..${r.from + r.seeds - 1}`, started: input.started, seconds: r.wallSeconds,
    properties: [
      ['seeds', String(r.seeds)], ['from', String(r.from)], ['faults', input.faults ?? 'drawn per seed'], ['writes', String(r.writes)],
      ['workerRestarts', String(r.workerRestarts)], ['mirrorlab', VERSION], ['node', process.version], ['platform', `${process.platform}-${process.arch}`],
    ],
    cases: campaignCases(input),
  }]);
}

/** `campaign --html FILE`: the summary, every failure with its commands, the fault totals, and plots. */
export function campaignHtml(input: CampaignReportInput): string {
  const r = input.result;
  const inconsistent = r.failures.length - r.crashed;
  const ok = r.failures.length === 0 && r.notRun === 0;
  const headline = ok ? 'ALL CONSISTENT' : `${inconsistent} INCONSISTENT, ${r.crashed} CRASHED${r.notRun > 0 ? `, ${r.notRun} NOT RUN` : ''}`;
  const f = r.faultsInjected;
  const body = [
    `<p class="headline ${ok ? 'ok' : 'bad'}" id="headline">${esc(headline)}</p>`,
    htmlTable(['', ''], [
      ['seeds', `${r.from}..${r.from + r.seeds - 1} (${r.seeds})`], ['runs with a verdict', r.runs], ['consistent', r.consistent], ['inconsistent', inconsistent],
      ['crashed', r.crashed], ['not run', r.notRun], ['writes acknowledged', r.writes], ['wall time', `${r.wallSeconds} s`],
      ['worker threads replaced', r.workerRestarts], ['fault plan', input.faults ?? 'drawn per seed'], ['started (UTC)', input.started.toISOString()],
      ['mirrorlab', `${VERSION}, node ${process.version}`],
    ], { id: 'summary' }),
    '<h2>Failures</h2>',
    ...(r.failures.length === 0 ? ['<p>None.</p>'] : r.failures.map(failureHtml)),
    '<h2>Faults injected</h2>',
    htmlTable(['fault', 'count'], Object.entries(LINK_FAULT_COUNTER_LABELS).map(([k, label]) => [label, f[k as keyof typeof f]]), { numeric: [1], id: 'faults' }),
    '<h2>Plots</h2>',
    `<div class="charts">${campaignCharts(input).join('\n')}</div>`,
  ];
  return htmlPage(`mirrorlab campaign: seeds ${r.from}..${r.from + r.seeds - 1}`, body);
}

function failureHtml(fail: CampaignFailure): string {
  const lines = fail.verdict === 'crashed'
    ? [`<p><strong>CRASH</strong> seed ${fail.seed} (${esc(fail.mode)}/${esc(fail.onLockReject)})</p>`, `<pre>${esc(fail.error ?? '')}</pre>`]
    : [
      `<p><strong>FAIL</strong> seed ${fail.seed} (${esc(fail.mode)}/${esc(fail.onLockReject)}), ${fail.violations.length} violation${fail.violations.length === 1 ? '' : 's'}</p>`,
      `<ul>${fail.violations.slice(0, VIOLATIONS_LISTED_MAX).map((v) => `<li>${esc(describeViolation(v))}</li>`).join('')}${fail.violations.length > VIOLATIONS_LISTED_MAX ? `<li>… and ${fail.violations.length - VIOLATIONS_LISTED_MAX} more</li>` : ''}</ul>`,
    ];
  lines.push('<p>Reproduce:</p>', `<pre class="reproduce">${esc(fail.reproduce)}</pre>`);
  if (fail.verdict !== 'crashed') lines.push('<p>Reproduce and open its trace in the visualizer:</p>', `<pre class="view">${esc(viewCommand(fail.reproduce, fail.seed))}</pre>`);
  return `<div class="failure" id="seed-${fail.seed}">${lines.join('\n')}</div>`;
}

function campaignCharts(input: CampaignReportInput): string[] {
  const r = input.result;
  const runs = [...input.runs].sort((a, b) => a.seed - b.seed);
  const keys = Object.keys(r.byMode).sort();
  const crashesBy = new Map<string, number>();
  for (const f of r.failures) if (f.verdict === 'crashed') crashesBy.set(`${f.mode}/${f.onLockReject}`, (crashesBy.get(`${f.mode}/${f.onLockReject}`) ?? 0) + 1);
  const cats = [...new Set([...keys, ...crashesBy.keys()])].sort();
  const verdictCount = (key: string, verdict: string): number => runs.filter((x) => `${x.mode}/${x.onLockReject}` === key && x.verdict === verdict).length;
  const f = r.faultsInjected;
  const charts = [
    barChart({
      title: 'runs by mode and lock-reject policy', yLabel: 'runs', categories: cats, stacked: true, width: 520,
      groups: [
        { name: 'consistent', values: cats.map((k) => verdictCount(k, 'consistent')), slot: 2 },
        { name: 'inconsistent', values: cats.map((k) => verdictCount(k, 'inconsistent')), slot: 1 },
        { name: 'crashed', values: cats.map((k) => crashesBy.get(k) ?? 0), slot: 7 },
      ],
    }),
    barChart({
      title: 'faults injected (all runs)', yLabel: 'count', width: 520,
      categories: ['dropped', 'corrupted', 'duplicated', 'reordered', 'delayed', 'partitions', 'bandwidth'],
      groups: [{ name: 'faults', values: [f.framesDropped, f.framesCorrupted, f.framesDuplicated, f.framesReordered, f.framesDelayed, f.partitions, f.bandwidthChanges], slot: 3 }],
    }),
    lineChart({
      title: 'wall time per run', xLabel: 'seed', yLabel: 'ms', width: 520,
      series: [
        { name: 'consistent', dotsOnly: true, slot: 2, points: runs.filter((x) => x.verdict === 'consistent').map((x) => [x.seed, x.wallMs] as const) },
        { name: 'inconsistent', dotsOnly: true, slot: 1, points: runs.filter((x) => x.verdict !== 'consistent').map((x) => [x.seed, x.wallMs] as const) },
      ],
    }),
    lineChart({
      title: 'frame faults per run', xLabel: 'seed', yLabel: 'frames', width: 520,
      series: [{ name: 'dropped + corrupted + duplicated + reordered + delayed', dotsOnly: true, slot: 3, points: runs.map((x) => {
        const c = x.faultsInjected;
        return [x.seed, c.framesDropped + c.framesCorrupted + c.framesDuplicated + c.framesReordered + c.framesDelayed] as const;
      }) }],
    }),
  ];
  const invariants = new Map<string, number>();
  for (const x of runs) for (const v of x.violations) invariants.set(v.invariant, (invariants.get(v.invariant) ?? 0) + 1);
  if (invariants.size > 0) {
    const names = [...invariants.keys()].sort();
    charts.push(barChart({ title: 'violations by invariant', yLabel: 'violations', width: 520, categories: names, groups: [{ name: 'violations', values: names.map((n) => invariants.get(n)!), slot: 1 }] }));
  }
  return charts;
}
