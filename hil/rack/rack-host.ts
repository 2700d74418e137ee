import { setTimeout as sleep } from 'node:timers/promises';
import { MirrorlabError } from '../../firmware/errors.ts';
import { ControlClient, type HostClient } from '../../host/runtime/control-client.ts';
import type { HostLun } from '../../host/runtime/front-end.ts';
import { runClientLoad } from '../workload/client-load.ts';
import { LatencyRecorder } from '../workload/latency.ts';

/** A write whose outcome the host never learned, or learned was a failure: its sectors may hold either version. */
export interface UncertainWrite {
  tag: number;
  lun: number;
  lba: number;
  count: number;
}

export interface RackHostOptions {
  /** The controller's name, and its control socket. */
  node: string;
  controlPath: string;
  /** The writer id in every sector (the controller's id) and the LUN written. */
  writer: number;
  lun: number;
  writeBytes: number;
  queueDepth: number;
  seed: number;
  /** Writes to issue at most (null: until `run`'s `until` says stop). */
  writesMax: number | null;
  /** How long to keep trying to reach the controller (a restart in progress) before giving up (ms). */
  reconnectMs: number;
}

/** Writes per call of the load driver: small, so the duration check and a reconnection come often. */
const BATCH_WRITES_PER_DEPTH = 4;
/** Writes whose outcome was uncertain that are remembered (each one widens what the content check forgives). */
export const UNCERTAIN_WRITES_MAX = 100_000;
/**
 * Acknowledged writes remembered, the newest: a SIGKILL can cut the telemetry of the controller's
 * last event-loop turn, acknowledgements it sent included, and the judge must know those writes.
 */
export const RECENT_ACKED_MAX = 4096;
const RECONNECT_POLL_MS = 100;

/**
 * One host of a rack run (docs/rack.md 1, 3): self-describing writes through a controller's control
 * socket, in batches of the live load driver (`hil/workload/client-load.ts`), until told to stop.
 * Tags increase across batches and across restarts of the controller, as the checker's write
 * history requires. Every write goes through a recording client, which measures latency and keeps
 * the writes whose outcome the host did not learn (in flight when the connection died) or that
 * failed: the judge lets their sectors hold either version. Writes refused because the connection
 * was already known dead never reached the controller and are not kept. When a batch saw the
 * connection die (the controller was killed), the host reconnects, waiting for the restart.
 */
export class RackHost implements HostClient {
  readonly latency = new LatencyRecorder();
  readonly uncertain: UncertainWrite[] = [];
  /** The last {@link RECENT_ACKED_MAX} acknowledged writes (a ring; order does not matter to the judge). */
  readonly recentAcked: UncertainWrite[] = [];
  private recentNext = 0;
  issued = 0;
  acknowledged = 0;
  errors = 0;
  firstError: string | null = null;
  private uncertainDropped = 0;
  private client: ControlClient | null = null;
  private dead = false;
  private nextTag = 1;
  private batch = 0;
  private sectorSize = 512;

  constructor(private readonly o: RackHostOptions) {}

  /** Writes whose outcome was uncertain beyond {@link UNCERTAIN_WRITES_MAX} (then the run says so in a note). */
  get uncertainOverflow(): number {
    return this.uncertainDropped;
  }

  /** Issues batches until `until()` is true (checked between batches) or `writesMax` is reached. */
  async run(until: () => boolean): Promise<void> {
    const batchWrites = this.o.queueDepth * BATCH_WRITES_PER_DEPTH;
    while (!until() && (this.o.writesMax === null || this.issued < this.o.writesMax)) {
      if (this.client === null) await this.connect(until);
      if (this.client === null) return;
      const writes = this.o.writesMax === null ? batchWrites : Math.min(batchWrites, this.o.writesMax - this.issued);
      const firstTag = this.nextTag;
      this.nextTag += writes;
      try {
        await runClientLoad(this, {
          lun: this.o.lun, writes, writeBytes: this.o.writeBytes, queueDepth: this.o.queueDepth, pattern: 'random',
          seed: this.o.seed * 100_003 + this.batch++, writer: this.o.writer, firstTag,
        });
      } catch (error) {
        // Asking for the LUNs failed before any write: the controller went away between batches.
        if (!(error instanceof MirrorlabError && error.code.startsWith('ML_ERR_CONTROL'))) throw error;
        this.dead = true;
      }
      if (this.dead) await this.drop();
    }
  }

  async close(): Promise<void> {
    await this.drop();
  }

  // ---- HostClient, as the load driver sees it ------------------------------------------------------

  async luns(): Promise<HostLun[]> {
    const luns = await this.client!.luns();
    this.sectorSize = luns.find((l) => l.lun === this.o.lun)?.sectorSize ?? this.sectorSize;
    return luns;
  }

  async write(lun: number, lba: number, data: Uint8Array, opts: { tag?: number } = {}): Promise<void> {
    this.issued++;
    if (this.dead || this.client === null) {
      // Never sent: the controller cannot have seen it.
      this.errors++;
      throw new MirrorlabError('ML_ERR_RACK_HOST_DOWN', `${this.o.node}'s control connection is down; write not sent`);
    }
    const t0 = performance.now();
    try {
      await this.client.write(lun, lba, data, opts);
      this.acknowledged++;
      const w = { tag: opts.tag ?? 0, lun, lba, count: data.length / this.sectorSize };
      if (this.recentAcked.length < RECENT_ACKED_MAX) this.recentAcked.push(w);
      else this.recentAcked[this.recentNext] = w;
      this.recentNext = (this.recentNext + 1) % RECENT_ACKED_MAX;
      this.latency.record(performance.now() - t0);
    } catch (error) {
      this.errors++;
      const e = error as MirrorlabError;
      this.firstError ??= `${e.code ?? 'error'}: ${e.message}`;
      if (e.code === 'ML_ERR_CONTROL_CLOSED' || e.code === 'ML_ERR_CONTROL_TIMEOUT') this.dead = true;
      this.remember({ tag: opts.tag ?? 0, lun, lba, count: data.length / this.sectorSize });
      throw error;
    }
  }

  read(lun: number, lba: number, count: number): Promise<Uint8Array> {
    return this.client!.read(lun, lba, count);
  }

  async flush(lun?: number): Promise<void> {
    await this.client!.flush(lun);
  }

  // ---- internals -----------------------------------------------------------------------------------

  private remember(w: UncertainWrite): void {
    if (this.uncertain.length < UNCERTAIN_WRITES_MAX) this.uncertain.push(w);
    else this.uncertainDropped++;
  }

  private async connect(until: () => boolean): Promise<void> {
    const deadline = performance.now() + this.o.reconnectMs;
    let last: unknown = null;
    while (performance.now() < deadline) {
      try {
        this.client = await ControlClient.connect(this.o.controlPath, { connectTimeoutMs: 2_000 });
        this.dead = false;
        return;
      } catch (error) {
        last = error;
        if (until()) return;
        await sleep(RECONNECT_POLL_MS);
      }
    }
    const why = (last as Error)?.message ?? 'no answer';
    throw new MirrorlabError('ML_ERR_RACK_HOST', `${this.o.node}'s host could not reach its controller for ${this.o.reconnectMs} ms: ${why}`);
  }

  private async drop(): Promise<void> {
    const c = this.client;
    this.client = null;
    await c?.close().catch(() => undefined);
  }
}
