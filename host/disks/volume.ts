import type { BlockDevice } from '../../firmware/ports/block-device.ts';
import type { Random } from '../../firmware/ports/random.ts';
import type { HostClock } from '../clock/clock.ts';
import { buildAttachedVolume } from './attached-volume.ts';
import { FaultyDisk } from './faulty.ts';
import { FileDisk } from './file.ts';
import { MemoryDisk } from './memory.ts';
import { Raid0 } from './raid/raid0.ts';
import { Raid1 } from './raid/raid1.ts';
import { Raid10 } from './raid/raid10.ts';
import { Raid5 } from './raid/raid5.ts';
import type { RaidArray, RaidLevel } from './raid/types.ts';
import type { ServiceTimeConfig } from './service-time.ts';
import { isAttachedSpec, type VolumeSpec } from './volume-spec.ts';

export interface BuildVolumeOptions {
  /** The volume's name; members are `<name>.m0`, `<name>.m1`, ... */
  name: string;
  clock: HostClock;
  /** Service-time model of each disk. */
  service?: ServiceTimeConfig;
  /** Volatile write cache of each memory disk (default off). */
  writeCacheBytesMax?: number;
  /** The run's random stream, for power-cut draws (forked per disk by name). */
  random?: Random;
  /** Put each disk under a fault overlay (default true), reachable through `Volume.disks`. */
  faultOverlay?: boolean;
  /** Memory disks complete writes in a seeded order of their own (`MemoryDiskOptions.reorder`; needs `random`). */
  reorder?: boolean;
}

/** A built volume: the device to use, and its parts for fault injection and reports. */
export interface Volume {
  spec: VolumeSpec;
  device: BlockDevice;
  /** The array, for RAID specs. */
  array: RaidArray | null;
  /** The disks, in member order (one for mem and file); FaultyDisks when `faultOverlay` is on. */
  disks: BlockDevice[];
  /** Closes file images; nothing to do for memory disks. */
  close(): Promise<void>;
}

/** Builds the device tree a spec describes. */
export async function buildVolume(spec: VolumeSpec, options: BuildVolumeOptions): Promise<Volume> {
  if (isAttachedSpec(spec)) return buildAttachedVolume(spec, options);
  const overlay = (disk: BlockDevice): BlockDevice => (options.faultOverlay === false ? disk : new FaultyDisk({ inner: disk, clock: options.clock }));
  if (spec.kind === 'file') {
    const file = await FileDisk.open({
      path: spec.path, sectorSize: spec.sectorSize, sectorCount: spec.bytes / spec.sectorSize, clock: options.clock, service: options.service, name: options.name,
    });
    const disk = overlay(file);
    return { spec, device: disk, array: null, disks: [disk], close: () => file.close() };
  }
  const memory = (name: string, bytes: number) => overlay(new MemoryDisk({
    name, sectorSize: spec.sectorSize, sectorCount: bytes / spec.sectorSize, clock: options.clock, service: options.service,
    writeCacheBytesMax: options.writeCacheBytesMax, random: options.random?.fork(`disk:${name}`), reorder: options.reorder,
  }));
  if (spec.kind === 'mem') {
    const disk = memory(options.name, spec.bytes);
    return { spec, device: disk, array: null, disks: [disk], close: async () => {} };
  }
  const disks = Array.from({ length: spec.members }, (_, i) => memory(`${options.name}.m${i}`, spec.memberBytes));
  const array = buildArray(spec.kind, disks, { name: options.name, clock: options.clock, chunkBytes: spec.chunkBytes });
  return { spec, device: array, array, disks, close: async () => {} };
}

/**
 * A RAID array of `level` over `members`, whatever they are: memory disks for a spec like
 * `raid5:4x64MiB`, image files for a controller process's array over files. `chunkBytes` is
 * ignored by RAID-1.
 */
export function buildArray(level: RaidLevel, members: BlockDevice[], opts: { name: string; clock: HostClock; chunkBytes: number }): RaidArray {
  const base = { name: opts.name, members, clock: opts.clock };
  return level === 'raid0' ? new Raid0({ ...base, chunkBytes: opts.chunkBytes })
    : level === 'raid1' ? new Raid1(base)
      : level === 'raid5' ? new Raid5({ ...base, chunkBytes: opts.chunkBytes })
        : new Raid10({ ...base, chunkBytes: opts.chunkBytes });
}
