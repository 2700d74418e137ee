import type { ResyncCounters } from '../../firmware/controller/mirror-resync.ts';
import type { PeerStatus } from '../../firmware/controller/storage-controller.ts';

/** What the reporter logs through: pino's shape, narrowed to what it uses. */
export interface ResyncLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** Progress of a resync under way is logged at most this often (ms). */
export const RESYNC_PROGRESS_LOG_MS = 2_000;

interface Seen {
  state: string;
  resync: ResyncCounters;
  loggedAt: number;
  loggedDone: number;
}

type MirrorStatus = PeerStatus['mirrors'][number];

/**
 * The controller process's log lines about resyncs (docs/tag-tables.md, "Resync";
 * docs/controller-process.md): read from the controller's status at every poll, so they are
 * there whether or not telemetry is on. One line when a mirror needs a resync, one when a resync
 * starts (how much it copies, and whether tag tables narrowed it), its progress every
 * {@link RESYNC_PROGRESS_LOG_MS} while it copies, one when it stops early (saying why) and one
 * when it is done.
 */
export class ResyncReporter {
  private readonly seen = new Map<string, Seen>();

  constructor(private readonly log: ResyncLog) {}

  /** Looks at a status taken at `nowMs` and logs what changed since the last one. */
  observe(status: readonly PeerStatus[], nowMs: number): void {
    for (const p of status) {
      for (const m of p.mirrors) {
        const key = `${p.peer}/${m.lun}`;
        const was = this.seen.get(key);
        const now: Seen = { state: m.state, resync: m.resync, loggedAt: was?.loggedAt ?? nowMs, loggedDone: was?.loggedDone ?? 0 };
        this.seen.set(key, now);
        if (was !== undefined) this.report(p.peer, m, was, now, nowMs);
      }
    }
  }

  private report(peer: string, m: MirrorStatus, was: Seen, now: Seen, nowMs: number): void {
    const fields = { peer, lun: m.lun };
    const what = `resync of LUN ${m.lun} to ${peer}`;
    const d = (k: keyof ResyncCounters): number => now.resync[k] - was.resync[k];
    if (was.state === 'in-sync' && now.state !== 'in-sync' && d('runs') === 0) this.log.warn(fields, `LUN ${m.lun} to ${peer} needs a resync`);
    if (d('aborts') > 0) this.log.warn({ ...fields, reason: m.lastAbort }, `${what} stopped before it finished (${m.lastAbort ?? 'no reason given'}); it compares again at the next link-up`);
    if (d('runs') > 0) {
      const how = d('fullRuns') > 0
        ? `a full copy${m.lastRefusal !== null && d('tablesRefused') > 0 ? `: ${m.lastRefusal}` : ''}`
        : `${d('entriesCompared')} tag entries compared, ${d('entriesMatched')} matched`;
      this.log.info({ ...fields, sectors: m.totalSectors, full: d('fullRuns') > 0 }, `${what} started: copying ${m.totalSectors} sectors (${how})`);
      now.loggedAt = nowMs;
      now.loggedDone = 0;
    } else if (now.state === 'resyncing' && nowMs - was.loggedAt >= RESYNC_PROGRESS_LOG_MS && m.doneSectors !== was.loggedDone) {
      const pct = m.totalSectors === 0 ? 100 : Math.floor((100 * m.doneSectors) / m.totalSectors);
      this.log.info({ ...fields, doneSectors: m.doneSectors, totalSectors: m.totalSectors }, `${what}: ${pct}% (${m.doneSectors} of ${m.totalSectors} sectors)`);
      now.loggedAt = nowMs;
      now.loggedDone = m.doneSectors;
    }
    if (was.state !== 'in-sync' && now.state === 'in-sync') this.log.info({ ...fields, sectorsCopied: m.doneSectors }, `${what} done: ${m.doneSectors} sectors copied`);
  }
}
