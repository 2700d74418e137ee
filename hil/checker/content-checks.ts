import { Buffer } from 'node:buffer';
import { crc32cRange } from '../../firmware/protocol/crc.ts';
import { sectorOrigin } from '../workload/data.ts';
import type { WriteHistory } from './history.ts';
import type { Violation } from './violation.ts';

/** A copy of some of a volume's sectors, taken at one instant. */
export interface VolumeImage {
  bytes: Uint8Array;
  sectorSize: number;
  /** LBA of the first sector in `bytes` (default 0: the image starts at the volume's start). */
  firstLba?: number;
}

/** Whose writes a LUN holds, and where the check is being made. */
export interface ContentContext {
  node: string;
  lun: number;
  /** The controller id written into every sector by the writing host. */
  writer: number;
  tMs: number;
}

/**
 * What a sector that no write of this run touched must hold: what it held before the run (after
 * the initial synchronisation, both copies hold the source's). `expected(lba)` is the CRC32C of
 * that sector, `null` if it was all zeros, `undefined` if unknown (then it is not checked).
 */
export interface Baseline {
  expected(lba: number): number | null | undefined;
}

/** Every sector was zero before the run (a memory volume, built blank). */
export const BLANK_BASELINE: Baseline = { expected: () => null };

/** CRC32C of one sector of `bytes`: what a {@link Baseline} keeps. */
export function sectorFingerprint(bytes: Uint8Array, offset: number, sectorSize: number): number {
  return crc32cRange(bytes, offset, offset + sectorSize);
}

/** A sector's content: the write (by tag) it holds, zeros, or what is wrong with it. */
type Origin = { tag: number; coverage: 'covered' | 'unknown' } | 'zero' | { problem: string };

const firstLbaOf = (image: VolumeImage): number => image.firstLba ?? 0;
const sectorsOf = (image: VolumeImage): number => Math.floor(image.bytes.length / image.sectorSize);

/** Which write of `history` the sector `lba` of `image` holds, or what is wrong with it. */
function originOf(history: WriteHistory, image: VolumeImage, lba: number, ctx: ContentContext): Origin {
  const o = sectorOrigin(image.bytes, (lba - firstLbaOf(image)) * image.sectorSize, image.sectorSize, lba);
  if (o === null) return 'zero';
  if (o === 'garbage') return { problem: 'holds neither a whole written sector nor zeros (torn, corrupted or misplaced)' };
  if (o.writer !== ctx.writer || o.lun !== ctx.lun) return { problem: `holds a sector written by controller ${o.writer} to LUN ${o.lun}` };
  const coverage = history.coverage(lba, o.tag);
  if (coverage === 'never') return { problem: `holds data of write tag ${o.tag}, which never covered this sector` };
  return { tag: o.tag, coverage };
}

/** `[from, to)`: the positions of `sorted` whose values lie in `[lo, hi)`. */
function span(sorted: readonly number[], lo: number, hi: number): [number, number] {
  const at = (v: number): number => {
    let a = 0;
    let b = sorted.length;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (sorted[m]! < v) a = m + 1;
      else b = m;
    }
    return a;
  };
  return [at(lo), at(hi)];
}

/**
 * Write-order fidelity (async mode, docs/design.md 2.7), fed an image in pieces (ascending, any sizes):
 * the volume must equal the source after some prefix of its writes. Each written sector admits
 * the prefixes in which its current content is the last write to it; the volume passes if one
 * prefix is admitted by every sector. `feed` returns the first violation.
 */
export class PrefixCheck {
  private lo = -1;
  private hi = Infinity;
  private readonly written: readonly number[];

  constructor(private readonly history: WriteHistory, private readonly ctx: ContentContext) {
    this.written = history.writtenSectors();
  }

  feed(image: VolumeImage): Violation | null {
    const { history, ctx } = this;
    const first = firstLbaOf(image);
    const [from, to] = span(this.written, first, first + sectorsOf(image));
    for (let k = from; k < to; k++) {
      const lba = this.written[k]!;
      if (history.touchedByFailure(lba)) continue;
      const origin = originOf(history, image, lba, ctx);
      if (typeof origin === 'object' && 'problem' in origin) return violation('data-intact', ctx, lba, 0, origin.problem);
      // The prefixes (tags P: every write up to P applied) this sector admits: [lo, hi]. Where the
      // history no longer remembers the write's successor here, the window ends before the oldest
      // write it remembers: wider than the truth, never narrower, so no false alarm. A write a crash
      // interrupted may or may not have landed (docs/tag-tables.md, "What the checker checks"): it
      // ends no window, so the window runs to the next write that was not interrupted.
      const lo = origin === 'zero' ? -1 : origin.tag;
      const hi = history.nextSolidCoverer(lba, origin === 'zero' ? 0 : origin.tag) - 1;
      this.lo = Math.max(this.lo, lo);
      this.hi = Math.min(this.hi, hi);
      if (this.lo > this.hi) {
        const held = origin === 'zero' ? 'no write yet' : `write tag ${origin.tag}`;
        return violation('write-order', ctx, lba, origin === 'zero' ? 0 : origin.tag,
          `the copy is not the source after any prefix of its writes: this sector holds ${held}, which no prefix agreeing with the sectors before it allows`);
      }
    }
    return null;
  }
}

/** {@link PrefixCheck} over one whole image. */
export function checkPrefix(history: WriteHistory, image: VolumeImage, ctx: ContentContext): Violation | null {
  return new PrefixCheck(history, ctx).feed(image);
}

/**
 * At the end, once quiescent: every written sector of the image holds the last write to it
 * (nothing lost). With a `baseline`, every other sector of the image is checked too: it must
 * still hold what it held before the run (nothing written where no write went). Returns the
 * first violation.
 */
