import type { Telemetry } from '../../firmware/ports/telemetry.ts';
import type { SectorRange, TelemetryEvent } from '../../firmware/telemetry/events.ts';
import { SectorSet } from './sector-set.ts';
import type { Violation } from './violation.ts';

/** One mirror as the resync check sees it: its two controllers, its LUN, and its two copies. */
export interface ResyncMirror {
  /** The controller that runs the mirror's resyncs (its source) and the one holding the copy. */
  source: string;
  target: string;
  lun: number;
  sectorSize: number;
  /**
   * The runs of sectors where the two copies differ at this instant, ascending; null when the
   * copies cannot be read at an instant (the resync is then counted unmeasured).
   */
  differing(): SectorRange[] | null;
}

/** Where a mirror's stream is changing sectors right now (the consistency checker knows, from telemetry). */
export interface StreamView {
  streamWrites(node: string, peer: string, lun: number): readonly (readonly [number, number])[];
}

/** The resyncs of a run, all mirrors together (the report's `resync`). */
export interface ResyncTotals {
  /** Resyncs started (`resync.start`), and of them full copies (no trustworthy table). */
  runs: number;
  fullRuns: number;
  /** Resyncs stopped by another fault before they finished. */
  aborted: number;
  /** Bytes the resyncs' confirmed chunks copied. */
  bytesCopied: number;
  /** Bytes that differed between the copies at each resync's start, writes in the stream left out (see {@link ResyncChecker}). */
  bytesDivergent: number;
  /** Tag table entries compared at resync starts (both tables together), and of them held by both sides. */
  entriesCompared: number;
  entriesMatched: number;
  /** Virtual time the finished resyncs took, added up. */
  virtualMs: number;
  /** Resyncs whose divergence could not be measured (a copy that cannot be read at an instant). */
  unmeasured: number;
}

export function emptyResyncTotals(): ResyncTotals {
  return { runs: 0, fullRuns: 0, aborted: 0, bytesCopied: 0, bytesDivergent: 0, entriesCompared: 0, entriesMatched: 0, virtualMs: 0, unmeasured: 0 };
}

/** A resync under way on one mirror. */
interface Run {
  resync: number;
  peer: string;
  sectorSize: number;
  ranges: SectorSet;
  /** What differed at the start and has been neither copied nor overwritten by a host write since; null: not measured. */
  owed: SectorSet | null;
  outsideFlagged: boolean;
}

/**
 * `resync-exact` (docs/tag-tables.md, "What the checker checks"), judged from telemetry and from
 * the two copies, read at the instant each resync starts:
 *
 * - at `resync.start`, the divergence D is every sector where the copies differ, except the
 *   sectors a WRITE entry of the mirror's current stream is changing (in the source's rollback
 *   log: appended and not yet confirmed by the target; the stream delivers them). Every sector of
 *   D must lie within the ranges the resync announced;
 * - every `resync.chunk` must lie within those ranges (the blocks the tag tables named; a `full`
 *   resync names the whole volume);
 * - at `resync.done`, the chunks copied must have covered D, except sectors a host write of the
 *   source's covered since the start (the stream carries those).
 *
 * A resync aborted by another fault owes nothing: the next one measures afresh. A crash of a
 * mirror's source ends its resync the same way. It also adds up the report's `resync` figures.
 */
export class ResyncChecker implements Telemetry {
  readonly enabled = true;
  readonly totals = emptyResyncTotals();
  private readonly runs = new Map<string, Run>();

  constructor(
    private readonly mirrors: readonly ResyncMirror[],
    private readonly streams: StreamView,
    private readonly report: (v: Violation) => void,
  ) {}

  emit(e: TelemetryEvent): void {
    switch (e.kind) {
      case 'resync.start':
        this.start(e);
        return;
      case 'resync.chunk':
        this.chunk(e);
        return;
      case 'resync.done':
        this.done(e);
        return;
      case 'resync.abort':
        if (this.runs.delete(`${e.node}|${e.lun}`)) this.totals.aborted++;
        return;
      case 'host.write':
        this.runs.get(`${e.node}|${e.lun}`)?.owed?.delete(e.lba, e.count);
        return;
      case 'controller.crash':
        for (const key of [...this.runs.keys()]) if (key.startsWith(`${e.node}|`) && this.runs.delete(key)) this.totals.aborted++;
        return;
      default:
        return;
    }
  }

  private start(e: Extract<TelemetryEvent, { kind: 'resync.start' }>): void {
    const t = this.totals;
    t.runs++;
    if (e.full) t.fullRuns++;
    t.entriesCompared += e.entriesCompared;
    t.entriesMatched += e.entriesMatched;
    const mirror = this.mirrors.find((m) => m.source === e.node && m.target === e.peer && m.lun === e.lun);
    const differing = mirror?.differing() ?? null;
    const ranges = SectorSet.of(e.ranges);
    const run: Run = { resync: e.resync, peer: e.peer, sectorSize: mirror?.sectorSize ?? 0, ranges, owed: null, outsideFlagged: false };
    this.runs.set(`${e.node}|${e.lun}`, run);
    if (mirror === undefined || differing === null) {
      t.unmeasured++;
      return;
    }
    const owed = SectorSet.of(differing);
    for (const [lba, count] of this.streams.streamWrites(e.node, e.peer, e.lun)) owed.delete(lba, count);
    run.owed = owed;
    t.bytesDivergent += owed.size * mirror.sectorSize;
    const missing = owed.firstNotIn(ranges);
    if (missing >= 0) {
      this.flag(e, missing, `at the start of resync ${e.resync} to ${e.peer}, LBA ${missing} differs between the copies and no write of the stream is changing it, but the resync does not name it`
        + ` (it names ${ranges.size} sectors in ${ranges.runs} ranges${e.full ? ', a full copy' : ''}; ${owed.size} sectors differ)`);
    }
  }

  private chunk(e: Extract<TelemetryEvent, { kind: 'resync.chunk' }>): void {
    const run = this.runs.get(`${e.node}|${e.lun}`);
    if (run === undefined || run.resync !== e.resync) return;
    this.totals.bytesCopied += e.count * run.sectorSize;
    run.owed?.delete(e.lba, e.count);
    const outside = run.ranges.firstMissing(e.lba, e.count);
    if (outside < 0 || run.outsideFlagged) return;
    run.outsideFlagged = true;
    this.flag(e, outside, `resync ${e.resync} to ${e.peer} copied [${e.lba}, +${e.count}), but LBA ${outside} lies outside the ranges it announced: it copies blocks no unmatched tag entry named`);
  }

  private done(e: Extract<TelemetryEvent, { kind: 'resync.done' }>): void {
    this.totals.virtualMs += e.virtualMs;
    const key = `${e.node}|${e.lun}`;
    const run = this.runs.get(key);
    if (run === undefined || run.resync !== e.resync) return;
    this.runs.delete(key);
    if (run.owed === null || run.owed.runs === 0) return;
    const first = run.owed.ranges()[0]![0];
    this.flag(e, first, `resync ${e.resync} to ${e.peer} finished without copying LBA ${first} (${run.owed.size} sectors in all), which differed between the copies at its start and no host write covered since`);
  }

  private flag(e: { node: string; lun: number; t: number }, lba: number, message: string): void {
    this.report({ invariant: 'resync-exact', node: e.node, lun: e.lun, lba, seq: 0, tMs: e.t, message });
  }
}
