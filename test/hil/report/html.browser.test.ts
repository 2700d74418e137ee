import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CampaignResult } from '../../../hil/campaign/campaign.ts';
import { summarise, type RunSummary } from '../../../hil/campaign/summary.ts';
import { limitMBps, variantsOf, HEADLINE_MODES, HEADLINE_RTTS_MS } from '../../../hil/bench/mirror-bench.ts';
import type { BenchResult } from '../../../hil/cli/bench-command.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { benchHtml } from '../../../hil/report/bench-report.ts';
import { campaignHtml, viewCommand } from '../../../hil/report/campaign-report.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { checkNoOffHostRequests, launchBrowser, openPage, screenshot, type Browser, type DomNode } from '../viz/browser.ts';
import { BROKEN, BROKEN_BUGS, FAULTY } from '../viz/fixtures.ts';
import { withPlantedBugs } from '../../support/planted-bugs.ts';

declare const document: DomNode;

const scratch = scratchDir('html-reports');
const root = new URL('../../../', import.meta.url).pathname;

/** A campaign result made of real runs (one consistent, one with a planted bug) and one crash. */
async function campaign(): Promise<{ result: CampaignResult; runs: RunSummary[] }> {
  const broken = await withPlantedBugs(BROKEN_BUGS, () => runEmulation({ ...BROKEN, seed: 32 }));
  const runs = [summarise(await runEmulation({ ...FAULTY, seed: 31 }), 800), summarise(broken, 900, BROKEN_BUGS.join(','))];
  const crash = { seed: 33, mode: 'async', onLockReject: 'retransmit', verdict: 'crashed' as const, violations: [], error: 'Error: boom\n    at run', reproduce: 'npx mirrorlab emulate --seed 33 --mode async' };
  const bad = runs[1]!;
  const faults = { ...runs[0]!.faultsInjected };
  for (const k of Object.keys(faults) as (keyof typeof faults)[]) faults[k] += bad.faultsInjected[k];
  const result: CampaignResult = {
    seeds: 3, from: 31, runs: 2, consistent: 1, crashed: 1, stuck: 0, notRun: 0, workerRestarts: 1, writes: runs.reduce((n, r) => n + r.writes, 0), wallSeconds: 1.7,
    failures: [{ seed: 32, mode: bad.mode, onLockReject: bad.onLockReject, verdict: 'inconsistent', violations: bad.violations, reproduce: bad.reproduce, traceHash: bad.traceHash }, crash],
    faultsInjected: faults,
    byMode: { [`${runs[0]!.mode}/${runs[0]!.onLockReject}`]: 2 },
    crashes: 0, powerCuts: 0, resync: { runs: 0, fullRuns: 0, bytesCopied: 0, bytesDivergent: 0 },
  };
  return { result, runs };
}

function bench(): BenchResult {
  const rows = HEADLINE_RTTS_MS.flatMap((rtt) => HEADLINE_MODES.flatMap((mode) => variantsOf(mode).map(({ locks, batch }) => {
    const limit = limitMBps(mode, rtt);
    const ratio = mode === 'sync' && rtt >= 1 ? 0.5 : batch ? 0.995 : 0.96;
    return { mode, rttMs: rtt, locks, batch, throughputMBps: limit * ratio, limitMBps: limit, ratioToLimit: ratio, framesPerWrite: 3, overheadBytesPerWrite: 150, chartEventsPerWrite: 0.0001 };
  })));
  return {
    only: 'all', rows, simWritesPerSec: 120_000, simWritesPerSecOwnRegions: 90_000, checkedRunWritesPerSec: 25_000, traceEventsPerWrite: 9.5, copyCrcWritesPerSec: 1_500_000, eventsPerWrite: 5.19, chartEventsPerWrite: 0.00001,
    disks: {
      rows: [{ layout: 'mem:64MiB', random4kMBps: 6090, sequential1mMBps: 34793 }, { layout: 'raid5:4x64MiB', random4kMBps: 347, sequential1mMBps: 2905 }],
      raid5FullStripeMBps: 2617, raid5ReadModifyWriteMBps: 424, memoryCopyMBps: 29509, memoryCopy4kMBps: 24354, memoryCopy1mMBps: 29509, scale: 1, attached: [], attachedNotes: [],
    },
    targets: [{ name: 'speculative >= 0.95 of the limit', met: true, detail: 'worst ratio 0.96' }],
  };
}

