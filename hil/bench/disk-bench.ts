import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BlockDevice } from '../../firmware/ports/block-device.ts';
import type { HostClock } from '../../host/clock/clock.ts';
import { MemoryDisk } from '../../host/disks/memory.ts';
import { BlockServer } from '../../host/disks/serial-disk/block-server.ts';
import { openSerialLine } from '../../host/disks/serial-disk/line.ts';
import { SerialDisk } from '../../host/disks/serial-disk/serial-disk.ts';
import { ptyPair } from '../../host/disks/serial-disk/socat-pty.ts';
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
  /** Attached targets beside the memory disk underneath them, measured in the same run. */
  attached: AttachedBenchRow[];
  /** Why a row is missing, or what its figures mean. */
  attachedNotes: string[];
}

/**
 * An attached target's rows, beside the same workload on the memory disk it stores on, as
 * ratios: what the driver, the protocol and (for serial-disk) the PTY cost on top of the disk.
 */
export interface AttachedBenchRow {
  layout: string;
  underneath: string;
  random4kMBps: number;
  sequential1mMBps: number;
  underneathRandom4kMBps: number;
  underneathSequential1mMBps: number;
  random4kRatio: number;
  sequential1mRatio: number;
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
  const attachedNotes: string[] = [];
  const attached = await measureAttached(times, attachedNotes);
  return {
    rows, raid5FullStripeMBps: round(fullStripe), raid5ReadModifyWriteMBps: round(rmw),
    memoryCopyMBps: copy1m, memoryCopy4kMBps: copy4k, memoryCopy1mMBps: copy1m, scale, attached, attachedNotes,
  };
}

/** Writes of the attached rows at scale 1: fewer than the memory layouts', the PTY being a real line. */
const USB_RANDOM_4K_WRITES = 20_000;
const USB_SEQUENTIAL_1M_WRITES = 200;
const SERIAL_RANDOM_4K_WRITES = 2_000;
const SERIAL_SEQUENTIAL_1M_WRITES = 40;
/** The serial-disk client believes the line runs this fast (a PTY ignores it; this only sizes its first timeouts). */
const PTY_BAUD = 4_000_000;

/**
 * usb-emu (the driver over the emulated device over a memory disk) and serial-disk over a socat
 * PTY pair (the board serving a memory disk), each beside its memory disk measured in the same
 * run with the same writes. The PTY moves bytes as fast as the kernel copies them, whatever the
 * baud rate, so the serial figures are upper bounds: a real UART at B baud carries at most
 * B/10 bytes a second.
 */
async function measureAttached(times: (n: number) => number, notes: string[]): Promise<AttachedBenchRow[]> {
  // The disk underneath both, measured once with the larger counts: a few thousand writes to memory
  // last a few milliseconds, too short to time.
  const counts = { random: times(USB_RANDOM_4K_WRITES), sequential: times(USB_SEQUENTIAL_1M_WRITES) };
  const under = await measureWrites(new MemoryDisk({ name: 'underneath', sectorCount: (64 * MiB) / 512, clock: FREE_CLOCK }), counts);
  const rows: AttachedBenchRow[] = [];
  const usb = await measureWrites(await device('usb-emu:64MiB'), counts);
  rows.push(attachedRow('usb-emu:64MiB', usb, under));
  try {
    rows.push(attachedRow('serial-disk (PTY)', await measureSerial(times), under));
    const lineMBps = (baud: number): string => `${round2(baud / 10 / MiB)} MB/s at ${baud.toLocaleString('en-US')} baud`;
    notes.push(`serial-disk over a PTY: upper bounds (a PTY ignores the baud rate); a real line carries at most baud/10 bytes a second, ${lineMBps(115_200)}, ${lineMBps(PTY_BAUD)}`);
  } catch (error) {
    notes.push(`serial-disk over a PTY: not measured (${(error as Error).message})`);
  }
  return rows;
}

async function measureSerial(times: (n: number) => number): Promise<[number, number]> {
  const dir = await mkdtemp(join(tmpdir(), 'mirrorlab-bench-'));
  const pair = await ptyPair(dir, 'bench');
  try {
    const [host, far] = await Promise.all([openSerialLine(pair.a, PTY_BAUD), openSerialLine(pair.b, PTY_BAUD)]);
    const board = new MemoryDisk({ name: 'board', sectorCount: (64 * MiB) / 512, clock: FREE_CLOCK });
    const server = new BlockServer({ line: far, device: board, baud: PTY_BAUD });
    try {
      const disk = await SerialDisk.open({ name: 'serial-disk', clock: FREE_CLOCK, line: host, baud: PTY_BAUD });
      return await measureWrites(disk, { random: times(SERIAL_RANDOM_4K_WRITES), sequential: times(SERIAL_SEQUENTIAL_1M_WRITES) });
    } finally {
      await server.stop();
      await Promise.all([host.close(), far.close()]);
    }
  } finally {
    await pair.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** MB/s of the two workloads on `d`: 4 KiB writes to scattered slots, 1 MiB writes in sequence. */
async function measureWrites(d: BlockDevice, counts: { random: number; sequential: number }): Promise<[number, number]> {
  const small = new Uint8Array(4096).fill(0x44);
  const big = new Uint8Array(MiB).fill(0x55);
  const seqSlots = Math.floor(d.sectorCount / (MiB / 512));
  return [await rate(d, small, counts.random, randomSlots(d, 8)), await rate(d, big, counts.sequential, (i) => (i % seqSlots) * (MiB / 512))];
}

function attachedRow(layout: string, [random4k, sequential1m]: [number, number], [underRandom, underSequential]: [number, number]): AttachedBenchRow {
  return {
    layout, underneath: 'mem:64MiB', random4kMBps: round2(random4k), sequential1mMBps: round2(sequential1m), underneathRandom4kMBps: round(underRandom),
    underneathSequential1mMBps: round(underSequential), random4kRatio: ratio(random4k, underRandom), sequential1mRatio: ratio(sequential1m, underSequential),
  };
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
const ratio = (x: number, of: number): number => Number((x / of).toPrecision(3));

/** The attached rows as the bench prints them. */
export function renderAttached(d: DiskBenchResult): string[] {
  if (d.attached.length === 0 && d.attachedNotes.length === 0) return [];
  const lines = ['', `attached targets (wall clock, ratio to the memory disk underneath)  4 KiB random MB/s (ratio)  1 MiB sequential MB/s (ratio)`];
  for (const r of d.attached) {
    lines.push(`${r.layout.padEnd(26)}  ${`${r.random4kMBps} (${r.random4kRatio})`.padStart(24)}  ${`${r.sequential1mMBps} (${r.sequential1mRatio})`.padStart(28)}`);
  }
  return [...lines, ...d.attachedNotes.map((n) => `note: ${n}`)];
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
