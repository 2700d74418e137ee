import { Command, InvalidArgumentError, Option } from 'commander';
import { TCP_LINK_CONNECTIONS_MAX } from '../../host/transports/tcp-link.ts';
import { parseLiveLinkSpec, type LiveLinkSpec } from '../../host/transports/live-link.ts';
import { connectTargetControl } from '../conformance/target-control.ts';
import { CASE_NAMES, conformanceSuite, runConformance, sectorsNeeded, type CaseResult, type ConformanceReport } from '../conformance/runner.ts';
import type { Logger } from '../log.ts';
import { UsageError } from '../plan-error.ts';
import { junitXml } from '../report/junit.ts';
import { checkWritable, writeReport } from '../report/files.ts';
import { integer } from './parse.ts';

interface ConformanceFlags {
  tcp?: string;
  serial?: string;
  connections: number;
  lun: number;
  id: number;
  sectors: number;
  case?: string[];
  junit?: string;
  json: boolean;
  targetControl?: string;
}

const SECTORS_MAX = 1 << 24;

const HELP = {
  command: 'run the source side of the mirror protocol against an external target (a board, or mirrorlab controller) through a fixed battery of cases; '
    + 'exit 0 all passed, 1 any failed, 2 could not run',
  tcp: 'the target\'s peer link listens here (TCP data connections, UDP heartbeats on the same port)',
  serial: 'the target is at the other end of this serial line',
  connections: 'TCP data connections (the target\'s config must say the same)',
  lun: 'the LUN mirrored: the same number on the target, which must hold at least --sectors 512-byte sectors',
  id: 'the controller id this source sends in HELLO',
  sectors: 'the source volume in 512-byte sectors (a new session copies it all to the target: keep it small on a slow line)',
  case: `run only this case (repeat for more): ${CASE_NAMES.join(', ')}`,
  junit: 'also write JUnit XML, one testcase per case',
  json: 'print one JSON document instead of lines',
  targetControl: 'a mirrorlab controller target\'s control socket: read its copy back and lock regions for the refused-lock cases',
};

function collect(value: string, previous: string[] | undefined): string[] {
  const names = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const unknown = names.filter((n) => !CASE_NAMES.includes(n));
  if (unknown.length > 0) throw new InvalidArgumentError(`unknown case ${unknown.join(', ')}; the cases are ${CASE_NAMES.join(', ')}`);
  return [...(previous ?? []), ...names];
}

/**
 * `mirrorlab conformance` (docs/conformance.md): the battery against a target at `--tcp` or
 * `--serial`, a line per case and a summary (or `--json`), JUnit XML with `--junit`.
 */
export function conformanceCommand(log: Logger, exit: (code: number) => void): Command {
  return new Command('conformance')
    .description(HELP.command)
    .option('--tcp <host:port>', HELP.tcp)
    .option('--serial <path[:baud]>', HELP.serial)
    .option('--connections <n>', HELP.connections, integer('--connections', 1, TCP_LINK_CONNECTIONS_MAX), 2)
    .option('--lun <n>', HELP.lun, integer('--lun', 0, 0xffff), 0)
    .option('--id <n>', HELP.id, integer('--id', 0, 0xffffffff), 1)
    .option('--sectors <n>', HELP.sectors, integer('--sectors', sectorsNeeded(), SECTORS_MAX), 1024)
    .addOption(new Option('--case <name>', HELP.case).argParser(collect))
    .option('--junit <file>', HELP.junit)
    .option('--json', HELP.json, false)
    .option('--target-control <path>', HELP.targetControl)
    .action(async (flags: ConformanceFlags) => {
      const link = linkOf(flags);
      if (flags.junit !== undefined) checkWritable(flags.junit, '--junit');
      const control = flags.targetControl === undefined ? null : await connectTargetControl(flags.targetControl);
      const linkLogger = log.child({ module: 'conformance-link' });
      let report: ConformanceReport;
      try {
        report = await runConformance({
          link, lun: flags.lun, sectorCount: flags.sectors, id: flags.id, control: control?.control ?? null, only: flags.case, logger: linkLogger,
          onResult: flags.json ? undefined : (r) => process.stdout.write(`${line(r)}\n`),
        });
      } finally {
        await control?.close();
      }
      const reproduce = reproduceCommand(flags);
      if (flags.junit !== undefined) writeReport(flags.junit, junitXml('mirrorlab conformance', [conformanceSuite(report, reproduce)]));
      process.stdout.write(flags.json ? `${JSON.stringify(jsonOf(report, reproduce), null, 2)}\n` : `${summary(report)}\n`);
      exit(report.failed > 0 ? 1 : 0);
    });
}

function linkOf(flags: ConformanceFlags): LiveLinkSpec {
  if ((flags.tcp === undefined) === (flags.serial === undefined)) {
    throw new UsageError('mirrorlab conformance: give the target as --tcp HOST:PORT or --serial PATH[:BAUD] (one of them)');
  }
  try {
    return flags.tcp !== undefined
      ? parseLiveLinkSpec(`tcp:${flags.tcp}`, { connections: flags.connections })
      : parseLiveLinkSpec(`serial:${flags.serial}`);
  } catch (error) {
    throw new UsageError(`${flags.tcp !== undefined ? '--tcp' : '--serial'}: ${(error as Error).message}`);
  }
}

const VERDICT_WORDS = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' } as const;

function line(r: CaseResult): string {
  return `${VERDICT_WORDS[r.verdict]}  ${r.name.padEnd(26)} ${r.seconds.toFixed(2).padStart(6)} s  ${r.reason}`;
}

function summary(r: ConformanceReport): string {
  return `conformance against ${r.target}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped in ${r.seconds.toFixed(1)} s`;
}

function reproduceCommand(flags: ConformanceFlags): string {
  const parts = ['npx mirrorlab conformance', flags.tcp !== undefined ? `--tcp ${flags.tcp} --connections ${flags.connections}` : `--serial ${flags.serial}`];
  if (flags.lun !== 0) parts.push(`--lun ${flags.lun}`);
  if (flags.targetControl !== undefined) parts.push(`--target-control ${flags.targetControl}`);
  return parts.join(' ');
}

function jsonOf(r: ConformanceReport, reproduce: string): object {
  return {
    target: r.target, started: r.started.toISOString(), seconds: r.seconds, passed: r.passed, failed: r.failed, skipped: r.skipped,
    command: reproduce, cases: r.results,
  };
}
