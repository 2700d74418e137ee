import { parentPort } from 'node:worker_threads';
import { runEmulation } from '../emulator/run.ts';
import type { EmulateOptions } from '../emulator/options.ts';
import { summarise, type RunSummary } from './summary.ts';

/**
 * A campaign worker thread: runs the emulations it is sent, one at a time, and reports each.
 * Testing aids (never set by the CLI): with `crashThread` the thread dies of an uncaught exception
 * instead of running, so that tests can watch the campaign record the crash and carry on;
 * `hangThread` likewise spins for ever, for the campaign's wall-clock budget; `plant` names a
 * module (from a test) that the thread imports before running, which plants deliberate bugs in
 * the firmware, and a label for the reproduce command.
 */
export type WorkerRequest =
  | { seed: number; options: EmulateOptions; crashThread?: boolean; hangThread?: boolean; announceStart?: boolean; plant?: { module: string; label: string } }
  | { stop: true };
export type WorkerReply = { seed: number; summary: RunSummary } | { seed: number; error: string };
/** What a worker posts: a run started (asked for by `announceStart`: its wall-clock budget starts then), or a reply. */
export type WorkerMessage = WorkerReply | { seed: number; started: true };

parentPort!.on('message', (msg: WorkerRequest) => {
  if ('stop' in msg) {
    parentPort!.close();
    return;
  }
  if (msg.crashThread) {
    setImmediate(() => {
      throw new Error(`planted worker crash at seed ${msg.seed} (testing aid)`);
    });
    return;
  }
  // The run's wall-clock budget starts now, not while the thread was still loading.
  if (msg.announceStart) parentPort!.postMessage({ seed: msg.seed, started: true } satisfies WorkerMessage);
  if (msg.hangThread) {
    // Testing aid: a hang that no watchdog inside a run can see; only the campaign's wall-clock budget ends it.
    for (;;);
  }
  const started = performance.now();
  const planted = msg.plant ? import(msg.plant.module) : Promise.resolve();
  planted.then(() => runEmulation(msg.options)).then(
    (report) => parentPort!.postMessage({ seed: msg.seed, summary: summarise(report, performance.now() - started, msg.plant?.label) } satisfies WorkerReply),
    (err: unknown) => parentPort!.postMessage({ seed: msg.seed, error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies WorkerReply),
  );
});
