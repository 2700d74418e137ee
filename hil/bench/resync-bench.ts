import type { MirrorMode } from '../../firmware/mirror/types.ts';
import type { TelemetryEvent } from '../../firmware/telemetry/events.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from '../emulator/options.ts';
import { runEmulation } from '../emulator/run.ts';
import { parseLinkFaults } from '../faults/link-fault-plan.ts';
import type { TraceEvent, TraceSink } from '../trace/events.ts';

/** The partitions the resync benchmark heals from (virtual ms). */
export const RESYNC_PARTITIONS_MS = [1_000, 10_000, 60_000] as const;
/** When the partition begins, and how long the hosts go on writing after it heals (virtual ms). */
const PARTITION_AT_MS = 200;
const WRITING_AFTER_MS = 300;
/** Block sizes of the dirty bitmaps compared with the tag tables (bytes): DRBD's 4 KiB, md's 64 KiB. */
export const BITMAP_BLOCK_BYTES = [4096, 65_536] as const;
/**
 * Link supervision and suspension in the benchmark: heartbeats every 20 ms, the link declared down
 * after 200 ms of silence, the mirror suspended 300 ms later, probation 400 ms. So even the 1 s
 * partition suspends the mirror (the defaults would take longer than that to suspend it), and
 * every partition ends in a resync from the tag tables.
 */
export const RESYNC_BENCH_SUPERVISION = { heartbeatMs: 20, interruptionMs: 200, probationMs: 400, suspendAfterMs: 300 } as const;
/** The host: 4 KiB random writes, 4 at a time, each lane thinking 20 ms between them: about 200 writes a second. */
export const RESYNC_BENCH_HOST = { writeBytes: 4096, queueDepth: 4, thinkMs: 20, pattern: 'random' as const };
/** Each side's volume: a 64 MiB memory disk of 512-byte sectors. */
const VOLUME_BYTES = 64 * 1024 * 1024;

/** One partition's resync: what the tag tables copied, beside what a full copy and dirty bitmaps would. */
export interface ResyncBenchRow {
  partitionMs: number;
  /** Host writes acknowledged in the run. */
  writes: number;
  /** Bytes that differed between the copies when the resync began (writes in the stream left out). */
  divergentBytes: number;
  /** The tag-table resync: bytes it copied, their ratio to the divergence, and how long it took (measured, virtual ms). */
  tagBytes: number;
  tagRatio: number;
  tagMs: number;
  entriesCompared: number;
  entriesMatched: number;
  /** A full copy: the whole volume. */
  fullBytes: number;
  fullMs: number;
  /** Dirty bitmaps at each of {@link BITMAP_BLOCK_BYTES}: bytes of the blocks set when the resync began. */
  bitmaps: { blockBytes: number; bytes: number; ms: number }[];
}

/** What the metadata costs the hosts' writes in a steady run of one mode (both controllers' metadata devices). */
export interface MetadataCost {
  mode: MirrorMode;
  /** Host writes acknowledged in the run. */
  writes: number;
  /** Metadata bytes written, device writes and flushes, per host write acknowledged. */
  bytesPerWrite: number;
  writesPerWrite: number;
  flushesPerWrite: number;
}

/** The metadata cost rows: 4 KiB random writes, queue depth 32, no faults (the headline's setting), this many writes. */
const METADATA_COST_WRITES = 5_000;

export interface ResyncBenchResult {
  rows: ResyncBenchRow[];
  /** The link's rate (Mbit/s): the full copy's and the bitmaps' times are their bytes at it, no protocol or round trips. */
  linkMbps: number;
  volumeBytes: number;
  supervision: typeof RESYNC_BENCH_SUPERVISION;
  host: typeof RESYNC_BENCH_HOST;
  metadata: MetadataCost[];
}

