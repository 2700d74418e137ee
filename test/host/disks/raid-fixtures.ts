import type { BlockDevice } from '../../../firmware/ports/block-device.ts';
import type { VirtualClock } from '../../../host/clock/virtual.ts';
import { FaultyDisk } from '../../../host/disks/faulty.ts';
import { MemoryDisk, type MemoryDiskOptions } from '../../../host/disks/memory.ts';
import { Raid0 } from '../../../host/disks/raid/raid0.ts';
import { Raid1 } from '../../../host/disks/raid/raid1.ts';
import { Raid10 } from '../../../host/disks/raid/raid10.ts';
import { Raid5 } from '../../../host/disks/raid/raid5.ts';
import type { RaidArray, RaidLevel, RaidSuperblock } from '../../../host/disks/raid/types.ts';

export interface DiskSet {
  faulty: FaultyDisk[];
  inner: MemoryDisk[];
}

export type DiskExtras = Omit<Partial<MemoryDiskOptions>, 'name' | 'clock'>;

/** `n` memory disks, each under a fault overlay. */
export function makeDisks(clock: VirtualClock, n: number, sectorSize: number, sectorCount: number, extras: DiskExtras = {}, prefix = 'm'): DiskSet {
  const inner = Array.from({ length: n }, (_, i) => new MemoryDisk({ name: `${prefix}${i}`, sectorSize, sectorCount, clock, ...extras }));
  return { inner, faulty: inner.map((d) => new FaultyDisk({ inner: d, clock })) };
}

export const MEMBERS: Record<RaidLevel, number> = { raid0: 2, raid1: 2, raid5: 4, raid10: 4 };

export function makeArray(
  level: RaidLevel, name: string, members: readonly BlockDevice[], clock: VirtualClock, chunkBytes: number, superblock?: RaidSuperblock,
): RaidArray & { locateMember?: unknown } {
  switch (level) {
    case 'raid0': return new Raid0({ name, members, clock, chunkBytes, superblock });
    case 'raid1': return new Raid1({ name, members, clock, superblock });
    case 'raid5': return new Raid5({ name, members, clock, chunkBytes, superblock });
    case 'raid10': return new Raid10({ name, members, clock, chunkBytes, superblock });
  }
}

/** Counts the requests that reach a device. */
export class CountingDisk implements BlockDevice {
  reads = 0;
  writes = 0;
  constructor(readonly inner: BlockDevice) {}
  get name(): string { return this.inner.name; }
  get sectorSize(): number { return this.inner.sectorSize; }
  get sectorCount(): number { return this.inner.sectorCount; }
  read(lba: number, count: number): Promise<Uint8Array> {
    this.reads++;
    return this.inner.read(lba, count);
  }
  write(lba: number, data: Uint8Array): Promise<void> {
    this.writes++;
    return this.inner.write(lba, data);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
}
