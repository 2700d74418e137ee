import { describe, expect, it } from 'vitest';
import type { StorageController } from '../../../firmware/controller/storage-controller.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { parseVolumeSpec } from '../../../host/disks/volume-spec.ts';
import { BLANK_BASELINE } from '../../../hil/checker/content-checks.ts';
import { ConsistencyChecker } from '../../../hil/checker/consistency-checker.ts';
import { CONTENT_CHUNK_BYTES_MAX } from '../../../hil/emulator/chunks.ts';
import { compareRuns, finalContentChecks } from '../../../hil/emulator/final-checks.ts';
import { FOOTPRINT_BLOCK_BYTES, FootprintDevice } from '../../../hil/emulator/footprint.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import type { MirrorPair } from '../../../hil/emulator/topology.ts';
import { writeData } from '../../../hil/workload/data.ts';

const run = (o: Partial<EmulateOptions>) => runEmulation({ ...DEFAULT_EMULATE, writes: 300, ...o });

describe('large sparse volumes: compared in bounded chunks, only where writes went', () => {
  it.each(['mem:8GiB', 'mem:4TiB'])('%s on both sides: consistent, no crash', async (spec) => {
    const v = parseVolumeSpec(spec);
    const r = await run({ sourceVolume: v, targetVolume: v });
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.writes.acknowledged).toBe(300);
  });

  it('async checkpoints on a terabyte volume read only the written sectors', async () => {
    const v = parseVolumeSpec('mem:1TiB');
    const r = await run({ mode: 'async', sourceVolume: v, targetVolume: v, writes: 2000 });
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.writeOrderCheckpointsMs.length).toBeGreaterThan(0);
  });

  it(`compareRuns: the footprint blocks of both sides, merged into pieces of at most ${CONTENT_CHUNK_BYTES_MAX} bytes`, () => {
    const clock = new VirtualClock();
    const disk = (name: string) => new FootprintDevice(new MemoryDisk({ name, sectorCount: 2 ** 31, clock }));
    const [a, b] = [disk('a'), disk('b')];
    const spb = FOOTPRINT_BLOCK_BYTES / 512;
    void a.write(0, new Uint8Array(512));
    void a.write(spb * 1000 + 3, new Uint8Array(1024));
    void b.write(spb * 1000 + spb - 1, new Uint8Array(1024)); // spans two blocks
    for (let i = 0; i < 100; i++) void b.write(spb * 5000 + i * spb, new Uint8Array(512)); // 100 neighbouring blocks
    const runs = compareRuns({ primary: a, secondary: b, sparse: true, extraLbas: [2 ** 30] });
    const chunk = CONTENT_CHUNK_BYTES_MAX / 512;
    expect(runs).toEqual([
      [0, spb], [spb * 1000, 2 * spb], [spb * 5000, chunk], [spb * 5000 + chunk, 100 * spb - chunk], [Math.floor(2 ** 30 / spb) * spb, spb],
    ]);
    expect(runs.every(([, n]) => n * 512 <= CONTENT_CHUNK_BYTES_MAX)).toBe(true);
    const full = compareRuns({ primary: a, secondary: b, sparse: false, extraLbas: [] });
    expect(full).toHaveLength((2 ** 31 * 512) / CONTENT_CHUNK_BYTES_MAX);
  });

  it('a write that lands where no write of the host went is caught on a sparse volume (the footprint sees it)', async () => {
    const clock = new VirtualClock();
    const checker = new ConsistencyChecker();
    const disk = (name: string) => new FootprintDevice(new MemoryDisk({ name, sectorCount: 2 ** 32, clock }));
    const [a, b] = [disk('A/lun0'), disk('B/lun0')];
    checker.emit({ kind: 'host.write', t: 0, node: 'A', tag: 1, lun: 0, lba: 8, count: 8 });
    const data = writeData(1, 0, 1, 8, 8, 512);
    void a.write(8, data);
    void b.write(8, data);
    // A buggy target also writes the same data far away, where the host never wrote.
    void b.write(3_000_000_000, data);
    await clock.run();
    const pair = { lun: 0, primary: { name: 'A', id: 1 } as StorageController, secondary: { name: 'B', id: 2 } as StorageController, primaryVolume: a, secondaryVolume: b } as MirrorPair;
    await finalContentChecks(clock, checker, [{ pair, primary: a, secondary: b, sparse: true, extraLbas: [], baseline: BLANK_BASELINE }]);
    expect(checker.violations.map((v) => [v.invariant, v.node, v.lba])).toEqual([['mirror-identical', 'B', 3_000_000_000], ['data-intact', 'B', 3_000_000_000]]);
    expect(checker.violations[1]!.message).toMatch(/no write of this run covered this sector, so it should hold zeros/);
  });
});