/**
 * A dirty bitmap as DRBD and md keep one (docs/tag-tables.md, "What the checker checks"): a bit
 * per block of the source's volume, set by every host write to the block and cleared once every
 * write that set it was confirmed by the target (the last point both copies were known equal, per
 * block); writes never sent (a suspended mirror's, or a dropped backlog's) leave their bits set.
 * Fed telemetry; `dirtyBlocks()` is what a bitmap resync would copy now.
 */
export class DirtyBitmap implements TraceSink {
  readonly enabled = true;
  private readonly pending = new Map<number, number>();
  private readonly blocksOfTag = new Map<number, [number, number]>();
  private readonly tagOfSeq = new Map<number, number>();

  constructor(
    private readonly mirror: { source: string; peer: string; lun: number },
    readonly blockBytes: number,
    private readonly sectorSize: number,
  ) {}

  emit(e: TraceEvent): void {
    const t = e as TelemetryEvent;
    if (t.node !== this.mirror.source) return;
    if (t.kind === 'host.write' && t.lun === this.mirror.lun) this.set(t.tag, t.lba, t.count);
    else if (t.kind === 'rollback.append' && t.peer === this.mirror.peer && t.entry === 'write' && t.tag !== 0) this.tagOfSeq.set(t.seq, t.tag);
    else if (t.kind === 'rollback.confirm' && t.peer === this.mirror.peer) this.confirm(t.upTo);
    else if (t.kind === 'stream.start' && t.role === 'source' && t.peer === this.mirror.peer) this.tagOfSeq.clear();
  }

  /** Blocks whose bit is set. */
  dirtyBlocks(): number {
    let n = 0;
    for (const c of this.pending.values()) if (c > 0) n++;
    return n;
  }

  private set(tag: number, lba: number, count: number): void {
    const per = this.blockBytes / this.sectorSize;
    const first = Math.floor(lba / per);
    const last = Math.floor((lba + count - 1) / per);
    this.blocksOfTag.set(tag, [first, last]);
    for (let b = first; b <= last; b++) this.pending.set(b, (this.pending.get(b) ?? 0) + 1);
  }

  private confirm(upTo: number): void {
    for (const [seq, tag] of this.tagOfSeq) {
      if (seq > upTo) continue;
      this.tagOfSeq.delete(seq);
      const blocks = this.blocksOfTag.get(tag);
      if (blocks === undefined) continue;
      this.blocksOfTag.delete(tag);
      for (let b = blocks[0]; b <= blocks[1]; b++) {
        const left = (this.pending.get(b) ?? 1) - 1;
        if (left > 0) this.pending.set(b, left);
        else this.pending.delete(b);
      }
    }
  }
}

/** Takes the bitmaps' counts at the first resync of the mirror once the partition has begun. */
class AtResyncStart implements TraceSink {
  readonly enabled = true;
  counts: number[] | null = null;
  constructor(private readonly bitmaps: readonly DirtyBitmap[], private readonly afterMs: number) {}
  emit(e: TraceEvent): void {
    for (const b of this.bitmaps) b.emit(e);
    const t = e as TelemetryEvent;
    if (t.kind === 'resync.start' && t.node === 'A' && t.t >= this.afterMs && this.counts === null) this.counts = this.bitmaps.map((b) => b.dirtyBlocks());
  }
}

/** Bytes at the link's rate, in ms. */
const atLinkRate = (bytes: number, mbps: number): number => round((bytes * 8) / (mbps * 1000));

/**
 * `bench --only resync` (virtual time, exact): async mirroring of random 4 KiB writes paced at
 * about 200 a second, a silent partition of 1 s, 10 s and 60 s (long enough to suspend the mirror:
 * see {@link RESYNC_BENCH_SUPERVISION}), then the heal and the tag-table resync, with the hosts
 * writing on. Per partition: the bytes that differed when the resync began, what the resync copied
 * and how long it took (measured), and, from the same run, what a full copy and a dirty bitmap at
 * 4 KiB and 64 KiB would have copied, with their times at the link's rate. Then what the metadata
 * costs per host write in each mode ({@link measureMetadataCost}, `metadataWrites` writes each).
 */
