import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo, Socket } from 'node:net';
import { basename, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { firmwareCharts, type ChartModel } from './charts.ts';
import { VizServerError } from './errors.ts';
import { SERIES_GROUPS } from './fold.ts';
import { CLIENT_MESSAGE_BYTES_MAX, type LiveFeed } from './live.ts';
import { EVENTS_PER_READ_MAX, PLOT_BUCKETS_MAX, type TraceIndex } from './trace-index.ts';

/** The page's own files: index.html, its scripts and styles. */
export const PAGE_DIR = fileURLToPath(new URL('./page/', import.meta.url));
/** The one file served from an installed package: elkjs's layout engine, bundled for the browser. */
const ELK_BUNDLE = createRequire(import.meta.url).resolve('elkjs/lib/elk.bundled.js');
/** The only interface the visualizer listens on (docs/viz.md, "Offline and local"). */
export const VIZ_HOST = '127.0.0.1';
export const DEFAULT_VIZ_PORT = 7357;
/** Events either side of the scrubbed one that `/api/at` returns. */
const AROUND_MAX = 100;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.json': 'application/json',
};

export interface VizServerOptions {
  /** 0 picks a free port. */
  port: number;
  /** Replay mode: an indexed trace. */
  trace?: TraceIndex;
  /** Live mode: a running emulation's feed. */
  live?: LiveFeed;
  /** The charts to draw (default: every machine the firmware exports). */
  charts?: ChartModel[];
  /** Where the page's files come from (default {@link PAGE_DIR}); tests serve a deliberately broken page from elsewhere. */
  pageDir?: string;
}

class BadRequest extends Error {}

/**
 * The visualizer's HTTP and WebSocket server (docs/viz.md): the single page and its assets, a small
 * JSON API over an indexed trace, and the live feed at `/live`. It listens on 127.0.0.1 only,
 * answers only requests addressed to it by that name (so a web page elsewhere cannot reach it
 * through DNS rebinding), and tells the browser, through its content security policy, to load
 * nothing from anywhere else.
 */
