import { wireName } from '../bench/mirror-bench.ts';
import type { BenchResult } from '../cli/bench-command.ts';
import { esc, htmlPage, htmlTable } from './html.ts';
import { barChart, lineChart } from './svg.ts';

/**
 * `bench --html FILE` (docs/reports.md, "HTML reports"): the headline table as charts, throughput
 * against RTT for each mode beside its physical limit, then the block devices beside their
 * memory-copy floor, with the tables the charts are drawn from. Parts a run left out (`--only`)
 * are left out here too.
 */
export function benchHtml(r: BenchResult, started: Date): string {
  const body: string[] = [`<p>Measured ${esc(started.toISOString())} (UTC) with <code>mirrorlab bench${r.only === 'all' ? '' : ` --only ${esc(r.only)}`}</code>, node ${esc(process.version)}.</p>`];
  if (r.rows !== undefined) body.push(...mirrorPart(r));
  if (r.disks !== undefined) body.push(...diskPart(r));
  if (r.targets.length > 0) {
    body.push('<h2>Targets</h2>', htmlTable(['target', 'met', 'detail'], r.targets.map((t) => [t.name, t.met ? 'met' : 'MISSED', t.detail]), { id: 'targets' }));
  }
  return htmlPage('mirrorlab benchmark', body);
}

function mirrorPart(r: BenchResult): string[] {
  const rows = r.rows!;
  const modes = [...new Set(rows.map((x) => x.mode))];
  // The variants (docs/implied-locks.md) each mode was measured with: explicit locks first, the measured series keeps its name.
  const variantsOf = (mode: string): string[] => [...new Set(rows.filter((x) => x.mode === mode).map((x) => wireName(x)))];
  const seriesName = (variant: string, k: number): string => (k === 0 ? 'measured' : `measured, ${variant}`);
  const perMode = modes.map((mode) => lineChart({
    title: `${mode}: throughput against RTT`, xLabel: 'RTT (ms, log scale)', yLabel: 'MB/s', xLog: true, width: 360, height: 300,
    series: [
      ...variantsOf(mode).map((v, k) => ({ name: seriesName(v, k), slot: k, points: rows.filter((x) => x.mode === mode && wireName(x) === v).map((x) => [x.rttMs, x.throughputMBps] as const) })),
      { name: 'physical limit', slot: 7, dashed: true, points: rows.filter((x) => x.mode === mode && wireName(x) === variantsOf(mode)[0]).map((x) => [x.rttMs, x.limitMBps] as const) },
    ],
  }));
  const lines = modes.flatMap((mode) => variantsOf(mode).map((v) => ({ mode, v })));
  const ratio = lineChart({
    title: 'throughput as a share of the physical limit', xLabel: 'RTT (ms, log scale)', yLabel: 'ratio', xLog: true, width: 560,
    series: lines.map(({ mode, v }, k) => ({
      name: v === 'explicit' ? mode : `${mode}, ${v}`, slot: k, points: rows.filter((x) => x.mode === mode && wireName(x) === v).map((x) => [x.rttMs, x.ratioToLimit] as const),
    })),
  });
  return [
    '<h2>Mirroring: throughput against RTT (virtual time, exact)</h2>',
    '<p>4 KiB random writes, queue depth 32, a 1 Gbit/s link, every write in its own lock region. The limit is the physical one for mirroring acknowledged on the target: min(link bandwidth, 32 × 4 KiB / (RTT + serialisation + target disk time)); for async, the link bandwidth. Locks: explicit LOCK/UNLOCK sessions (the default), or implied in each WRITE, alone or with BATCH frames (speculative and async).</p>',
    `<div class="charts" id="mirror-charts">${[...perMode, ratio].join('\n')}</div>`,
    htmlTable(['mode', 'locks', 'RTT ms', 'MB/s', 'limit MB/s', 'ratio', 'frames per write', 'overhead bytes per write', 'chart events per write'], rows.map((x) => [
      x.mode, wireName(x), x.rttMs, x.throughputMBps.toFixed(2), x.limitMBps.toFixed(2), x.ratioToLimit.toFixed(3), x.framesPerWrite.toFixed(3), x.overheadBytesPerWrite.toFixed(1), x.chartEventsPerWrite.toFixed(5),
    ]), { numeric: [2, 3, 4, 5, 6, 7, 8], id: 'mirror-rows' }),
    htmlTable(['emulator speed (wall clock)', ''], [
      ['mirrored 4 KiB writes per wall second', r.simWritesPerSec ?? ''], ['the same, every write in its own lock region', r.simWritesPerSecOwnRegions ?? ''],
      ['with telemetry on, the trace hashed and the checker (a campaign\'s run)', r.checkedRunWritesPerSec ?? ''],
      ...(r.campaign === undefined ? [] : [[`campaign: seeds per minute (${r.campaign.seeds} drawn seeds from ${r.campaign.from}, ${r.campaign.writes} writes per host, ${r.campaign.workers} workers, load average ${r.campaign.loadAverage})`, r.campaign.seedsPerMinute]]),
      ['raw floor: copy + CRC32C of 4 KiB per second', r.copyCrcWritesPerSec ?? ''], ['scheduler events per write', r.eventsPerWrite ?? ''], ['chart events per write', r.chartEventsPerWrite ?? ''],
    ], { numeric: [1] }),
  ];
}

function diskPart(r: BenchResult): string[] {
  const d = r.disks!;
  const layouts = d.rows.map((x) => x.layout);
  return [
    `<h2>Block devices (wall clock${d.scale === 1 ? '' : `, scale ${d.scale}`})</h2>`,
    '<p>Each layout with waits made free (the devices\' own work), beside a memory copy of the same bytes to the same places: the floor.</p>',
    '<div class="charts" id="disk-charts">',
    barChart({ title: '4 KiB random writes', yLabel: 'MB/s', width: 520, categories: layouts, groups: [{ name: 'measured', values: d.rows.map((x) => x.random4kMBps), slot: 0 }], references: [{ name: 'memory copy floor', value: d.memoryCopy4kMBps }] }),
    barChart({ title: '1 MiB sequential writes', yLabel: 'MB/s', width: 520, categories: layouts, groups: [{ name: 'measured', values: d.rows.map((x) => x.sequential1mMBps), slot: 2 }], references: [{ name: 'memory copy floor', value: d.memoryCopy1mMBps }] }),
    '</div>',
    htmlTable(['layout', '4 KiB random MB/s', '1 MiB sequential MB/s'], [
      ...d.rows.map((x) => [x.layout, x.random4kMBps, x.sequential1mMBps] as const), ['memory copy (the floor)', d.memoryCopy4kMBps, d.memoryCopy1mMBps],
    ], { numeric: [1, 2], id: 'disk-rows' }),
    `<p>RAID-5 full-stripe writes ${esc(String(d.raid5FullStripeMBps))} MB/s, 4 KiB read-modify-write ${esc(String(d.raid5ReadModifyWriteMBps))} MB/s.</p>`,
  ];
}
