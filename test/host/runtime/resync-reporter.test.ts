import { describe, expect, it } from 'vitest';
import { newResyncCounters, type ResyncCounters } from '../../../firmware/controller/mirror-resync.ts';
import type { PeerStatus } from '../../../firmware/controller/storage-controller.ts';
import { RESYNC_PROGRESS_LOG_MS, ResyncReporter } from '../../../host/runtime/resync-reporter.ts';
import { mirrorLine } from '../../../host/runtime/status.ts';

type Mirror = PeerStatus['mirrors'][number];

function status(m: Omit<Partial<Mirror>, 'resync'> & { resync?: Partial<ResyncCounters> }): PeerStatus[] {
  const mirror: Mirror = {
    lun: 0, state: 'in-sync', doneSectors: 0, totalSectors: 0, lastRefusal: null, lastAbort: null, ...m, resync: { ...newResyncCounters(), ...m.resync },
  };
  return [{ peer: 'B', mirrors: [mirror] } as unknown as PeerStatus];
}

describe('the controller process logs resyncs from its status', () => {
  it('says when a mirror needs one, when it starts (how much, and why it copies), how far it came, when it stops early and when it is done', () => {
    const lines: string[] = [];
    const r = new ResyncReporter({ info: (_f, m) => lines.push(`info ${m}`), warn: (_f, m) => lines.push(`warn ${m}`) });
    r.observe(status({}), 0);
    r.observe(status({ state: 'needs-resync' }), 250);
    r.observe(status({ state: 'resyncing', totalSectors: 42, resync: { runs: 1, entriesCompared: 10, entriesMatched: 3 } }), 500);
    r.observe(status({ state: 'resyncing', totalSectors: 42, doneSectors: 8, resync: { runs: 1, entriesCompared: 10, entriesMatched: 3 } }), 750);
    r.observe(status({ state: 'resyncing', totalSectors: 42, doneSectors: 16, resync: { runs: 1, entriesCompared: 10, entriesMatched: 3 } }), 500 + RESYNC_PROGRESS_LOG_MS);
    r.observe(status({ state: 'needs-resync', totalSectors: 42, doneSectors: 16, lastAbort: 'the link went down', resync: { runs: 1, aborts: 1, entriesCompared: 10, entriesMatched: 3 } }), 3000);
    const full = { runs: 2, fullRuns: 1, aborts: 1, tablesRefused: 1, entriesCompared: 10, entriesMatched: 3 };
    r.observe(status({ state: 'resyncing', totalSectors: 1024, lastRefusal: 'the target said its table holds 4 entries, then 5', resync: full }), 3250);
    r.observe(status({ state: 'in-sync', totalSectors: 1024, doneSectors: 1024, resync: full }), 3500);
    expect(lines).toEqual([
      'warn LUN 0 to B needs a resync',
      'info resync of LUN 0 to B started: copying 42 sectors (10 tag entries compared, 3 matched)',
      'info resync of LUN 0 to B: 38% (16 of 42 sectors)',
      'warn resync of LUN 0 to B stopped before it finished (the link went down); it compares again at the next link-up',
      'info resync of LUN 0 to B started: copying 1024 sectors (a full copy: the target said its table holds 4 entries, then 5)',
      'info resync of LUN 0 to B done: 1024 sectors copied',
    ]);
  });
});

describe('mirrorlab status shows what resyncs did', () => {
  it('a mirror line carries progress while copying, and the resync counters once there were any', () => {
    const [p] = status({ state: 'resyncing', doneSectors: 16, totalSectors: 42, resync: { runs: 2, fullRuns: 1, aborts: 1, sectorsCopied: 1040, entriesCompared: 10, entriesMatched: 3 } });
    expect(mirrorLine(p!.mirrors[0]!)).toBe('  mirror LUN 0: resyncing (16 of 42 sectors); resyncs 2 (1 full, 1 stopped early), 1,040 sectors copied, 10 tag entries compared, 3 matched');
    expect(mirrorLine(status({})[0]!.mirrors[0]!)).toBe('  mirror LUN 0: in-sync');
    expect(mirrorLine(status({ lastRefusal: 'the target named tag 2 twice', resync: { runs: 1, fullRuns: 1 } })[0]!.mirrors[0]!)).toMatch(/; the peer's table was last refused: the target named tag 2 twice$/);
  });
});
