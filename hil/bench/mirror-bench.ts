import { crc32c } from '@node-rs/crc32';
import { performance } from 'node:perf_hooks';
import type { LockStyle, MirrorMode } from '../../firmware/mirror/types.ts';
import { DEFAULT_EMULATE } from '../emulator/options.ts';
import { runEmulation } from '../emulator/run.ts';
import { buildTopology, DEFAULT_TOPOLOGY } from '../emulator/topology.ts';

/** The headline setting of issue 3: 4 KiB random writes, queue depth 32, a 1 Gbit/s link. */
export const HEADLINE = { writeBytes: 4096, queueDepth: 32, bandwidthMbps: 1000, sectorSize: 512, volumeSectors: (64 * 1024 * 1024) / 512 } as const;
export const HEADLINE_RTTS_MS = [0.2, 1, 5, 20] as const;
export const HEADLINE_MODES: readonly MirrorMode[] = ['sync', 'speculative', 'async'];

/**
 * How the writes' locks travel and whether entries batch (docs/implied-locks.md): the headline
 * table measures each mode with explicit LOCK/UNLOCK sessions (the default), and speculative and
 * async also with implied locks, alone and batched. (Sync always locks explicitly.)
 */
export interface WireVariant {
  locks: LockStyle;
  batch: boolean;
}
export const HEADLINE_VARIANTS: readonly WireVariant[] = [
  { locks: 'explicit', batch: false },
  { locks: 'implied', batch: false },
  { locks: 'implied', batch: true },
];

/** A variant as the tables name it: `explicit`, `implied`, `implied, batched`. */
export function wireName(w: WireVariant): string {
  return w.batch ? `${w.locks}, batched` : w.locks;
}

/** The variants measured for `mode`: all of them, but sync only explicit (its data waits for the grant). */
export function variantsOf(mode: MirrorMode): readonly WireVariant[] {
  return mode === 'sync' ? HEADLINE_VARIANTS.slice(0, 1) : HEADLINE_VARIANTS;
}

export interface BenchRow extends WireVariant {
  mode: MirrorMode;
  rttMs: number;
  throughputMBps: number;
  limitMBps: number;
  ratioToLimit: number;
  /**
   * Frames the source put on its data connections per mirrored write, and bytes beyond the data
   * (headers, sub-headers, CRCs, LOCKs and UNLOCKs), over the writes sent in the measured span.
   */
  framesPerWrite: number;
  overheadBytesPerWrite: number;
  /** Mirror-channel chart events (source and target charts) per mirrored write over the whole run. */
  chartEventsPerWrite: number;
}

/**
 * The physical limit for mirroring acknowledged on the target: the link's bandwidth, or what a
 * queue of `queueDepth` writes can move if each must wait one round trip, its own serialisation
 * and the target disk's service time. For async, whose backlog is bounded, the link bandwidth.
 */
export function limitMBps(mode: MirrorMode, rttMs: number): number {
  const linkMBps = HEADLINE.bandwidthMbps / 8;
  if (mode === 'async') return linkMBps;
  const serialisationMs = (HEADLINE.writeBytes * 8) / (HEADLINE.bandwidthMbps * 1000);
  const disk = DEFAULT_TOPOLOGY.diskService;
  const diskMs = (disk.fixedMs ?? 0) + (disk.perByteMs ?? 0) * HEADLINE.writeBytes;
  const pipelineMBps = (HEADLINE.queueDepth * HEADLINE.writeBytes) / 1e6 / ((rttMs + serialisationMs + diskMs) / 1000);
  return Math.min(linkMBps, pipelineMBps);
}

/**
 * Drive one controller with `writes` 4 KiB random writes at queue depth 32 and return the virtual
 * times of the acknowledgements. Callbacks, not promises: each next write goes out at the exact
 * virtual instant of the previous ack. `lockRegionSectors` 8 puts every write in its own region.
 */
interface Drive {
  acks: Float64Array;
  events: number;
  chartEvents: number;
  /** Mirror-channel chart events alone (the link supervisors' come with time, not writes). */
  mirrorChartEvents: number;
  /** The A->B data connections' frames and bytes, and the writes sent, when ack `at` arrived, for each `at` asked for. */
  link: { frames: number; bytes: number; writes: number }[];
}

/*
 * The headline rows run without a metadata device (`metadataVolume: null`): they measure mirroring
 * against the link and the disks. With one, each write first waits for a group commit of its
 * tag-table entry (docs/tag-tables.md, "Tag tables"); that cost per host write is `bench --only
 * resync`'s, and at 0.2 ms it also spreads writes over more frames (see README, the headline table).
 */
async function driveWrites(
  mode: MirrorMode, rttMs: number, writes: number, opts: { lockRegionSectors?: number; wire?: WireVariant; snapshotAt?: readonly number[] } = {},
): Promise<Drive> {
  const topo = buildTopology({ ...HEADLINE, metadataVolume: null, mode, rttMs, lockRegionSectors: opts.lockRegionSectors, locks: opts.wire?.locks, batch: opts.wire?.batch });
  topo.start();
  const data = new Uint8Array(HEADLINE.writeBytes).fill(0x5a);
  const slots = HEADLINE.volumeSectors / (HEADLINE.writeBytes / HEADLINE.sectorSize);
  const random = topo.random.fork('bench');
  const acks = new Float64Array(writes);
  const snapshotAt = opts.snapshotAt ?? [];
  const link: Drive['link'] = [];
  let issued = 0;
  let acked = 0;
  const issue = (): void => {
    if (issued >= writes) return;
    issued++;
    topo.source.submitWrite(0, random.int(slots) * 8, data, (err) => {
      if (err) throw err;
      if (snapshotAt.includes(acked)) {
        const d = topo.link.stats('ab').data;
        link.push({ frames: d.framesSent, bytes: d.bytesSent, writes: topo.source.status()[0]!.source!.counters.writesSent });
      }
      acks[acked++] = topo.clock.now();
      issue();
    });
  };
  for (let i = 0; i < HEADLINE.queueDepth; i++) issue();
  await topo.clock.run({ until: () => acked === writes });
  const chartEvents = topo.source.chartEvents() + topo.target.chartEvents();
  const mirrorChartEvents = topo.source.mirrorChartEvents() + topo.target.mirrorChartEvents();
  topo.stop();
  return { acks, events: topo.clock.eventsRun, chartEvents, mirrorChartEvents, link };
}

