import { Command, Option } from 'commander';
import { LOCK_REJECT_POLICIES, LOCK_STYLES, MIRROR_MODES } from '../../firmware/mirror/types.ts';
import { CONNECTIONS_MAX, DEFAULT_EMULATE, FAULT_PHASE_MS_MAX_LIMIT, READ_PERCENT_MAX, THINK_MS_MAX, type EmulateOptions } from '../emulator/options.ts';
import { runEmulation } from '../emulator/run.ts';
import { LINK_FAULT_SYNTAX, formatLinkFaults, parseLinkFaults } from '../faults/link-fault-plan.ts';
import { DISK_FAULT_SYNTAX, formatDiskFaults, parseDiskFaults } from '../faults/disk-fault-plan.ts';
import { VOLUME_SPEC_HELP, formatVolumeSpec, parseVolumeSpec, withKernelDriverDetach } from '../../host/disks/volume-spec.ts';
import { STALL_MS_DEFAULT, STALL_MS_MAX } from '../emulator/watchdog.ts';
import type { Logger } from '../log.ts';
import { ACCESS_PATTERNS } from '../workload/host-workload.ts';
import { choice, decimal, integer, plan, probability } from './parse.ts';
import { ProgressBar } from './progress.ts';
import { renderReport } from './render.ts';
import { checkHistory, defaultHistoryPath } from '../history/history-db.ts';
import { recordEmulation } from '../history/record.ts';
import { UsageError } from '../plan-error.ts';
import { DEFAULT_LIVE_SPEED } from '../viz/live-run.ts';
import { SPEED_MAX, SPEED_MIN } from '../viz/pacing.ts';
import { DEFAULT_VIZ_PORT } from '../viz/server.ts';
import { runWithViz } from './viz-command.ts';

/** The flags as commander parses them: the run's options, with the probability and outputs as flags name them. */
export type EmulateFlags = Omit<EmulateOptions, 'lockContentionPerMillion' | 'healMs' | 'faultPhaseMsMax' | 'checkpointEveryMs' | 'limits' | 'schedulerEventsMax'> & {
  lockContention: number;
  healMs: number;
  faultPhaseMaxMs: number;
  trace?: string;
  json: boolean;
  /** Record the run in the results history (`--record`), at `history` or the default path. */
  record?: boolean;
  history?: string;
  /** Live visualizer (docs/viz.md): serve it, pace the run to `speed`. */
  viz?: boolean;
  vizPort?: number;
  speed?: number;
  detachKernelDriver: boolean;
};

const D = DEFAULT_EMULATE;
const PAYLOAD_BYTES_MAX = 1024 * 1024;

