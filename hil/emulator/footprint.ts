import type { BlockDevice } from '../../firmware/ports/block-device.ts';

/**
 * Granularity of a write footprint, in bytes: 64 KiB, the memory disk's allocation unit. A
 * footprint of N distinct blocks costs one Set entry each, so a sparse terabyte volume written in
 * a few thousand places costs a few thousand entries.
 */
export const FOOTPRINT_BLOCK_BYTES = 64 * 1024;

/**
 * A volume as the controller sees it, recording which blocks ({@link FOOTPRINT_BLOCK_BYTES}) any
 * write ever reached, whoever issued it (the host's local write, a mirrored write applied at the
 * target, a firmware bug writing to the wrong place). The final content checks use it to skip
 * the blocks of a blank (memory-backed) volume that nothing wrote: those still hold zeros on
 * both sides, so reading a terabyte of them back would prove nothing.
 *
 * A write is recorded when it is issued, before the device has it (a failed or torn write may
 * still have landed). Everything else passes straight through; the callback write path is kept
 * when the device has one (it is the hot path), without a closure per write.
 */
export class FootprintDevice implements BlockDevice {
  readonly name: string;
  readonly sectorSize: number;
  readonly sectorCount: number;
  readonly inner: BlockDevice;
  writeCallback?: (lba: number, data: Uint8Array, done: (error?: unknown) => void) => void;
  private readonly blocks = new Set<number>();
  private readonly sectorsPerBlock: number;

  constructor(inner: BlockDevice) {
    this.inner = inner;
    this.name = inner.name;
    this.sectorSize = inner.sectorSize;
    this.sectorCount = inner.sectorCount;
    this.sectorsPerBlock = Math.max(1, Math.floor(FOOTPRINT_BLOCK_BYTES / inner.sectorSize));
    if (typeof inner.writeCallback === 'function') this.writeCallback = FootprintDevice.prototype.writeThrough;
  }

  /** Sectors per footprint block. */
  get blockSectors(): number {
    return this.sectorsPerBlock;
  }

  read(lba: number, count: number): Promise<Uint8Array> {
    return this.inner.read(lba, count);
  }

  write(lba: number, data: Uint8Array): Promise<void> {
    this.mark(lba, data.length);
    return this.inner.write(lba, data);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  /** Indices of the blocks some write reached, ascending. */
  touchedBlocks(): number[] {
    return [...this.blocks].sort((a, b) => a - b);
  }

  private writeThrough(lba: number, data: Uint8Array, done: (error?: unknown) => void): void {
    this.mark(lba, data.length);
    this.inner.writeCallback!(lba, data, done);
  }

  /** Records the blocks of a write, clipped to the device (the device itself rejects a bad request). */
  private mark(lba: number, bytes: number): void {
    if (!Number.isSafeInteger(lba) || lba < 0 || lba >= this.sectorCount || bytes <= 0) return;
    const last = Math.min(this.sectorCount - 1, lba + Math.ceil(bytes / this.sectorSize) - 1);
    const spb = this.sectorsPerBlock;
    for (let b = Math.floor(lba / spb); b <= Math.floor(last / spb); b++) this.blocks.add(b);
  }
}