/**
 * One row of the headline table, in virtual time (exact): throughput over the second half of the
 * run, so start-up (HELLO, slow start, an empty async backlog filling) is left out. The span
 * measured is a whole number of queue depths of acknowledgements (ack i and ack i + 32 are one
 * pipeline period apart), so the bursts in which acks arrive cannot bias the figure.
 */
export async function measureRow(mode: MirrorMode, rttMs: number, wire: WireVariant = HEADLINE_VARIANTS[0]!): Promise<BenchRow> {
  // Async acknowledges from the local disk until the rollback log (64 MiB) is full: run long
  // enough that the second half is paced by the link.
  const writes = mode === 'async' ? 60_000 : Math.max(4_000, Math.min(20_000, Math.round(40_000 / (1 + rttMs))));
  const from = Math.floor(writes / 2);
  const span = Math.floor((writes - 1 - from) / HEADLINE.queueDepth) * HEADLINE.queueDepth;
  const drive = await driveWrites(mode, rttMs, writes, { lockRegionSectors: HEADLINE.writeBytes / HEADLINE.sectorSize, wire, snapshotAt: [from, from + span] });
  const { acks } = drive;
  const seconds = (acks[from + span]! - acks[from]!) / 1000;
  const throughput = (span * HEADLINE.writeBytes) / 1e6 / seconds;
  const limit = limitMBps(mode, rttMs);
  // What the link carried while the span's writes were acknowledged, per write sent meanwhile.
  const [a, b] = drive.link;
  const sent = b!.writes - a!.writes;
  const frames = b!.frames - a!.frames;
  const bytes = b!.bytes - a!.bytes;
  return {
    mode, rttMs, ...wire, throughputMBps: round(throughput, 2), limitMBps: round(limit, 2), ratioToLimit: round(throughput / limit, 3),
    framesPerWrite: round(frames / sent, 3), overheadBytesPerWrite: round(bytes / sent - HEADLINE.writeBytes, 1),
    chartEventsPerWrite: round(drive.mirrorChartEvents / writes, 5),
  };
}

/**
 * How fast the emulator itself runs, in wall-clock time: mirrored 4 KiB writes per second with the
 * whole stack (charts, codec with CRC, logs, lock tables, disks, the simulated link) in one
 * process, telemetry off. `perWriteRegions` puts every write in its own lock region (a LOCK,
 * WRITE and UNLOCK each); otherwise the default 1 MiB regions let writes share their LOCK.
 */
export async function measureSimSpeed(writes: number, perWriteRegions: boolean): Promise<{ writesPerSec: number; eventsPerWrite: number; chartEventsPerWrite: number }> {
  const lockRegionSectors = perWriteRegions ? 8 : undefined;
  await driveWrites('speculative', 0.2, Math.min(writes, 20_000), { lockRegionSectors }); // warm up the JIT
  const started = performance.now();
  const { events, chartEvents } = await driveWrites('speculative', 0.2, writes, { lockRegionSectors });
  const seconds = (performance.now() - started) / 1000;
  return { writesPerSec: Math.round(writes / seconds), eventsPerWrite: round(events / writes, 2), chartEventsPerWrite: round(chartEvents / writes, 4) };
}

/**
 * The emulator as a campaign runs it, in wall-clock time: `emulate`'s defaults (speculative, QD 32,
 * memory disks that reorder, no faults) with telemetry on, the trace hashed, the consistency
 * checker and the final content checks, so the gap to {@link measureSimSpeed} is what observing
 * and judging a run costs. Mirrored 4 KiB writes per second, the checks included.
 */
export async function measureCheckedRunSpeed(writes: number): Promise<{ writesPerSec: number; eventsPerWrite: number }> {
  await runEmulation({ ...DEFAULT_EMULATE, writes: Math.min(writes, 2_000) }); // warm up the JIT
  const started = performance.now();
  const report = await runEmulation({ ...DEFAULT_EMULATE, writes });
  const seconds = (performance.now() - started) / 1000;
  if (report.verdict !== 'consistent') throw new Error(`the checked-run bench was not consistent: ${report.reproduce}`);
  return { writesPerSec: Math.round(writes / seconds), eventsPerWrite: round(report.traceEvents / writes, 2) };
}

/** The raw floor for the same work: copy 4 KiB into a frame buffer and CRC32C it, per second. */
export function measureCopyCrc(iterations: number): number {
  const data = new Uint8Array(HEADLINE.writeBytes).fill(7);
  const frame = new Uint8Array(HEADLINE.writeBytes + 52);
  let sink = 0;
  const started = performance.now();
  for (let i = 0; i < iterations; i++) {
    data[0] = i & 0xff;
    frame.set(data, 48);
    sink ^= crc32c(frame);
  }
  const seconds = (performance.now() - started) / 1000;
  if (sink === 0.5) console.log(sink); // keep the loop from being optimised away
  return Math.round(iterations / seconds);
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;
