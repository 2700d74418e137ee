// Wall-clock throughput of the arrays (docs/conventions.md 11: a benchmark, not a test).
// Run: npx tsx test/host/disks/raid.bench.ts
import { performance } from 'node:perf_hooks';
import type { HostClock } from '../../../host/clock/clock.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { Raid1 } from '../../../host/disks/raid/raid1.ts';
import { Raid5 } from '../../../host/disks/raid/raid5.ts';

const MiB = 2 ** 20;
const done = Promise.resolve();
/** A clock whose waits cost nothing: what is measured is the arrays' own work. */
const clock: HostClock = { now: () => 0, setTimeout: () => 0, clearTimeout: () => {}, sleep: () => done, settle: (op) => op };
const disks = (n: number) => Array.from({ length: n }, (_, i) => new MemoryDisk({ name: `m${i}`, sectorCount: (64 * MiB) / 512, clock }));

async function rate(label: string, totalBytes: number, op: (i: number) => Promise<unknown>, count: number): Promise<void> {
  for (let i = 0; i < Math.min(count, 2000); i++) await op(i); // warm up
  const t0 = performance.now();
  for (let i = 0; i < count; i += 64) await Promise.all(Array.from({ length: Math.min(64, count - i) }, (_, k) => op(i + k)));
  const s = (performance.now() - t0) / 1000;
  console.log(`${label.padEnd(48)} ${(totalBytes / MiB / s).toFixed(0).padStart(6)} MB/s  ${((s * 1e9) / count).toFixed(0).padStart(7)} ns/op`);
}

const raid5 = new Raid5({ name: 'r5', members: disks(4), clock, chunkBytes: 64 * 1024 });
const stripe = new Uint8Array(3 * 64 * 1024).fill(1);
const stripes = raid5.sectorCount / (stripe.length / 512);
const small = new Uint8Array(4096).fill(2);
const lba4k = (i: number) => ((Math.imul(i, 2654435761) >>> 0) % (raid5.sectorCount / 8)) * 8;

const N = 20_000;
const floor = new Uint8Array(64 * MiB);
await rate('memory copy (floor), 192 KiB blocks', N * stripe.length, async (i) => floor.set(stripe, (i % 300) * stripe.length), N);
await rate('raid5 4x64MiB full-stripe writes (192 KiB)', N * stripe.length, (i) => raid5.write((i % stripes) * (stripe.length / 512), stripe), N);
await rate('raid5 4x64MiB 4 KiB random writes (RMW)', 5 * N * 4096, (i) => raid5.write(lba4k(i), small), 5 * N);
const raid1 = new Raid1({ name: 'r1', members: disks(2), clock });
await rate('raid1 2x64MiB 4 KiB random writes', 5 * N * 4096, (i) => raid1.write(lba4k(i) % (raid1.sectorCount - 8), small), 5 * N);
await rate('raid1 2x64MiB 4 KiB random reads', 5 * N * 4096, (i) => raid1.read(lba4k(i) % (raid1.sectorCount - 8), 8), 5 * N);
