import type { BlockDevice } from '../../firmware/ports/block-device.ts';
import type { Random } from '../../firmware/ports/random.ts';
import type { HostClock } from '../../host/clock/clock.ts';
import { drawDiskFaultPlan, type DiskFaultPlan } from '../../host/disks/fault-plan.ts';
import { FaultyDisk } from '../../host/disks/faulty.ts';
import { MemoryDisk } from '../../host/disks/memory.ts';
import { powerCutIfAble } from '../../host/disks/power.ts';
import type { CheckResult, RaidArray } from '../../host/disks/raid/types.ts';
import type { ServiceTimeConfig } from '../../host/disks/service-time.ts';
import { buildVolume, formatVolumeSpec, holdsPriorData, isRealDevice, type Volume, type VolumeSpec } from '../../host/disks/volume-spec.ts';
import type { DiskFaultItem, Side } from '../faults/disk-fault-plan.ts';
import { UsageError } from '../plan-error.ts';
import { FootprintDevice } from './footprint.ts';

export interface VolumeReport {
  name: string;
  layout: string;
  state: 'optimal' | 'degraded' | 'rebuilding' | 'failed';
  /**
   * From the final check (md's mismatch_cnt): mismatches that no injected silent corruption
   * explains (docs/simulator.md 3); 0 for plain disks, and when the check was skipped.
   */
  mismatches: number;
  /** Mismatches the final check found where an injected silent corruption (member, LBA) explains them. */
  mismatchesAttributed: number;
  /** The first few attributed mismatches: the corrupted member slot and its LBA. */
  attributedTo: { member: number; lba: number }[];
  /** Member reads that failed during the final check, repaired or not (0 for plain disks). */
  readErrors: number;
  /** Sectors still unreadable on the volume's live disks after the final check: data at risk or lost. */
  unreadableSectors: number;
  /** The first of them (member slot, member LBA), or null. */
  firstUnreadable: { member: number; lba: number } | null;
  /** Hot spares rebuilt onto. */
  rebuilds: number;
  /** Whether the final check ran (it does not when the run did not quiesce). */
  checked: boolean;
}

/**
 * Hot spares each array has. A member that fails is rebuilt onto the next one; once they are
 * used up, a further failure leaves the array degraded (and the run flags it).
 */
export const HOT_SPARES_PER_VOLUME = 4;
/**
 * Volatile write cache of every memory disk of a side that a `power` fault strikes (docs/simulator.md
 * 4): big enough to hold many writes, so that a cut loses some, small enough to destage others.
 */
export const POWER_CUT_CACHE_BYTES = 1024 * 1024;
/** A hot spare takes over this long after a member is found failed (virtual ms). */
const REBUILD_AFTER_MS = 1;

interface Entry {
  name: string;
  side: Side;
  volume: Volume;
  device: FootprintDevice;
  rebuilding: boolean;
  rebuilds: number;
  rebuildError: string | null;
}

export interface VolumeEnv {
  /** The clock the volumes run on (the run's, or a {@link HandoverClock} that ends on it). */
  clock: HostClock;
  random: Random;
  /** Service-time model of every disk, hot spares included. */
  service: ServiceTimeConfig;
  /** Memory disks (hot spares included) complete writes in a seeded order of their own (docs/simulator.md 2). */
  reorder?: boolean;
  /**
   * Sides whose memory disks get a volatile write cache ({@link POWER_CUT_CACHE_BYTES}) besides
   * those a `--disk-faults power=` item names: the sides a `--faults power=` item crashes
   * (docs/tag-tables.md, "Crash and power cut in the simulator").
   */
  cachedSides?: readonly Side[];
}

/** The volumes of a run by name, and the side whose spec each is built from. */
export function volumeNames(bidirectional: boolean): [string, Side][] {
  const names: [string, Side][] = [['A/lun0', 'source'], ['B/lun0', 'target']];
  if (bidirectional) names.push(['A/lun1', 'source'], ['B/lun1', 'target']);
  return names;
}

/**
 * The spec a LUN's volume is built from: the side's spec, except that an image file can back
 * only one volume, so LUN 1 of a bidirectional run uses the image `PATH.lun1`.
 */
export function lunSpec(spec: VolumeSpec, name: string): VolumeSpec {
  return spec.kind === 'file' && name.endsWith('/lun1') ? { ...spec, path: `${spec.path}.lun1` } : spec;
}

