// Wall-clock figures for the memory disk's hot path (docs/conventions.md 11: a benchmark, not a test).
// Run: npx tsx test/host/disks/memory.bench.ts
import { performance } from 'node:perf_hooks';
import type { HostClock } from '../../../host/clock/clock.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';

const BLOCK = 4096;
const SECTORS = (64 * 1024 * 1024) / 512;
const N = 400_000;

/** A clock that costs nothing: isolates the disk's own work. */
const done = Promise.resolve();
const freeClock: HostClock = { now: () => 0, setTimeout: () => 0, clearTimeout: () => {}, sleep: () => done, settle: (op) => op };

function lbas(n: number): Uint32Array {
  const out = new Uint32Array(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = (x % (SECTORS / 8)) * 8;
  }
  return out;
}

async function measure(label: string, disk: MemoryDisk, op: 'write' | 'read', at: Uint32Array): Promise<void> {
  const data = new Uint8Array(BLOCK).fill(0xa5);
  for (let i = 0; i < 50_000; i++) await (op === 'write' ? disk.write(at[i]!, data) : disk.read(at[i]!, 8)); // warm up
  const t0 = performance.now();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < N; i++) {
    pending.push(op === 'write' ? disk.write(at[i]!, data) : disk.read(at[i]!, 8));
    if (pending.length === 1024) {
      await Promise.all(pending);
      pending.length = 0;
    }
  }
  await Promise.all(pending);
  const ns = ((performance.now() - t0) * 1e6) / N;
  console.log(`${label.padEnd(44)} ${ns.toFixed(0).padStart(6)} ns per 4 KiB ${op}`);
}

async function virtualRun(at: Uint32Array): Promise<void> {
  const clock = new VirtualClock();
  const disk = new MemoryDisk({ name: 'v', sectorCount: SECTORS, clock, service: { fixedMs: 0.05 } });
  const data = new Uint8Array(BLOCK);
  const t0 = performance.now();
  for (let i = 0; i < N; i += 1024) {
    const batch: Promise<void>[] = [];
    for (let j = i; j < Math.min(N, i + 1024); j++) batch.push(disk.write(at[j]!, data));
    await clock.run();
    await Promise.all(batch);
  }
  const ns = ((performance.now() - t0) * 1e6) / N;
  console.log(`${'with the VirtualClock (for reference)'.padEnd(44)} ${ns.toFixed(0).padStart(6)} ns per 4 KiB write`);
}

const at = lbas(N);
const disk = new MemoryDisk({ name: 'bench', sectorCount: SECTORS, clock: freeClock });
await measure('memory disk, clock excluded', disk, 'write', at);
await measure('memory disk, clock excluded', disk, 'read', at);
await virtualRun(at);
