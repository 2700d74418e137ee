import { RaidConfigError } from './errors.ts';

/** The part of a request that falls in one chunk. */
export interface ChunkPiece {
  /** Array chunk number (lba / chunkSectors). */
  chunk: number;
  /** First sector within the chunk. */
  offset: number;
  count: number;
  /** Where the piece starts in the array, and in the request (sectors). */
  arrayLba: number;
  at: number;
}

/** Splits `[lba, lba + count)` at chunk boundaries. */
export function splitIntoChunks(lba: number, count: number, chunkSectors: number): ChunkPiece[] {
  const pieces: ChunkPiece[] = [];
  for (let at = 0; at < count; ) {
    const arrayLba = lba + at;
    const chunk = Math.floor(arrayLba / chunkSectors);
    const offset = arrayLba - chunk * chunkSectors;
    const n = Math.min(chunkSectors - offset, count - at);
    pieces.push({ chunk, offset, count: n, arrayLba, at });
    at += n;
  }
  return pieces;
}

/** Default chunk: 64 KiB (md defaults to 512 KiB; 64 KiB suits the small volumes of simulations). */
export const CHUNK_BYTES_DEFAULT = 64 * 1024;

/** Chunk size in sectors, checked: a power of two, a whole number of sectors, within a member. */
export function chunkSectorsOf(name: string, chunkBytes: number, sectorSize: number, memberSectors: number): number {
  const ok = Number.isSafeInteger(chunkBytes) && chunkBytes >= sectorSize && (chunkBytes & (chunkBytes - 1)) === 0 && chunkBytes % sectorSize === 0;
  if (!ok) {
    throw new RaidConfigError('ML_ERR_RAID_CONFIG', `${name}: chunk size ${chunkBytes} B must be a power of two and at least one ${sectorSize}-byte sector`);
  }
  const chunkSectors = chunkBytes / sectorSize;
  if (chunkSectors > memberSectors) {
    throw new RaidConfigError('ML_ERR_RAID_CONFIG', `${name}: chunk size ${chunkBytes} B is larger than a member (${memberSectors * sectorSize} B)`);
  }
  return chunkSectors;
}