/**
 * A device attached to this machine backs one volume: a serial port or a USB device cannot be
 * opened twice, and LUN 1 of a bidirectional run would need a second one. Refused before anything
 * is opened, saying what would work.
 */
function checkAttachedDevices(specs: Record<Side, VolumeSpec>, bidirectional: boolean): void {
  for (const side of ['source', 'target'] as const) {
    const spec = specs[side];
    if (bidirectional && isRealDevice(spec)) {
      throw new UsageError(`--${side}-volume ${formatVolumeSpec(spec)} is one device, but --bidirectional needs a second volume on that side (LUN 1); run without --bidirectional, or use an emulated kind (usb-emu, mem, raid...) there`);
    }
  }
  const [s, t] = [specs.source, specs.target];
  const same = (s.kind === 'serial-disk' && t.kind === 'serial-disk' && s.path === t.path)
    || (s.kind === 'usb' && t.kind === 'usb' && s.vendorId === t.vendorId && s.productId === t.productId && s.serial === t.serial && s.lun === t.lun);
  if (same) throw new UsageError(`--source-volume and --target-volume both name ${formatVolumeSpec(s)}; a mirror needs two copies on two devices`);
}

/**
 * The volumes of a run: built from the sides' specs (`--source-volume`, `--target-volume`), struck
 * by the disk faults of the plan, and kept redundant the way an array with hot spares is: a member
 * found failed is rebuilt onto a spare while I/O goes on.
 *
 * Disk faults address a member *slot*: `bad`, `corrupt` and `slow` strike the disk in the slot when
 * the run starts; `fail=SIDE:M@T` fails whatever disk is in slot M at time T, so a member that was
 * rebuilt onto a spare can fail again, and two `fail`s of one slot fail the original disk and then
 * its replacement. A spare is a new disk of the same model (size, sector size, service time),
 * neither slow nor faulty. Member failures are timers on the run's clock, so a run never goes idle
 * before they happen.
 */
export class VolumeSet {
  private readonly entries: Entry[] = [];
  private readonly failTimes: { entry: Entry; member: number; atMs: number }[] = [];
  private readonly powerTimes: number[] = [];
  private readonly powerCutSides = new Set<Side>();
  /** Arrays being resynced after a crash's power cut (md after an unclean shutdown). */
  private resyncing = 0;
  private struck = false;

  private constructor(private readonly env: VolumeEnv, private readonly faults: readonly DiskFaultItem[]) {}

  /**
   * Builds every volume and checks the disk fault plan against their members (the faults strike
   * later: {@link strike}). If a volume cannot be built, or the plan does not fit, closes those
   * already open (so their image locks are released) and rethrows.
   */
  static async build(specs: Record<Side, VolumeSpec>, bidirectional: boolean, faults: readonly DiskFaultItem[], env: VolumeEnv): Promise<VolumeSet> {
    checkAttachedDevices(specs, bidirectional);
    const set = new VolumeSet(env, faults);
    try {
      for (const [name, side] of volumeNames(bidirectional)) {
        const overlay = faults.some((f) => f.side === side);
        const cached = faults.some((f) => f.side === side && f.kind === 'power') || env.cachedSides?.includes(side) === true;
        const volume = await buildVolume(lunSpec(specs[side], name), {
          name, clock: env.clock, service: env.service, random: env.random, faultOverlay: overlay, reorder: env.reorder,
          ...(cached ? { writeCacheBytesMax: POWER_CUT_CACHE_BYTES } : {}),
        });
        set.entries.push({ name, side, volume, device: new FootprintDevice(volume.device), rebuilding: false, rebuilds: 0, rebuildError: null });
      }
      for (const f of faults) if (f.kind !== 'power') set.target(f);
    } catch (error) {
      await set.close().catch(() => undefined);
      throw error;
    }
    return set;
  }

  /** The device the controller uses for a volume (`A/lun0`, `B/lun0`, `A/lun1`, `B/lun1`): it records a write footprint. */
  device(name: string): FootprintDevice {
    return this.entry(name).device;
  }

  /** Whether a volume lives in memory (blank when built), not in an image file or on a real device. */
  memoryBacked(name: string): boolean {
    return !holdsPriorData(this.entry(name).volume.spec);
  }

