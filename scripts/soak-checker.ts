/**
 * The checker's memory soak (docs/simulator.md 6): one long speculative run with the checker
 * and the trace hash on, then the peak RSS of the process. Run it at two sizes to see that the
 * checker's memory follows the sectors written and the writes in flight, not the writes issued:
 *
 *   npm run soak:checker -- 1000000
 *   npm run soak:checker            # 10,000,000 writes
 *
 * Prints one JSON line. Its figures go in the README; it is not a test (wall time and RSS vary).
 */
import { DEFAULT_EMULATE } from '../hil/emulator/options.ts';
import { runEmulation } from '../hil/emulator/run.ts';

const writes = Number(process.argv[2] ?? 10_000_000);
if (!Number.isSafeInteger(writes) || writes < 1 || writes > 100_000_000) {
  process.stderr.write(`error: the write count must be an integer from 1 to 100000000, got "${process.argv[2]}"\n`);
  process.exit(2);
}
const started = performance.now();
let lastReport = started;
const report = await runEmulation(
  { ...DEFAULT_EMULATE, writes, queueDepth: 32, faultPhaseMsMax: 86_400_000 },
  {
    onProgress: (p) => {
      const now = performance.now();
      if (now - lastReport < 10_000) return;
      lastReport = now;
      process.stderr.write(`${p.writesAcknowledged}/${p.writesTotal} writes, RSS ${Math.round(process.memoryUsage.rss() / 2 ** 20)} MiB\n`);
    },
  },
);
const wallS = (performance.now() - started) / 1000;
process.stdout.write(`${JSON.stringify({
  writes, verdict: report.verdict, violations: report.violations.length, wallS: Math.round(wallS), writesPerWallS: Math.round(writes / wallS),
  virtualMs: report.virtualTimeMs, peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
})}\n`);
process.exit(report.verdict === 'consistent' ? 0 : 1);
