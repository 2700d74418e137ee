import { describe, expect, it } from 'vitest';
import type { TelemetryEvent } from '../../../firmware/telemetry/events.ts';
import { DirtyBitmap, measureResync } from '../../../hil/bench/resync-bench.ts';
import { renderResync, resyncTargets } from '../../../hil/bench/resync-render.ts';
import { submitWrite } from '../../../firmware/ports/block-device.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { SeededRandom } from '../../../host/random.ts';
import { drive } from '../../../hil/emulator/chunks.ts';
import { CountedDevice } from '../../../hil/emulator/counted-device.ts';

/** Benchmarks are not tests (docs/conventions.md 11): these check what `bench --only resync` reports (virtual time), never how fast. */
describe('a dirty bitmap as DRBD and md keep one', () => {
  /** A telemetry event of the source, at t=1. */
  type Untimed = TelemetryEvent extends infer E ? (E extends TelemetryEvent ? Omit<E, 't'> : never) : never;
  const at = (e: Untimed): TelemetryEvent => ({ t: 1, ...e }) as TelemetryEvent;
  const write = (tag: number, lba: number, count: number) => at({ kind: 'host.write', node: 'A', tag, lun: 0, lba, count });
  const append = (seq: number, tag: number) => at({ kind: 'rollback.append', node: 'A', peer: 'B', seq, entry: 'write', lun: 0, lba: 0, count: 8, lockId: 0, tag, entries: 1, bytes: 1 });

  it('sets a block per write and clears it once every write that set it was confirmed; unsent writes stay set', () => {
    const map = new DirtyBitmap({ source: 'A', peer: 'B', lun: 0 }, 4096, 512);
    const big = new DirtyBitmap({ source: 'A', peer: 'B', lun: 0 }, 65_536, 512);
    const feed = (e: TelemetryEvent): void => {
      map.emit(e);
      big.emit(e);
    };
    // Tags 1 and 2 to block 0, tag 3 across blocks 1-2 (sectors 12-19), tag 4 to block 200 (never sent).
    for (const e of [write(1, 0, 8), write(2, 0, 8), write(3, 12, 8), write(4, 1600, 8), append(1, 1), append(2, 2), append(3, 3)]) feed(e);
    expect([map.dirtyBlocks(), big.dirtyBlocks()]).toEqual([4, 2]);
    feed(at({ kind: 'rollback.confirm', node: 'A', peer: 'B', upTo: 1, removed: 1, entries: 2, bytes: 1 }));
    expect(map.dirtyBlocks()).toBe(4); // block 0 still has tag 2 unconfirmed
    feed(at({ kind: 'rollback.confirm', node: 'A', peer: 'B', upTo: 3, removed: 2, entries: 0, bytes: 0 }));
    expect([map.dirtyBlocks(), big.dirtyBlocks()]).toEqual([1, 1]);
    // A new stream renumbers: what was never confirmed stays set; others' telemetry is ignored.
    feed(at({ kind: 'stream.start', node: 'A', peer: 'B', role: 'source', sourceSession: 1, targetSession: 2, firstSeq: 1, stream: 2 }));
    feed(at({ kind: 'rollback.confirm', node: 'A', peer: 'B', upTo: 9, removed: 0, entries: 0, bytes: 0 }));
    feed(at({ kind: 'host.write', node: 'B', tag: 9, lun: 0, lba: 800, count: 8 }));
    expect(map.dirtyBlocks()).toBe(1);
  });
});

describe('bench --only resync, one partition (virtual time)', () => {
  it('after a 1 s partition that suspended the mirror: the tag resync copies what differed and at most a burst more; bitmaps and a full copy beside it', async () => {
    const r = await measureResync([1_000], 300);
    const [row] = r.rows;
    expect(r.rows).toHaveLength(1);
    const x = row!;
    expect(x.divergentBytes).toBeGreaterThan(0);
    expect(x.tagBytes).toBeGreaterThanOrEqual(x.divergentBytes);
    expect(x.tagBytes - x.divergentBytes).toBeLessThanOrEqual(r.host.queueDepth * r.host.writeBytes);
    expect(x.entriesCompared).toBeGreaterThan(0);
    // A 4 KiB bitmap names each block that differs (and the writes still unconfirmed when the link went silent); 64 KiB blocks name more; a full copy everything.
    const [b4, b64] = x.bitmaps;
    expect(b4!.bytes).toBeGreaterThanOrEqual(x.divergentBytes);
    expect(b64!.bytes).toBeGreaterThan(4 * b4!.bytes);
    expect(x.fullBytes).toBe(r.volumeBytes);
    // Times other than the tag resync's are their bytes at the link's rate.
    expect(x.fullMs).toBe((r.volumeBytes * 8) / (r.linkMbps * 1000));
    expect(b4!.ms).toBe((b4!.bytes * 8) / (r.linkMbps * 1000));
    expect(x.tagMs).toBeGreaterThan(0);
    expect(resyncTargets(r).every((t) => t.met)).toBe(true);
    expect(renderResync(r).join('\n')).toMatch(/\n1 s +\d+ .*\ntag s is measured/);
    // Metadata per host write, per mode: every mode writes entries; sync and speculative flush before each acknowledgement group.
    expect(r.metadata.map((m) => m.mode)).toEqual(['sync', 'speculative', 'async']);
    for (const m of r.metadata) expect([m.writes, m.bytesPerWrite > 0, m.writesPerWrite > 0]).toEqual([300, true, true]);
    expect(renderResync(r).join('\n')).toMatch(/metadata per host write[^]*\nsync +\d+\.\d/);
  });

  it('the target fails when the tag resync copies more than a burst beyond what differed', () => {
    const r = { rows: [{ partitionMs: 1000, tagBytes: 2 * 65_536, divergentBytes: 65_536, tagRatio: 2 }], host: { queueDepth: 4, writeBytes: 4096 }, metadata: [] };
    expect(resyncTargets(r as never)[0]!.met).toBe(false);
  });
});

describe('a counted device (the metadata cost)', () => {
  it('counts writes, bytes and flushes through both write paths, and passes a power cut through to the disk under it', async () => {
    const clock = new VirtualClock();
    const disk = new MemoryDisk({ name: 'm', sectorCount: 64, clock, writeCacheBytesMax: 1 << 16, random: new SeededRandom(1) });
    const dev = new CountedDevice(disk);
    const run = <T>(p: Promise<T>): Promise<T> => drive(clock, p);
    await run(dev.write(0, new Uint8Array(1024).fill(7)));
    await run(new Promise<void>((resolve, reject) => submitWrite(dev, 8, new Uint8Array(512).fill(9), (e) => (e ? reject(e as Error) : resolve()))));
    await run(dev.flush());
    await run(dev.write(16, new Uint8Array(512).fill(5)));
    expect(dev.counts).toEqual({ writes: 3, bytesWritten: 2048, flushes: 1 });
    dev.powerCut();
    expect((await run(dev.read(16, 1)))[0]).toBe(0); // unflushed: lost with the cache
    expect((await run(dev.read(8, 1)))[0]).toBe(9);
  });
});