  /**
   * What the report must say about the volumes: a volume on a real device (a serial line, USB)
   * takes real I/O whose timing and faults no seed controls, so the run is not byte-reproducible.
   */
  get notes(): string[] {
    const real = this.entries.filter((e) => isRealDevice(e.volume.spec)).map((e) => `${e.name} (${formatVolumeSpec(e.volume.spec)})`);
    if (real.length === 0) return [];
    return [`volumes on real devices: ${real.join(', ')}; their I/O is real, so this run is not byte-reproducible: the same seed replays the same workload and link faults, but the device's timing, retries and errors may differ (traceHash too)`];
  }

  /** Every volume name, in build order. */
  get names(): string[] {
    return this.entries.map((e) => e.name);
  }

  /** When the plan's last member failure happens (the fault phase lasts at least that long). */
  get timedFaultsEndMs(): number {
    return Math.max(this.failTimes.reduce((m, f) => Math.max(m, f.atMs), 0), ...this.powerTimes);
  }

  /** Sides whose disks have lost power so far (a `power` fault struck). */
  get powerCuts(): Side[] {
    return [...this.powerCutSides];
  }

  /**
   * Called as the run goes, like md's monitor: a member that died is marked failed even if no I/O
   * has touched it since, and a failed member is rebuilt onto a hot spare while spares last.
   */
  supervise(): void {
    for (const e of this.entries) {
      const array = e.volume.array;
      if (!array || e.rebuilding || array.state === 'failed') continue;
      for (let i = 0; i < array.memberCount; i++) {
        const m = array.member(i);
        if (m instanceof FaultyDisk && m.failed && array.memberState(i) === 'active') array.failMember(i);
      }
      const failed = this.rebuildDue(e, array);
      if (failed === undefined) continue;
      e.rebuilding = true;
      this.env.clock.setTimeout(() => this.rebuild(e, array, failed), REBUILD_AFTER_MS);
    }
  }

  /**
   * Some array has work that will happen on its own: a rebuild running, or due (a member failed,
   * noticed or not, and a spare is left). The run is not settled while this holds.
   */
  get pending(): boolean {
    return this.resyncing > 0 || this.entries.some((e) => {
      const array = e.volume.array;
      if (!array || e.rebuilding) return e.rebuilding;
      if (array.state === 'failed') return false;
      if (this.rebuildDue(e, array) !== undefined) return true;
      for (let i = 0; i < array.memberCount; i++) {
        const m = array.member(i);
        if (m instanceof FaultyDisk && m.failed && array.memberState(i) === 'active') return true;
      }
      return false;
    });
  }

  /** Runs md's `check` on every array (when `check`), and reports every volume. */
  async report(drive: <T>(p: Promise<T>) => Promise<T>, check: boolean): Promise<VolumeReport[]> {
    const out: VolumeReport[] = [];
    for (const e of this.entries) {
      const array = e.volume.array;
      const base = { name: e.name, layout: formatVolumeSpec(e.volume.spec), rebuilds: e.rebuilds, checked: check };
      if (!array) {
        const disk = e.volume.disks[0];
        const state = disk instanceof FaultyDisk && disk.failed ? 'failed' : 'optimal';
        out.push({ ...base, state, mismatches: 0, mismatchesAttributed: 0, attributedTo: [], readErrors: 0, ...this.unreadable(e) });
        continue;
      }
      const result = check && array.state !== 'failed' ? await drive(array.check()).catch(() => null) : null;
      const blame = result ? attributeMismatches(result, e.volume.disks) : { unexplained: 0, attributed: 0, attributedTo: [] };
      out.push({
        ...base, state: array.state, mismatches: blame.unexplained, mismatchesAttributed: blame.attributed, attributedTo: blame.attributedTo,
        readErrors: result?.readErrors ?? 0, ...this.unreadable(e),
      });
    }
    return out;
  }

  /**
   * Whether reads show silent corruption (default) or the pristine data under every fault
   * overlay, hot spares included: the content checks read what should be there, the arrays'
   * check what is there (docs/simulator.md 3).
   */
  showCorruption(shown: boolean): void {
    for (const e of this.entries) {
      const disks = new Set<BlockDevice>(e.volume.disks);
      if (e.volume.array) for (let i = 0; i < e.volume.array.memberCount; i++) disks.add(e.volume.array.member(i));
      for (const d of disks) if (d instanceof FaultyDisk) d.showCorruption = shown;
    }
  }