/** The flags every command that runs the emulator understands. */
export function addEmulateFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--mode <mode>', `mirroring mode: ${MIRROR_MODES.join(', ')}`).argParser(choice('--mode', MIRROR_MODES)).default(D.mode))
    .option('--seed <n>', 'seed of the run (integer); the same seed reproduces the same run', integer('--seed', 0, Number.MAX_SAFE_INTEGER), D.seed)
    .addOption(new Option('--on-lock-reject <policy>', `what a target does with a refused lock: ${LOCK_REJECT_POLICIES.join(', ')}`).argParser(choice('--on-lock-reject', LOCK_REJECT_POLICIES)).default(D.onLockReject))
    .option('--bidirectional', 'both controllers mirror a LUN to each other at once', false)
    .option('--writes <n>', 'writes each host issues', integer('--writes', 1, 100_000_000), D.writes)
    .option('--duration-ms <ms>', 'stop issuing writes after this much virtual time (0: no limit)', decimal('--duration-ms', 0, 1e9), D.durationMs)
    .option('--write-bytes <bytes>', 'bytes per write (a multiple of the sector size, at most 1 MiB)', integer('--write-bytes', 1, PAYLOAD_BYTES_MAX), D.writeBytes)
    .option('--queue-depth <n>', 'writes each host keeps in flight', integer('--queue-depth', 1, 4096), D.queueDepth)
    .addOption(new Option('--pattern <pattern>', `where writes go: ${ACCESS_PATTERNS.join(', ')} (hot: 90% to a tenth of the volume)`).argParser(choice('--pattern', ACCESS_PATTERNS)).default(D.pattern))
    .option('--think-ms <ms>', 'each host lane waits this long after a completion before its next request (virtual ms; paces the host)', decimal('--think-ms', 0, THINK_MS_MAX))
    .option('--read-percent <p>', `share of host operations that are reads (0-${READ_PERCENT_MAX}); reads come on top of --writes`, integer('--read-percent', 0, READ_PERCENT_MAX), D.readPercent)
    .option('--rtt-ms <ms>', 'round-trip time of the link', decimal('--rtt-ms', 0, 10_000), D.rttMs)
    .option('--bandwidth-mbps <mbps>', 'link bandwidth in megabits per second', decimal('--bandwidth-mbps', 0, 1e6, true), D.bandwidthMbps)
    .option('--connections <n>', 'data connections of the link (1 or more; a serial line has 1)', integer('--connections', 1, CONNECTIONS_MAX), D.connections)
    .option('--heartbeat-ms <ms>', 'link supervision: a heartbeat each way this often (virtual ms)', decimal('--heartbeat-ms', 0, 3_600_000, true), D.heartbeatMs)
    .option('--interruption-ms <ms>', 'link supervision: silence longer than this takes the link down (at least twice --heartbeat-ms)', decimal('--interruption-ms', 0, 3_600_000, true), D.interruptionMs)
    .option('--probation-ms <ms>', 'link supervision: heartbeats must stay clean this long before the connections are re-established', decimal('--probation-ms', 0, 3_600_000), D.probationMs)
    .addOption(new Option('--source-volume <spec>', `controller A's volumes; ${VOLUME_SPEC_HELP}`).argParser(plan(parseVolumeSpec)).default(D.sourceVolume, formatVolumeSpec(D.sourceVolume)))
    .addOption(new Option('--target-volume <spec>', "controller B's volumes (same syntax)").argParser(plan(parseVolumeSpec)).default(D.targetVolume, formatVolumeSpec(D.targetVolume)))
    .option('--lock-region-sectors <n>', 'lock region size in sectors: a power of two, at most the volume (default: 1 MiB)', integer('--lock-region-sectors', 1, 2 ** 32 - 1))
    .addOption(new Option('--faults <plan>', `link faults during the fault phase; ${LINK_FAULT_SYNTAX}`).argParser(plan(parseLinkFaults)).default(D.faults, 'none'))
    .addOption(new Option('--disk-faults <plan>', `disk faults; ${DISK_FAULT_SYNTAX}`).argParser(plan(parseDiskFaults)).default(D.diskFaults, 'none'))
    .option('--lock-contention <p>', 'chance that a mirrored write finds its region locked by the target (0.05 or 5%)', probability('--lock-contention'), D.lockContentionPerMillion)
    .option('--heal-ms <ms>', 'after the faults stop, everything must drain within this much virtual time', decimal('--heal-ms', 1, 1e9), D.healMs)
    .option('--fault-phase-max-ms <ms>', 'the fault phase ends after at most this much virtual time: the hosts stop issuing writes, then healing starts; every timed fault must fall within it',
      decimal('--fault-phase-max-ms', 0, FAULT_PHASE_MS_MAX_LIMIT, true), D.faultPhaseMsMax)
    .option('--stall-ms <ms>', `end the run with a liveness violation after this much virtual time without progress while work is pending and no fault is active (default ${STALL_MS_DEFAULT})`,
      decimal('--stall-ms', 0, STALL_MS_MAX, true))
    .option('--disk-reorder', 'memory disks (and RAID members) complete concurrent writes in a seeded order of their own, overlapping ones included')
    .addOption(new Option('--locks <style>', `how mirrored writes are locked at the target: ${LOCK_STYLES.join(', ')} (default explicit: a LOCK and an UNLOCK around each session; implied: each write carries its own lock; speculative and async)`)
      .argParser(choice('--locks', LOCK_STYLES)))
    .option('--batch', 'entries ready together (and, on a saturated link, those that gather) travel in one BATCH frame')
    .option('--detach-kernel-driver', 'a usb: volume may be taken from the kernel driver holding it (never from a mounted disk); it is given back afterwards', false);
}

