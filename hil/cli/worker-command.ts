import { availableParallelism } from 'node:os';
import { Command, Option } from 'commander';
import { QUEUE_URL_SYNTAX, parseQueueUrl, type QueueUrl } from '../campaign/queue-url.ts';
import { STALLED_MS_DEFAULT, startQueueWorker } from '../campaign/queue-worker.ts';
import type { Logger } from '../log.ts';
import { integer, plan } from './parse.ts';

interface WorkerFlags {
  queue: QueueUrl;
  concurrency?: number;
  stalledMs: number;
}

/**
 * `mirrorlab worker`: runs queued campaigns' seeds until stopped. SIGINT or SIGTERM stops taking
 * jobs and lets the runs in flight finish; a second one stops at once (their jobs go back to the
 * queue when their locks lapse).
 */
export function workerCommand(log: Logger, exit: (code: number) => void): Command {
  return new Command('worker')
    .description('run the seeds of queued campaigns (campaign --queue) from a Redis server, until stopped; any number of machines may run workers')
    .addOption(new Option('--queue <url>', `the Redis server the campaigns queue on: ${QUEUE_URL_SYNTAX}`).argParser(plan(parseQueueUrl)).makeOptionMandatory())
    .option('--concurrency <n>', 'seeds run at once, each on its own thread (default: one per core)', integer('--concurrency', 1, 256))
    .option('--stalled-ms <ms>', 'a job whose worker stops renewing its lock for this long goes to another worker (BullMQ\'s lock duration and stalled-check interval)',
      integer('--stalled-ms', 1_000, 3_600_000), STALLED_MS_DEFAULT)
    .action(async (flags: WorkerFlags) => {
      const worker = await startQueueWorker({ queue: flags.queue, concurrency: flags.concurrency ?? availableParallelism(), stalledMs: flags.stalledMs, log });
      let signals = 0;
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals): void => {
          signals++;
          log.info({ signal, force: signals > 1 }, signals > 1 ? 'stopping now' : 'stopping: finishing the runs in flight (signal again to stop now)');
          void worker.close({ force: signals > 1 }).then(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      exit(0);
    });
}
