import { chmod, lstat, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { MirrorlabError } from '../../firmware/errors.ts';
import {
  ControlFrameReader, ControlProtocolError, controlRequestSchema, describeRequestProblem, encodeControlFrame,
  type ControlFrame, type ControlRequest,
} from './control-protocol.ts';
import type { ControlPlane, HostFrontEnd, HostIo } from './front-end.ts';

export class ControlSocketError extends MirrorlabError {}

/** Replies queued to a client that does not read them: past this (bytes), its connection stops being read until they drain. */
export const CONTROL_REPLY_BACKLOG_BYTES_MAX = 32 * 1024 * 1024;
/** How long a live controller at the socket path has to answer before the path counts as stale (ms). */
const PROBE_MS = 1_000;

export interface ControlServerOptions {
  path: string;
  io: HostIo;
  plane: ControlPlane;
  connectionsMax: number;
  /** Requests one connection may have in flight; more are left unread in the socket until one is answered. */
  requestsInFlightMax: number;
  log: Logger;
  /** A frame begun must be complete within this long (ms), or the connection is closed: a slow client holds no slot for ever. */
  frameTimeoutMs: number;
}

interface Connection {
  socket: Socket;
  reader: ControlFrameReader;
  /** Ids in flight, so a reply can be given once only (a request answered at close is not answered again). */
  pending: Set<number>;
  /**
   * Frames read but not yet taken on, because `requestsInFlightMax` are in flight: at most what one
   * read of the socket brought, since the socket is paused while any wait here.
   */
  backlog: ControlFrame[];
  frameTimer: ReturnType<typeof setTimeout> | null;
  paused: boolean;
}

/**
 * The control socket (docs/controller-process.md 5): a unix stream socket, mode 0600, through which
 * host clients write and read LUNs and operators ask for status or a stop. It is one
 * {@link HostFrontEnd}. Whatever a client sends, the controller is never harmed: malformed frames
 * close that connection with one error reply, invalid requests get an error reply, and every
 * buffer, connection count and request count has a bound.
 */
export class ControlServer implements HostFrontEnd {
  readonly kind = 'control-socket';
  readonly address: string;
  private readonly conns = new Set<Connection>();
  private refusing = false;
  private closing: Promise<void> | null = null;
  private requests = 0;

  private constructor(private readonly opts: ControlServerOptions, private readonly server: Server) {
    this.address = opts.path;
  }

  /**
   * Listens at `opts.path`. A socket file there that no controller answers on is stale and is
   * removed; a live one, or a path that is not a socket, is refused (`ML_ERR_CONTROL_IN_USE`,
   * `ML_ERR_CONTROL_PATH`).
   */
  static async listen(opts: ControlServerOptions): Promise<ControlServer> {
    await claimSocketPath(opts.path, opts.log);
    const server = createServer({ allowHalfOpen: false, pauseOnConnect: false });
    const control = new ControlServer(opts, server);
    server.on('connection', (socket) => control.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        reject(new ControlSocketError('ML_ERR_CONTROL_PATH', `control socket ${opts.path} could not be made: ${error.message}`));
      });
      // Born private: the socket is created under this umask, then chmod makes sure of it.
      const umask = process.umask(0o177);
      try {
        server.listen(opts.path, () => resolve());
      } finally {
        process.umask(umask);
      }
    });
    server.on('error', (error) => opts.log.warn({ err: error.message }, 'control socket error'));
    await chmod(opts.path, 0o600);
    return control;
  }

  get inFlight(): number {
    let n = 0;
    for (const c of this.conns) n += c.pending.size;
    return n;
  }

  get connections(): number {
    return this.conns.size;
  }

  /** Requests taken since it started. */
  get requestsServed(): number {
    return this.requests;
  }

  refuseHostIo(): void {
    this.refusing = true;
  }

  close(): Promise<void> {
    this.closing ??= this.shut();
    return this.closing;
  }

  private async shut(): Promise<void> {
    this.refusing = true;
    const stopped = new MirrorlabError('ML_ERR_STOPPED', 'the controller stopped before this request completed');
    for (const c of this.conns) {
      for (const id of c.pending) this.reply(c, { id, ok: false, code: stopped.code, message: stopped.message });
      c.pending.clear();
      c.backlog.length = 0;
      if (c.frameTimer) clearTimeout(c.frameTimer);
      c.socket.end();
    }
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // Clients get a moment to read their last replies; then whatever is left is cut.
    await Promise.race([closed, new Promise((r) => setTimeout(r, 1_000).unref())]);
    for (const c of this.conns) c.socket.destroy();
    await closed;
    await unlink(this.opts.path).catch(() => undefined);
  }

  private accept(socket: Socket): void {
    socket.on('error', () => undefined); // a client vanishing is its own business
    if (this.closing || this.conns.size >= this.opts.connectionsMax) {
      const why = this.closing ? 'the controller is stopping' : `too many control connections (at most ${this.opts.connectionsMax})`;
      socket.end(encodeControlFrame({ id: null, ok: false, code: 'ML_ERR_CONTROL_BUSY', message: why }));
      socket.destroySoon();
      return;
    }
    const c: Connection = { socket, reader: new ControlFrameReader(this.opts.io.transferBytesMax), pending: new Set(), backlog: [], frameTimer: null, paused: false };
    this.conns.add(c);
    socket.on('data', (chunk: Buffer) => this.onData(c, chunk));
    socket.on('drain', () => this.pump(c));
    socket.on('close', () => {
      if (c.frameTimer) clearTimeout(c.frameTimer);
      this.conns.delete(c);
    });
  }

  private onData(c: Connection, chunk: Buffer): void {
    let frames: ControlFrame[];
    try {
      frames = c.reader.push(chunk);
    } catch (error) {
      const e = error instanceof ControlProtocolError ? error : new ControlProtocolError(String(error));
      this.opts.log.debug({ err: e.message }, 'control client sent a malformed frame; closing its connection');
      this.reply(c, { id: null, ok: false, code: e.code, message: e.message });
      c.pending.clear();
      c.socket.end();
      c.socket.destroySoon();
      return;
    }
    c.backlog.push(...frames);
    this.watchPartial(c);
    this.pump(c);
  }

  /** Takes on waiting frames while there is room for requests, then reads on only if there still is. */
  private pump(c: Connection): void {
    while (c.backlog.length > 0 && c.pending.size < this.opts.requestsInFlightMax && !c.socket.destroyed) this.onFrame(c, c.backlog.shift()!);
    this.flow(c);
  }

  /** A frame half sent must be finished within the timeout. */
  private watchPartial(c: Connection): void {
    if (c.reader.buffered === 0) {
      if (c.frameTimer) clearTimeout(c.frameTimer);
      c.frameTimer = null;
      return;
    }
    if (c.frameTimer) return;
    const ms = this.opts.frameTimeoutMs;
    c.frameTimer = setTimeout(() => {
      c.frameTimer = null;
      this.reply(c, { id: null, ok: false, code: 'ML_ERR_CONTROL_TIMEOUT', message: `a frame was begun and not finished within ${ms} ms` });
      c.socket.destroySoon();
    }, ms);
  }

  /** Reads from a connection only while it has room for requests and reads its replies. */
  private flow(c: Connection): void {
    const full = c.backlog.length > 0 || c.pending.size >= this.opts.requestsInFlightMax || c.socket.writableLength > CONTROL_REPLY_BACKLOG_BYTES_MAX;
    if (full && !c.paused) c.socket.pause();
    else if (!full && c.paused) c.socket.resume();
    c.paused = full;
  }

  private onFrame(c: Connection, f: ControlFrame): void {
    this.requests++;
    const parsed = controlRequestSchema.safeParse(f.header);
    const rawId = (f.header as { id?: unknown }).id;
    const id = typeof rawId === 'number' && Number.isSafeInteger(rawId) && rawId >= 0 ? rawId : null;
    if (!parsed.success) return this.reply(c, { id, ok: false, code: 'ML_ERR_CONTROL_REQUEST', message: describeRequestProblem(parsed.error.issues) });
    const req = parsed.data;
    if (c.pending.has(req.id)) return this.reply(c, { id: null, ok: false, code: 'ML_ERR_CONTROL_REQUEST', message: `request id ${req.id} is already in flight on this connection` });
    if ((req.op === 'write') !== (f.data.length > 0)) {
      const message = req.op === 'write' ? 'a write carries its data (a whole number of sectors)' : `${req.op} carries no data`;
      return this.reply(c, { id: req.id, ok: false, code: 'ML_ERR_CONTROL_REQUEST', message });
    }
    c.pending.add(req.id);
    this.serve(req, f.data).then(
      (answer) => this.answer(c, req.id, { id: req.id, ok: true, ...answer.header }, answer.data),
      (error: unknown) => this.answer(c, req.id, errorReply(req.id, error)),
    );
  }

  private async serve(req: ControlRequest, data: Uint8Array): Promise<{ header: object; data?: Uint8Array }> {
    const io = this.opts.io;
    switch (req.op) {
      case 'status':
        return { header: { status: this.opts.plane.status() } };
      case 'stop':
        // Answered first: the stop closes this socket.
        setImmediate(() => this.opts.plane.stop('stop requested on the control socket'));
        return { header: {} };
      default:
        break;
    }
    if (this.refusing) throw new MirrorlabError('ML_ERR_STOPPING', 'the controller is stopping and takes no more host I/O');
    switch (req.op) {
      case 'write':
        // The controller keeps the data until the target confirms it: a copy of its own, not a view into the socket's chunk.
        await io.write(req.lun, req.lba, new Uint8Array(data), req.tag);
        return { header: {} };
      case 'read':
        return { header: {}, data: await io.read(req.lun, req.lba, req.count) };
      case 'flush':
        await io.flush(req.lun);
        return { header: {} };
      case 'lock':
        await io.holdLock(req.lun, req.lba, req.count, req.holdMs);
        return { header: {} };
    }
  }

  private answer(c: Connection, id: number, header: object, data?: Uint8Array): void {
    if (!c.pending.delete(id)) return; // answered already, at close
    this.reply(c, header, data);
    this.pump(c);
  }

  private reply(c: Connection, header: object, data?: Uint8Array): void {
    if (c.socket.destroyed || !c.socket.writable) return;
    c.socket.write(encodeControlFrame(header, data));
  }
}

