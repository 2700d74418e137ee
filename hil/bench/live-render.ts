import { LIVE_RATIO_MIN, type LiveBenchResult } from './live-bench.ts';

/** The live bench as text, for `mirrorlab bench`. */
export function renderLive(r: LiveBenchResult): string[] {
  const size = (b: number): string => (b >= 1024 * 1024 ? `${b / 1024 / 1024} MiB` : `${b / 1024} KiB`);
  const lines = [
    `live links (wall clock${r.scale === 1 ? '' : `, scale ${r.scale}`}; medians of rounds, raw copy and measured path back to back; ` +
      `load average ${r.loadAverage.map((x) => x.toFixed(1)).join(' ')} at the start)`,
    'path                                    write   MB/s      raw MB/s  ratio  (rounds)              CPU ms/MB  raw',
    '--------------------------------------  ------  --------  --------  -----  --------------------  ---------  -----',
  ];
  for (const x of r.rows) {
    const name = x.what === 'link' ? 'TCP link alone (encoded frames)'
      : x.transport === 'serial' ? 'mirrored over a PTY pair (upper bound)'
        : x.processes === 2 ? 'mirrored over TCP, two processes' : 'mirrored over loopback TCP, one process';
    const rounds = `(${x.ratios.map((q) => q.toFixed(2)).join(' ')})`;
    lines.push([
      name.padEnd(38), size(x.writeBytes).padStart(6), x.MBps.toFixed(1).padStart(8), x.rawMBps.toFixed(1).padStart(8), x.ratio.toFixed(3),
      rounds.padEnd(20), x.cpuMsPerMB.toFixed(2).padStart(9), x.rawCpuMsPerMB.toFixed(2).padStart(5),
    ].join('  '));
  }
  if (r.serialSkipped !== null) lines.push(`serial rows not measured: ${r.serialSkipped}`);
  const l = r.latency;
  lines.push(`host write latency over loopback TCP, ${l.writeBytes / 1024} KiB writes one at a time (${l.writes}): ` +
    `p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, mean ${l.meanMs} ms`);
  return lines;
}

/** Targets of the live part: measured, never a reason to fail the bench (wall clock depends on the machine and its load). */
export function liveTargets(r: LiveBenchResult): { name: string; met: boolean; detail: string }[] {
  return r.rows.filter((x) => x.what === 'mirrored').map((x) => ({
    name: `live ${x.transport}${x.processes === 2 ? ' (two processes)' : ''} mirrored ${x.writeBytes / 1024} KiB writes >= ${LIVE_RATIO_MIN} of a raw copy`,
    met: x.ratio >= LIVE_RATIO_MIN,
    detail: `ratio ${x.ratio} (${x.MBps} MB/s against ${x.rawMBps} MB/s raw)`,
  }));
}
