import { Command } from 'commander';
import { DEFAULT_EMULATE, type EmulateOptions } from '../emulator/options.ts';
import { runEmulation } from '../emulator/run.ts';
import { parseLinkFaults } from '../faults/link-fault-plan.ts';
import type { Logger } from '../log.ts';
import { ProgressBar } from './progress.ts';
import { renderReport } from './render.ts';

const FAULTS = 'drop=0.01,corrupt=0.01,duplicate=0.01,reorder=0.01,partition=1';

/**
 * What `npm start` shows: the invention in three runs. The same workload is mirrored classically
 * (sync: LOCK, wait for the grant, then the data) and speculatively (LOCK and data back to back),
 * so the saved round trip shows in the host latency; then speculative mirroring again under lock
 * contention and link faults, to show it recovering (halts, rollbacks) and ending consistent.
 */
export function demoCommand(log: Logger, exit: (code: number) => void): Command {
  return new Command('demo')
    .description('the default demo (npm start): sync vs speculative mirroring, then speculative under faults')
    .action(async () => {
      const base: EmulateOptions = { ...DEFAULT_EMULATE, writes: 2000, rttMs: 2, queueDepth: 8, lockRegionSectors: 8 };
      const runs: [string, EmulateOptions][] = [
        ['1. classic synchronous mirroring (lock, wait for the grant, then write)', { ...base, mode: 'sync' }],
        ['2. speculative mirroring (lock and data back to back)', { ...base, mode: 'speculative' }],
        [`3. speculative mirroring with 5% lock contention and link faults (${FAULTS})`, { ...base, mode: 'speculative', lockContentionPerMillion: 50_000, faults: parseLinkFaults(FAULTS) }],
      ];
      let worst = 0;
      const latencies: number[] = [];
      for (const [title, opts] of runs) {
        process.stdout.write(`\n${title}\n`);
        const bar = new ProgressBar('  running');
        const report = await runEmulation(opts, { onProgress: bar.update });
        bar.done();
        latencies.push(report.latencyMs.meanMs);
        process.stdout.write(`${renderReport(report)}\n`);
        if (report.verdict !== 'consistent') worst = 1;
      }
      const [sync, spec] = latencies as [number, number];
      process.stdout.write(`\nWith a ${base.rttMs} ms round trip, a write in a new lock region took ${sync.toFixed(3)} ms on average mirrored synchronously and ${spec.toFixed(3)} ms speculatively: the lock round trip is gone.\n`);
      log.info({ consistent: worst === 0 }, 'demo finished');
      exit(worst);
    });
}
