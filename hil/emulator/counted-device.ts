import type { BlockDevice } from '../../firmware/ports/block-device.ts';
import { powerCutIfAble, type PowerCuttable } from '../../host/disks/power.ts';

/** What was asked of a device: writes, the bytes they carried, flushes. */
export interface DeviceCounts {
  writes: number;
  bytesWritten: number;
  flushes: number;
}

/**
 * A device that counts the writes, bytes and flushes asked of it and passes everything through
 * (its callback write path and its power cuts too): what a controller's metadata costs its hosts'
 * writes (docs/tag-tables.md, "Metadata"). The counts are of requests, failed ones included.
 */
export class CountedDevice implements BlockDevice, PowerCuttable {
  readonly name: string;
  readonly sectorSize: number;
  readonly sectorCount: number;
  readonly counts: DeviceCounts = { writes: 0, bytesWritten: 0, flushes: 0 };
  writeCallback?: (lba: number, data: Uint8Array, done: (error?: unknown) => void) => void;

  constructor(readonly inner: BlockDevice) {
    this.name = inner.name;
    this.sectorSize = inner.sectorSize;
    this.sectorCount = inner.sectorCount;
    if (typeof inner.writeCallback === 'function') {
      this.writeCallback = (lba, data, done) => {
        this.count(data);
        inner.writeCallback!(lba, data, done);
      };
    }
  }

  read(lba: number, count: number): Promise<Uint8Array> {
    return this.inner.read(lba, count);
  }

  write(lba: number, data: Uint8Array): Promise<void> {
    this.count(data);
    return this.inner.write(lba, data);
  }

  flush(): Promise<void> {
    this.counts.flushes++;
    return this.inner.flush();
  }

  powerCut(): void {
    powerCutIfAble(this.inner);
  }

  private count(data: Uint8Array): void {
    this.counts.writes++;
    this.counts.bytesWritten += data.length;
  }
}