  /** LBAs of a plain volume where the fault overlay makes reads fail or lie (arrays: none; their check covers members). */
  faultSectors(name: string): number[] {
    const e = this.entry(name);
    const disk = e.volume.disks[0];
    if (e.volume.array || !(disk instanceof FaultyDisk)) return [];
    const plan = disk.plan();
    return [...(plan.badSectors ?? []), ...(plan.corruptSectors ?? []).map((c) => c.lba)];
  }

  rebuildErrors(): { name: string; message: string }[] {
    return this.entries.flatMap((e) => (e.rebuildError ? [{ name: e.name, message: e.rebuildError }] : []));
  }

  /** Closes every volume (image files and their locks), even if one fails to close; then throws the first error. */
  async close(): Promise<void> {
    let first: unknown = null;
    for (const e of this.entries.splice(0)) {
      try {
        await e.volume.close();
      } catch (error) {
        first ??= error;
      }
    }
    if (first !== null) throw first;
  }

  private entry(name: string): Entry {
    const e = this.entries.find((x) => x.name === name);
    if (!e) throw new Error(`no volume ${name}`);
    return e;
  }

  /** The volume a fault item strikes (its side's LUN 0), checking that the member exists. */
  private target(f: Exclude<DiskFaultItem, { kind: 'power' }>): Entry {
    const e = this.entries.find((x) => x.side === f.side)!;
    const disks = e.volume.disks;
    if (f.member >= disks.length) {
      throw new UsageError(`--disk-faults: ${f.side} volume ${formatVolumeSpec(e.volume.spec)} has members 0..${disks.length - 1}, not ${f.member}`);
    }
    return e;
  }

  /**
   * The disk fault plan strikes (call once, after the initial synchronisation: a mirror is
   * established on healthy disks): `bad`, `corrupt` and `slow` hit the disk in their slot now;
   * each `fail` is put on the clock for its time.
   */
  strike(): void {
    if (this.struck) return;
    this.struck = true;
    for (const f of this.faults) {
      if (f.kind === 'power') {
        this.powerTimes.push(f.atMs);
        this.env.clock.setTimeout(() => this.powerCut(f.side), Math.max(0, f.atMs - this.env.clock.now()));
        continue;
      }
      const e = this.target(f);
      if (f.kind === 'fail') {
        this.failTimes.push({ entry: e, member: f.member, atMs: f.atMs });
        this.env.clock.setTimeout(() => this.failSlot(e, f.member), Math.max(0, f.atMs - this.env.clock.now()));
        continue;
      }
      const disk = e.volume.disks[f.member] as FaultyDisk;
      disk.apply(this.planFor(f, disk, this.env.random.fork(`disk-faults:${e.name}:${f.member}:${f.kind}`)));
    }
  }

  /**
   * A `power` fault's time has come: every disk of every volume of `side` (hot spares in their
   * slots included) loses power at this instant: what its cache held unflushed is lost, what was
   * in flight fails. The arrays are not stopped: the controller's own restart is not modelled here,
   * so the volumes go on serving I/O, holding what survived.
   */
  /**
   * A crash with `power` struck the side's controller (docs/tag-tables.md, "Crash and power cut in
   * the simulator"): its disks lose power as for a `power` disk fault, and every redundant array of
   * the side is then resynced as md does after an unclean shutdown (`check` with repair: the first
   * readable copy over the others, RAID-5 parity from the data), in the background, so that copies
   * and parity a cut left disagreeing agree again. The arrays themselves are not stopped: their
   * logic is the volume's, not the crashed controller's memory. The run is not settled until the
   * resyncs are done; one that fails is reported with the volume (volume-redundancy).
   */
  crashPowerCut(side: Side): void {
    this.powerCut(side);
    for (const e of this.entries) {
      const array = e.volume.array;
      if (e.side !== side || array === null || array.level === 'raid0' || array.state === 'failed') continue;
      this.resyncing++;
      array.check({ repair: true }).then(
        () => this.resyncing--,
        (err: unknown) => {
          this.resyncing--;
          e.rebuildError = `resync after a power cut: ${err instanceof Error ? err.message : String(err)}`;
        },
      );
    }
  }

