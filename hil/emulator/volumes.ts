import type { BlockDevice } from '../../firmware/ports/block-device.ts';
import type { Random } from '../../firmware/ports/random.ts';
import type { HostClock } from '../../host/clock/clock.ts';
import { drawDiskFaultPlan, type DiskFaultPlan } from '../../host/disks/fault-plan.ts';
import { FaultyDisk } from '../../host/disks/faulty.ts';
import { MemoryDisk } from '../../host/disks/memory.ts';
import type { RaidArray } from '../../host/disks/raid/types.ts';
import type { ServiceTimeConfig } from '../../host/disks/service-time.ts';
import { buildVolume, formatVolumeSpec, type Volume, type VolumeSpec } from '../../host/disks/volume-spec.ts';
import type { DiskFaultItem, Side } from '../faults/disk-fault-plan.ts';
import { UsageError } from '../plan-error.ts';

export interface VolumeReport {
  name: string;
  layout: string;
  state: 'optimal' | 'degraded' | 'rebuilding' | 'failed';
  /** From a check (md's mismatch_cnt) run at the end; 0 for plain disks. */
  mismatches: number;
  readErrors: number;
  rebuilds: number;
}

/** A hot spare takes over this long after a member is found failed. */
const REBUILD_AFTER_MS = 1;

interface Entry {
  name: string;
  side: Side;
  volume: Volume;
  rebuilding: boolean;
  rebuilds: number;
  rebuildError: string | null;
}

/**
 * The volumes of a run: built from the sides' specs (`--source-volume`, `--target-volume`), struck
 * by the disk faults of the plan, and kept redundant the way an array with a hot spare is: a
 * member found failed is rebuilt onto a fresh disk while I/O goes on.
 */
export class VolumeSet {
  private readonly entries: Entry[] = [];
  private lastFailMs = 0;

  private constructor(private readonly clock: HostClock) {}

  static async build(
    specs: Record<Side, VolumeSpec>, bidirectional: boolean, faults: readonly DiskFaultItem[],
    env: { clock: HostClock; random: Random; service: ServiceTimeConfig },
  ): Promise<VolumeSet> {
    const set = new VolumeSet(env.clock);
    const names: [string, Side][] = [['A/lun0', 'source'], ['B/lun0', 'target']];
    if (bidirectional) names.push(['A/lun1', 'source'], ['B/lun1', 'target']);
    for (const [name, side] of names) {
      const struck = faults.some((f) => f.side === side);
      const volume = await buildVolume(specs[side], { name, clock: env.clock, service: env.service, random: env.random, faultOverlay: struck });
      set.entries.push({ name, side, volume, rebuilding: false, rebuilds: 0, rebuildError: null });
    }
    set.strike(faults, env.random);
    return set;
  }

  /** The device of a volume by name (`A/lun0`, `B/lun0`, `A/lun1`, `B/lun1`). */
  device(name: string): BlockDevice {
    const e = this.entries.find((x) => x.name === name);
    if (!e) throw new Error(`no volume ${name}`);
    return e.volume.device;
  }

  /** Apply the plan's items to each side's LUN 0 volume, checking they fit its members. */
  private strike(faults: readonly DiskFaultItem[], random: Random): void {
    for (const f of faults) {
      const e = this.entries.find((x) => x.side === f.side)!;
      const disks = e.volume.disks;
      if (f.member >= disks.length) {
        throw new UsageError(`--disk-faults: ${f.side} volume ${formatVolumeSpec(e.volume.spec)} has members 0..${disks.length - 1}, not ${f.member}`);
      }
      const disk = disks[f.member] as FaultyDisk;
      if (f.kind === 'fail') this.lastFailMs = Math.max(this.lastFailMs, f.atMs);
      disk.apply(this.planFor(f, disk, random.fork(`disk-faults:${e.name}:${f.member}:${f.kind}`)));
    }
  }

  private planFor(f: DiskFaultItem, disk: BlockDevice, random: Random): DiskFaultPlan {
    switch (f.kind) {
      case 'fail': return { failAtMs: f.atMs };
      case 'slow': return { slowFactor: f.factor };
      case 'bad': return drawDiskFaultPlan(random, disk, { badSectors: f.count });
      case 'corrupt': return drawDiskFaultPlan(random, disk, { corruptSectors: f.count });
    }
  }

  /** When the last member failure of the plan happens (the fault phase lasts at least that long). */
  get timedFaultsEndMs(): number {
    return this.lastFailMs;
  }

  /**
   * Called as the run goes, like md's monitor: a member that died is marked failed even if no I/O
   * has touched it since, and every failed member is rebuilt onto a hot spare.
   */
  supervise(): void {
    for (const e of this.entries) {
      const array = e.volume.array;
      if (!array || e.rebuilding) continue;
      for (let i = 0; i < array.memberCount; i++) {
        const m = array.member(i);
        if (m instanceof FaultyDisk && m.failed && array.memberState(i) === 'active' && array.state !== 'failed') array.failMember(i);
      }
      if (array.state !== 'degraded') continue;
      const failed = Array.from({ length: array.memberCount }, (_, i) => i).find((i) => array.memberState(i) === 'failed');
      if (failed === undefined) continue;
      e.rebuilding = true;
      this.clock.setTimeout(() => this.rebuild(e, array, failed), REBUILD_AFTER_MS);
    }
  }

  /** Some rebuild is still running. */
  get rebuilding(): boolean {
    return this.entries.some((e) => e.rebuilding);
  }

  private rebuild(e: Entry, array: RaidArray, member: number): void {
    const old = array.member(member);
    const spare = new MemoryDisk({ name: `${e.name}.spare${e.rebuilds}`, sectorSize: old.sectorSize, sectorCount: old.sectorCount, clock: this.clock });
    e.rebuilds++;
    array.rebuild(member, spare).then(
      () => (e.rebuilding = false),
      (err: unknown) => {
        e.rebuilding = false;
        e.rebuildError = err instanceof Error ? err.message : String(err);
      },
    );
  }

  /** Run md's `check` on every array (it changes nothing) and report every volume. */
  async report(drive: <T>(p: Promise<T>) => Promise<T>): Promise<VolumeReport[]> {
    const out: VolumeReport[] = [];
    for (const e of this.entries) {
      const array = e.volume.array;
      const layout = formatVolumeSpec(e.volume.spec);
      if (!array) {
        const disk = e.volume.disks[0];
        const state = disk instanceof FaultyDisk && disk.failed ? 'failed' : 'optimal';
        out.push({ name: e.name, layout, state, mismatches: 0, readErrors: 0, rebuilds: 0 });
        continue;
      }
      const result = array.state === 'failed' ? null : await drive(array.check());
      out.push({ name: e.name, layout, state: array.state, mismatches: result?.mismatches ?? 0, readErrors: result?.readErrors ?? 0, rebuilds: e.rebuilds });
    }
    return out;
  }

  rebuildErrors(): string[] {
    return this.entries.flatMap((e) => (e.rebuildError ? [`${e.name}: ${e.rebuildError}`] : []));
  }

  async close(): Promise<void> {
    for (const e of this.entries) await e.volume.close();
  }
}