/**
 * Turn parsed flags into run options. What no single flag can check alone (timed faults within the
 * fault phase, image paths, lock region against the volume...) is checked by the run itself
 * (`validateEmulateOptions`), so campaigns and tests get the same checks.
 */
export function emulateOptionsFrom(f: EmulateFlags): EmulateOptions {
  const {
    lockContention, faultPhaseMaxMs, trace: _trace, json: _json, record: _record, history: _history, viz: _viz, vizPort: _vizPort, speed: _speed,
    detachKernelDriver, ...rest
  } = f;
  const volumes = detachKernelDriver ? { sourceVolume: withKernelDriverDetach(rest.sourceVolume), targetVolume: withKernelDriverDetach(rest.targetVolume) } : {};
  return { ...rest, ...volumes, lockContentionPerMillion: lockContention, faultPhaseMsMax: faultPhaseMaxMs, checkpointEveryMs: D.checkpointEveryMs };
}

export function emulateCommand(log: Logger, exit: (code: number) => void): Command {
  return addEmulateFlags(new Command('emulate').description('run two controllers mirroring over the simulated link, with faults, and check the mirrors'))
    .option('--trace <file>', 'write every event of the run to FILE as JSON lines')
    .option('--json', 'print exactly one JSON document on stdout', false)
    .option('--record', 'record the run in the results history', false)
    .option('--history <path>', 'with --record: the history database (default: $MIRRORLAB_HISTORY, else ~/.mirrorlab/history.db)')
    .option('--viz', 'watch the run live in the visualizer: serve it on 127.0.0.1, start when a page connects, pace the run to --speed')
    .option('--viz-port <port>', 'port of the live visualizer (0 picks a free one)', integer('--viz-port', 0, 65535), DEFAULT_VIZ_PORT)
    .option('--speed <x>', `with --viz: virtual ms per wall ms (${SPEED_MIN} to ${SPEED_MAX}; default ${DEFAULT_LIVE_SPEED}, a hundred times slower than real time)`,
      decimal('--speed', SPEED_MIN, SPEED_MAX), DEFAULT_LIVE_SPEED)
    .action(async (flags: EmulateFlags) => {
      if (flags.history !== undefined && !flags.record) throw new UsageError('--history names where --record writes; add --record');
      if (flags.record) await checkHistory(flags.history ?? defaultHistoryPath());
      const opts = emulateOptionsFrom(flags);
      if (flags.viz) return exit(await runWithViz(opts, flags, log));
      log.info({ seed: opts.seed, mode: opts.mode, onLockReject: opts.onLockReject, writes: opts.writes, faults: formatLinkFaults(opts.faults), diskFaults: formatDiskFaults(opts.diskFaults) }, 'emulation starting');
      const started = performance.now();
      const startedAt = new Date();
      const bar = new ProgressBar('emulate');
      const report = await runEmulation(opts, { onProgress: flags.json ? undefined : bar.update, tracePath: flags.trace });
      bar.done();
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderReport(report)}\n`);
      log.info({ verdict: report.verdict, violations: report.violations.length, virtualTimeMs: report.virtualTimeMs, wallMs: Math.round(performance.now() - started), traceHash: report.traceHash }, 'emulation finished');
      if (report.verdict !== 'consistent') log.warn({ reproduce: report.reproduce }, 'inconsistent: reproduce with this command');
      if (flags.record) await recordEmulation(flags.history ?? defaultHistoryPath(), { report, options: opts, startedAt, wallMs: performance.now() - started }, log);
      exit(report.verdict === 'consistent' ? 0 : 1);
    });
}
