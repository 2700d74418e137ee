import { sectorOrigin } from '../workload/data.ts';
import type { WriteHistory } from './history.ts';
import type { Violation } from './violation.ts';

/** A copy of a volume's bytes, taken at one instant. */
export interface VolumeImage {
  bytes: Uint8Array;
  sectorSize: number;
}

/** Whose writes a LUN holds, and where the check is being made. */
export interface ContentContext {
  node: string;
  lun: number;
  /** The controller id written into every sector by the writing host. */
  writer: number;
  tMs: number;
}

type Origin = { index: number } | 'zero' | { problem: string };

/** Which write of `history` the sector `lba` of `image` holds, or what is wrong with it. */
function originOf(history: WriteHistory, image: VolumeImage, lba: number, ctx: ContentContext): Origin {
  const o = sectorOrigin(image.bytes, lba * image.sectorSize, image.sectorSize, lba);
  if (o === null) return 'zero';
  if (o === 'garbage') return { problem: 'holds neither a whole written sector nor zeros (torn, corrupted or misplaced)' };
  if (o.writer !== ctx.writer || o.lun !== ctx.lun) return { problem: `holds a sector written by controller ${o.writer} to LUN ${o.lun}` };
  const index = history.indexOf(o.tag);
  if (index === undefined || !history.coverersOf(lba).includes(index)) return { problem: `holds data of write tag ${o.tag}, which never covered this sector` };
  return { index };
}

/**
 * Write-order fidelity (async mode, DESIGN 2.7): the image must equal the source after some prefix
 * of its writes. Each sector admits the prefixes in which its current content is the last write to
 * it; the image passes if one prefix is admitted by every sector. Returns the first violation.
 */
export function checkPrefix(history: WriteHistory, image: VolumeImage, ctx: ContentContext): Violation | null {
  let lo = -1;
  let hi = Infinity;
  for (const lba of history.writtenSectors()) {
    if (history.touchedByFailure(lba)) continue;
    const origin = originOf(history, image, lba, ctx);
    if (typeof origin === 'object' && 'problem' in origin) return violation('data-intact', ctx, lba, 0, origin.problem);
    const coverers = history.coverersOf(lba);
    const at = origin === 'zero' ? -1 : coverers.indexOf(origin.index);
    const from = origin === 'zero' ? -1 : origin.index;
    const to = (coverers[at + 1] ?? Infinity) - 1;
    lo = Math.max(lo, from);
    hi = Math.min(hi, to);
    if (lo > hi) {
      const held = origin === 'zero' ? 'no write yet' : `write #${from} (tag ${history.tags[from]})`;
      return violation('write-order', ctx, lba, origin === 'zero' ? 0 : history.tags[from]!,
        `the copy is not the source after any prefix of its writes: this sector holds ${held}, which no prefix agreeing with the sectors before it allows`);
    }
  }
  return null;
}

/** At the end, once quiescent: every written sector holds the last write to it (nothing lost). */
export function checkLatest(history: WriteHistory, image: VolumeImage, ctx: ContentContext): Violation | null {
  for (const lba of history.writtenSectors()) {
    if (history.touchedByFailure(lba)) continue;
    const origin = originOf(history, image, lba, ctx);
    if (typeof origin === 'object' && 'problem' in origin) return violation('data-intact', ctx, lba, 0, origin.problem);
    const coverers = history.coverersOf(lba);
    const last = coverers[coverers.length - 1]!;
    if (origin === 'zero' || origin.index !== last) {
      const held = origin === 'zero' ? 'zeros' : `write #${origin.index} (tag ${history.tags[origin.index]})`;
      return violation('data-intact', ctx, lba, history.tags[last]!, `holds ${held}, but the last write to it was #${last} (tag ${history.tags[last]}): an acknowledged write is missing`);
    }
  }
  return null;
}

/** The first sector where two images differ, or -1. */
export function firstDifference(a: VolumeImage, b: VolumeImage): number {
  const x = a.bytes;
  const y = b.bytes;
  if (x.length !== y.length) return 0;
  const n = x.length;
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return Math.floor(i / a.sectorSize);
  return -1;
}

function violation(invariant: 'write-order' | 'data-intact', ctx: ContentContext, lba: number, seq: number, message: string): Violation {
  return { invariant, node: ctx.node, lun: ctx.lun, lba, seq, tMs: ctx.tMs, message: `LBA ${lba} ${message}` };
}
