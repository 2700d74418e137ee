import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VizServer } from '../../../hil/viz/server.ts';
import { TraceIndex } from '../../../hil/viz/trace-index.ts';
import { SeededRandom } from '../../../host/random.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { ARTIFACTS, launchBrowser, openPage, scrub, screenshot, waitReady, type Browser, type DomNode } from './browser.ts';
import { BROKEN, makeTrace } from './fixtures.ts';

declare const document: DomNode;

const scratch = scratchDir('viz-big');
const EVENTS = 1_000_000;

/**
 * A million-event trace made of a real run (with its violations) played again and again, each copy
 * later than the last: real events in realistic proportions, made in a second or two rather than
 * by a long emulation.
 */
async function millionEvents(dir: string): Promise<string> {
  const run = await makeTrace(dir, 'seed', BROKEN);
  const span = Math.ceil(run.events.at(-1)!.t) + 1;
  const path = join(dir, 'million.jsonl');
  const fd = openSync(path, 'w');
  let written = 0;
  for (let copy = 0; written < EVENTS; copy++) {
    const shift = copy * span;
    const lines: string[] = [];
    for (const e of run.events) {
      if (written + lines.length >= EVENTS) break;
      if (copy > 0 && e.kind === 'run.start') continue;
      const moved: Record<string, unknown> = { ...e, t: e.t + shift };
      if (typeof e.atMs === 'number') moved.atMs = e.atMs + shift;
      if (typeof e.untilMs === 'number') moved.untilMs = e.untilMs + shift;
      lines.push(JSON.stringify(moved));
    }
    writeSync(fd, `${lines.join('\n')}\n`);
    written += lines.length;
  }
  closeSync(fd);
  return path;
}

const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

describe('a million-event trace', () => {
  let browser: Browser;
  let index: TraceIndex;
  let server: VizServer;

  beforeAll(async () => {
    const path = await millionEvents(scratch.dir());
    [browser, index] = await Promise.all([launchBrowser(), TraceIndex.build(path)]);
    server = await VizServer.start({ port: 0, trace: index });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    index?.close();
    await browser?.close();
  });

  it('opens and scrubs without ever putting the events into the page (times measured, not asserted)', async () => {
    expect(index.count).toBe(EVENTS);
    const { page, log } = await openPage(browser);
    const started = performance.now();
    await page.goto(server.url);
    await waitReady(page, log, 30_000);
    const openMs = performance.now() - started;
    const random = new SeededRandom(1);
    const scrubMs: number[] = [];
    for (let k = 0; k < 30; k++) scrubMs.push(await scrub(page, random.int(EVENTS)));
    // The events stay on the server: the page holds a window of them, and a bounded drawing.
    const dom = await page.evaluate(() => ({ elements: document.querySelectorAll('*').length, events: document.querySelectorAll('#events li').length }));
    expect(dom.events).toBeLessThanOrEqual(41);
    expect(dom.elements).toBeLessThan(20_000);
    // Jumps search the index, not the page.
    const last = index.violations.at(-1)!;
    await scrub(page, last.index - 1);
    await page.click('#btn-next-violation');
    await page.waitForSelector(`body[data-index="${last.index}"]`);
    await screenshot(page, 'million');
    const figures = {
      events: index.count, bytes: index.bytes, indexMs: index.indexMs, openMs: Math.round(openMs),
      scrubMs: { p50: Math.round(percentile(scrubMs, 0.5)), p95: Math.round(percentile(scrubMs, 0.95)), max: Math.round(Math.max(...scrubMs)) },
      domElements: dom.elements,
    };
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(join(ARTIFACTS, 'million.json'), `${JSON.stringify(figures, null, 2)}\n`);
    console.log(`a million-event trace: ${JSON.stringify(figures)}`);
    await page.close();
  });
});
