import { assert } from '../../firmware/errors.ts';
import { checkRange, checkWrite, type BlockDevice } from '../../firmware/ports/block-device.ts';
import type { Random } from '../../firmware/ports/random.ts';
import type { HostClock } from '../clock/clock.ts';
import { PowerLossError } from './errors.ts';
import { rejectLater } from './later.ts';
import { checkRatio, type Ratio } from './ratio.ts';
import { ServiceModel, type ServiceTimeConfig } from './service-time.ts';
import { SparseStore } from './sparse-store.ts';
import { InflightWrites } from './torn-writes.ts';
import { WriteCache, type Destage } from './write-cache.ts';

/** Largest sector size accepted (bytes); 512 and 4096 are the usual ones. */
export const SECTOR_BYTES_MAX = 65_536;

export interface MemoryDiskOptions {
  name: string;
  /** Bytes per sector: a power of two from 512 to {@link SECTOR_BYTES_MAX}. Default 512. */
  sectorSize?: number;
  sectorCount: number;
  clock: HostClock;
  /** Service-time model; default: every request takes 0 ms (but still goes through the clock). */
  service?: ServiceTimeConfig;
  /** Volatile write cache size in bytes; 0 (the default) means write-through. */
  writeCacheBytesMax?: number;
  /** At a power cut, each unflushed cached sector is lost with this probability (default 1/1: all). */
  unflushedLoss?: Ratio;
  /**
   * Model torn writes: a power cut leaves in-flight writes partly applied, the sector under the
   * head torn (see {@link InflightWrites}). Costs a copy of the old data per write; write-through
   * only (a cached write is lost or kept whole).
   */
  tornWrites?: boolean;
  /** Draws for power cuts (which cached sectors survive, where a sector tears): the run's seed. */
  random?: Random;
  /** Allocation unit of the sparse store (bytes, a power of two). */
  storeChunkBytes?: number;
  /**
   * Reorder completions (docs/simulator.md 2), as a drive with a command queue does: each write
   * takes a seeded extra delay and lands on the media (or in the cache) when it completes, so
   * writes in flight together, overlapping ones included, land and complete in any order. Needs
   * `random`; not with `tornWrites` (which models the write-through path's order).
   */
  reorder?: boolean;
}

/**
 * The extra delay a reordering disk adds to a write: up to {@link REORDER_SPREAD_SERVICE_TIMES}
 * of its service times (drawn in 1/1024ths), but as if the service time were at least
 * {@link REORDER_SPREAD_MIN_MS}, so that requests with no service time still overtake each other.
 * A drive with a command queue serves what is cheapest next, so a request can wait behind
 * several later ones.
 */
const REORDER_SPREAD_SERVICE_TIMES = 4;
const REORDER_SPREAD_MIN_MS = 0.05;
const REORDER_STEPS = 1024;

/**
 * A sparse in-memory disk (docs/design.md 2.4).
 *
 * Timing: a request's data is applied (write) or captured (read) when it is issued, and its
 * promise settles after its service time through `clock.sleep`, so overlapping requests take
 * effect in issue order and virtual time stays exact. With `reorder`, a write lands when it
 * completes instead, after a seeded extra delay: concurrent writes land in any order.
 *
 * Durability: without a write cache, a write is on the media once issued. With one, a write sits
 * in the cache until flushed or pushed out by newer writes; {@link powerCut} loses what is still
 * there (per `unflushedLoss`). Requests in flight at a power cut reject with
 * {@link PowerLossError}; the disk itself keeps working afterwards, holding what survived.
 *
 * This disk has no faults of its own beyond power cuts: wrap it in a `FaultyDisk` for bad
 * sectors, failure, slowness and bit rot, so that this disk stays the pristine copy.
 */
