import { MediaError } from '../../firmware/ports/block-device.ts';
import type { VirtualClock } from '../../host/clock/virtual.ts';
import { checkLatest, firstDifference, type Baseline, type VolumeImage } from '../checker/content-checks.ts';
import type { ConsistencyChecker } from '../checker/consistency-checker.ts';
import type { WriteHistory } from '../checker/history.ts';
import type { Violation } from '../checker/violation.ts';
import { chunkSectors, readBoth } from './chunks.ts';
import type { FootprintDevice } from './footprint.ts';
import type { MirrorPair } from './topology.ts';

/** One mirror to check at the end, and what is known about its volumes. */
export interface FinalCheckPair {
  pair: MirrorPair;
  primary: FootprintDevice;
  secondary: FootprintDevice;
  /**
   * Both volumes live in memory and were blank when built: only the blocks some write reached
   * (either footprint) and `extraLbas` can differ from zero, so only those are read.
   */
  sparse: boolean;
  /** Sectors to compare even if no write reached them (where a fault overlay makes reads fail or lie). */
  extraLbas: readonly number[];
  /** What untouched sectors held before the run. */
  baseline: Baseline;
}

/**
 * Once quiescent: each copy equals its source, both hold every write's data, and every sector no
 * write touched still holds what it held before the run. The volumes are read in pieces of at most
 * {@link CONTENT_CHUNK_BYTES_MAX} (so memory stays bounded at any volume size), through the clock;
 * blank memory volumes only where a write went (see {@link FinalCheckPair.sparse}). A piece with an
 * unreadable sector is read again around it: the sector is flagged here only if it held host data
 * (a lost write); otherwise the volume's own check reports it (volume-redundancy). Each kind of
 * violation is reported once per copy: the first found.
 */
export async function finalContentChecks(clock: VirtualClock, checker: ConsistencyChecker, pairs: readonly FinalCheckPair[]): Promise<void> {
  for (const p of pairs) {
    const check = new PairCheck(clock, checker, p);
    for (const [lba, count] of compareRuns(p)) await check.piece(lba, count);
  }
}

/** The final checks of one mirror, piece by piece. */
class PairCheck {
  private readonly history: WriteHistory;
  private readonly nodes: readonly [string, string];
  private mirrorFlagged = false;
  private readonly sideFlagged = [false, false];

  constructor(private readonly clock: VirtualClock, private readonly checker: ConsistencyChecker, private readonly p: FinalCheckPair) {
    this.history = checker.history(p.pair.primary.name, p.pair.lun);
    this.nodes = [p.pair.primary.name, p.pair.secondary.name];
  }

  async piece(lba: number, count: number): Promise<void> {
    if (count <= 0) return;
    const images = await readBoth(this.clock, [this.p.primary, this.p.secondary], lba, count);
    const bad = images.find((img): img is MediaError => img instanceof MediaError && img.lba >= lba && img.lba < lba + count);
    if (bad !== undefined) {
      this.unreadable(images.indexOf(bad), bad);
      await this.piece(lba, bad.lba - lba);
      await this.piece(bad.lba + 1, lba + count - bad.lba - 1);
      return;
    }
    const tMs = this.clock.now();
    const ok = images.map((img, i) => {
      if (img instanceof Uint8Array) return { bytes: img, sectorSize: this.p.primary.sectorSize, firstLba: lba };
      this.flagSide(i, { invariant: 'data-intact', node: this.nodes[i]!, lun: this.p.pair.lun, lba, seq: 0, tMs, message: `LBA ${lba}: the volume could not be read back: ${img.message}` });
      return null;
    });
    this.compare(ok[0]!, ok[1]!, tMs);
    ok.forEach((image, i) => {
      if (!image || this.sideFlagged[i]) return;
      const v = checkLatest(this.history, image, { node: this.nodes[i]!, lun: this.p.pair.lun, writer: this.p.pair.primary.id, tMs }, this.p.baseline);
      if (v) this.flagSide(i, v);
    });
  }

  private compare(a: VolumeImage | null, b: VolumeImage | null, tMs: number): void {
    if (!a || !b || this.mirrorFlagged) return;
    const diff = firstDifference(a, b);
    if (diff < 0) return;
    this.mirrorFlagged = true;
    const { pair } = this.p;
    this.checker.report({ invariant: 'mirror-identical', node: pair.secondary.name, lun: pair.lun, lba: diff, seq: 0, tMs, message: `${this.p.secondary.name} differs from ${this.p.primary.name} at LBA ${diff} after the run quiesced` });
  }

  /** An unreadable sector: a lost write if host data should be there; else the volume's check reports it. */
  private unreadable(side: number, e: MediaError): void {
    const tag = this.history.lastTag(e.lba);
    if (tag === 0 || this.history.touchedByFailure(e.lba)) return;
    this.flagSide(side, { invariant: 'data-intact', node: this.nodes[side]!, lun: this.p.pair.lun, lba: e.lba, seq: tag, tMs: this.clock.now(), message: `LBA ${e.lba}: the last write to it (tag ${tag}) cannot be read back: ${e.message}` });
  }

  private flagSide(side: number, v: Violation): void {
    if (this.sideFlagged[side]) return;
    this.sideFlagged[side] = true;
    this.checker.report(v);
  }
}

/**
 * The `[lba, count)` pieces to read, ascending, each at most one content chunk: the whole mirror,
 * or for a sparse pair the footprint blocks of both sides and those holding `extraLbas`, runs of
 * neighbouring blocks merged.
 */
export function compareRuns(p: Pick<FinalCheckPair, 'primary' | 'secondary' | 'sparse' | 'extraLbas'>): [number, number][] {
  const sectors = Math.min(p.primary.sectorCount, p.secondary.sectorCount);
  const step = chunkSectors(p.primary.sectorSize);
  const runs: [number, number][] = [];
  if (!p.sparse) {
    for (let lba = 0; lba < sectors; lba += step) runs.push([lba, Math.min(step, sectors - lba)]);
    return runs;
  }
  const spb = p.primary.blockSectors;
  const blocks = new Set([...p.primary.touchedBlocks(), ...p.secondary.touchedBlocks(), ...p.extraLbas.map((lba) => Math.floor(lba / spb))]);
  for (const b of [...blocks].sort((x, y) => x - y)) {
    const start = b * spb;
    if (start >= sectors) break;
    const end = Math.min(sectors, start + spb);
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === start && last[1] + (end - start) <= step) last[1] += end - start;
    else runs.push([start, end - start]);
  }
  return runs;
}
