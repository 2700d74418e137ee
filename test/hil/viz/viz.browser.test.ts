import { appendFileSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { firmwareCharts } from '../../../hil/viz/charts.ts';
import { startFollowing } from '../../../hil/viz/follow.ts';
import { runLiveEmulation } from '../../../hil/viz/live-run.ts';
import { PAGE_DIR, VizServer } from '../../../hil/viz/server.ts';
import { TraceIndex } from '../../../hil/viz/trace-index.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import {
  checkCharts, checkNoOffHostRequests, launchBrowser, openPage, screenshot, scrub, shownStates, waitReady, type Browser, type DomNode, type PageLog,
} from './browser.ts';
import { BROKEN, FAULTY, makeTrace } from './fixtures.ts';

declare const document: DomNode & { getElementById(id: string): DomNode | null };

const scratch = scratchDir('viz-browser');

async function info(server: VizServer): Promise<{ charts: { instances: { name: string; model: string }[]; models: { name: string; states: { path: string }[] }[] } }> {
  return (await fetch(`${server.url}api/info`)).json() as never;
}

/** The text of every counter cell, by series key. */
function counters(page: Page): Promise<Record<string, string>> {
  return page.evaluate(() => Object.fromEntries([...document.querySelectorAll('td[data-counter]')].map((td) => [td.dataset.counter!, td.textContent ?? ''])));
}

