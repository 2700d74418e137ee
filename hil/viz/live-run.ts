import { describeViolation } from '../checker/violation.ts';
import type { EmulateOptions } from '../emulator/options.ts';
import { runEmulation, type EmulationReport, type Progress } from '../emulator/run.ts';
import { firmwareCharts } from './charts.ts';
import { LiveFeed } from './live.ts';
import { PacedClock, SPEED_MAX } from './pacing.ts';
import { VizServer } from './server.ts';

/** `emulate --viz` without `--speed`: a default run (a few hundred virtual ms) then lasts about half a minute. */
export const DEFAULT_LIVE_SPEED = 0.01;

export interface LiveRunOptions {
  port: number;
  /** Virtual ms per wall ms. */
  speed: number;
  tracePath?: string;
  onProgress?: (p: Progress) => void;
  /** Called once the page can be opened (the run waits for it). */
  onListening?: (url: string) => void;
}

export interface LiveRun {
  report: EmulationReport;
  server: VizServer;
  feed: LiveFeed;
}

/**
 * `emulate --viz` (docs/viz.md, "Live mode"): serve the visualizer, wait for a page to connect (so
 * nobody misses the start), then run the emulation on a clock paced to `speed`, streaming its
 * telemetry to the page. The run itself is the same as without `--viz`: same seed, same trace,
 * same verdict. The server keeps running afterwards, showing the end of the run; the caller closes it.
 */
export async function runLiveEmulation(opts: EmulateOptions, live: LiveRunOptions): Promise<LiveRun> {
  const clock = new PacedClock({ speed: live.speed });
  const feed = new LiveFeed(firmwareCharts(), clock);
  const server = await VizServer.start({ port: live.port, live: feed });
  try {
    live.onListening?.(server.url);
    await feed.waitForPage();
    feed.start();
    // The final disk checks have nothing to watch (no telemetry): they run at full speed.
    const onProgress = (p: Progress): void => {
      if (p.phase === 'checking' && clock.speed < SPEED_MAX) clock.setSpeed(SPEED_MAX);
      live.onProgress?.(p);
    };
    const report = await runEmulation(opts, { clock, tap: feed, tracePath: live.tracePath, onProgress });
    feed.end({
      verdict: report.verdict, violations: report.violations.length, reproduce: report.reproduce,
      summary: report.verdict === 'consistent' ? 'consistent' : report.violations.slice(0, 3).map(describeViolation).join('\n'),
    });
    feed.stop();
    return { report, server, feed };
  } catch (err) {
    feed.stop();
    await server.close();
    throw err;
  }
}
