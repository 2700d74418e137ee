import { parentPort } from 'node:worker_threads';
import { runEmulation } from '../emulator/run.ts';
import type { EmulateOptions } from '../emulator/options.ts';
import { summarise, type RunSummary } from './summary.ts';

/**
 * A campaign worker thread: runs the emulations it is sent, one at a time, and reports each.
 * `crashThread` is a testing aid (never set by the CLI): the thread dies of an uncaught exception
 * instead of running, so that tests can watch the campaign record the crash and carry on.
 */
export type WorkerRequest = { seed: number; options: EmulateOptions; crashThread?: boolean } | { stop: true };
export type WorkerReply = { seed: number; summary: RunSummary } | { seed: number; error: string };

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
  const started = performance.now();
  runEmulation(msg.options).then(
    (report) => parentPort!.postMessage({ seed: msg.seed, summary: summarise(report, performance.now() - started, msg.options) } satisfies WorkerReply),
    (err: unknown) => parentPort!.postMessage({ seed: msg.seed, error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies WorkerReply),
  );
});
