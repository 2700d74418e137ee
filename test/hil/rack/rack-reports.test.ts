import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { queryHistory } from '../../../hil/history/query.ts';
import { recordRack } from '../../../hil/history/record.ts';
import type { RackReport } from '../../../hil/rack/report.ts';
import { rackJUnit } from '../../../hil/report/rack-report.ts';
import { newLinkFaultCounters } from '../../../hil/faults/link-fault-injector.ts';
import { scratchDir } from '../../support/scratch-dir.ts';

const scratch = scratchDir('rack-reports');
const XSD = new URL('../../fixtures/junit/junit.xsd', import.meta.url).pathname;

/** A rack run's report as `runRack` returns it, with the fields the reports read. */
function report(o: Partial<RackReport> = {}): RackReport {
  return {
    seed: 7, link: 'tcp', mode: 'sync', onLockReject: 'halt-resume', bidirectional: false, faults: 'none', faultsDrawn: false, durationS: 2,
    kill: { side: 'target', atS: 1 }, verdict: 'consistent', violations: [], violationsDropped: 0, notes: [],
    writes: { requested: null, issued: 120, acknowledged: 120, errors: 0, uncertain: 0 },
    faultsInjected: newLinkFaultCounters(), faultsDescribed: '0 dropped', proxy: null, processes: [], restarts: 1, images: [],
    telemetry: { events: 10, edges: 5, lostAtKill: 0, ackedUnrecorded: 0 }, drained: true, wallMs: 4_200,
    reproduce: 'npx mirrorlab rack run --link tcp --seed 7 --mode sync --faults none --kill target@1', dir: null,
    ...o,
  } as RackReport;
}

const BROKEN = report({
  verdict: 'inconsistent', notes: ['the target was killed at 1 s'],
  violations: [{ invariant: 'ack-after-apply', node: 'A', lun: 0, lba: 8, seq: 3, tMs: 12, message: 'host ack of tag 3 before B applied it' }],
});

function xmllint(args: string[], xml: string): { status: number | null; out: string } {
  const path = scratch.path('junit', '.xml');
  writeFileSync(path, xml);
  const r = spawnSync('xmllint', [...args, path], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('rack run --junit', () => {
  it('a consistent run is one passing testcase, valid against the JUnit schema', () => {
    const xml = rackJUnit(report(), new Date('2026-12-02T05:00:00Z'));
    expect(xmllint(['--noout', '--schema', XSD], xml).status).toBe(0);
    expect(xml).toMatch(/<testsuite [^>]*tests="1" [^>]*failures="0"/);
    expect(xml).toContain('name="seed 7 tcp sync/halt-resume kill target@1s"');
    expect(xml).toContain('reproduce: npx mirrorlab rack run --link tcp --seed 7');
  });

  it('an inconsistent run is a failure naming the invariant, with its violations, notes and reproduce command', () => {
    const xml = rackJUnit(BROKEN, new Date('2026-12-02T05:00:00Z'));
    expect(xmllint(['--noout', '--schema', XSD], xml).status).toBe(0);
    expect(xml).toMatch(/<testsuite [^>]*failures="1"/);
    expect(xml).toMatch(/<failure [^>]*type="ack-after-apply"/);
    expect(xml).toContain('host ack of tag 3 before B applied it');
    expect(xml).toContain('note: the target was killed at 1 s');
  });
});

describe('rack run --record', () => {
  it('records each run in the history, where a seed that failed and then passed reads as fixed', async () => {
    const path = scratch.path('history', '.db');
    const failed = await recordRack(path, { report: BROKEN, startedAt: new Date('2026-12-01T10:00:00Z') });
    const passed = await recordRack(path, { report: report(), startedAt: new Date('2026-12-02T10:00:00Z') });
    expect(failed).toMatch(/^r/);
    const a = await queryHistory(path, { seed: 7 });
    expect(a.records.map((r) => r.kind)).toEqual(['rack', 'rack']);
    expect(a.seedRuns.map((r) => [r.recordId, r.verdict])).toEqual([[failed, 'inconsistent'], [passed, 'consistent']]);
    expect(a.runs[0]).toMatchObject({ seed: 7, status: 'fixed' });
  });
});
