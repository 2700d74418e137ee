import { Command, Option } from 'commander';
import { ControlClient } from '../../host/runtime/control-client.ts';
import { UsageError } from '../plan-error.ts';
import { TAG_MAX, runClientLoad, type ClientLoadSpec } from '../workload/client-load.ts';
import { choice, integer } from './parse.ts';

interface LoadFlags extends Omit<ClientLoadSpec, 'writer'> {
  control: string;
  writer?: number;
  json: boolean;
}

/**
 * `mirrorlab load --control PATH`: a host workload against a running controller through its
 * control socket (docs/controller-process.md 5): self-describing writes, a queue of them in flight,
 * wall-clock throughput and latency. Any write refused is counted; exit 1 if any was.
 */
export function loadCommand(exit: (code: number) => void): Command {
  return new Command('load')
    .description('write self-describing data to a running controller\'s LUN through its control socket, and report throughput and latency')
    .requiredOption('--control <path>', 'the controller\'s control socket')
    .option('--lun <n>', 'the LUN to write', integer('--lun', 0, 0xffff), 0)
    .option('--writes <n>', 'writes to issue', integer('--writes', 1, 100_000_000), 1000)
    .option('--write-bytes <bytes>', 'bytes per write (rounded down to whole sectors)', integer('--write-bytes', 1, 16 * 1024 * 1024), 4096)
    .option('--queue-depth <n>', 'writes in flight', integer('--queue-depth', 1, 1024), 16)
    .addOption(new Option('--pattern <p>', 'where writes go: random, sequential').argParser(choice('--pattern', ['random', 'sequential'] as const)).default('random'))
    .option('--seed <n>', 'seed of the random placement', integer('--seed', 0, Number.MAX_SAFE_INTEGER), 1)
    .option('--writer <id>', 'the writer id written into every sector (default: the controller\'s id)', integer('--writer', 0, 0xffffffff))
    .option('--first-tag <n>', 'the first write\'s tag; the others follow (tags name writes in telemetry and in the data: give each run its own)', integer('--first-tag', 1, TAG_MAX), 1)
    .option('--json', 'print exactly one JSON document on stdout', false)
    .action(async (flags: LoadFlags) => {
      if (flags.firstTag + flags.writes - 1 > TAG_MAX) throw new UsageError(`--first-tag ${flags.firstTag} with --writes ${flags.writes} runs past the largest tag, ${TAG_MAX}`);
      const client = await ControlClient.connect(flags.control);
      try {
        const writer = flags.writer ?? (await client.status()).id;
        const r = await runClientLoad(client, { ...flags, writer });
        if (flags.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        else {
          process.stdout.write(`${r.acknowledged} of ${r.writes} writes acknowledged in ${(r.wallMs / 1000).toFixed(2)} s: ${r.megabytesPerSecond} MB/s, ` +
            `latency p50 ${r.latency.p50Ms.toFixed(3)} ms, p99 ${r.latency.p99Ms.toFixed(3)} ms\n`);
          if (r.errors > 0) process.stdout.write(`${r.errors} failed; the first: ${r.firstError}\n`);
        }
        exit(r.errors === 0 ? 0 : 1);
      } finally {
        await client.close();
      }
    });
}
