import { Buffer } from 'node:buffer';
import type { SectorRange } from '../../firmware/telemetry/events.ts';
import { compareRuns } from './final-checks.ts';
import type { FootprintDevice } from './footprint.ts';
import { instantReader } from './instant-read.ts';

/** A mirror's two copies as the harness holds them, and whether both were blank memory when built. */
export interface Copies {
  primary: FootprintDevice;
  secondary: FootprintDevice;
  sparse: boolean;
}

/**
 * Where two copies differ at this instant (docs/tag-tables.md, "What the checker checks"), as
 * ascending runs of sectors; null when either cannot be read at an instant (an image file, a
 * device on this machine). Read in pieces of one content chunk; blank memory copies only where a
 * write reached either of them (what the final checks read too). Costs one pass over what the
 * copies hold, so it is taken at a resync's start, not per write.
 */
export function copiesDiffer(c: Copies): SectorRange[] | null {
  const readA = instantReader(c.primary);
  const readB = instantReader(c.secondary);
  if (readA === null || readB === null) return null;
  const size = c.primary.sectorSize;
  const out: [number, number][] = [];
  const add = (lba: number): void => {
    const last = out[out.length - 1];
    if (last !== undefined && last[0] + last[1] === lba) last[1]++;
    else out.push([lba, 1]);
  };
  for (const [lba, count] of compareRuns({ ...c, extraLbas: [] })) {
    const a = asBuffer(readA(lba, count));
    const b = asBuffer(readB(lba, count));
    if (a.equals(b)) continue;
    for (let i = 0; i < count; i++) if (a.compare(b, i * size, (i + 1) * size, i * size, (i + 1) * size) !== 0) add(lba + i);
  }
  return out;
}

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
