import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCampaign } from '../../../hil/campaign/campaign.ts';
import { renderCampaign } from '../../../hil/cli/campaign-command.ts';
import type { RunSummary } from '../../../hil/campaign/summary.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { campaignCases, campaignJUnit, viewCommand } from '../../../hil/report/campaign-report.ts';
import { JUNIT_TEXT_CHARS_MAX, junitSeconds, junitTimestamp, junitXml, type JUnitSuite } from '../../../hil/report/junit.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { plantInWorkers } from '../../support/planted-bugs.ts';

/** The JUnit schema the reports are checked against (see the file for where it comes from). */
const XSD = new URL('../../fixtures/junit/junit.xsd', import.meta.url).pathname;
const scratch = scratchDir('junit');

/** xmllint's verdict on `xml` against the schema: valid, or its complaint. */
function validate(xml: string): { valid: boolean; output: string } {
  const path = scratch.path('report', '.xml');
  writeFileSync(path, xml);
  const r = spawnSync('xmllint', ['--noout', '--schema', XSD, path], { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { valid: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

/** One value read back out of `xml` with an XPath, as a JUnit reader would see it. */
function xpath(xml: string, expr: string): string {
  const path = scratch.path('report', '.xml');
  writeFileSync(path, xml);
  const r = spawnSync('xmllint', ['--xpath', expr, path], { encoding: 'utf8' });
  // xmllint ends what it prints with a newline of its own.
  return r.stdout.replace(/\n$/, '');
}

const HOSTILE = 'a <b> & "c" \'d\' ]]> \u0001\u0007 tab\tnew\nline \uD83D\uDE00 lone \uD800 end';

function suite(): JUnitSuite {
  return {
    name: 'mirrorlab campaign seeds 1..4', started: new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 678)), seconds: 12.3456,
    properties: [['seeds', '4'], ['faults', HOSTILE]],
    cases: [
      { name: 'seed 1 speculative/halt-resume', classname: 'mirrorlab.campaign.speculative', seconds: 1.5, outcome: { kind: 'passed' }, stdout: 'reproduce: npx mirrorlab emulate --seed 1' },
      { name: `seed 2 ${HOSTILE}`, classname: 'mirrorlab.campaign.sync', seconds: 2, outcome: { kind: 'failed', type: 'lock-held,lock-exclusive', message: HOSTILE, details: `${HOSTILE}\nreproduce: x` } },
      { name: 'seed 3', classname: 'mirrorlab.campaign.async', seconds: Number.NaN, outcome: { kind: 'error', type: 'crash', message: 'boom', details: 'Error: boom\n    at run' } },
      { name: 'seed 4', classname: 'mirrorlab.campaign', seconds: 0, outcome: { kind: 'skipped', message: 'not run' } },
    ],
  };
}

describe('JUnit writer', () => {
  it('writes documents that validate against the JUnit schema, hostile text and all', () => {
    const xml = junitXml('mirrorlab campaign', [suite()]);
    const v = validate(xml);
    expect(v.output).toMatch(/validates/);
    expect(v.valid).toBe(true);
  });

  it('derives every count from the cases, and writes timestamps and times as the format wants them', () => {
    const xml = junitXml('mirrorlab campaign', [suite(), { ...suite(), name: 'second', cases: suite().cases.slice(0, 2) }]);
    expect(xml).toContain('<testsuites name="mirrorlab campaign" tests="6" failures="2" errors="1" skipped="1" time="24.691">');
    expect(xml).toContain('tests="4" failures="1" errors="1" skipped="1" time="12.346" timestamp="2025-01-02T03:04:05"');
    expect(xml).toContain('id="1"');
    expect(junitTimestamp(new Date(Date.UTC(2025, 11, 31, 23, 59, 59, 999)))).toBe('2025-12-31T23:59:59');
    expect([junitSeconds(1e-9), junitSeconds(-1), junitSeconds(Number.POSITIVE_INFINITY), junitSeconds(1e21)]).toEqual(['0.000', '0.000', '0.000', '1000000000000000000000.000']);
    expect(validate(xml).valid).toBe(true);
  });

  it('keeps what it escapes: a reader gets the text back, with what XML cannot carry written out', () => {
    const xml = junitXml('x', [suite()]);
    const message = xpath(xml, 'string(//testcase[2]/failure/@message)');
    expect(message).toBe(HOSTILE.replace('\u0001', '\\u{0001}').replace('\u0007', '\\u{0007}').replace('\uD800', '\\u{d800}'));
    expect(xpath(xml, 'string(//property[@name="faults"]/@value)')).toBe(message);
    expect(xpath(xml, 'string(//testcase[1]/system-out)')).toBe('reproduce: npx mirrorlab emulate --seed 1');
  });

  it('cuts a text past its limit, and says so', () => {
    const long = 'x'.repeat(JUNIT_TEXT_CHARS_MAX + 10);
    const xml = junitXml('x', [{ ...suite(), cases: [{ name: 'a', classname: 'b', seconds: 1, outcome: { kind: 'failed', type: 't', message: 'm', details: long } }] }]);
    expect(xml).toContain('[… 10 more characters cut]');
    expect(validate(xml).valid).toBe(true);
  });

  it('the schema refuses broken documents (so passing it means something)', () => {
    const good = junitXml('x', [suite()]);
    const broken: [string, string][] = [
      ['a failure without its type', good.replace(/<failure message="([^"]*)" type="[^"]*">/, '<failure message="$1">')],
      ['a negative time', good.replace('time="1.500"', 'time="-1.500"')],
      ['a timestamp with a zone', good.replace(/timestamp="([^"]*)"/, 'timestamp="$1Z"')],
      ['a count that is not a number', good.replace('tests="4" failures', 'tests="four" failures')],
      ['two outcomes in one case', good.replace('<skipped message="not run"/>', '<skipped message="not run"/><failure type="x">y</failure>')],
      ['a testcase without a classname', good.replace(' classname="mirrorlab.campaign.async"', '')],
      ['an unknown element', good.replace('<properties>', '<properties><colour/>')],
    ];
    for (const [what, xml] of broken) {
      expect(xml, what).not.toBe(good);
      const v = validate(xml);
      expect(v.valid, what).toBe(false);
      expect(v.output, what).toMatch(/fails to validate/);
    }
  });
});

describe('campaign JUnit report', () => {
  it('has one testcase per seed: passed, failed with its violations and reproduce command, error for a crash, skipped if never run', async () => {
    const runs: RunSummary[] = [];
    const result = await runCampaign(
      { seeds: 4, from: 21, writes: 150, faults: parseLinkFaults('drop=0.02:WRITE'), workers: 1, testing: { crashThreadSeeds: [23], plant: plantInWorkers(['source-drops-entry-before-ack']) } },
      (s) => runs.push(s),
    );
    expect(result.failures.map((f) => [f.seed, f.verdict])).toEqual([[21, 'inconsistent'], [22, 'inconsistent'], [23, 'crashed'], [24, 'inconsistent']]);
    // As if a fifth seed had been left unrun (the worker budget spent): it is reported, not forgotten.
    const input = { result: { ...result, seeds: 5, notRun: 1 }, runs, started: new Date(), faults: 'drop=0.02:WRITE' };
    const xml = campaignJUnit(input);
    expect(validate(xml).valid).toBe(true);
    const cases = campaignCases(input);
    expect(cases.map((c) => [c.name.split(' ').slice(0, 2).join(' '), c.outcome.kind])).toEqual([
      ['seed 21', 'failed'], ['seed 22', 'failed'], ['seed 23', 'error'], ['seed 24', 'failed'], ['seed 25', 'skipped'],
    ]);
    const failed = cases[0]!;
    const run = runs.find((r) => r.seed === 21)!;
    expect(failed.outcome).toMatchObject({ kind: 'failed', type: expect.stringContaining(run.violations[0]!.invariant) });
    if (failed.outcome.kind !== 'failed') throw new Error('unreachable');
    expect(failed.outcome.details).toContain(`reproduce: ${run.reproduce}`);
    expect(failed.outcome.details).toContain(`view:      ${viewCommand(run.reproduce, 21)}`);
    expect(failed.outcome.details).toContain(run.violations[0]!.message);
    // The campaign's own text output carries the same one-step command.
    expect(renderCampaign(result)).toContain(`    view:      ${viewCommand(run.reproduce, 21)}`);
    expect(xpath(xml, 'count(//testcase)')).toBe('5');
    expect(xpath(xml, 'string(//testsuite/@failures)')).toBe('3');
    expect(xpath(xml, 'string(//testcase[3]/error/@type)')).toBe('crash');
    expect(xpath(xml, 'string(//testcase[3]/system-out)')).toMatch(/^reproduce: npx mirrorlab emulate --seed 23 /);
  });

  it('the view command reproduces a seed with its trace and opens it, keeping a trailing note a comment', () => {
    expect(viewCommand('npx mirrorlab emulate --seed 7 --mode sync', 7)).toBe('npx mirrorlab emulate --seed 7 --mode sync --trace mirrorlab-seed-7.jsonl; npx mirrorlab viz --trace mirrorlab-seed-7.jsonl');
    expect(viewCommand('npx mirrorlab emulate --seed 7 # planted firmware mutations (testing aid, no flag): x', 7))
      .toBe('npx mirrorlab emulate --seed 7 --trace mirrorlab-seed-7.jsonl; npx mirrorlab viz --trace mirrorlab-seed-7.jsonl # planted firmware mutations (testing aid, no flag): x');
  });
});