export class MemoryDisk implements BlockDevice {
  readonly name: string;
  readonly sectorSize: number;
  readonly sectorCount: number;
  private readonly clock: HostClock;
  private readonly store: SparseStore;
  private readonly service: ServiceModel;
  private readonly cache: WriteCache | undefined;
  private readonly inflight: InflightWrites | undefined;
  private readonly unflushedLoss: Ratio;
  private readonly random: Random | undefined;
  private readonly reorder: boolean;
  /** Bumped by every power cut; a request that finds it changed was cut off. */
  private epoch = 0;

  constructor(options: MemoryDiskOptions) {
    const sectorSize = options.sectorSize ?? 512;
    assert(Number.isInteger(sectorSize) && sectorSize >= 512 && sectorSize <= SECTOR_BYTES_MAX && (sectorSize & (sectorSize - 1)) === 0,
      `${options.name}: sectorSize must be a power of two in [512, ${SECTOR_BYTES_MAX}], got ${sectorSize}`);
    assert(Number.isSafeInteger(options.sectorCount) && options.sectorCount >= 1 && Number.isSafeInteger(options.sectorCount * sectorSize),
      `${options.name}: sectorCount must be a positive integer, got ${options.sectorCount}`);
    const cacheBytes = options.writeCacheBytesMax ?? 0;
    assert(!(options.tornWrites === true && cacheBytes > 0), `${options.name}: tornWrites models the write-through path; turn the write cache off`);
    assert(!(options.reorder === true && (options.tornWrites === true || options.random === undefined)),
      `${options.name}: reorder needs a random source and does not go with tornWrites`);
    this.name = options.name;
    this.sectorSize = sectorSize;
    this.sectorCount = options.sectorCount;
    this.clock = options.clock;
    this.store = new SparseStore(sectorSize * options.sectorCount, Math.max(options.storeChunkBytes ?? 65_536, sectorSize));
    this.service = new ServiceModel(options.service ?? {}, options.sectorCount);
    this.cache = cacheBytes > 0 ? new WriteCache(cacheBytes, sectorSize) : undefined;
    this.inflight = options.tornWrites === true ? new InflightWrites() : undefined;
    this.unflushedLoss = options.unflushedLoss ?? { numerator: 1, denominator: 1 };
    checkRatio(this.unflushedLoss, 'unflushedLoss');
    this.random = options.random;
    this.reorder = options.reorder === true;
  }

  /** Whether writes land and complete in a seeded order of their own (see {@link MemoryDiskOptions.reorder}). */
  get reorders(): boolean {
    return this.reorder;
  }

  /** Bytes of memory the contents hold. */
  get allocatedBytes(): number {
    return this.store.allocatedBytes;
  }

  /** Bytes written and not yet flushed (0 without a write cache). */
  get unflushedBytes(): number {
    return this.cache?.bytes ?? 0;
  }

  read(lba: number, count: number): Promise<Uint8Array> {
    try {
      checkRange(this, lba, count);
    } catch (error) {
      return rejectLater(this.clock, error);
    }
    const out = this.peek(lba, count);
    const epoch = this.epoch;
    return this.clock.sleep(this.service.transferMs(lba, count, out.length)).then(() => {
      if (epoch !== this.epoch) throw new PowerLossError(this.name);
      return out;
    });
  }

  write(lba: number, data: Uint8Array): Promise<void> {
    const count = checkWrite(this, lba, data);
    if (typeof count !== 'number') return rejectLater(this.clock, count);
    const ms = this.service.transferMs(lba, count, data.length);
    if (this.reorder) return this.writeReordered(lba, data, ms);
    if (this.cache !== undefined) this.destage(this.cache.put(lba, data));
    else if (this.inflight !== undefined) return this.writeTearable(lba, count, data, ms);
    else this.store.write(lba * this.sectorSize, data);
    const epoch = this.epoch;
    return this.clock.sleep(ms).then(() => {
      if (epoch !== this.epoch) throw new PowerLossError(this.name);
    });
  }

