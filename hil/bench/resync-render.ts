import type { ResyncBenchResult } from './resync-bench.ts';

/**
 * What the tag-table resync may copy beyond what differed (docs/tag-tables.md, "What the checker
 * checks"): never less (resync-exact holds in every bench run, or the run throws), and more only
 * by the writes that reached the target just before the link went silent, whose tokens had not
 * come back yet: at most one write per lane of the host, `queueDepth x writeBytes`, whatever the
 * partition's length.
 */
export function resyncExcessMaxBytes(r: Pick<ResyncBenchResult, 'host'>): number {
  return r.host.queueDepth * r.host.writeBytes;
}

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(2);
const sec = (ms: number): string => (ms / 1000).toFixed(3);

/** The resync table: one row per partition, the tag resync beside a full copy and the two bitmaps. */
export function renderResync(r: ResyncBenchResult): string[] {
  const s = r.supervision;
  const lines = [
    `resync after a partition (async, random ${r.host.writeBytes / 1024} KiB writes, ${r.host.queueDepth} lanes thinking ${r.host.thinkMs} ms, ${mib(r.volumeBytes)} MiB volumes, `
      + `${r.linkMbps} Mbit/s; suspendAfterMs ${s.suspendAfterMs}: suspended ${s.interruptionMs + s.suspendAfterMs} ms into the silence)`,
    'partition  writes   differed MiB  tag MiB   ratio  tag s    entries (matched)  full MiB  full s   bitmap 4K MiB  s       bitmap 64K MiB  s',
    '---------  -------  ------------  --------  -----  -------  -----------------  --------  -------  -------------  ------  --------------  ------',
  ];
  for (const x of r.rows) {
    const [b4, b64] = x.bitmaps;
    lines.push(`${`${x.partitionMs / 1000} s`.padEnd(9)}  ${String(x.writes).padStart(7)}  ${mib(x.divergentBytes).padStart(12)}  ${mib(x.tagBytes).padStart(8)}  ${x.tagRatio.toFixed(3)}  ${sec(x.tagMs).padStart(7)}  `
      + `${`${x.entriesCompared} (${x.entriesMatched})`.padStart(17)}  ${mib(x.fullBytes).padStart(8)}  ${sec(x.fullMs).padStart(7)}  ${mib(b4!.bytes).padStart(13)}  ${sec(b4!.ms).padStart(6)}  ${mib(b64!.bytes).padStart(14)}  ${sec(b64!.ms).padStart(6)}`);
  }
  lines.push('tag s is measured (virtual time, from resync.start to resync.done); full and bitmap times are their bytes at the link rate, without protocol or round trips');
  lines.push('metadata per host write (4 KiB random, QD 32, no faults; both controllers)  bytes     device writes  flushes');
  for (const m of r.metadata) {
    lines.push(`${m.mode.padEnd(75)}  ${m.bytesPerWrite.toFixed(1).padStart(7)}  ${m.writesPerWrite.toFixed(3).padStart(13)}  ${m.flushesPerWrite.toFixed(3).padStart(7)}`);
  }
  return lines;
}

export function resyncTargets(r: ResyncBenchResult): { name: string; met: boolean; detail: string }[] {
  const excessMax = resyncExcessMaxBytes(r);
  return [{
    name: `tag-table resync copies what differs: ratio 1.0, at most ${excessMax / 1024} KiB more (the writes of one burst whose tokens were still out)`,
    met: r.rows.every((x) => x.tagBytes >= x.divergentBytes && x.tagBytes - x.divergentBytes <= excessMax),
    detail: r.rows.map((x) => `${x.partitionMs / 1000} s: ${x.tagRatio.toFixed(3)} (+${(x.tagBytes - x.divergentBytes) / 1024} KiB)`).join(', '),
  }];
}