describe('HTML reports', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => browser?.close());

  /** Open a report from disk; every chart must draw with a size, and nothing may be fetched. */
  async function openReport(path: string, name: string): Promise<number> {
    const { page, log } = await openPage(browser);
    await page.goto(`file://${path}`);
    const sizes = await page.evaluate(() => [...document.querySelectorAll('svg.chart')].map((s) => s.getBoundingClientRect().width * s.getBoundingClientRect().height));
    expect(sizes.every((a) => a > 10_000)).toBe(true);
    checkNoOffHostRequests(log);
    expect(log.requests).toEqual([`file://${path}`]);
    expect(log.pageErrors).toEqual([]);
    await screenshot(page, name);
    await page.close();
    return sizes.length;
  }

  it('campaign --html: summary, failures with their reproduce and view commands, fault totals and plots, opening with no network', async () => {
    const { result, runs } = await campaign();
    const html = campaignHtml({ result, runs, started: new Date(), faults: null });
    expect(html).toContain('1 INCONSISTENT, 1 CRASHED');
    const bad = runs[1]!;
    expect(html).toContain(`<pre class="reproduce">${bad.reproduce.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')}</pre>`);
    expect(html).toContain(viewCommand(bad.reproduce, 32).replace(/&/g, '&amp;').replace(/>/g, '&gt;'));
    expect(html).toContain('Error: boom');
    expect(html).toContain(bad.violations[0]!.invariant);
    expect(html).not.toMatch(/<script|<link|src=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    const path = scratch.path('campaign', '.html');
    writeFileSync(path, html);
    expect(await openReport(path, 'campaign-report')).toBe(5);
  });

  it('bench --html: throughput against RTT per mode beside the physical limit, and the disk rows, as charts', async () => {
    const r = bench();
    const html = benchHtml(r, new Date());
    for (const mode of HEADLINE_MODES) expect(html).toContain(`${mode}: throughput against RTT`);
    expect((html.match(/data-series="physical limit"/g) ?? []).length).toBe(3);
    expect(html).toContain('data-series="measured, implied, batched"');
    expect(html).toContain('data-series="speculative, implied, batched"');
    expect(html).toContain('memory copy floor');
    const path = scratch.path('bench', '.html');
    writeFileSync(path, html);
    expect(await openReport(path, 'bench-report')).toBe(6);
    // A part the run left out (--only) is left out of the page too.
    const disksOnly = benchHtml({ only: 'disks', disks: r.disks, targets: [] }, new Date());
    expect(disksOnly).not.toContain('throughput against RTT');
    expect(disksOnly).toContain('4 KiB random writes');
  });

  it('the no-network check fails on a report that reaches out', async () => {
    const path = scratch.path('leaky', '.html');
    writeFileSync(path, benchHtml(bench(), new Date()).replace('</body>', '<img src="https://example.com/pixel.png"></body>'));
    const { page, log } = await openPage(browser);
    await page.goto(`file://${path}`);
    expect(() => checkNoOffHostRequests(log)).toThrow(/example\.com/);
    await page.close();
  });

  it('bench --html and campaign --junit/--html from the command line; an unwritable report is refused before any work, exit 2', () => {
    const html = scratch.path('cli-bench', '.html');
    const r = spawnSync(process.execPath, ['bin/mirrorlab.mjs', 'bench', '--only', 'disks', '--disk-scale', '0.001', '--html', html], { cwd: root, encoding: 'utf8', env: { ...process.env, MIRRORLAB_LOG: 'warn' } });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(html, 'utf8')).toContain('1 MiB sequential writes');
    for (const args of [['campaign', '--seeds', '1', '--junit', '/nonexistent/dir/r.xml'], ['campaign', '--seeds', '1', '--html', scratch.dir()], ['bench', '--html', '/nonexistent/b.html']]) {
      const bad = spawnSync(process.execPath, ['bin/mirrorlab.mjs', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, MIRRORLAB_LOG: 'warn' } });
      expect(bad.status, args.join(' ')).toBe(2);
      expect(bad.stderr, args.join(' ')).toMatch(/^error: ML_ERR_REPORT_FILE: report file .*(does not exist|is a directory)/);
      expect(bad.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
