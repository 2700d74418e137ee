/**
 * The fault proxy's soak (docs/fault-proxy.md 8): seeded runs of two controllers on live links
 * through the proxy, each with its own drawn plan (hil/faults/proxy/soak-plans.ts), TCP for most
 * seeds and every fifth over two PTY pairs; each must end with the copy equal to the source.
 *
 *   npm run soak:proxy                  # seeds 1-25: 20 over TCP, 5 over serial
 *   npm run soak:proxy -- 100 1000      # 100 seeds from 1000
 *
 * One line per seed, then a JSON summary; exit 1 if any run ended inconsistent or failed. Its
 * figures go in the README; it is not a test (runs take wall time, and frame order over several
 * connections depends on timing: a seed reproduces the proxy's decisions, not the whole run).
 */
import { timedFaultsEndMsMax } from '../hil/faults/link-fault-plan.ts';
import { runProxiedPair } from '../hil/faults/proxy/proxied-pair.ts';
import { drawSoakPlan, formatLinkFaults } from '../hil/faults/proxy/soak-plans.ts';

const count = Number(process.argv[2] ?? 25);
const from = Number(process.argv[3] ?? 1);
if (!Number.isSafeInteger(count) || count < 1 || count > 10_000 || !Number.isSafeInteger(from) || from < 0) {
  process.stderr.write(`error: usage: npm run soak:proxy -- [SEEDS 1-10000] [FROM >= 0], got "${process.argv.slice(2).join(' ')}"\n`);
  process.exit(2);
}
const started = performance.now();
const failures: { seed: number; link: string; why: string }[] = [];
const totals = { runs: 0, writes: 0, dropped: 0, corrupted: 0, duplicated: 0, reordered: 0, delayed: 0, heartbeatsLost: 0, resets: 0, swallowedBytes: 0, downs: 0 };
for (let seed = from; seed < from + count; seed++) {
  const link = (seed - from) % 5 === 4 ? 'serial' : 'tcp';
  const plan = drawSoakPlan(seed, link);
  let why = '';
  try {
    const r = await runProxiedPair({ link, plan, seed, writesMin: 300, faultsEndMs: timedFaultsEndMsMax(plan), budgetMs: 60_000 });
    if (r.failure !== null) why = `firmware failure: ${String(r.failure)}`;
    else if (r.firstDifference >= 0) why = `the copy differs from the source at byte ${r.firstDifference}`;
    const t = [r.proxy.directions['A->B']!.total, r.proxy.directions['B->A']!.total];
    const sum = (k: keyof (typeof t)[0]): number => t[0]![k] + t[1]![k];
    totals.runs++;
    totals.writes += r.writesAcked;
    totals.dropped += sum('framesDropped');
    totals.corrupted += sum('framesCorrupted');
    totals.duplicated += sum('framesDuplicated');
    totals.reordered += sum('framesReordered');
    totals.delayed += sum('framesDelayed');
    totals.heartbeatsLost += sum('heartbeatsLost');
    totals.resets += r.proxy.connections.resets;
    totals.swallowedBytes += sum('bytesSwallowed');
    totals.downs += r.downs[0] + r.downs[1];
    process.stdout.write(`seed ${seed} ${link} ${why === '' ? 'consistent' : `INCONSISTENT: ${why}`}: ${r.writesAcked} writes, ${sum('framesDropped')} dropped, `
      + `${sum('framesCorrupted')} corrupted, ${r.proxy.connections.resets} resets, ${sum('bytesSwallowed')} bytes swallowed, downs ${r.downs.join('/')}, `
      + `${(r.wallMs / 1000).toFixed(1)} s; faults ${formatLinkFaults(plan)}\n`);
  } catch (error) {
    why = error instanceof Error ? error.message : String(error);
    process.stdout.write(`seed ${seed} ${link} FAILED: ${why}; faults ${formatLinkFaults(plan)}\n`);
  }
  if (why !== '') failures.push({ seed, link, why });
}
process.stdout.write(`${JSON.stringify({ seeds: count, from, failures, ...totals, wallS: Math.round((performance.now() - started) / 1000) })}\n`);
process.exit(failures.length === 0 ? 0 : 1);
