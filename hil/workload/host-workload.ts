import { assert } from '../../firmware/errors.ts';
import type { StorageController } from '../../firmware/controller/storage-controller.ts';
import type { MirrorlabError } from '../../firmware/errors.ts';
import type { Random } from '../../firmware/ports/random.ts';
import type { HostClock } from '../../host/clock/clock.ts';
import { writeData } from './data.ts';
import { LatencyRecorder, type LatencySummary } from './latency.ts';

export type AccessPattern = 'random' | 'sequential' | 'hot';
export const ACCESS_PATTERNS: readonly AccessPattern[] = ['random', 'sequential', 'hot'];

export interface HostWorkloadSpec {
  /** Writes to issue (the workload ends after this many, or at `durationMs`, whichever is first). */
  writes: number;
  /** Stop issuing after this much virtual time (0: no limit). */
  durationMs: number;
  writeBytes: number;
  queueDepth: number;
  pattern: AccessPattern;
  /**
   * Percentage (0-99) of operations that are reads instead of writes. Reads do not count towards
   * `writes`: the workload ends after that many writes, with reads mixed in.
   */
  readPercent: number;
  /**
   * Think time: after each completion, its lane waits this long before its next request (virtual
   * ms; default 0). With it the host's rate is about `queueDepth / thinkMs` per ms however fast
   * the volume is, so that how much a long fault leaves to resync grows with the fault's length.
   */
  thinkMs?: number;
}

export interface HostWorkloadStats {
  issued: number;
  acknowledged: number;
  errors: number;
  reads: number;
  /** Requests in flight on a controller that crashed: they never completed (neither acknowledged nor failed). */
  interrupted: number;
  writeLatency: LatencySummary;
  readLatency: LatencySummary;
  firstError: string | null;
}

/** `hot`: this share of writes (per mille) goes to the hot tenth of the volume. */
const HOT_WRITES_PER_MILLE = 900;
const HOT_SPAN_PER_MILLE = 100;

/**
 * A host driving one LUN of one controller: a bounded queue of writes (and optionally reads) of a
 * fixed size, placed sequentially, uniformly at random, or mostly in a hot region. Every write
 * carries self-describing data (see data.ts) and its own tag, so checkers can tell where each
 * sector came from. All choices are drawn from `random`; completions are callbacks, so the next
 * request is issued at the exact virtual instant the previous one was acknowledged.
 */
export class HostWorkload {
  private readonly writeLatency = new LatencyRecorder();
  private readonly readLatency = new LatencyRecorder();
  private issuedOps = 0;
  private inFlight = 0;
  private acknowledged = 0;
  private errors = 0;
  private reads = 0;
  private firstError: MirrorlabError | null = null;
  private nextSequential = 0;
  private stopped = false;
  /** Requests lost with a crashed controller, and which start of the controller completions must come from. */
  private interrupted = 0;
  private epoch = 0;
  private down = false;
  private lastCompletion = 0;
  private readonly count: number;
  private readonly slots: number;

  constructor(
    private controller: StorageController,
    private readonly lun: number,
    private readonly geometry: { sectorSize: number; sectorCount: number },
    private readonly spec: HostWorkloadSpec,
    private readonly random: Random,
    private readonly clock: HostClock,
    /** Called just before each write is submitted (the contention model hooks in here). */
    private readonly beforeWrite: ((lba: number, count: number) => void) | null = null,
    private readonly firstTag = 1,
  ) {
    // 100% reads would never reach `writes`: the run options refuse it (READ_PERCENT_MAX).
    assert(Number.isInteger(spec.readPercent) && spec.readPercent >= 0 && spec.readPercent < 100, `readPercent must be 0 to 99, got ${spec.readPercent}`);
    this.count = Math.max(1, Math.floor(spec.writeBytes / geometry.sectorSize));
    this.slots = Math.floor(geometry.sectorCount / this.count);
  }

  start(): void {
    if (this.spec.durationMs > 0) this.clock.setTimeout(() => this.stop(), this.spec.durationMs);
    for (let i = 0; i < this.spec.queueDepth; i++) this.issue();
  }

  /** Issue nothing more; what is in flight completes. */
  stop(): void {
    this.stopped = true;
  }

