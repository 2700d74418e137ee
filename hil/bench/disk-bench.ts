import { performance } from 'node:perf_hooks';
import type { BlockDevice } from '../../firmware/ports/block-device.ts';
import type { HostClock } from '../../host/clock/clock.ts';
import { buildVolume, parseVolumeSpec } from '../../host/disks/volume-spec.ts';

/**
 * Wall-clock speed of the block devices themselves (issue 4): what each layout costs per byte in
 * this process, beside a plain memory copy of the same bytes in the same run as the floor. The
 * clock here makes every wait free, so what is measured is the devices' own work (parity,
 * mirroring, sparse storage), not simulated service time.
 *
 * The floor is taken per block size, with the same access pattern as the row it stands beside:
 * 4 KiB blocks to the same scattered slots as the random case, 1 MiB blocks in sequence. A 4 KiB
 * copy costs more per byte than a 1 MiB one (per-call overhead, cache misses), so one 1 MiB floor
 * would flatter the 4 KiB column.
 */
export interface DiskBenchRow {
  layout: string;
  random4kMBps: number;
  sequential1mMBps: number;
}

export interface DiskBenchResult {
  rows: DiskBenchRow[];
  raid5FullStripeMBps: number;
  raid5ReadModifyWriteMBps: number;
  /** The 1 MiB memory-copy floor (the same figure as `memoryCopy1mMBps`; kept for older readers). */
  memoryCopyMBps: number;
  /** Memory copy of 4 KiB blocks to the random case's scattered slots: the floor of `random4kMBps`. */
  memoryCopy4kMBps: number;
  /** Memory copy of 1 MiB blocks in sequence: the floor of `sequential1mMBps`. */
  memoryCopy1mMBps: number;
  /** The work multiplier the run used (1 = the full benchmark). */
  scale: number;
}

const MiB = 1024 * 1024;
const free = Promise.resolve();
const FREE_CLOCK: HostClock = { now: () => 0, setTimeout: () => 0, clearTimeout: () => {}, sleep: () => free, settle: (op) => op };
export const DISK_BENCH_LAYOUTS = ['mem:64MiB', 'raid0:2x64MiB', 'raid1:2x64MiB', 'raid5:4x64MiB', 'raid10:4x64MiB'] as const;

async function device(spec: string): Promise<BlockDevice> {
  return (await buildVolume(parseVolumeSpec(spec), { name: spec, clock: FREE_CLOCK, faultOverlay: false })).device;
}

/** MB/s of `count` writes of `data` at the LBAs `at(i)`, 32 in flight. */
async function rate(dev: BlockDevice, data: Uint8Array, count: number, at: (i: number) => number): Promise<number> {
  for (let i = 0; i < Math.min(count, 256); i++) await dev.write(at(i), data);
  const started = performance.now();
  for (let i = 0; i < count; i += 32) {
    const batch: Promise<void>[] = [];
    for (let k = i; k < Math.min(count, i + 32); k++) batch.push(dev.write(at(k), data));
    await Promise.all(batch);
  }
  return (count * data.length) / MiB / ((performance.now() - started) / 1000);
}

function randomSlots(dev: BlockDevice, sectors: number): (i: number) => number {
  const slots = Math.floor(dev.sectorCount / sectors);
  return (i) => scatteredSlot(i, slots) * sectors;
}

/** Writes per layout at scale 1: 40,000 random 4 KiB writes, 400 sequential 1 MiB ones. */
const RANDOM_4K_WRITES = 40_000;
const SEQUENTIAL_1M_WRITES = 400;
const FULL_STRIPE_WRITES = 4_000;
/** Copies of the floor at scale 1 (1 MiB blocks; 4 KiB ones do the same bytes: 256 times as many). */
const COPY_1M_BLOCKS = 2_000;
/** Smallest and largest work multiplier (`scale`): below, too few writes to mean anything. */
export const DISK_BENCH_SCALE_MIN = 0.001;
export const DISK_BENCH_SCALE_MAX = 100;

/** Runs the disk benchmark; `scale` multiplies every count (0.01 for a smoke run). */
export async function measureDisks(scale = 1): Promise<DiskBenchResult> {
  if (!(Number.isFinite(scale) && scale >= DISK_BENCH_SCALE_MIN && scale <= DISK_BENCH_SCALE_MAX)) {
    throw new RangeError(`disk bench scale must be in [${DISK_BENCH_SCALE_MIN}, ${DISK_BENCH_SCALE_MAX}], got ${scale}`);
  }
  const times = (n: number): number => Math.max(1, Math.round(n * scale));
  const small = new Uint8Array(4096).fill(0x11);
  const big = new Uint8Array(MiB).fill(0x22);
  const rows: DiskBenchRow[] = [];
  for (const layout of DISK_BENCH_LAYOUTS) {
    const dev = await device(layout);
    const random4k = await rate(dev, small, times(RANDOM_4K_WRITES), randomSlots(dev, 8));
    const seqSlots = Math.floor(dev.sectorCount / (MiB / 512));
    const sequential1m = await rate(dev, big, times(SEQUENTIAL_1M_WRITES), (i) => (i % seqSlots) * (MiB / 512));
    rows.push({ layout, random4kMBps: round(random4k), sequential1mMBps: round(sequential1m) });
  }
  const r5 = await device('raid5:4x64MiB:chunk=64KiB');
  const stripe = new Uint8Array(3 * 64 * 1024).fill(0x33);
  const stripes = Math.floor(r5.sectorCount / (stripe.length / 512));
  const fullStripe = await rate(r5, stripe, times(FULL_STRIPE_WRITES), (i) => (i % stripes) * (stripe.length / 512));
  const rmw = await rate(r5, small, times(RANDOM_4K_WRITES), randomSlots(r5, 8));
  const copy1m = round(memoryCopy(big, times(COPY_1M_BLOCKS), (i, slots) => i % slots));
  const copy4k = round(memoryCopy(small, times(COPY_1M_BLOCKS * (MiB / small.length)), scatteredSlot));
  return {
    rows, raid5FullStripeMBps: round(fullStripe), raid5ReadModifyWriteMBps: round(rmw),
    memoryCopyMBps: copy1m, memoryCopy4kMBps: copy4k, memoryCopy1mMBps: copy1m, scale,
  };
}

/** The random case's slot order (see {@link randomSlots}), over `slots` slots. */
function scatteredSlot(i: number, slots: number): number {
  return (Math.imul(i + 1, 2654435761) >>> 0) % slots;
}

/**
 * The floor: copying `count` blocks within memory, into a 64 MiB buffer (the size of a bench
 * volume) at slot `slotOf(i)`, MB/s.
 */
function memoryCopy(block: Uint8Array, count: number, slotOf: (i: number, slots: number) => number): number {
  const target = new Uint8Array(64 * MiB);
  const slots = target.length / block.length;
  for (let i = 0; i < slots; i++) target.set(block, i * block.length); // touch every page first
  const started = performance.now();
  for (let i = 0; i < count; i++) target.set(block, slotOf(i, slots) * block.length);
  return (count * block.length) / MiB / ((performance.now() - started) / 1000);
}

const round = (x: number): number => Math.round(x);