function errorReply(id: number, error: unknown): object {
  if (error instanceof MirrorlabError) return { id, ok: false, code: error.code, message: error.message };
  // Not a typed error: a bug somewhere below. The client is told; the controller goes on.
  return { id, ok: false, code: 'ML_ERR_INTERNAL', message: error instanceof Error ? error.message : String(error) };
}

/**
 * Makes `path` free for a new control socket: nothing there, or a stale socket (removed). A live
 * controller answering there, or a file that is not a socket, is refused.
 */
export async function claimSocketPath(path: string, log: Logger): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new ControlSocketError('ML_ERR_CONTROL_PATH', `control socket ${path} cannot be used: ${(error as Error).message}`);
  }
  if (!isSocket) throw new ControlSocketError('ML_ERR_CONTROL_PATH', `${path} exists and is not a socket; remove it or give another control path`);
  if (await answers(path)) {
    throw new ControlSocketError('ML_ERR_CONTROL_IN_USE', `a live controller already serves the control socket ${path}; stop it (mirrorlab status --control ${path}) or give another control path`);
  }
  log.info({ path }, 'removing a stale control socket (no controller answers on it)');
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw new ControlSocketError('ML_ERR_CONTROL_PATH', `stale control socket ${path} could not be removed: ${error.message}`);
  });
}

/** Whether something accepts connections at a unix socket path. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ path });
    const done = (live: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(live);
    };
    const timer = setTimeout(() => done(true), PROBE_MS); // accepted by the kernel but slow to answer: still alive
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
