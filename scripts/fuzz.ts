/**
 * `npm run fuzz`: the frame fuzzer (docs/fuzzing.md). Feeds the mirror protocol's decoder, the
 * serial block decoder and a live controller generated and mutated frames, and checks that
 * nothing crashes, nothing grows past its bound and the controller still mirrors afterwards.
 *
 *   npm run fuzz                                  # 1,000,000 inputs, seed 1
 *   npm run fuzz -- --seed 7 --frames 50000
 *   npm run fuzz -- --minutes 10                  # as many as fit in 10 minutes
 *   npm run fuzz -- --target controller --seed 7 --case 12 --verbose   # replay one case
 *
 * Prints a summary (or one JSON line with --json); exits 1 on a failure, after printing the
 * command that replays it, and 2 on bad flags. Its figures go in the README.
 */
import { parseArgs } from 'node:util';
import { FUZZ_FRAMES_MAX, runFuzz, type FuzzProgress, type FuzzReport } from '../hil/fuzz/campaign.ts';
import { formatProgress, formatReport, reportJson } from '../hil/fuzz/report.ts';
import { FUZZ_TARGETS, type FuzzTargetName } from '../hil/fuzz/outcome.ts';

const MINUTES_MAX = 7 * 24 * 60;

function usageError(message: string): never {
  process.stderr.write(`error: ${message} (see docs/fuzzing.md)\n`);
  process.exit(2);
}

function integer(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text.replaceAll('_', ''));
  if (!/^\d[\d_]*$/.test(text) || !Number.isSafeInteger(v) || v < min || v > max) usageError(`--${name} must be an integer from ${min} to ${max}, got "${text}"`);
  return v;
}

let values: Record<string, string | boolean | string[] | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      seed: { type: 'string' }, frames: { type: 'string' }, minutes: { type: 'string' }, target: { type: 'string', multiple: true },
      case: { type: 'string' }, verbose: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (e) {
  usageError(`${(e as Error).message.split('\n')[0]}; allowed: --seed N, --frames N, --minutes M, --target ${FUZZ_TARGETS.join('|')}, --case K, --verbose, --json`);
}
if (values.help) {
  process.stdout.write(`usage: npm run fuzz -- [--seed N] [--frames N] [--minutes M] [--target ${FUZZ_TARGETS.join('|')}]... [--case K [--verbose]] [--json]\n`);
  process.exit(0);
}
const seed = integer('seed', values.seed as string | undefined, 0, Number.MAX_SAFE_INTEGER) ?? 1;
const minutes = integer('minutes', values.minutes as string | undefined, 1, MINUTES_MAX);
const framesFlag = integer('frames', values.frames as string | undefined, 1, FUZZ_FRAMES_MAX);
// --minutes alone: as many inputs as fit (still bounded); with --frames too, whichever comes first.
const frames = framesFlag ?? (minutes !== undefined ? FUZZ_FRAMES_MAX : 1_000_000);
const targets = ((values.target as string[] | undefined) ?? []).flatMap((t) => t.split(','));
for (const t of targets) if (!FUZZ_TARGETS.includes(t as FuzzTargetName)) usageError(`--target must be one of ${FUZZ_TARGETS.join(', ')}, got "${t}"`);
const caseIndex = integer('case', values.case as string | undefined, 0, Number.MAX_SAFE_INTEGER);
if (caseIndex !== undefined && targets.length !== 1) usageError('--case replays one case of one target: give exactly one --target');
if (values.verbose && caseIndex === undefined) usageError('--verbose is for replaying one case: give --target and --case too');

const tty = process.stderr.isTTY === true;
let lastProgressMs = 0;
const onProgress = (p: FuzzProgress): void => {
  if (!tty || p.elapsedMs - lastProgressMs < 250) return;
  lastProgressMs = p.elapsedMs;
  process.stderr.write(`\r${formatProgress(p, minutes)}\x1b[K`);
};

const report: FuzzReport = await runFuzz({
  seed,
  frames,
  targets: targets.length > 0 ? (targets as FuzzTargetName[]) : undefined,
  deadlineMs: minutes === undefined ? undefined : minutes * 60_000,
  only: caseIndex === undefined ? undefined : { target: targets[0] as FuzzTargetName, caseIndex },
  log: values.verbose ? (line) => process.stdout.write(`${line}\n`) : undefined,
  onProgress,
});
if (tty) process.stderr.write('\r\x1b[K');
process.stdout.write(values.json ? `${JSON.stringify(reportJson(report))}\n` : formatReport(report));
process.exit(report.failures.length > 0 ? 1 : 0);
