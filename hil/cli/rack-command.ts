import { Command, Option } from 'commander';
import { LOCK_REJECT_POLICIES, MIRROR_MODES } from '../../firmware/mirror/types.ts';
import { LINK_FAULT_SYNTAX } from '../faults/link-fault-plan.ts';
import type { Logger } from '../log.ts';
import {
  DURATION_S_MAX, MIB, QUEUE_DEPTH_MAX, RACK_DEFAULTS, RACK_LINKS, RACK_VOLUME_SYNTAX, VOLUME_MIB_MAX, WRITE_BYTES_MAX, formatKill, formatRackVolume,
  parseKill, parseRackFaults, parseRackVolume, type KillSpec, type RackOptions, type RackVolume,
} from '../rack/options.ts';
import { runRack, type RackProgress } from '../rack/rack-run.ts';
import { renderRackReport } from '../rack/report.ts';
import { UsageError } from '../plan-error.ts';
import { checkHistory, defaultHistoryPath } from '../history/history-db.ts';
import { recordRack } from '../history/record.ts';
import { checkWritable, writeReport } from '../report/files.ts';
import { rackJUnit } from '../report/rack-report.ts';
import { choice, decimal, integer, plan } from './parse.ts';

interface RackFlags {
  link: RackOptions['link'];
  seed: number;
  faults?: RackOptions['faults'];
  durationS: number;
  mode: RackOptions['mode'];
  onLockReject: RackOptions['onLockReject'];
  bidirectional: boolean;
  kill?: KillSpec;
  writes?: number;
  writeBytes: number;
  queueDepth: number;
  connections: number;
  sourceVolume: RackVolume;
  targetVolume: RackVolume;
  volumeMib?: number;
  drainS: number;
  dir?: string;
  keep: boolean;
  json: boolean;
  junit?: string;
  record: boolean;
  history?: string;
}

const D = RACK_DEFAULTS;
const SECTOR_BYTES = 512;

/**
 * `mirrorlab rack run`: two controller processes, the fault proxy between them, host workloads,
 * an optional kill and restart, then the verdict (docs/rack.md). Exit 0 consistent, 1
 * inconsistent (each violation and the reproduce command printed), 2 could not run (one line).
 */
export function rackCommand(log: Logger, exit: (code: number) => void): Command {
  const run = new Command('run')
    .description('run two controller processes over a real link through the fault proxy, write, kill and restart if asked, heal, drain, stop, and judge')
    .addOption(new Option('--link <link>', `the link between the controllers: ${RACK_LINKS.join(', ')} (serial: two socat PTY pairs)`).argParser(choice('--link', RACK_LINKS)).default(D.link))
    .option('--seed <n>', 'seed of the proxy\'s fault decisions, the drawn plan, the kill time and the writes', integer('--seed', 0, Number.MAX_SAFE_INTEGER), D.seed)
    .addOption(new Option('--faults <plan>', `link faults, times in ms from the proxy's start (default: drawn from the seed; none for a clean run); ${LINK_FAULT_SYNTAX}`).argParser(plan(parseRackFaults)))
    .option('--duration-s <s>', 'seconds of writing (and of faults) before the heal', decimal('--duration-s', 0, DURATION_S_MAX, true), D.durationS)
    .addOption(new Option('--mode <mode>', `mirroring mode: ${MIRROR_MODES.join(', ')}`).argParser(choice('--mode', MIRROR_MODES)).default(D.mode))
    .addOption(new Option('--on-lock-reject <policy>', `what a target does with a refused lock: ${LOCK_REJECT_POLICIES.join(', ')}`).argParser(choice('--on-lock-reject', LOCK_REJECT_POLICIES)).default(D.onLockReject))
    .option('--bidirectional', 'B also mirrors a LUN of its own to A, with a host writing it', false)
    .addOption(new Option('--kill <side[@s]>', 'SIGKILL the source or the target at that second (drawn from the seed without @s) and restart it').argParser(plan(parseKill)))
    .option('--writes <n>', 'writes each host issues at most (default: as many as the duration allows)', integer('--writes', 1, 100_000_000))
    .option('--write-bytes <bytes>', `bytes per write (a multiple of ${SECTOR_BYTES}, at most ${WRITE_BYTES_MAX})`, integer('--write-bytes', SECTOR_BYTES, WRITE_BYTES_MAX), D.writeBytes)
    .option('--queue-depth <n>', 'writes each host keeps in flight', integer('--queue-depth', 1, QUEUE_DEPTH_MAX), D.queueDepth)
    .option('--connections <n>', 'TCP data connections of the link', integer('--connections', 1, 16), D.connections)
    .addOption(new Option('--source-volume <spec>', `what holds A's copies: ${RACK_VOLUME_SYNTAX}`)
      .argParser(plan((t) => parseRackVolume(t, '--source-volume'))).default(D.sourceVolume, formatRackVolume(D.sourceVolume)))
    .addOption(new Option('--target-volume <spec>', 'what holds B\'s copies (same syntax)')
      .argParser(plan((t) => parseRackVolume(t, '--target-volume'))).default(D.targetVolume, formatRackVolume(D.targetVolume)))
    .option('--volume-mib <n>', 'size in MiB of every copy the rack makes (image files, board stand-ins; default: the size an in-process spec names, else 8)',
      integer('--volume-mib', 1, VOLUME_MIB_MAX))
    .option('--drain-s <s>', 'after the heal, the pair must drain within this many seconds', decimal('--drain-s', 0, DURATION_S_MAX, true), D.drainS)
    .option('--dir <path>', 'make the run\'s directory (configs, images, telemetry) under this one instead of the temp directory')
    .option('--keep', 'keep the run\'s files after a consistent run too (they are always kept after a failure)', false)
    .option('--json', 'print exactly one JSON document on stdout', false)
    .option('--junit <file>', 'also write a JUnit XML report: the run as one testcase, a failure with its violations and reproduce command')
    .option('--record', 'record the run in the results history', false)
    .option('--history <path>', 'with --record: the history database (default: $MIRRORLAB_HISTORY, else ~/.mirrorlab/history.db)')
    .action(async (flags: RackFlags) => exit(await runRackCommand(flags, log)));
  return new Command('rack').description('live runs: controllers as processes on real links, judged by the checker').addCommand(run);
}

