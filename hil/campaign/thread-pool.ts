import { Worker } from 'node:worker_threads';
import { assert } from '../../firmware/errors.ts';
import type { EmulateOptions } from '../emulator/options.ts';
import type { WorkerReply, WorkerRequest } from './worker.ts';

/**
 * Worker threads for a queue worker process: a job's run goes to a thread, so the process's main
 * thread stays free to renew the job's BullMQ lock (a run that blocked it for longer than the lock
 * lasts would be taken for a dead worker's and run twice). Each thread runs one emulation at a
 * time, the same thread code as a local campaign (docs/queue.md 4).
 */
export class ThreadPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Set<Worker>();
  private closed = false;

  constructor(readonly size: number) {
    assert(Number.isInteger(size) && size >= 1, 'a thread pool has at least one thread');
  }

  /**
   * Runs one emulation. A thread that dies under it (an uncaught exception, an exit) is replaced,
   * and the run's reply says so as an error: a crash of the seed, as in a local campaign.
   * Callers keep at most `size` runs in flight (BullMQ's concurrency does). Null: the pool was
   * closed under the run, which therefore says nothing about the seed.
   */
  run(options: EmulateOptions): Promise<WorkerReply | null> {
    assert(!this.closed, 'thread pool is closed');
    assert(this.busy.size < this.size, `at most ${this.size} runs in flight`);
    const worker = this.idle.pop() ?? new Worker(new URL('./worker-entry.mjs', import.meta.url));
    this.busy.add(worker);
    return new Promise((resolve) => {
      let over = false;
      const finish = (reply: WorkerReply, healthy: boolean): void => {
        if (over) return;
        over = true;
        worker.removeListener('message', onMessage);
        worker.removeListener('error', onError);
        worker.removeListener('exit', onExit);
        this.busy.delete(worker);
        if (healthy && !this.closed) this.idle.push(worker);
        else void worker.terminate();
        resolve(this.closed && !healthy ? null : reply);
      };
      const onMessage = (reply: WorkerReply): void => finish(reply, true);
      const onError = (err: Error): void => finish({ seed: options.seed, error: `worker thread died: ${err.stack ?? err.message}` }, false);
      const onExit = (code: number): void => finish({ seed: options.seed, error: `worker thread exited with status ${code} while running seed ${options.seed}` }, false);
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.postMessage({ seed: options.seed, options } satisfies WorkerRequest);
    });
  }

  /** Stops every thread; runs still in flight end as crashes (their jobs go back to the queue). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.idle, ...this.busy];
    this.idle.length = 0;
    await Promise.all(all.map((w) => w.terminate()));
  }
}