export async function measureResync(partitionsMs: readonly number[] = RESYNC_PARTITIONS_MS, metadataWrites = METADATA_COST_WRITES): Promise<ResyncBenchResult> {
  const rows: ResyncBenchRow[] = [];
  const volume = { kind: 'mem' as const, bytes: VOLUME_BYTES, sectorSize: 512 };
  const { suspendAfterMs, ...supervision } = RESYNC_BENCH_SUPERVISION;
  for (const partitionMs of partitionsMs) {
    const bitmaps = BITMAP_BLOCK_BYTES.map((b) => new DirtyBitmap({ source: 'A', peer: 'B', lun: 0 }, b, volume.sectorSize));
    const watch = new AtResyncStart(bitmaps, PARTITION_AT_MS);
    const opts: EmulateOptions = {
      ...DEFAULT_EMULATE, ...RESYNC_BENCH_HOST, ...supervision, mode: 'async', writes: 10_000_000, durationMs: PARTITION_AT_MS + partitionMs + WRITING_AFTER_MS,
      sourceVolume: volume, targetVolume: volume, faults: parseLinkFaults(`partition=${PARTITION_AT_MS}ms+${partitionMs}ms`),
      limits: { suspendAfterMs },
    };
    const r = await runEmulation(opts, { tap: watch });
    if (r.verdict !== 'consistent') throw new Error(`resync bench after a ${partitionMs} ms partition was inconsistent: ${r.violations[0]?.message ?? ''}; ${r.reproduce}`);
    if (r.resync.runs !== 1 || watch.counts === null) throw new Error(`resync bench after a ${partitionMs} ms partition saw ${r.resync.runs} resyncs, not one: ${r.reproduce}`);
    const rs = r.resync;
    const fullBytes = volume.bytes;
    rows.push({
      partitionMs, writes: r.writes.acknowledged, divergentBytes: rs.bytesDivergent,
      tagBytes: rs.bytesCopied, tagRatio: rs.bytesDivergent > 0 ? round(rs.bytesCopied / rs.bytesDivergent) : 0, tagMs: rs.virtualMs,
      entriesCompared: rs.entriesCompared, entriesMatched: rs.entriesMatched,
      fullBytes, fullMs: atLinkRate(fullBytes, opts.bandwidthMbps),
      bitmaps: bitmaps.map((b, i) => {
        const bytes = Math.min(fullBytes, watch.counts![i]! * b.blockBytes);
        return { blockBytes: b.blockBytes, bytes, ms: atLinkRate(bytes, opts.bandwidthMbps) };
      }),
    });
  }
  return { rows, linkMbps: DEFAULT_EMULATE.bandwidthMbps, volumeBytes: volume.bytes, supervision: RESYNC_BENCH_SUPERVISION, host: RESYNC_BENCH_HOST, metadata: await measureMetadataCost(metadataWrites) };
}

/**
 * What the metadata store costs per host write (docs/tag-tables.md, "Metadata"), per mode: a steady
 * run of 4 KiB random writes at queue depth 32 without faults, both controllers' metadata devices
 * counted (the source's entries, the target's, the tokens' deletions, group commits and flushes).
 */
export async function measureMetadataCost(writes = METADATA_COST_WRITES): Promise<MetadataCost[]> {
  const out: MetadataCost[] = [];
  for (const mode of ['sync', 'speculative', 'async'] as const) {
    const r = await runEmulation({ ...DEFAULT_EMULATE, mode, writes, queueDepth: 32 });
    if (r.verdict !== 'consistent') throw new Error(`metadata cost run (${mode}) was inconsistent: ${r.reproduce}`);
    const n = r.writes.acknowledged;
    out.push({ mode, writes: n, bytesPerWrite: round(r.metadata.bytesWritten / n), writesPerWrite: round(r.metadata.writes / n), flushesPerWrite: round(r.metadata.flushes / n) });
  }
  return out;
}

const round = (x: number): number => Math.round(x * 1e6) / 1e6;
