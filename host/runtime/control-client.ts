import { createConnection, type Socket } from 'node:net';
import { MirrorlabError } from '../../firmware/errors.ts';
import { writeData } from '../workload/data.ts';
import { ControlFrameReader, ControlProtocolError, controlResponseSchema, encodeControlFrame, type ControlFrame } from './control-protocol.ts';
import type { HostLun } from './front-end.ts';
import type { ControllerStatus } from './status.ts';

/** A request the controller refused or failed: its code (`ML_ERR_NO_LUN`, `ML_ERR_STOPPING`...) and message. */
export class ControlRequestError extends MirrorlabError {}

export const CLIENT_CONNECT_TIMEOUT_MS = 5_000;
export const CLIENT_REQUEST_TIMEOUT_MS = 60_000;
/** Requests one client keeps in flight at most; a caller asking for more waits for room. */
export const CLIENT_REQUESTS_IN_FLIGHT_MAX = 1024;

/**
 * What a workload driver needs of a controller, whatever carries the requests: the control socket
 * ({@link ControlClient}) today, a block protocol (NBD) client later. Drivers are written against
 * this, not against a transport.
 */
export interface HostClient {
  luns(): Promise<HostLun[]>;
  write(lun: number, lba: number, data: Uint8Array, opts?: { tag?: number }): Promise<void>;
  read(lun: number, lba: number, count: number): Promise<Uint8Array>;
  flush(lun?: number): Promise<void>;
  close(): Promise<void>;
}

interface Pending {
  resolve(frame: ControlFrame): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * A client of a controller process's control socket (docs/controller-process.md 5): requests
 * pipelined on one connection, matched to their replies by id. Every reply is validated; a
 * malformed one fails the connection (`ML_ERR_CONTROL_FRAME`), never the caller's process.
 */
export class ControlClient implements HostClient {
  private readonly reader = new ControlFrameReader();
  private readonly pending = new Map<number, Pending>();
  private readonly waiting: (() => void)[] = [];
  private nextId = 1;
  private failure: Error | null = null;
  private lunCache: HostLun[] | null = null;

  private constructor(private readonly socket: Socket, readonly path: string, private readonly requestTimeoutMs: number) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.fail(new ControlRequestError('ML_ERR_CONTROL_CLOSED', `control socket ${path}: ${error.message}`)));
    socket.on('close', () => this.fail(new ControlRequestError('ML_ERR_CONTROL_CLOSED', `the controller closed the control socket ${path}`)));
  }

  /** Connects; nothing listening at `path` is `ML_ERR_CONTROL_UNREACHABLE`, naming the path and the reason. */
  static connect(path: string, opts: { connectTimeoutMs?: number; requestTimeoutMs?: number } = {}): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path });
      const timeoutMs = opts.connectTimeoutMs ?? CLIENT_CONNECT_TIMEOUT_MS;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ControlRequestError('ML_ERR_CONTROL_UNREACHABLE', `no controller answered at ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new ControlClient(socket, path, opts.requestTimeoutMs ?? CLIENT_REQUEST_TIMEOUT_MS));
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const why = error.code === 'ENOENT' ? 'no such socket' : error.code === 'ECONNREFUSED' ? 'nothing listens there (a stale socket?)' : error.message;
        reject(new ControlRequestError('ML_ERR_CONTROL_UNREACHABLE', `no controller at ${path}: ${why}; is mirrorlab controller running with this control path?`));
      });
    });
  }

  async luns(): Promise<HostLun[]> {
    this.lunCache ??= (await this.status()).luns.map((l) => ({ lun: l.lun, sectorSize: l.sectorSize, sectorCount: l.sectorCount, role: l.role }));
    return this.lunCache;
  }

  async write(lun: number, lba: number, data: Uint8Array, opts: { tag?: number } = {}): Promise<void> {
    await this.request({ op: 'write', lun, lba, ...(opts.tag === undefined ? {} : { tag: opts.tag }) }, data);
  }

  /**
   * A write of self-describing data (host/workload/data.ts), as the emulator's host workloads write:
   * every sector names `writer` (the controller's id, by convention), the LUN, `tag` and its LBA,
   * so a checker reading the images back can tell which write put each sector there. The tag
   * travels with the write (telemetry's `host.write` names it).
   */
  async writeDescribed(lun: number, lba: number, count: number, opts: { writer: number; tag: number }): Promise<void> {
    const geometry = (await this.luns()).find((l) => l.lun === lun);
    if (!geometry) throw new ControlRequestError('ML_ERR_NO_LUN', `the controller has no LUN ${lun}`);
    await this.write(lun, lba, writeData(opts.writer, lun, opts.tag, lba, count, geometry.sectorSize), { tag: opts.tag });
  }

  async read(lun: number, lba: number, count: number): Promise<Uint8Array> {
    const { data } = await this.request({ op: 'read', lun, lba, count });
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }

  async flush(lun?: number): Promise<void> {
    await this.request({ op: 'flush', ...(lun === undefined ? {} : { lun }) });
  }

  /** A local write lock on the region, held `holdMs` from its grant; resolves at the grant (control-protocol.ts `lock`). */
  async holdLock(lun: number, lba: number, count: number, holdMs: number): Promise<void> {
    await this.request({ op: 'lock', lun, lba, count, holdMs });
  }

  async status(): Promise<ControllerStatus> {
    const f = await this.request({ op: 'status' });
    return (f.header as { status: ControllerStatus }).status;
  }

  /** Asks the controller to stop cleanly (as SIGTERM does); resolves once it has taken the request. */
  async stop(): Promise<void> {
    await this.request({ op: 'stop' });
  }

  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1_000).unref();
    });
  }

  private async request(header: Record<string, unknown>, data?: Uint8Array): Promise<ControlFrame> {
    while (this.pending.size >= CLIENT_REQUESTS_IN_FLIGHT_MAX && !this.failure) await new Promise<void>((r) => this.waiting.push(r));
    if (this.failure) throw this.failure;
    const id = this.nextId++;
    const frame = await new Promise<ControlFrame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ControlRequestError('ML_ERR_CONTROL_TIMEOUT', `no reply to ${String(header.op)} within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.write(encodeControlFrame({ id, ...header }, data));
    });
    const h = frame.header as { ok: boolean; code?: string; message?: string };
    if (!h.ok) throw new ControlRequestError(h.code ?? 'ML_ERR_CONTROL', h.message ?? 'request failed');
    return frame;
  }

  private onData(chunk: Buffer): void {
    let frames: ControlFrame[];
    try {
      frames = this.reader.push(chunk);
    } catch (error) {
      this.fail(error as ControlProtocolError);
      this.socket.destroy();
      return;
    }
    for (const f of frames) {
      const parsed = controlResponseSchema.safeParse(f.header);
      if (!parsed.success) {
        this.fail(new ControlProtocolError(`the controller sent a reply that is not one: ${parsed.error.issues[0]?.message ?? ''}`));
        this.socket.destroy();
        return;
      }
      const reply = parsed.data;
      if (reply.id === null) {
        // About the connection, not one request (a malformed frame, too many connections): it fails them all.
        const r = reply as { code: string; message: string };
        this.fail(new ControlRequestError(r.code, r.message));
        continue;
      }
      const p = this.pending.get(reply.id);
      if (!p) continue; // timed out already
      this.pending.delete(reply.id);
      clearTimeout(p.timer);
      p.resolve(f);
      this.waiting.shift()?.();
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(this.failure);
    }
    this.pending.clear();
    for (const w of this.waiting.splice(0)) w();
  }
}
