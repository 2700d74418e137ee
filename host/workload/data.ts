/**
 * Self-describing write data, in the manner of fio's verify headers: every sector a host writes
 * says who wrote it (controller, LUN, write tag, LBA) and fills the rest with bytes derived from
 * those, so a checker reading a disk back can tell, sector by sector, which write put it there and
 * whether it arrived whole. Nothing of this is visible to the firmware: it is just data.
 *
 * Sector layout (big-endian):
 *   0  4  magic "MLWD"
 *   4  4  writer (controller id)
 *   8  2  lun
 *  10  2  reserved 0
 *  12  4  tag (the write's number at its controller; < 2^32 in any run)
 *  16  8  lba of this sector
 *  24  .. filler: xorshift32 stream seeded from (writer, tag, lba)
 */
import { readU32, writeU32 } from '../../firmware/protocol/layout.ts';

export const SECTOR_MAGIC = 0x4d4c5744;
const HEADER = 24;

export interface SectorOrigin {
  writer: number;
  lun: number;
  tag: number;
  lba: number;
}

function seedOf(writer: number, tag: number, lba: number): number {
  let x = Math.imul(writer ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(tag, 0xc2b2ae35) ^ Math.imul(lba % 0x100000000, 0x27d4eb2f);
  x ^= x >>> 15;
  return x === 0 ? 1 : x;
}

/** Fills `[from, to)` with the filler stream, a big-endian word at a time (as holdsFill reads it). */
function fill(view: DataView, from: number, to: number, seed: number): void {
  let x = seed;
  for (let i = from; i < to; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    view.setUint32(i, x >>> 0);
  }
}

/** Whether `buf[from..to)` holds the filler stream `seed` makes; regenerated as it is compared, nothing allocated. */
function holdsFill(buf: Uint8Array, from: number, to: number, seed: number): boolean {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let x = seed;
  for (let i = from; i < to; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    if (view.getUint32(i) !== x >>> 0) return false;
  }
  return true;
}

/** The data for one host write of `count` sectors at `lba`. */
export function writeData(writer: number, lun: number, tag: number, lba: number, count: number, sectorSize: number): Uint8Array {
  const out = new Uint8Array(count * sectorSize);
  const view = new DataView(out.buffer);
  for (let s = 0; s < count; s++) {
    const p = s * sectorSize;
    const sectorLba = lba + s;
    writeU32(out, p, SECTOR_MAGIC);
    writeU32(out, p + 4, writer);
    out[p + 8] = lun >>> 8;
    out[p + 9] = lun;
    writeU32(out, p + 12, tag);
    writeU32(out, p + 16, Math.floor(sectorLba / 0x100000000));
    writeU32(out, p + 20, sectorLba >>> 0);
    fill(view, p + HEADER, p + sectorSize, seedOf(writer, tag, sectorLba));
  }
  return out;
}

/**
 * Who wrote the sector at `offset` of `buf` (which holds sector `lba`): its origin, `null` for a
 * never-written (all-zero) sector, or `'garbage'` if it is neither a whole written sector nor zeros
 * (torn, corrupted, or written to the wrong place).
 */
export function sectorOrigin(buf: Uint8Array, offset: number, sectorSize: number, lba: number): SectorOrigin | null | 'garbage' {
  if (readU32(buf, offset) !== SECTOR_MAGIC) {
    for (let i = offset; i < offset + sectorSize; i++) if (buf[i] !== 0) return 'garbage';
    return null;
  }
  const writer = readU32(buf, offset + 4);
  const lun = (buf[offset + 8]! << 8) | buf[offset + 9]!;
  const tag = readU32(buf, offset + 12);
  const stored = readU32(buf, offset + 16) * 0x100000000 + readU32(buf, offset + 20);
  if (stored !== lba) return 'garbage';
  if (!holdsFill(buf, offset + HEADER, offset + sectorSize, seedOf(writer, tag, lba))) return 'garbage';
  return { writer, lun, tag, lba };
}
