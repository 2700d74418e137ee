import type { Logger } from '../log.ts';
import type { Progress } from '../emulator/run.ts';

/**
 * A one-line progress bar on stderr, only when stderr is a terminal (CI logs and pipes stay
 * clean), redrawn at most ten times a second.
 */
export class ProgressBar {
  private last = 0;
  private shown = false;
  private readonly enabled: boolean;

  constructor(private readonly label: string, enabled = process.stderr.isTTY === true) {
    this.enabled = enabled;
  }

  update = (p: Progress): void => {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    const total = Math.max(1, p.writesTotal);
    const frac = Math.min(1, p.writesAcknowledged / total);
    const width = 30;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    process.stderr.write(`\r${this.label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${p.writesAcknowledged}/${p.writesTotal} writes, t=${p.virtualMs.toFixed(1)} ms (${p.phase})${resyncText(p)}  `);
    this.shown = true;
  };

  done(): void {
    if (this.shown) process.stderr.write('\r\x1b[2K');
    this.shown = false;
  }
}

/** `, resync 40% of 1024 sectors` while mirrors resync (docs/tag-tables.md, "Resync"); empty when all are in sync. */
export function resyncText(p: Pick<Progress, 'resync'>): string {
  const r = p.resync;
  if (r === null) return '';
  if (r.totalSectors === 0) return `, ${r.mirrors} mirror${r.mirrors === 1 ? '' : 's'} to resync`;
  return `, resync ${Math.floor((100 * r.doneSectors) / r.totalSectors)}% of ${r.totalSectors} sectors`;
}

/** A log line every this many ms when progress cannot be redrawn in place. */
export const PROGRESS_LOG_EVERY_MS = 10_000;

/**
 * A long job's progress (campaigns, local or queued): a line redrawn in place on a terminal, else
 * `msg` logged with `fields` at the first step, then every {@link PROGRESS_LOG_EVERY_MS}, and at the last (a rack's log).
 */
export function progressReporter(tty: boolean, log: Logger, msg: string): (line: string, fields: Record<string, unknown>, last: boolean) => void {
  let lastLog = 0;
  return (line, fields, last) => {
    if (tty) process.stderr.write(`\r\x1b[2K${line}`);
    else if (last || Date.now() - lastLog >= PROGRESS_LOG_EVERY_MS) {
      lastLog = Date.now();
      log.info(fields, msg);
    }
  };
}
