import { performance } from 'node:perf_hooks';
import type { BlockDevice } from '../../firmware/ports/block-device.ts';
import type { HostClock } from '../../host/clock/clock.ts';
import { buildVolume, parseVolumeSpec } from '../../host/disks/volume-spec.ts';

/**
 * Wall-clock speed of the block devices themselves (issue 4): what each layout costs per byte in
 * this process, beside a plain memory copy of the same bytes in the same run as the floor. The
 * clock here makes every wait free, so what is measured is the devices' own work (parity,
 * mirroring, sparse storage), not simulated service time.
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
  memoryCopyMBps: number;
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
  return (i) => ((Math.imul(i + 1, 2654435761) >>> 0) % slots) * sectors;
}

export async function measureDisks(scale = 1): Promise<DiskBenchResult> {
  const small = new Uint8Array(4096).fill(0x11);
  const big = new Uint8Array(MiB).fill(0x22);
  const rows: DiskBenchRow[] = [];
  for (const layout of DISK_BENCH_LAYOUTS) {
    const dev = await device(layout);
    const random4k = await rate(dev, small, Math.round(40_000 * scale), randomSlots(dev, 8));
    const seqSlots = Math.floor(dev.sectorCount / (MiB / 512));
    const sequential1m = await rate(dev, big, Math.round(400 * scale), (i) => (i % seqSlots) * (MiB / 512));
    rows.push({ layout, random4kMBps: round(random4k), sequential1mMBps: round(sequential1m) });
  }
  const r5 = await device('raid5:4x64MiB:chunk=64KiB');
  const stripe = new Uint8Array(3 * 64 * 1024).fill(0x33);
  const stripes = Math.floor(r5.sectorCount / (stripe.length / 512));
  const fullStripe = await rate(r5, stripe, Math.round(4_000 * scale), (i) => (i % stripes) * (stripe.length / 512));
  const rmw = await rate(r5, small, Math.round(40_000 * scale), randomSlots(r5, 8));
  return { rows, raid5FullStripeMBps: round(fullStripe), raid5ReadModifyWriteMBps: round(rmw), memoryCopyMBps: round(memoryCopy(big, Math.round(2_000 * scale))) };
}

/** The floor: copying the same bytes within memory, MB/s. */
function memoryCopy(block: Uint8Array, count: number): number {
  const target = new Uint8Array(64 * MiB);
  const slots = target.length / block.length;
  for (let i = 0; i < slots; i++) target.set(block, i * block.length); // touch every page first
  const started = performance.now();
  for (let i = 0; i < count; i++) target.set(block, (i % slots) * block.length);
  return (count * block.length) / MiB / ((performance.now() - started) / 1000);
}

const round = (x: number): number => Math.round(x);