export function checkLatest(history: WriteHistory, image: VolumeImage, ctx: ContentContext, baseline?: Baseline): Violation | null {
  const first = firstLbaOf(image);
  const end = first + sectorsOf(image);
  if (baseline === undefined) {
    const written = history.writtenSectors();
    const [from, to] = span(written, first, end);
    for (let k = from; k < to; k++) {
      const v = latestAt(history, image, written[k]!, ctx);
      if (v) return v;
    }
    return null;
  }
  // Untouched sectors that were zeros are checked a run at a time by one native comparison (a
  // volume is mostly such sectors, and a byte loop over them was most of a short run's checking).
  let zerosFrom = -1;
  const flushZeros = (to: number): Violation | null => {
    if (zerosFrom < 0) return null;
    const from = zerosFrom;
    zerosFrom = -1;
    if (allZero(image.bytes, (from - first) * image.sectorSize, (to - first) * image.sectorSize)) return null;
    for (let lba = from; lba < to; lba++) {
      const v = untouchedAt(history, image, lba, ctx, baseline);
      if (v) return v;
    }
    return null;
  };
  for (let lba = first; lba < end; lba++) {
    const written = history.written(lba);
    if (!written && baseline.expected(lba) === null) {
      if (zerosFrom < 0) zerosFrom = lba;
      continue;
    }
    const z = flushZeros(lba);
    if (z) return z;
    const v = written ? latestAt(history, image, lba, ctx) : untouchedAt(history, image, lba, ctx, baseline);
    if (v) return v;
  }
  return flushZeros(end);
}

const ZEROS = new Uint8Array(1 << 20);

/** Whether `bytes[from..to)` is all zeros: compared natively against a zero buffer, a MiB at a time. */
function allZero(bytes: Uint8Array, from: number, to: number): boolean {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = from; at < to; at += ZEROS.length) {
    const end = Math.min(to, at + ZEROS.length);
    if (view.compare(ZEROS, 0, end - at, at, end) !== 0) return false;
  }
  return true;
}

/**
 * A written sector at the end must hold the last write to it; while that write was interrupted by
 * a crash (never completed at the host), any older one back to the newest write that was not
 * interrupted will do ("either old or new"). A write missing otherwise was acknowledged: after a
 * crash or power cut of a mirror acknowledged only once the target applied (sync, speculative),
 * that is `acked-durable` (docs/tag-tables.md, "What the checker checks"); else `data-intact`.
 */
function latestAt(history: WriteHistory, image: VolumeImage, lba: number, ctx: ContentContext): Violation | null {
  if (history.touchedByFailure(lba)) return null;
  const origin = originOf(history, image, lba, ctx);
  if (typeof origin === 'object' && 'problem' in origin) return violation('data-intact', ctx, lba, 0, origin.problem);
  const last = history.lastTag(lba);
  if (origin !== 'zero' && origin.tag === last) return null;
  const held = origin === 'zero' ? 0 : origin.tag;
  const solid = history.nextSolidCoverer(lba, held);
  if (history.interruptedWrites > 0 && solid === Infinity) return null;
  const what = origin === 'zero' ? 'zeros' : `write tag ${origin.tag}`;
  if (history.durabilityOwed) {
    const lost = Number.isFinite(solid) ? solid : last;
    return violation('acked-durable', ctx, lba, lost,
      `holds ${what}, but write tag ${lost} was acknowledged to the host after it and never overwritten by a completed write: lost through a crash or power cut (${history.crashes} in this run)`);
  }
  return violation('data-intact', ctx, lba, last, `holds ${what}, but the last write to it was tag ${last}: an acknowledged write is missing`);
}

/** A sector no write of this run covered: it must hold what the baseline says it held before. */
function untouchedAt(history: WriteHistory, image: VolumeImage, lba: number, ctx: ContentContext, baseline: Baseline): Violation | null {
  const expected = baseline.expected(lba);
  if (expected === undefined) return null;
  const offset = (lba - firstLbaOf(image)) * image.sectorSize;
  if (expected === null ? isZero(image.bytes, offset, image.sectorSize) : sectorFingerprint(image.bytes, offset, image.sectorSize) === expected) return null;
  const o = sectorOrigin(image.bytes, offset, image.sectorSize, lba);
  const before = expected === null ? 'zeros' : 'its contents from before the run';
  const now = o === null ? 'zeros' : o === 'garbage' ? 'other data' : `a sector of write tag ${o.tag} (controller ${o.writer}, LUN ${o.lun})`;
  const seq = typeof o === 'object' && o !== null && o.writer === ctx.writer && o.lun === ctx.lun ? o.tag : 0;
  return violation('data-intact', ctx, lba, seq, `no write of this run covered this sector, so it should hold ${before}, but it holds ${now}: something wrote where no write went`);
}

function isZero(bytes: Uint8Array, offset: number, length: number): boolean {
  for (let i = offset; i < offset + length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** The first sector where two images of the same sectors differ (its LBA), or -1. */
export function firstDifference(a: VolumeImage, b: VolumeImage): number {
  const x = a.bytes;
  const y = b.bytes;
  if (x.length !== y.length) return firstLbaOf(a);
  if (Buffer.from(x.buffer, x.byteOffset, x.length).equals(Buffer.from(y.buffer, y.byteOffset, y.length))) return -1;
  const n = x.length;
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return firstLbaOf(a) + Math.floor(i / a.sectorSize);
  return -1;
}

function violation(invariant: 'write-order' | 'data-intact' | 'acked-durable', ctx: ContentContext, lba: number, seq: number, message: string): Violation {
  return { invariant, node: ctx.node, lun: ctx.lun, lba, seq, tMs: ctx.tMs, message: `LBA ${lba} ${message}` };
}
