import { MediaError } from '../../../firmware/ports/block-device.ts';
import { rejectLater } from '../later.ts';
import { RaidBase, type RaidOptions } from './array.ts';
import { CHUNK_BYTES_DEFAULT, chunkSectorsOf, splitIntoChunks, type ChunkPiece } from './chunks.ts';
import { isMemberFault } from './members.ts';
import { settleAll } from './settle.ts';
import { emptyCheck, type CheckResult } from './types.ts';

export interface Raid0Options extends RaidOptions {
  chunkBytes?: number;
}

/**
 * RAID-0, striping (md raid0 with equal members): chunk k lives on member k mod n at member chunk
 * floor(k / n). No redundancy: a failed member fails the array, a member's MediaError is the
 * array's (at the array LBA), there is nothing to rebuild and nothing to check.
 * Capacity: n x the smallest member, rounded down to whole chunks.
 */
export class Raid0 extends RaidBase {
  readonly level = 'raid0' as const;
  readonly sectorCount: number;
  readonly chunkSectors: number;
  protected readonly tolerance = 0;
  protected readonly memberSectorsUsed: number;

  constructor(options: Raid0Options) {
    super(options, 2);
    const memberSectors = Math.min(...options.members.map((m) => m.sectorCount));
    this.chunkSectors = chunkSectorsOf(options.name, options.chunkBytes ?? CHUNK_BYTES_DEFAULT, this.sectorSize, memberSectors);
    this.memberSectorsUsed = Math.floor(memberSectors / this.chunkSectors) * this.chunkSectors;
    this.sectorCount = this.memberSectorsUsed * options.members.length;
  }

  /** Where array sector `lba` lives. */
  locate(lba: number): { member: number; memberLba: number } {
    const chunk = Math.floor(lba / this.chunkSectors);
    const n = this.members.count;
    return { member: chunk % n, memberLba: Math.floor(chunk / n) * this.chunkSectors + (lba - chunk * this.chunkSectors) };
  }

  read(lba: number, count: number): Promise<Uint8Array> {
    const refusal = this.refusal(lba, count);
    if (refusal !== null) return rejectLater(this.clock, refusal);
    const pieces = splitIntoChunks(lba, count, this.chunkSectors);
    if (pieces.length === 1) return this.readPiece(pieces[0]!);
    const out = new Uint8Array(count * this.sectorSize);
    return settleAll(pieces.map(async (p) => out.set(await this.readPiece(p), p.at * this.sectorSize))).then(() => out);
  }

  write(lba: number, data: Uint8Array): Promise<void> {
    const refusal = this.refusal(lba, 0, data);
    if (refusal !== null) return rejectLater(this.clock, refusal);
    const ss = this.sectorSize;
    const writes = splitIntoChunks(lba, data.length / ss, this.chunkSectors).map((p) => {
      const { member, memberLba } = this.locate(p.arrayLba);
      return { member, lba: memberLba, data: data.subarray(p.at * ss, (p.at + p.count) * ss) };
    });
    return this.members.writeAll(writes).then(() => this.throwIfFailed());
  }

  protected rebuildRegion(): Promise<void> {
    throw new Error('unreachable: RaidBase refuses to rebuild an array without redundancy');
  }

  protected async checkRegion(): Promise<CheckResult> {
    return emptyCheck();
  }

  private async readPiece(piece: ChunkPiece): Promise<Uint8Array> {
    const { member, memberLba } = this.locate(piece.arrayLba);
    try {
      return await this.members.read(member, memberLba, piece.count);
    } catch (error) {
      if (!isMemberFault(error)) throw error;
      this.throwIfFailed();
      const lba = error instanceof MediaError ? piece.arrayLba + (error.lba - memberLba) : piece.arrayLba;
      throw new MediaError(this.name, lba);
    }
  }
}
