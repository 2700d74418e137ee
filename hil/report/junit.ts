import { hostname } from 'node:os';
import { escapeAttr, escapeText } from './xml.ts';

/**
 * JUnit XML, the test-result format Jenkins, GitLab and most CI servers read (docs/reports.md,
 * "JUnit"): one writer for every mirrorlab command that reports to a rack (campaigns now; rack
 * runs and conformance suites next). It follows the Ant/Jenkins layout that
 * test/fixtures/junit/junit.xsd describes, and the tests validate what it writes against that
 * schema with xmllint.
 *
 * Callers describe cases and their outcomes; the writer derives every count (tests, failures,
 * errors, skipped) and the totals itself, so a report can never disagree with its own cases.
 */
export type JUnitOutcome =
  | { kind: 'passed' }
  /** The thing tested did something wrong (for a mirrorlab run: a consistency violation). */
  | { kind: 'failed'; message: string; type: string; details: string }
  /** The test could not be carried out (a crash: a bug in the harness, not a verdict). */
  | { kind: 'error'; message: string; type: string; details: string }
  | { kind: 'skipped'; message: string };

export interface JUnitCase {
  name: string;
  /** Dotted: CI servers group cases by it (`mirrorlab.campaign.speculative`). */
  classname: string;
  seconds: number;
  outcome: JUnitOutcome;
  /** What a person needs next to the result, e.g. the command that reproduces it. */
  stdout?: string;
  stderr?: string;
}

export interface JUnitSuite {
  name: string;
  /** When the suite started. */
  started: Date;
  seconds: number;
  /** Settings the suite ran with (seed range, fault plan, versions), in order. */
  properties?: readonly (readonly [string, string])[];
  cases: readonly JUnitCase[];
  stdout?: string;
  stderr?: string;
  /** Default: this machine's host name. */
  hostname?: string;
}

/** At most this many characters of any one text (a failure's details, a case's output); the rest is cut, and the cut said. */
export const JUNIT_TEXT_CHARS_MAX = 64 * 1024;

/** The Ant format's timestamp: ISO 8601 to the second, without a zone. mirrorlab writes UTC (and says so in a property). */
export function junitTimestamp(d: Date): string {
  return d.toISOString().slice(0, 19);
}

/** Seconds as the schema's decimal: never exponent notation, never negative, millisecond precision. */
export function junitSeconds(s: number): string {
  const v = Number.isFinite(s) && s > 0 ? s : 0;
  // toFixed switches to exponent notation from 1e21 on, which is no xs:decimal.
  return v < 1e21 ? v.toFixed(3) : `${BigInt(Math.round(v))}.000`;
}

function clip(text: string): string {
  return text.length <= JUNIT_TEXT_CHARS_MAX ? text : `${text.slice(0, JUNIT_TEXT_CHARS_MAX)}\n[… ${text.length - JUNIT_TEXT_CHARS_MAX} more characters cut]`;
}

function counts(cases: readonly JUnitCase[]): { tests: number; failures: number; errors: number; skipped: number } {
  const n = (k: JUnitOutcome['kind']): number => cases.filter((c) => c.outcome.kind === k).length;
  return { tests: cases.length, failures: n('failed'), errors: n('error'), skipped: n('skipped') };
}

function caseXml(c: JUnitCase): string {
  const head = `    <testcase name="${escapeAttr(c.name)}" classname="${escapeAttr(c.classname)}" time="${junitSeconds(c.seconds)}"`;
  const body: string[] = [];
  const o = c.outcome;
  if (o.kind === 'failed' || o.kind === 'error') {
    const tag = o.kind === 'failed' ? 'failure' : 'error';
    body.push(`      <${tag} message="${escapeAttr(clip(o.message))}" type="${escapeAttr(o.type)}">${escapeText(clip(o.details))}</${tag}>`);
  } else if (o.kind === 'skipped') body.push(`      <skipped message="${escapeAttr(clip(o.message))}"/>`);
  if (c.stdout) body.push(`      <system-out>${escapeText(clip(c.stdout))}</system-out>`);
  if (c.stderr) body.push(`      <system-err>${escapeText(clip(c.stderr))}</system-err>`);
  return body.length === 0 ? `${head}/>` : `${head}>\n${body.join('\n')}\n    </testcase>`;
}

function suiteXml(s: JUnitSuite, id: number): string {
  const c = counts(s.cases);
  const attrs = [
    `name="${escapeAttr(s.name)}"`, `tests="${c.tests}"`, `failures="${c.failures}"`, `errors="${c.errors}"`, `skipped="${c.skipped}"`,
    `time="${junitSeconds(s.seconds)}"`, `timestamp="${junitTimestamp(s.started)}"`, `hostname="${escapeAttr(s.hostname ?? (hostname() || 'localhost'))}"`, `id="${id}"`,
  ].join(' ');
  const lines = [`  <testsuite ${attrs}>`, '    <properties>'];
  for (const [name, value] of [...(s.properties ?? []), ['timezone', 'UTC'] as const]) lines.push(`      <property name="${escapeAttr(name)}" value="${escapeAttr(value)}"/>`);
  lines.push('    </properties>');
  for (const tc of s.cases) lines.push(caseXml(tc));
  if (s.stdout) lines.push(`    <system-out>${escapeText(clip(s.stdout))}</system-out>`);
  if (s.stderr) lines.push(`    <system-err>${escapeText(clip(s.stderr))}</system-err>`);
  lines.push('  </testsuite>');
  return lines.join('\n');
}

/** A whole JUnit document: `<testsuites>` with the totals, then each suite. */
export function junitXml(name: string, suites: readonly JUnitSuite[]): string {
  const all = suites.flatMap((s) => s.cases);
  const c = counts(all);
  const seconds = suites.reduce((t, s) => t + (Number.isFinite(s.seconds) && s.seconds > 0 ? s.seconds : 0), 0);
  const head = `<testsuites name="${escapeAttr(name)}" tests="${c.tests}" failures="${c.failures}" errors="${c.errors}" skipped="${c.skipped}" time="${junitSeconds(seconds)}">`;
  return ['<?xml version="1.0" encoding="UTF-8"?>', head, ...suites.map(suiteXml), '</testsuites>', ''].join('\n');
}
