/**
 * Profiles a campaign's runs in one process: draws seeds as `campaign` does (hil/campaign/draw-run.ts)
 * and runs them one after another, printing each run's CPU time (user + system, not wall time: the
 * machine is shared) and trace hash. Under `node --cpu-prof --import tsx` it gives the profile
 * README.md's "Campaign speed" quotes.
 *
 *   node --import tsx scripts/campaign-profile.ts [--from S] [--seeds N] [--writes N] [--dump FILE]
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { drawRun } from '../hil/campaign/draw-run.ts';
import { runEmulation } from '../hil/emulator/run.ts';

const { values } = parseArgs({ options: { from: { type: 'string', default: '300' }, seeds: { type: 'string', default: '4' }, writes: { type: 'string', default: '10000' }, dump: { type: 'string' } } });
const from = Number(values.from);
const seeds = Number(values.seeds);
const writes = Number(values.writes);
let total = 0;
if (values.dump) writeFileSync(values.dump, '');
for (let seed = from; seed < from + seeds; seed++) {
  const before = process.cpuUsage();
  const report = await runEmulation(drawRun(seed, { writes, faults: null }));
  const used = process.cpuUsage(before);
  const cpuS = (used.user + used.system) / 1e6;
  total += cpuS;
  // --dump FILE: every report as a JSON line, to compare two builds' runs (a change of speed must change nothing else).
  if (values.dump) appendFileSync(values.dump, `${JSON.stringify(report)}\n`);
  console.log(`seed ${seed}: ${report.verdict}, ${cpuS.toFixed(2)} CPU s, ${report.traceEvents} events, mode ${report.mode}, traceHash ${report.traceHash}`);
}
console.log(`total ${total.toFixed(2)} CPU s for ${seeds} seeds: ${(60 / (total / seeds)).toFixed(1)} seeds per CPU minute`);
