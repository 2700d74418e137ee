import { describeViolation } from '../checker/violation.ts';
import type { RackReport } from '../rack/report.ts';
import { VERSION } from '../version.ts';
import { junitXml, type JUnitCase } from './junit.ts';

/** Violations written out in a failed case (the rest are counted). */
const VIOLATIONS_LISTED_MAX = 50;

/**
 * `rack run --junit FILE` (docs/rack.md): the run as one testcase with the campaign's shape, so a
 * CI server that reads campaign reports reads this one too: passed when consistent, failed with
 * the violations, the notes and the reproduce command otherwise.
 */
export function rackJUnit(r: RackReport, started: Date): string {
  const name = `seed ${r.seed} ${r.link} ${r.mode}/${r.onLockReject}${r.kill ? ` kill ${r.kill.side}@${r.kill.atS}s` : ''}`;
  const base = { name, classname: `mirrorlab.rack.${r.link}.${r.mode}`, seconds: r.wallMs / 1000 };
  const summary = `${r.writes.acknowledged} writes acknowledged; faults: ${r.faultsDescribed}; restarts ${r.restarts}; drained ${r.drained}`;
  let tc: JUnitCase;
  if (r.verdict === 'consistent') {
    tc = { ...base, outcome: { kind: 'passed' }, stdout: `consistent; ${summary}\nreproduce: ${r.reproduce}` };
  } else {
    const listed = r.violations.slice(0, VIOLATIONS_LISTED_MAX).map(describeViolation);
    const more = r.violations.length - listed.length + r.violationsDropped;
    if (more > 0) listed.push(`… and ${more} more`);
    const invariants = [...new Set(r.violations.map((v) => v.invariant))];
    const first = r.violations[0];
    tc = {
      ...base,
      outcome: {
        kind: 'failed', type: invariants.join(',') || 'inconsistent', message: first ? describeViolation(first) : 'inconsistent',
        details: [...listed, ...r.notes.map((n) => `note: ${n}`), '', summary, `reproduce: ${r.reproduce}`].join('\n'),
      },
      stdout: `reproduce: ${r.reproduce}`,
    };
  }
  return junitXml('mirrorlab rack run', [{
    name: `mirrorlab rack run seed ${r.seed}`, started, seconds: r.wallMs / 1000,
    properties: [
      ['seed', String(r.seed)], ['link', r.link], ['mode', r.mode], ['onLockReject', r.onLockReject], ['faults', r.faults],
      ['kill', r.kill ? `${r.kill.side}@${r.kill.atS}` : 'none'], ['mirrorlab', VERSION], ['node', process.version],
    ],
    cases: [tc],
  }]);
}