describe('the visualizer in a real browser', () => {
  let browser: Browser;
  let index: TraceIndex;
  let server: VizServer;
  /** The replay tests share one page, as a person would: load once, then scrub, step, play and jump. */
  let replay: Page;
  const logs: PageLog[] = [];

  beforeAll(async () => {
    browser = await launchBrowser();
    const trace = await makeTrace(scratch.dir(), 'broken', BROKEN);
    index = await TraceIndex.build(trace.path);
    server = await VizServer.start({ port: 0, trace: index });
    replay = await open();
  }, 60_000);
  afterAll(async () => {
    await replay?.close();
    await server?.close();
    index?.close();
    await browser?.close();
  });

  async function open(url = server.url): Promise<Page> {
    const { page, log } = await openPage(browser);
    logs.push(log);
    await page.goto(url);
    await waitReady(page, log);
    return page;
  }

  it('replay: draws every chart with all its states, and shows each chart\'s state and the counters at the scrubbed instant', async () => {
    const page = replay;
    await checkCharts(page, (await info(server)).charts);
    // Two instants at which the source channel is in different states, each just after a transition.
    const source = (i: number) => index.statesAt(i)['source:A->B']!;
    const changes = [...Array(index.count).keys()].filter((i) => index.statesAt(i)['source:A->B']?.index === i && source(i).from !== '');
    const i1 = changes[Math.floor(changes.length / 3)]!;
    const i2 = changes.find((i) => i > i1 && source(i).state !== source(i1).state)!;
    for (const i of [i1, i2]) {
      await scrub(page, i);
      const expected = Object.fromEntries(Object.entries(index.statesAt(i)).map(([n, s]) => [n, s?.state ?? null]));
      expect(await shownStates(page), `states at ${i}`).toEqual(expected);
      const last = index.statesAt(i)['source:A->B']!;
      const taken = await page.$$eval('figure[data-instance="source:A->B"] .transition.taken', (gs) => gs.map((g) => g.getAttribute('data-event')));
      expect(taken.length, `transition into ${last.state} by ${last.event}`).toBeGreaterThan(0);
      // The event's transition, and the eventless ones after it when the step passed through a transient state.
      expect(taken).toContain(last.event);
      expect(taken.every((e) => e === last.event || e === ''), taken.join()).toBe(true);
      expect((await counters(page))['rollback|A->B']).toBe(String(index.seriesAt(i)['rollback|A->B'] ?? ''));
      expect(await page.getAttribute('svg.plots-svg', 'data-cursor')).toBe(String(index.timeAt(i)));
    }
    await screenshot(page, 'replay');
  });

  it('replay: step, play and the jumps move through the trace', async () => {
    const page = replay;
    await scrub(page, 10);
    await page.click('#btn-step');
    await page.waitForSelector('body[data-index="11"]');
    await page.click('#btn-step-back');
    await page.waitForSelector('body[data-index="10"]');
    for (const [button, to] of [['#btn-next-state', 'state'], ['#btn-next-fault', 'fault'], ['#btn-next-violation', 'violation']] as const) {
      const from = Number(await page.getAttribute('body', 'data-index'));
      const expected = index.jump(from, to, 'next')!;
      await page.click(button);
      await page.waitForSelector(`body[data-index="${expected}"]`);
    }
    await page.click('#btn-prev-state');
    await page.waitForFunction((n) => Number(document.querySelector('body')!.dataset.index) < n, index.violations[0]!.index);
    const before = Number(await page.getAttribute('body', 'data-index'));
    await page.selectOption('#play-rate', '0.1');
    await page.click('#btn-play');
    await page.waitForFunction((n) => Number(document.querySelector('body')!.dataset.index) > n, before, { timeout: 5000 });
    await page.click('#btn-play');
    await page.waitForFunction(() => document.getElementById('btn-play')!.textContent === 'play');
  });

  it('replay: a trace with a violation shows its marker, and the marker links to the events around it', async () => {
    const page = replay;
    const markers = await page.$$('a.violation-marker');
    const marked = await page.$$eval('a.violation-marker', (as) => as.reduce((n, a) => n + Number(a.getAttribute('data-count')), 0));
    expect(marked).toBe(index.violations.length);
    const v = index.violations[0]!;
    await markers[0]!.click();
    await page.waitForSelector(`body[data-index="${v.index}"]`);
    expect(await page.textContent('#violation-detail')).toContain(v.invariant);
    const rows = await page.$$eval('#events li', (lis) => lis.map((li) => ({ index: Number(li.getAttribute('data-index')), related: li.classList.contains('related') })));
    expect(rows.some((r) => r.index === v.index)).toBe(true);
    expect(rows.length).toBeLessThanOrEqual(41);
    expect(rows.filter((r) => r.related).length).toBeGreaterThan(0);
    // The violations list links the same way.
    await scrub(page, 0);
    await page.click('#violations a.violation-link');
    await page.waitForSelector(`body[data-index="${v.index}"]`);
    await screenshot(page, 'replay-violation');
  });

  it('without a trace: every firmware statechart, as defined', async () => {
    const charts = await VizServer.start({ port: 0, charts: firmwareCharts() });
    try {
      const page = await open(charts.url);
      const spec = (await info(charts)).charts;
      expect(spec.instances.length).toBe(firmwareCharts().length);
      await checkCharts(page, spec);
      await page.close();
    } finally {
      await charts.close();
    }
  });

  it('live: follows a running emulation: the current state highlights and moves, counters update, pause holds it, and it ends with the verdict', async () => {
    const plain = await runEmulation(FAULTY);
    const run: { live: Awaited<ReturnType<typeof runLiveEmulation>> | null; failure: unknown } = { live: null, failure: null };
    let url = '';
    await new Promise<void>((resolve) => {
      void runLiveEmulation(FAULTY, { port: 0, speed: 0.02, onListening: (u) => { url = u; resolve(); } }).then((r) => (run.live = r), (e) => (run.failure = e));
    });
    const page = await open(url);
    const models = firmwareCharts();
    const spec = { models, instances: ['source:A->B', 'target:A->B', 'target:B->A'].map((name) => ({ name, model: models.find((m) => m.id === name.split(':')[0])!.name })) };
    try {
      await page.waitForSelector('body[data-live="connected"]');
      await page.waitForSelector('figure[data-instance="target:B->A"]');
      await checkCharts(page, spec);
      // Watch until the source channel has been seen in two states and a counter has changed (bounded: the run is seconds long).
      const seen = new Set<string>();
      const counterValues = new Set<string>();
      for (let k = 0; k < 100 && (seen.size < 2 || counterValues.size < 2); k++) {
        await page.waitForTimeout(100);
        const shown = await shownStates(page);
        if (shown['source:A->B']) seen.add(shown['source:A->B']);
        const depth = (await counters(page))['rollback|A->B'];
        if (depth) counterValues.add(depth);
      }
      expect(seen.size, `states seen: ${[...seen].join(', ')}`).toBeGreaterThanOrEqual(2);
      expect(counterValues.size).toBeGreaterThanOrEqual(2);
      expect(await page.getAttribute('body', 'data-live'), 'the run must still be going, to be paused').toBe('connected');
      await page.click('#btn-live-pause');
      await page.waitForFunction(() => document.getElementById('status')!.textContent === 'paused');
      const t1 = await page.getAttribute('body', 'data-t');
      await page.waitForTimeout(400);
      expect(await page.getAttribute('body', 'data-t')).toBe(t1);
      await screenshot(page, 'live');
      await page.click('#btn-live-pause');
      await page.fill('#live-speed', '1');
      await page.click('#btn-live-speed');
      await page.waitForSelector('body[data-live="ended"]', { timeout: 20_000 });
      expect(await page.textContent('#status')).toMatch(/finished: consistent/);
      await checkCharts(page, spec);
      await expect.poll(() => run.live !== null || run.failure !== null).toBe(true);
      expect(run.failure).toBeNull();
      // Watching changed nothing: the paced run is the run.
      expect(run.live!.report.traceHash).toBe(plain.traceHash);
    } finally {
      await page.close();
      await run.live?.server.close();
    }
  });

  it('live, attached to controller processes (--follow): their telemetry moves the charts as it is written, with no pace to control', async () => {
    // A real run's telemetry, stamped as controller processes stamp theirs, written in two halves.
    const { events } = await makeTrace(scratch.dir(), 'follow-src', FAULTY);
    const telemetry = events.filter((e) => e.kind !== 'run.start' && e.kind !== 'violation' && e.kind !== 'link.fault');
    const stamped = telemetry.map((e, i) => `${JSON.stringify({ n: i + 1, proc: `${String(e.node)}/1`, wall: 1_000_000 + e.t, ...e })}\n`);
    const path = join(scratch.dir(), 'follow.jsonl');
    // The first half ends just after the source channel enters a state other than its last one; the rest brings it there.
    const last = telemetry.filter((e) => e.kind === 'state' && e.machine === 'source:A->B').at(-1)!;
    const half = telemetry.findIndex((e) => e.kind === 'state' && e.machine === 'source:A->B' && e.to !== last.to) + 1;
    expect(half).toBeGreaterThan(0);
    writeFileSync(path, stamped.slice(0, half).join(''));
    const following = await startFollowing([path], 0);
    const page = await open(following.server.url);
    try {
      await page.waitForSelector('body[data-live="connected"]');
      await page.waitForSelector('figure[data-instance="source:A->B"]');
      expect(await page.textContent('#run-info')).toBe(`following ${path}`);
      expect(await page.$('#btn-live-pause'), 'a controller on the real clock has no pace to control').toBeNull();
      const before = (await shownStates(page))['source:A->B'];
      expect(before).toBeTruthy();
      expect(before).not.toBe(String(last.to));
      appendFileSync(path, stamped.slice(half).join(''));
      await expect.poll(async () => (await shownStates(page))['source:A->B'], { timeout: 10_000 }).toBe(String(last.to));
      expect(Number(await page.getAttribute('body', 'data-t'))).toBeGreaterThan(0);
    } finally {
      await page.close();
      await following.close();
    }
  });

  it('made no request off 127.0.0.1 on any page', () => {
    expect(logs.length).toBeGreaterThanOrEqual(3);
    for (const log of logs) {
      checkNoOffHostRequests(log);
      expect(log.pageErrors).toEqual([]);
    }
  });
});

