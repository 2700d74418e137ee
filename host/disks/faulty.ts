import { assert } from '../../firmware/errors.ts';
import { DeviceFailedError, MediaError, checkWrite, type BlockDevice } from '../../firmware/ports/block-device.ts';
import type { HostClock } from '../clock/clock.ts';
import { validateDiskFaultPlan, type DiskFaultPlan, type SectorCorruption } from './fault-plan.ts';
import { rejectLater } from './later.ts';
import { powerCutIfAble, type PowerCuttable } from './power.ts';

export interface FaultyDiskOptions {
  inner: BlockDevice;
  clock: HostClock;
  plan?: DiskFaultPlan;
  /** Default: the inner device's name. */
  name?: string;
}

/**
 * The fault overlay (docs/design.md 2.4), like a device-mapper target (dm-dust, dm-flakey) over a
 * device: bad sectors, whole-disk failure at a time, slowness and bit rot, none of which touch
 * the device underneath. `inner` therefore always holds the pristine contents, what a checker
 * should find there.
 */
export class FaultyDisk implements BlockDevice, PowerCuttable {
  readonly name: string;
  readonly sectorSize: number;
  readonly sectorCount: number;
  /** The pristine device. */
  readonly inner: BlockDevice;
  private readonly clock: HostClock;
  private readonly bad = new Set<number>();
  private readonly corrupt = new Map<number, SectorCorruption>();
  /** Every sector ever given silent corruption, cleared or not: what explains a mismatch (docs/simulator.md 3). */
  private readonly everCorrupt = new Set<number>();
  private failAtMs = Infinity;
  private slowFactor = 1;
  private corruptionShown = true;

  constructor(options: FaultyDiskOptions) {
    this.inner = options.inner;
    this.clock = options.clock;
    this.name = options.name ?? options.inner.name;
    this.sectorSize = options.inner.sectorSize;
    this.sectorCount = options.inner.sectorCount;
    if (options.plan) this.apply(options.plan);
  }

  /** Adds the faults of `plan` to those already set. */
  apply(plan: DiskFaultPlan): void {
    validateDiskFaultPlan(plan, this);
    for (const lba of plan.badSectors ?? []) this.bad.add(lba);
    for (const c of plan.corruptSectors ?? []) {
      this.corrupt.set(c.lba, { ...c });
      this.everCorrupt.add(c.lba);
    }
    if (plan.failAtMs !== undefined) this.failAtMs = Math.min(this.failAtMs, plan.failAtMs);
    if (plan.slowFactor !== undefined) this.slowFactor = plan.slowFactor;
  }

  /** The faults in force now, as data. */
  plan(): DiskFaultPlan {
    const plan: DiskFaultPlan = {};
    if (this.bad.size > 0) plan.badSectors = [...this.bad].sort((a, b) => a - b);
    if (this.corrupt.size > 0) plan.corruptSectors = [...this.corrupt.values()].sort((a, b) => a.lba - b.lba);
    if (this.failAtMs !== Infinity) plan.failAtMs = this.failAtMs;
    if (this.slowFactor !== 1) plan.slowFactor = this.slowFactor;
    return plan;
  }

  /**
   * Whether reads show the silent corruption (default) or the pristine data underneath. A
   * checker turns it off to read what *should* be there, through the same array code; bad
   * sectors and failures still apply (they are not silent).
   */
  set showCorruption(shown: boolean) {
    this.corruptionShown = shown;
  }

  get showCorruption(): boolean {
    return this.corruptionShown;
  }

  /** Whether silent corruption was ever injected at `lba` (a write may have cleared it since). */
  wasCorrupted(lba: number): boolean {
    return this.everCorrupt.has(lba);
  }

  get failed(): boolean {
    return this.clock.now() >= this.failAtMs;
  }

  /** The disk fails now. */
  fail(): void {
    this.failAtMs = Math.min(this.failAtMs, this.clock.now());
  }

  async read(lba: number, count: number): Promise<Uint8Array> {
    if (this.failed) return rejectLater(this.clock, new DeviceFailedError(this.name));
    const data = await this.timed(this.inner.read(lba, count));
    if (this.failed) throw new DeviceFailedError(this.name);
    const bad = this.firstBad(lba, count);
    if (bad !== undefined) throw new MediaError(this.name, bad);
    if (this.corrupt.size > 0 && this.corruptionShown) this.rot(lba, count, data);
    return data;
  }

  async write(lba: number, data: Uint8Array): Promise<void> {
    if (this.failed) return rejectLater(this.clock, new DeviceFailedError(this.name));
    const count = checkWrite(this, lba, data);
    if (typeof count !== 'number') return rejectLater(this.clock, count);
    // A write lands on good media: a bad sector is remapped to a spare, rotted bits are replaced.
    for (let i = 0; i < count && (this.bad.size > 0 || this.corrupt.size > 0); i++) {
      this.bad.delete(lba + i);
      this.corrupt.delete(lba + i);
    }
    await this.timed(this.inner.write(lba, data));
    if (this.failed) throw new DeviceFailedError(this.name);
  }

  async flush(): Promise<void> {
    if (this.failed) return rejectLater(this.clock, new DeviceFailedError(this.name));
    await this.timed(this.inner.flush());
    if (this.failed) throw new DeviceFailedError(this.name);
  }

  powerCut(): void {
    powerCutIfAble(this.inner);
  }

  /** Runs `op`, then stretches its time by the slow factor. */
  private async timed<T>(op: Promise<T>): Promise<T> {
    if (this.slowFactor === 1) return op;
    const start = this.clock.now();
    const result = await op;
    const extraMs = (this.slowFactor - 1) * (this.clock.now() - start);
    if (extraMs > 0) await this.clock.sleep(extraMs);
    return result;
  }

  private firstBad(lba: number, count: number): number | undefined {
    if (this.bad.size === 0) return undefined;
    if (count > this.bad.size) {
      let first: number | undefined;
      for (const b of this.bad) if (b >= lba && b < lba + count && (first === undefined || b < first)) first = b;
      return first;
    }
    for (let i = 0; i < count; i++) if (this.bad.has(lba + i)) return lba + i;
    return undefined;
  }

  private rot(lba: number, count: number, data: Uint8Array): void {
    const flip = (c: SectorCorruption): void => {
      const at = (c.lba - lba) * this.sectorSize + c.byte;
      assert(at < data.length, 'corruption outside the read');
      data[at]! ^= c.mask;
    };
    if (count < this.corrupt.size) {
      for (let i = 0; i < count; i++) {
        const c = this.corrupt.get(lba + i);
        if (c !== undefined) flip(c);
      }
      return;
    }
    for (const c of this.corrupt.values()) if (c.lba >= lba && c.lba < lba + count) flip(c);
  }
}
