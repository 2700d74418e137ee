import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core (Playwright's own browser download needs the
 * network; this one is installed by scripts/test-tools.sh), and the checks the visualizer's
 * browser tests make. The checks are plain functions that throw, so that a test can also show
 * them failing on a deliberately broken page.
 */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * The browser's globals as the functions handed to `page.evaluate` see them: those functions run
 * in the page, but TypeScript checks them here, and this project compiles without the DOM library
 * (it is a Node project), so the little they use is declared here, for this module only.
 */
export interface DomNode {
  readonly dataset: Record<string, string | undefined>;
  readonly textContent: string | null;
  readonly classList: { contains(c: string): boolean };
  value: string;
  querySelector(selector: string): DomNode | null;
  querySelectorAll(selector: string): ArrayLike<DomNode> & Iterable<DomNode>;
  getBoundingClientRect(): { width: number; height: number };
  getAttribute(name: string): string | null;
  dispatchEvent(event: unknown): boolean;
  click(): void;
}
declare const document: DomNode & { getElementById(id: string): DomNode | null; addEventListener(type: string, f: (e: { blockedURI: string; violatedDirective: string }) => void): void };
declare const Event: new (type: string, init?: { bubbles?: boolean }) => unknown;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** Where screenshots and measured figures go (gitignored): test-artifacts/viz/. */
export const ARTIFACTS = new URL('../../../test-artifacts/viz/', import.meta.url).pathname;

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'mirrorlab-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1500, height: 1000 } });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Every request a page made or tried to make, the errors it threw, and what its content security policy refused. */
export interface PageLog {
  requests: string[];
  pageErrors: string[];
  refused: string[];
}

/**
 * A fresh page that records every request and refuses (aborts) any request off 127.0.0.1, so a
 * page that reaches for the network fails visibly instead of hanging; content-security-policy
 * refusals are recorded too (a refused load never becomes a request).
 */
export async function openPage(b: Browser): Promise<{ page: Page; log: PageLog }> {
  const page = await b.context.newPage();
  const log: PageLog = { requests: [], pageErrors: [], refused: [] };
  page.on('request', (r) => log.requests.push(r.url()));
  page.on('pageerror', (e) => log.pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Refused to/.test(m.text())) log.refused.push(m.text());
  });
  await page.route('**/*', (route) => (isLocal(route.request().url()) ? route.continue() : route.abort()));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`Refused to load ${e.blockedURI} (${e.violatedDirective})`));
  });
  return { page, log };
}

function isLocal(url: string): boolean {
  const u = new URL(url);
  // A report opened from disk reads itself through file:, which is no network either.
  if (u.protocol === 'data:' || u.protocol === 'blob:' || u.protocol === 'about:' || u.protocol === 'file:') return true;
  return (u.protocol === 'http:' || u.protocol === 'ws:') && u.hostname === '127.0.0.1';
}

/** The page made no request off 127.0.0.1, and its policy refused none (a refused load is an attempt). */
export function checkNoOffHostRequests(log: PageLog): void {
  const off = log.requests.filter((u) => !isLocal(u));
  if (off.length > 0) throw new Error(`the page requested ${off.length} URL(s) off 127.0.0.1: ${off.slice(0, 3).join(', ')}`);
  if (log.refused.length > 0) throw new Error(`the page tried to load what its policy refused: ${log.refused.slice(0, 3).join(' | ')}`);
}

/** The page started: body[data-ready=true], no error shown, no uncaught exception. */
export async function waitReady(page: Page, log: PageLog, timeoutMs = 15_000): Promise<void> {
  await page.waitForSelector('body[data-ready="true"], body[data-error]', { timeout: timeoutMs });
  const error = await page.getAttribute('body', 'data-error');
  if (error !== null) throw new Error(`the page shows an error: ${error}`);
  if (log.pageErrors.length > 0) throw new Error(`the page threw: ${log.pageErrors.join(' | ')}`);
}

export interface ChartSpec {
  instances: { name: string; model: string }[];
  models: { name: string; states: { path: string }[] }[];
}

/**
 * Every instance has a drawing, and every state of its machine is drawn in it, as a box of
 * non-zero size with its name (and nothing but its machine's states is drawn).
 */
export async function checkCharts(page: Page, charts: ChartSpec): Promise<void> {
  for (const inst of charts.instances) {
    const model = charts.models.find((m) => m.name === inst.model);
    if (!model) throw new Error(`no model ${inst.model} for ${inst.name}`);
    const expected = model.states.map((s) => s.path).filter((p) => p !== '').sort();
    const drawn = await page.evaluate((name) => {
      const fig = [...document.querySelectorAll('figure.chart')].find((f) => f.dataset.instance === name);
      if (!fig) return null;
      return [...fig.querySelectorAll('g.state')].map((g) => {
        const r = g.querySelector('rect')!.getBoundingClientRect();
        return { path: g.dataset.state!, w: r.width, h: r.height, text: g.querySelector('.state-name')?.textContent ?? '' };
      });
    }, inst.name);
    if (drawn === null) throw new Error(`no chart drawn for ${inst.name}`);
    const paths = drawn.map((d) => d.path).sort();
    if (JSON.stringify(paths) !== JSON.stringify(expected)) throw new Error(`${inst.name} draws states [${paths.join(', ')}], its machine has [${expected.join(', ')}]`);
    const bad = drawn.filter((d) => !(d.w > 4 && d.h > 4) || d.text === '');
    if (bad.length > 0) throw new Error(`${inst.name}: states drawn without size or name: ${bad.map((d) => d.path).join(', ')}`);
  }
}

/** What each chart shows as current: instance -> the state highlighted (null when none or several are). */
export async function shownStates(page: Page): Promise<Record<string, string | null>> {
  return page.evaluate(() => {
    const out: Record<string, string | null> = {};
    for (const fig of document.querySelectorAll('figure.chart')) {
      const current = [...fig.querySelectorAll('g.state.current')];
      out[fig.dataset.instance!] = current.length === 1 ? current[0]!.dataset.state! : null;
    }
    return out;
  });
}

/**
 * Move the scrubber to event `i` as a person would (an input event), and wait until the page shows
 * it. Returns how long that took in the page's own clock: from the input to the frame that shows
 * the new instant (the page stamps it), with no test-harness polling in the figure.
 */
export async function scrub(page: Page, i: number, timeoutMs = 5000): Promise<number> {
  if ((await page.getAttribute('body', 'data-index')) === String(i)) return 0;
  const started = await page.evaluate((n) => {
    const s = document.getElementById('scrubber')!;
    s.value = String(n);
    const t = performance.now();
    s.dispatchEvent(new Event('input', { bubbles: true }));
    return t;
  }, i);
  await page.waitForSelector(`body[data-painted-index="${i}"]`, { timeout: timeoutMs });
  return Number(await page.getAttribute('body', 'data-painted-at')) - started;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
