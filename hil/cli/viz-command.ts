import { Command } from 'commander';
import type { EmulateOptions } from '../emulator/options.ts';
import type { Logger } from '../log.ts';
import { UsageError } from '../plan-error.ts';
import { firmwareCharts } from '../viz/charts.ts';
import { checkFollowPath, startFollowing } from '../viz/follow.ts';
import { runLiveEmulation } from '../viz/live-run.ts';
import { DEFAULT_VIZ_PORT, VizServer } from '../viz/server.ts';
import { TraceIndex } from '../viz/trace-index.ts';
import { integer } from './parse.ts';
import { ProgressBar } from './progress.ts';
import { renderReport } from './render.ts';

interface VizFlags {
  trace?: string;
  follow: string[];
  port: number;
}

/** Files to follow: at most this many controller processes on one page. */
const FOLLOW_FILES_MAX = 16;

/** Resolves on Ctrl-C or SIGTERM (the visualizer serves until then); `cancel` stops listening for them. */
function interrupted(): { signal: Promise<string>; cancel: () => void } {
  let cancel = (): void => {};
  const signal = new Promise<string>((resolve) => {
    const onInt = (): void => stop('SIGINT');
    const onTerm = (): void => stop('SIGTERM');
    const stop = (name: string): void => {
      cancel();
      resolve(name);
    };
    cancel = () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    };
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  return { signal, cancel };
}

/**
 * `emulate --viz`: the run, watched live (docs/viz.md, "Live mode"). The report goes to stdout as
 * usual; afterwards the page keeps showing the end of the run until it is closed or Ctrl-C. Returns
 * the exit status the run earned.
 */
export async function runWithViz(opts: EmulateOptions, flags: { vizPort?: number; speed?: number; trace?: string; json: boolean }, log: Logger): Promise<number> {
  const bar = new ProgressBar('emulate');
  const { report, server, feed } = await runLiveEmulation(opts, {
    port: flags.vizPort ?? DEFAULT_VIZ_PORT, speed: flags.speed ?? 0.01, tracePath: flags.trace, onProgress: flags.json ? undefined : bar.update,
    onListening: (url) => process.stderr.write(`mirrorlab emulate --viz: open ${url} (the run starts when a page connects; Ctrl-C to stop)\n`),
  });
  bar.done();
  process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderReport(report)}\n`);
  log.info({ verdict: report.verdict, violations: report.violations.length, traceHash: report.traceHash }, 'emulation finished');
  process.stderr.write(`mirrorlab emulate --viz: the run is over; ${server.url} keeps showing it until its page is closed (or Ctrl-C)\n`);
  const stop = interrupted();
  await Promise.race([feed.waitForNoPages(), stop.signal]);
  stop.cancel();
  await server.close();
  return report.verdict === 'consistent' ? 0 : 1;
}

/**
 * `mirrorlab viz [--trace FILE] [--port P]`: serve the visualizer on 127.0.0.1 (docs/viz.md). With
 * a trace: replay it (indexed first; a file that is not a trace is refused, exit 2). Without: the
 * firmware's statecharts as defined. Prints the address on stdout and serves until interrupted.
 */
export function vizCommand(log: Logger, exit: (code: number) => void): Command {
  return new Command('viz')
    .description('serve the state-machine visualizer on 127.0.0.1: replay a trace (--trace FILE from `emulate --trace`), follow controller processes live (--follow their telemetry files), or show the statecharts; `emulate --viz` watches a run live')
    .option('--trace <file>', 'a trace written by `mirrorlab emulate --trace FILE` (JSON lines)')
    .option('--follow <file>', 'follow a controller process\'s telemetry file (`mirrorlab controller --telemetry FILE`) as it grows, live; repeat for each controller', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--port <port>', `port on 127.0.0.1 (0 picks a free one)`, integer('--port', 0, 65535), DEFAULT_VIZ_PORT)
    .action(async (flags: VizFlags) => {
      if (flags.follow.length > 0) {
        await followControllers(flags, log);
        exit(0);
        return;
      }
      const trace = flags.trace === undefined ? undefined : await TraceIndex.build(flags.trace);
      if (trace) log.info({ trace: flags.trace, events: trace.count, indexMs: trace.indexMs, violations: trace.violations.length }, 'trace indexed');
      let server: VizServer;
      try {
        server = await VizServer.start({ port: flags.port, trace, charts: firmwareCharts() });
      } catch (err) {
        trace?.close();
        throw err;
      }
      process.stdout.write(`${server.url}\n`);
      process.stderr.write(`mirrorlab viz: ${trace ? `${trace.count} events of ${flags.trace}` : 'the firmware statecharts'} at ${server.url} (Ctrl-C to stop)\n`);
      const stop = interrupted();
      await stop.signal;
      await server.close();
      trace?.close();
      exit(0);
    });
}

/**
 * `mirrorlab viz --follow FILE...`: the live page for controller processes (docs/viz.md,
 * "Attaching to controller processes"): their telemetry files, followed as they grow, folded as an
 * emulation's telemetry is. Serves until interrupted.
 */
async function followControllers(flags: VizFlags, log: Logger): Promise<void> {
  if (flags.trace !== undefined) throw new UsageError('--follow and --trace cannot be given together: --trace replays a recorded trace, --follow watches controller processes live');
  if (flags.follow.length > FOLLOW_FILES_MAX) throw new UsageError(`--follow may be given at most ${FOLLOW_FILES_MAX} times, got ${flags.follow.length}`);
  for (const path of flags.follow) {
    const problem = checkFollowPath(path);
    if (problem !== null) throw new UsageError(`--follow ${problem}`);
  }
  const { server, follower, close } = await startFollowing(flags.follow, flags.port);
  process.stdout.write(`${server.url}\n`);
  const missing = follower.stats().files.filter((f) => !f.present).map((f) => f.path);
  process.stderr.write(`mirrorlab viz: following ${flags.follow.join(', ')} at ${server.url} (Ctrl-C to stop)${missing.length > 0 ? `; waiting for ${missing.join(', ')} to appear` : ''}\n`);
  const stop = interrupted();
  await stop.signal;
  stop.cancel();
  const stats = follower.stats();
  log.info({ delivered: stats.delivered, files: stats.files }, 'stopped following');
  const bad = stats.files.filter((f) => f.badLines > 0);
  if (bad.length > 0) process.stderr.write(`mirrorlab viz: skipped lines that were not telemetry: ${bad.map((f) => `${f.path} ${f.badLines}`).join(', ')}\n`);
  await close();
}