  private powerCut(side: Side): void {
    this.powerCutSides.add(side);
    for (const e of this.entries) {
      if (e.side !== side) continue;
      const array = e.volume.array;
      const disks = array ? Array.from({ length: array.memberCount }, (_, i) => array.member(i)) : e.volume.disks;
      for (const d of disks) powerCutIfAble(d);
    }
  }

  private planFor(f: Exclude<DiskFaultItem, { kind: 'fail' | 'power' }>, disk: BlockDevice, random: Random): DiskFaultPlan {
    switch (f.kind) {
      case 'slow': return { slowFactor: f.factor };
      case 'bad': return drawDiskFaultPlan(random, disk, { badSectors: f.count });
      case 'corrupt': return drawDiskFaultPlan(random, disk, { corruptSectors: f.count });
    }
  }

  /** A `fail` item's time has come: the disk now in the slot fails, and the array is told at once. */
  private failSlot(e: Entry, member: number): void {
    const array = e.volume.array;
    const disk = array ? array.member(member) : e.volume.disks[member];
    if (disk instanceof FaultyDisk) disk.fail();
    if (array && array.state !== 'failed' && array.memberState(member) !== 'failed') array.failMember(member);
    this.supervise();
  }

  /** The failed member slot to rebuild now, if the array is degraded and a spare is left. */
  private rebuildDue(e: Entry, array: RaidArray): number | undefined {
    if (array.state !== 'degraded' || e.rebuilds >= HOT_SPARES_PER_VOLUME) return undefined;
    for (let i = 0; i < array.memberCount; i++) if (array.memberState(i) === 'failed') return i;
    return undefined;
  }

  private rebuild(e: Entry, array: RaidArray, member: number): void {
    const old = array.member(member);
    const name = `${e.name}.spare${e.rebuilds}`;
    const clock = this.env.clock;
    const inner = new MemoryDisk({ name, sectorSize: old.sectorSize, sectorCount: old.sectorCount, clock, service: this.env.service, random: this.env.random.fork(`spare:${name}`), reorder: this.env.reorder });
    e.rebuilds++;
    array.rebuild(member, new FaultyDisk({ inner, clock })).then(
      () => (e.rebuilding = false),
      (err: unknown) => {
        e.rebuilding = false;
        e.rebuildError = err instanceof Error ? err.message : String(err);
      },
    );
  }

  /** Bad sectors left on the volume's live disks (a write or a repair remaps them; nothing else does). */
  private unreadable(e: Entry): Pick<VolumeReport, 'unreadableSectors' | 'firstUnreadable'> {
    const array = e.volume.array;
    let count = 0;
    let first: { member: number; lba: number } | null = null;
    const slots = array ? array.memberCount : 1;
    for (let i = 0; i < slots; i++) {
      const disk = array ? array.member(i) : e.volume.disks[0];
      if ((array && array.memberState(i) === 'failed') || !(disk instanceof FaultyDisk) || disk.failed) continue;
      const bad = disk.plan().badSectors ?? [];
      count += bad.length;
      if (bad.length > 0 && first === null) first = { member: i, lba: bad[0]! };
    }
    return { unreadableSectors: count, firstUnreadable: first };
  }
}

/** Attributed mismatches named in a report. */
const ATTRIBUTED_NAMED_MAX = 8;

/**
 * Which of a check's mismatches an injected silent corruption explains (docs/simulator.md 3): a
 * mismatched member sector or row is explained when a member slot compared there had corruption
 * injected at that member LBA (its original disk; a write may have cleared it since, after a
 * parity update had read it). Everything else, and mismatches beyond those the check named, is
 * unexplained: a failure.
 */
export function attributeMismatches(result: CheckResult, disks: readonly BlockDevice[]): { unexplained: number; attributed: number; attributedTo: { member: number; lba: number }[] } {
  let attributed = 0;
  const attributedTo: { member: number; lba: number }[] = [];
  for (const place of result.mismatchPlaces) {
    const member = place.members.find((m) => {
      const d = disks[m];
      return d instanceof FaultyDisk && d.wasCorrupted(place.lba);
    });
    if (member === undefined) continue;
    attributed++;
    if (attributedTo.length < ATTRIBUTED_NAMED_MAX) attributedTo.push({ member, lba: place.lba });
  }
  return { unexplained: result.mismatches - attributed, attributed, attributedTo };
}
