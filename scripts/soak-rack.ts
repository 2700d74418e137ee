/**
 * npm run soak:rack [TCP_RUNS] [SERIAL_RUNS] [FROM]: seeded rack runs (docs/rack.md 6). By default 20
 * over TCP, each with the fault plan its seed draws and a kill of the source or the target at a
 * drawn second, the mode rotating through sync, speculative and async and every fourth run
 * bidirectional; then 5 over serial (two socat PTY pairs) with their drawn plans. Prints a line per
 * run and a summary (consistent runs, faults injected, restarts, wall time); exit 1 if any run was
 * inconsistent (with the command that runs it again), 2 if one could not be run.
 */
import { MIRROR_MODES } from '../firmware/mirror/types.ts';
import { SeededRandom } from '../host/random.ts';
import { describeViolation } from '../hil/checker/violation.ts';
import { RACK_DEFAULTS, type RackOptions } from '../hil/rack/options.ts';
import { faultsTotal } from '../hil/rack/rack-proxy.ts';
import { runRack } from '../hil/rack/rack-run.ts';
import type { RackReport } from '../hil/rack/report.ts';

const [tcpRuns, serialRuns, from] = [20, 5, 1].map((d, i) => {
  const arg = process.argv[2 + i];
  const v = arg === undefined ? d : Number(arg);
  if (!Number.isSafeInteger(v) || v < 0) {
    process.stderr.write(`soak-rack: argument ${i + 1} must be a whole number, got "${arg}"; usage: npm run soak:rack [TCP_RUNS] [SERIAL_RUNS] [FROM]\n`);
    process.exit(2);
  }
  return v;
});

function optionsFor(seed: number, link: 'tcp' | 'serial'): RackOptions {
  const r = new SeededRandom(seed).fork('soak-rack');
  return {
    ...RACK_DEFAULTS, link, seed, durationS: 5, mode: MIRROR_MODES[seed % MIRROR_MODES.length]!,
    bidirectional: link === 'tcp' && seed % 4 === 0,
    kill: link === 'tcp' ? { side: r.int(2) === 0 ? 'source' : 'target', atS: null } : null,
  };
}

const started = performance.now();
const reports: RackReport[] = [];
const failures: string[] = [];
let errors = 0;
const runs = [...Array(tcpRuns).keys()].map((i) => ({ seed: from + i, link: 'tcp' as const }))
  .concat([...Array(serialRuns).keys()].map((i) => ({ seed: from + tcpRuns + i, link: 'serial' as const })));
for (const { seed, link } of runs) {
  const o = optionsFor(seed, link);
  try {
    const r = await runRack(o);
    reports.push(r);
    const kill = r.kill ? `${r.kill.side} killed at ${r.kill.atS} s` : 'no kill';
    process.stdout.write(`seed ${seed} ${link} ${r.mode}${r.bidirectional ? ' bidirectional' : ''}: ${r.verdict}, ${r.writes.acknowledged} writes, `
      + `${faultsTotal(r.faultsInjected)} faults, ${kill}, ${(r.wallMs / 1000).toFixed(1)} s\n`);
    if (r.verdict !== 'consistent') {
      failures.push(`${r.reproduce}\n    ${r.violations.slice(0, 3).map(describeViolation).join('\n    ')}\n    files: ${r.dir}`);
    }
  } catch (error) {
    errors++;
    process.stdout.write(`seed ${seed} ${link}: could not run: ${(error as Error).message}\n`);
  }
}
const sum = (f: (r: RackReport) => number): number => reports.reduce((n, r) => n + f(r), 0);
const consistent = reports.filter((r) => r.verdict === 'consistent').length;
const byKind = (link: string) => reports.filter((r) => r.link === link);
process.stdout.write([
  '',
  `soak:rack: ${consistent} of ${runs.length} runs consistent (${byKind('tcp').filter((r) => r.verdict === 'consistent').length} of ${tcpRuns} over TCP, `
    + `${byKind('serial').filter((r) => r.verdict === 'consistent').length} of ${serialRuns} over serial)${errors > 0 ? `, ${errors} could not run` : ''}`,
  `  writes acknowledged: ${sum((r) => r.writes.acknowledged)}; faults injected: ${sum((r) => faultsTotal(r.faultsInjected))} `
    + `(${sum((r) => r.faultsInjected.framesDropped)} dropped, ${sum((r) => r.faultsInjected.framesCorrupted)} corrupted, `
    + `${sum((r) => r.faultsInjected.framesDuplicated)} duplicated, ${sum((r) => r.faultsInjected.framesReordered)} reordered, `
    + `${sum((r) => r.faultsInjected.framesDelayed)} delayed, ${sum((r) => r.faultsInjected.heartbeatsLost)} heartbeats lost, `
    + `${sum((r) => r.faultsInjected.resets)} resets, ${sum((r) => r.faultsInjected.silentCuts + r.faultsInjected.onewayCuts)} cuts, `
    + `${sum((r) => r.faultsInjected.flapCycles)} flap cycles)`,
  `  restarts: ${sum((r) => r.restarts)}; wall time ${((performance.now() - started) / 1000).toFixed(0)} s`,
  ...failures.map((f) => `  INCONSISTENT: ${f}`),
  '',
].join('\n'));
process.exitCode = failures.length > 0 ? 1 : errors > 0 ? 2 : 0;