export class VizServer {
  private readonly charts: ChartModel[];
  private readonly pageDir: string;
  private readonly pageFiles: Set<string>;
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly http: Server, private readonly opts: VizServerOptions, readonly port: number) {
    this.charts = opts.charts ?? firmwareCharts();
    this.pageDir = opts.pageDir ?? PAGE_DIR;
    this.pageFiles = new Set(readdirSync(this.pageDir).filter((f) => CONTENT_TYPES[extname(f)] !== undefined));
    this.wss = new WebSocketServer({ noServer: true, maxPayload: CLIENT_MESSAGE_BYTES_MAX });
  }

  get url(): string {
    return `http://${VIZ_HOST}:${this.port}/`;
  }

  get mode(): 'live' | 'replay' | 'charts' {
    return this.opts.live ? 'live' : this.opts.trace ? 'replay' : 'charts';
  }

  static async start(opts: VizServerOptions): Promise<VizServer> {
    const http = createServer();
    const port = await new Promise<number>((resolve, reject) => {
      http.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, opts.port)));
      http.listen(opts.port, VIZ_HOST, () => resolve((http.address() as AddressInfo).port));
    });
    const server = new VizServer(http, opts, port);
    http.on('request', (req, res) => void server.handle(req, res));
    http.on('upgrade', (req, socket, head) => server.upgrade(req, socket as Socket, head));
    http.on('connection', (s) => {
      server.sockets.add(s);
      s.on('close', () => server.sockets.delete(s));
    });
    return server;
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  /** Requests must name this server as 127.0.0.1 or localhost on its port. */
  private addressedHere(req: IncomingMessage): boolean {
    const host = req.headers.host ?? '';
    return host === `${VIZ_HOST}:${this.port}` || host === `localhost:${this.port}`;
  }

  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const origin = req.headers.origin;
    const local = origin === undefined || origin === `http://${VIZ_HOST}:${this.port}` || origin === `http://localhost:${this.port}`;
    if (!this.opts.live || new URL(req.url ?? '/', this.url).pathname !== '/live' || !this.addressedHere(req) || !local) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.opts.live!.addClient(ws));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (!this.addressedHere(req)) return send(res, 421, 'text/plain; charset=utf-8', 'this server answers only to 127.0.0.1 and localhost on its own port\n');
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain; charset=utf-8', 'only GET\n');
      const url = new URL(req.url ?? '/', this.url);
      if (url.pathname.startsWith('/api/')) return sendJson(res, 200, this.api(url));
      if (url.pathname === '/' || url.pathname === '/index.html') return await this.file(res, join(this.pageDir, 'index.html'), this.csp());
      if (url.pathname === '/vendor/elk.bundled.js') return await this.file(res, ELK_BUNDLE);
      const name = url.pathname.startsWith('/assets/') ? url.pathname.slice('/assets/'.length) : '';
      if (this.pageFiles.has(name)) return await this.file(res, join(this.pageDir, name));
      return sendJson(res, 404, { error: `no such page or file: ${url.pathname}` });
    } catch (err) {
      if (err instanceof BadRequest) return sendJson(res, 400, { error: err.message });
      sendJson(res, 500, { error: err instanceof Error ? err.message : String(err) });
    }
  }

  private csp(): string {
    return [
      "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
      `connect-src 'self' ws://${VIZ_HOST}:${this.port} ws://localhost:${this.port}`, "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
    ].join('; ');
  }

  private async file(res: ServerResponse, path: string, csp?: string): Promise<void> {
    const body = await readFile(path);
    const headers: Record<string, string> = { 'content-type': CONTENT_TYPES[extname(path)] ?? 'application/octet-stream', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
    if (csp) headers['content-security-policy'] = csp;
    res.writeHead(200, headers).end(body);
  }

  private api(url: URL): unknown {
    const q = url.searchParams;
    if (url.pathname === '/api/info') return this.info();
    const trace = this.opts.trace;
    if (!trace) throw new BadRequest(`${url.pathname} needs a trace: start the visualizer with --trace FILE`);
    if (trace.count === 0) throw new BadRequest('the trace holds no events');
    const last = trace.count - 1;
    switch (url.pathname) {
      case '/api/at': {
        const i = q.has('t') ? trace.indexAtTime(number(q, 't', 0, Number.MAX_VALUE)) : integer(q, 'i', 0, last);
        const around = q.has('around') ? integer(q, 'around', 0, AROUND_MAX) : 20;
        const from = Math.max(0, i - around);
        return { i, t: trace.timeAt(i), states: trace.statesAt(i), series: trace.seriesAt(i), counts: trace.countsAt(i), events: trace.events(from, i - from + around + 1) };
      }
      case '/api/events':
        return { events: trace.events(integer(q, 'from', 0, last), integer(q, 'count', 1, EVENTS_PER_READ_MAX)) };
      case '/api/jump':
        return { index: trace.jump(integer(q, 'from', 0, last), choice(q, 'to', ['state', 'fault', 'violation', 'error']), choice(q, 'dir', ['next', 'prev'])) };
      case '/api/plot': {
        const t0 = number(q, 't0', 0, Number.MAX_VALUE);
        const t1 = number(q, 't1', 0, Number.MAX_VALUE);
        if (t1 < t0) throw new BadRequest(`t1 (${t1}) is before t0 (${t0}); a plot runs from t0 to t1`);
        return trace.plot(t0, t1, integer(q, 'buckets', 1, PLOT_BUCKETS_MAX));
      }
      default:
        throw new BadRequest(`no such API: ${url.pathname}; there are /api/info, /api/at, /api/events, /api/jump and /api/plot`);
    }
  }

  private info(): unknown {
    const base = { mode: this.mode, groups: SERIES_GROUPS };
    const trace = this.opts.trace;
    if (!trace) return { ...base, charts: { models: this.charts, instances: this.mode === 'charts' ? this.charts.map((m) => ({ name: m.name, model: m.name })) : [] } };
    const last = Math.max(0, trace.count - 1);
    return {
      ...base, charts: trace.charts(this.charts),
      trace: {
        file: basename(trace.path), events: trace.count, bytes: trace.bytes, durationMs: trace.durationMs, indexMs: trace.indexMs, run: trace.run,
        violations: trace.violations.slice(0, 1000), violationsTotal: trace.violations.length + trace.violationsDropped,
        truncatedLastLine: trace.truncatedLastLine, faults: trace.faults.length, stateChanges: trace.stateChanges.length,
        partitions: trace.partitions.length, counts: trace.count > 0 ? trace.countsAt(last) : {},
      },
    };
  }
}

function listenError(err: NodeJS.ErrnoException, port: number): Error {
  if (err.code === 'EADDRINUSE') return new VizServerError(`port ${port} on ${VIZ_HOST} is in use; choose another with --port (0 picks a free one)`);
  if (err.code === 'EACCES') return new VizServerError(`port ${port} on ${VIZ_HOST} needs privileges; choose one above 1023 with --port (0 picks a free one)`);
  return err;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }).end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json', JSON.stringify(body));
}

function integer(q: URLSearchParams, name: string, min: number, max: number): number {
  const text = q.get(name);
  const v = Number(text);
  if (text === null || !/^\d+$/.test(text) || !Number.isSafeInteger(v) || v < min || v > max) throw new BadRequest(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return v;
}

function number(q: URLSearchParams, name: string, min: number, max: number): number {
  const text = q.get(name);
  const v = Number(text);
  if (text === null || text.trim() === '' || !Number.isFinite(v) || v < min || v > max) throw new BadRequest(`${name} must be a number from ${min}, got ${JSON.stringify(text)}`);
  return v;
}

function choice<T extends string>(q: URLSearchParams, name: string, allowed: readonly T[]): T {
  const text = q.get(name);
  if (!(allowed as readonly (string | null)[]).includes(text)) throw new BadRequest(`${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(text)}`);
  return text as T;
}