  /**
   * The write path without a promise: completes through a plain clock timer, so in virtual time
   * it costs one timer and no trip through the event loop. Only the write-through path has it;
   * with a write cache or torn writes modelled it defers to {@link write}.
   */
  writeCallback(lba: number, data: Uint8Array, done: (error?: unknown) => void): void {
    if (this.cache !== undefined || this.inflight !== undefined || this.reorder) {
      this.write(lba, data).then(() => done(), done);
      return;
    }
    const count = checkWrite(this, lba, data);
    if (typeof count !== 'number') {
      this.clock.setTimeout(() => done(count), 0);
      return;
    }
    this.store.write(lba * this.sectorSize, data);
    const epoch = this.epoch;
    this.clock.setTimeout(() => done(epoch === this.epoch ? undefined : new PowerLossError(this.name)), this.service.transferMs(lba, count, data.length));
  }

  flush(): Promise<void> {
    if (this.cache !== undefined) this.destage(this.cache.drain());
    const epoch = this.epoch;
    return this.clock.sleep(this.service.flushMs()).then(() => {
      if (epoch !== this.epoch) throw new PowerLossError(this.name);
    });
  }

  /**
   * The power goes off and comes back at this instant: unflushed cached writes are lost (per
   * `unflushedLoss`), in-flight writes tear (with `tornWrites`), in-flight requests reject with
   * {@link PowerLossError}.
   */
  powerCut(): void {
    this.epoch++;
    this.inflight?.cut(this.clock.now(), this.sectorSize, this.random, (offset, bytes) => this.store.write(offset, bytes));
    if (this.cache !== undefined) this.destage(this.cache.cut(this.unflushedLoss, this.random));
    this.service.reset();
  }

  /** The contents a read would return now, synchronously and without service time (for checkers). */
  peek(lba: number, count: number): Uint8Array {
    assert(Number.isSafeInteger(lba) && Number.isSafeInteger(count) && lba >= 0 && count >= 0 && lba + count <= this.sectorCount, 'peek out of range');
    const out = this.store.read(lba * this.sectorSize, count * this.sectorSize);
    this.cache?.overlay(lba, count, out);
    return out;
  }

  /** What the media holds now, without the volatile cache: what a power cut would leave at least. */
  peekDurable(lba: number, count: number): Uint8Array {
    assert(Number.isSafeInteger(lba) && Number.isSafeInteger(count) && lba >= 0 && count >= 0 && lba + count <= this.sectorCount, 'peek out of range');
    return this.store.read(lba * this.sectorSize, count * this.sectorSize);
  }

  /**
   * A write on a reordering disk: it waits its service time plus a seeded extra, then lands (in
   * the cache, or on the media) and completes. A power cut before then loses it whole: it never
   * reached the disk's buffers in a way that survives.
   */
  private async writeReordered(lba: number, data: Uint8Array, ms: number): Promise<void> {
    const epoch = this.epoch;
    const spread = Math.max(ms, REORDER_SPREAD_MIN_MS) * REORDER_SPREAD_SERVICE_TIMES;
    await this.clock.sleep(ms + (spread * this.random!.int(REORDER_STEPS)) / REORDER_STEPS);
    if (epoch !== this.epoch) throw new PowerLossError(this.name);
    if (this.cache !== undefined) this.destage(this.cache.put(lba, data));
    else this.store.write(lba * this.sectorSize, data);
  }

  private async writeTearable(lba: number, count: number, data: Uint8Array, ms: number): Promise<void> {
    const offset = lba * this.sectorSize;
    const token = this.inflight!.begin(lba, count, this.store.read(offset, data.length), this.clock.now(), ms);
    this.store.write(offset, data);
    const epoch = this.epoch;
    await this.clock.sleep(ms);
    if (epoch !== this.epoch) throw new PowerLossError(this.name);
    this.inflight!.end(token);
  }

  private destage(sectors: Destage[]): void {
    for (const { lba, data } of sectors) this.store.write(lba * this.sectorSize, data);
  }
}
