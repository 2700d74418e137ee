import { open } from 'node:fs/promises';
import { ControlRequestError, type HostClient } from './control-client.ts';

/** Bytes asked for in one read at first; halved while the controller says a read that large is too large. */
export const LUN_READ_CHUNK_BYTES_DEFAULT = 256 * 1024;
/** Reads in flight at once: enough to keep a disk and the socket busy, few enough to bound memory (chunks x this). */
export const LUN_READ_IN_FLIGHT_DEFAULT = 4;

export interface LunReadOptions {
  chunkBytes?: number;
  inFlightMax?: number;
}

/** What a whole-LUN read covered. */
export interface LunReadResult {
  sectors: number;
  sectorSize: number;
  bytes: number;
}

/**
 * Reads all of LUN `lun` through a host client (the control socket, docs/controller-process.md 5)
 * and hands each chunk to `sink` with its byte offset in the LUN, in no particular order. Chunks
 * are at most `chunkBytes` (halved, down to one sector, while the controller answers
 * `ML_ERR_READ_TOO_LARGE`: its limit is its own) and at most `inFlightMax` are outstanding, so
 * memory stays bounded whatever the LUN's size. How the rack reads a copy it cannot open as a file
 * (docs/rack.md 7).
 */
export async function readLun(
  client: HostClient, lun: number, sink: (offset: number, data: Uint8Array) => Promise<void> | void, opts: LunReadOptions = {},
): Promise<LunReadResult> {
  const geometry = (await client.luns()).find((l) => l.lun === lun);
  if (!geometry) throw new ControlRequestError('ML_ERR_NO_LUN', `the controller has no LUN ${lun}`);
  const { sectorSize, sectorCount } = geometry;
  let chunkSectors = Math.max(1, Math.floor((opts.chunkBytes ?? LUN_READ_CHUNK_BYTES_DEFAULT) / sectorSize));
  const readSpan = async (lba: number, count: number): Promise<void> => {
    let data: Uint8Array;
    try {
      data = await client.read(lun, lba, count);
    } catch (error) {
      if (!(error instanceof ControlRequestError && error.code === 'ML_ERR_READ_TOO_LARGE' && count > 1)) throw error;
      chunkSectors = Math.min(chunkSectors, Math.floor(count / 2));
      // The size is shared with the other reads in flight, which may shrink it further meanwhile: each step takes it once.
      for (let at = lba; at < lba + count;) {
        const n = Math.min(chunkSectors, lba + count - at);
        await readSpan(at, n);
        at += n;
      }
      return;
    }
    if (data.length !== count * sectorSize) {
      throw new ControlRequestError('ML_ERR_CONTROL_FRAME', `a read of ${count} sectors at LBA ${lba} of LUN ${lun} returned ${data.length} bytes, not ${count * sectorSize}`);
    }
    await sink(lba * sectorSize, data);
  };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < sectorCount) {
      const lba = next;
      const count = Math.min(chunkSectors, sectorCount - lba);
      next += count;
      await readSpan(lba, count);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.inFlightMax ?? LUN_READ_IN_FLIGHT_DEFAULT) }, worker));
  return { sectors: sectorCount, sectorSize, bytes: sectorCount * sectorSize };
}

/** Reads all of LUN `lun` into the file `path` (created, or emptied first): a copy the judge can read as an image. */
export async function readLunToFile(client: HostClient, lun: number, path: string, opts: LunReadOptions = {}): Promise<LunReadResult> {
  const file = await open(path, 'w');
  try {
    return await readLun(client, lun, async (offset, data) => {
      await file.write(data, 0, data.length, offset);
    }, opts);
  } finally {
    await file.close();
  }
}
