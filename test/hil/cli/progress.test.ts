import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from '../../../hil/log.ts';
import { PROGRESS_LOG_EVERY_MS, progressReporter, resyncText } from '../../../hil/cli/progress.ts';

describe('the emulator progress line', () => {
  it('tells how far resyncs have come, and says nothing when every mirror is in sync', () => {
    expect(resyncText({ resync: null })).toBe('');
    expect(resyncText({ resync: { mirrors: 1, doneSectors: 0, totalSectors: 0 } })).toBe(', 1 mirror to resync');
    expect(resyncText({ resync: { mirrors: 2, doneSectors: 300, totalSectors: 1024 } })).toBe(', resync 29% of 1024 sectors');
  });
});

describe('a campaign\'s progress off a terminal', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('logs the first step, then at most one line per interval, and always the last', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const lines: [Record<string, unknown>, string][] = [];
    const log = { info: (fields: Record<string, unknown>, msg: string) => lines.push([fields, msg]) } as unknown as Logger;
    const report = progressReporter(false, log, 'campaign progress');
    report('1/4', { done: 1 }, false);
    vi.advanceTimersByTime(PROGRESS_LOG_EVERY_MS - 1);
    report('2/4', { done: 2 }, false);
    vi.advanceTimersByTime(1);
    report('3/4', { done: 3 }, false);
    report('4/4', { done: 4 }, true);
    expect(lines).toEqual([[{ done: 1 }, 'campaign progress'], [{ done: 3 }, 'campaign progress'], [{ done: 4 }, 'campaign progress']]);
  });
});