async function runRackCommand(flags: RackFlags, log: Logger): Promise<number> {
  if (flags.writeBytes % SECTOR_BYTES !== 0) throw new UsageError(`--write-bytes must be a multiple of ${SECTOR_BYTES}, got ${flags.writeBytes}`);
  if (flags.link === 'serial' && flags.connections !== D.connections) throw new UsageError('--connections is for --link tcp; a serial line carries one');
  if (flags.history !== undefined && !flags.record) throw new UsageError('--history names where --record writes; add --record');
  // Checked before the run, so that a report that cannot be written does not cost a run.
  if (flags.junit !== undefined) checkWritable(flags.junit, '--junit');
  if (flags.record) await checkHistory(flags.history ?? defaultHistoryPath());
  const opts: RackOptions = {
    link: flags.link, seed: flags.seed, faults: flags.faults ?? null, durationS: flags.durationS, mode: flags.mode, onLockReject: flags.onLockReject,
    bidirectional: flags.bidirectional, kill: flags.kill ?? null, writes: flags.writes ?? null, writeBytes: flags.writeBytes, queueDepth: flags.queueDepth,
    connections: flags.connections, sourceVolume: flags.sourceVolume, targetVolume: flags.targetVolume,
    volumeBytes: flags.volumeMib === undefined ? null : flags.volumeMib * MIB, dir: flags.dir ?? null, keep: flags.keep, drainS: flags.drainS,
  };
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const line = new ProgressLine(!flags.json && process.stderr.isTTY === true);
  try {
    log.info({ seed: opts.seed, link: opts.link, mode: opts.mode, kill: opts.kill ? formatKill(opts.kill) : null }, 'rack run starting');
    const startedAt = new Date();
    const report = await runRack(opts, { signal: abort.signal, onProgress: line.enabled ? line.update : undefined });
    line.done();
    if (flags.junit !== undefined) writeReport(flags.junit, rackJUnit(report, startedAt));
    if (flags.record) await recordRack(flags.history ?? defaultHistoryPath(), { report, startedAt }, log);
    process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderRackReport(report)}\n`);
    if (report.verdict !== 'consistent') log.warn({ reproduce: report.reproduce }, 'inconsistent: reproduce with this command');
    return report.verdict === 'consistent' ? 0 : 1;
  } finally {
    line.done();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The progress line on a terminal (stderr), redrawn at most four times a second; nothing elsewhere. */
class ProgressLine {
  private shown = false;
  constructor(readonly enabled: boolean) {}

  update = (p: RackProgress): void => {
    if (!this.enabled) return;
    const n = (v: number): string => v.toLocaleString('en-US');
    process.stderr.write(`\r\x1b[2Krack [${p.phase}] ${p.elapsedS.toFixed(1)} s, ${n(p.writesAcked)} writes acked, ${n(p.faultsInjected)} faults injected, link ${p.link}`);
    this.shown = true;
  };

  done(): void {
    if (this.shown) process.stderr.write('\r\x1b[2K');
    this.shown = false;
  }
}