  /**
   * The controller crashed (docs/tag-tables.md, "Crash and power cut in the simulator"): what this
   * host had in flight on it never completes (a completion a dead controller still reports is
   * ignored), and nothing is issued until {@link restarted}.
   */
  crashed(): void {
    this.epoch++;
    this.interrupted += this.inFlight;
    this.inFlight = 0;
    this.down = true;
  }

  /** The controller started again as `controller`: the host's lanes go on writing to it. */
  restarted(controller: StorageController): void {
    this.controller = controller;
    this.down = false;
    for (let i = 0; i < this.spec.queueDepth; i++) this.issue();
  }

  /** Every request issued has completed and nothing more will be issued. */
  get done(): boolean {
    return this.inFlight === 0 && (this.stopped || this.writesIssued >= this.spec.writes);
  }

  /** Requests in flight now (lanes busy), at most the queue depth. */
  get requestsInFlight(): number {
    return this.inFlight;
  }

  /** Virtual time at which the last request completed. */
  get lastCompletionMs(): number {
    return this.lastCompletion;
  }

  get writesIssued(): number {
    return this.issuedOps - this.reads;
  }

  /** Writes acknowledged so far (cheap, unlike {@link stats}, which summarises latencies). */
  get writesAcknowledged(): number {
    return this.acknowledged;
  }

  /** Latencies of the writes acknowledged so far (for merging several hosts' figures). */
  get writeLatencies(): LatencyRecorder {
    return this.writeLatency;
  }

  stats(): HostWorkloadStats {
    return {
      issued: this.writesIssued, acknowledged: this.acknowledged, errors: this.errors, reads: this.reads, interrupted: this.interrupted,
      writeLatency: this.writeLatency.summary(), readLatency: this.readLatency.summary(),
      firstError: this.firstError ? `${this.firstError.code}: ${this.firstError.message}` : null,
    };
  }

  private issue(): void {
    if (this.stopped || this.down || this.inFlight >= this.spec.queueDepth || this.writesIssued >= this.spec.writes) return;
    this.issuedOps++;
    this.inFlight++;
    const lba = this.place();
    const start = this.clock.now();
    const epoch = this.epoch;
    if (this.spec.readPercent > 0 && this.random.chance(this.spec.readPercent, 100)) {
      this.reads++;
      this.controller.read(this.lun, lba, this.count).then(
        () => epoch === this.epoch && this.completed(this.readLatency, start),
        (err: MirrorlabError) => epoch === this.epoch && this.failed(err),
      );
      return;
    }
    const tag = this.firstTag + this.writesIssued - 1;
    this.beforeWrite?.(lba, this.count);
    const data = writeData(this.controller.id, this.lun, tag, lba, this.count, this.geometry.sectorSize);
    this.controller.submitWrite(this.lun, lba, data, (err) => {
      if (epoch !== this.epoch) return;
      if (err) this.failed(err);
      else {
        this.acknowledged++;
        this.completed(this.writeLatency, start);
      }
    }, tag);
  }

  private completed(latency: LatencyRecorder, start: number): void {
    this.lastCompletion = this.clock.now();
    latency.record(this.lastCompletion - start);
    this.inFlight--;
    this.next();
  }

  private failed(err: MirrorlabError): void {
    this.lastCompletion = this.clock.now();
    this.errors++;
    this.firstError ??= err;
    this.inFlight--;
    this.next();
  }

  /** The lane that just finished issues its next request, at once or after the think time. */
  private next(): void {
    const think = this.spec.thinkMs ?? 0;
    if (think > 0) this.clock.setTimeout(() => this.issue(), think);
    else this.issue();
  }

  private place(): number {
    switch (this.spec.pattern) {
      case 'sequential': {
        const slot = this.nextSequential;
        this.nextSequential = (slot + 1) % this.slots;
        return slot * this.count;
      }
      case 'hot': {
        const hotSlots = Math.max(1, Math.floor((this.slots * HOT_SPAN_PER_MILLE) / 1000));
        const hot = this.random.chance(HOT_WRITES_PER_MILLE, 1000);
        return (hot ? this.random.int(hotSlots) : this.random.int(this.slots)) * this.count;
      }
      case 'random':
        return this.random.int(this.slots) * this.count;
    }
  }
}
