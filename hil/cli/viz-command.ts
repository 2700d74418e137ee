import { Command } from 'commander';
import type { EmulateOptions } from '../emulator/options.ts';
import type { Logger } from '../log.ts';
import { firmwareCharts } from '../viz/charts.ts';
import { runLiveEmulation } from '../viz/live-run.ts';
import { DEFAULT_VIZ_PORT, VizServer } from '../viz/server.ts';
import { TraceIndex } from '../viz/trace-index.ts';
import { integer } from './parse.ts';
import { ProgressBar } from './progress.ts';
import { renderReport } from './render.ts';

interface VizFlags {
  trace?: string;
  port: number;
}

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
    .description('serve the state-machine visualizer on 127.0.0.1: replay a trace (--trace FILE from `emulate --trace`) or show the statecharts; `emulate --viz` watches a run live')
    .option('--trace <file>', 'a trace written by `mirrorlab emulate --trace FILE` (JSON lines)')
    .option('--port <port>', `port on 127.0.0.1 (0 picks a free one)`, integer('--port', 0, 65535), DEFAULT_VIZ_PORT)
    .action(async (flags: VizFlags) => {
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