describe('the browser checks fail on a broken page', () => {
  let browser: Browser;
  let index: TraceIndex;

  beforeAll(async () => {
    browser = await launchBrowser();
    index = await TraceIndex.build((await makeTrace(scratch.dir(), 'faulty', FAULTY)).path);
  }, 60_000);
  afterAll(async () => {
    index?.close();
    await browser?.close();
  });

  /** Serve a copy of the page with one file changed; the change must apply, or this test would prove nothing. */
  async function brokenPage(file: string, from: string, to: string): Promise<{ server: VizServer; page: Page; log: PageLog }> {
    const dir = join(scratch.dir(), `page-${file}-${Math.random().toString(36).slice(2)}`);
    cpSync(PAGE_DIR, dir, { recursive: true });
    const text = readFileSync(join(dir, file), 'utf8');
    expect(text).toContain(from);
    writeFileSync(join(dir, file), text.replace(from, to));
    const server = await VizServer.start({ port: 0, trace: index, pageDir: dir });
    const { page, log } = await openPage(browser);
    await page.goto(server.url);
    return { server, page, log };
  }

  it('a chart that draws no states', async () => {
    const { server, page, log } = await brokenPage('charts.js', '  walk(laid);\n', '\n');
    try {
      await waitReady(page, log);
      await expect(checkCharts(page, (await info(server)).charts)).rejects.toThrow(/link:A->B draws states \[\], its machine has \[connecting/);
    } finally {
      await server.close();
    }
  });

  it('a page that loads a script from a CDN', async () => {
    const { server, page, log } = await brokenPage('index.html', '<script src="/vendor/elk.bundled.js"></script>', '<script src="https://cdn.jsdelivr.net/npm/elkjs/lib/elk.bundled.js"></script>');
    try {
      await page.waitForSelector('body[data-ready="true"], body[data-error]');
      // Whether the browser's policy refuses it first or the request goes out (and is aborted), the check fails.
      expect(() => checkNoOffHostRequests(log)).toThrow(/(requested 1 URL\(s\) off 127\.0\.0\.1|tried to load what its policy refused: Refused to load).*cdn\.jsdelivr\.net/);
    } finally {
      await server.close();
    }
  });

  it('a scrubber that does nothing', async () => {
    const { server, page, log } = await brokenPage('replay.js', "controls.scrubber.addEventListener('input', () => scrubTo(Number(controls.scrubber.value)));", '');
    try {
      await waitReady(page, log);
      await expect(scrub(page, 100, 1500)).rejects.toThrow(/Timeout/);
    } finally {
      await server.close();
    }
  });

  it('a page that fails to start', async () => {
    const { server, page, log } = await brokenPage('app.js', "const response = await fetch('/api/info');", "const response = await fetch('/api/nowhere');");
    try {
      await expect(waitReady(page, log)).rejects.toThrow(/the page shows an error: the server said 400/);
    } finally {
      await server.close();
    }
  });
});
