import { describe, expect, it } from 'vitest';
import { checkLatest } from '../../../hil/checker/content-checks.ts';
import { WriteHistory } from '../../../hil/checker/history.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { formatDiskFaults, parseDiskFaults } from '../../../hil/faults/disk-fault-plan.ts';
import { writeData } from '../../../hil/workload/data.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { powerCutIfAble } from '../../../host/disks/power.ts';
import { buildVolume, parseVolumeSpec } from '../../../host/disks/volume-spec.ts';
import { SeededRandom } from '../../../host/random.ts';
import { runUntilSettled } from '../../host/disks/helpers.ts';
import { targetFlushesEveryWrite } from '../../support/broken-firmware.ts';
import { withPlantedBugs } from '../../support/planted-bugs.ts';

const SS = 512;
const fill = (byte: number, sectors: number) => new Uint8Array(sectors * SS).fill(byte);

describe('power cut as a disk fault: volatile write caches lost, flush honoured by every layout', () => {
  it.each(['mem:1MiB', 'raid0:2x1MiB:chunk=16KiB', 'raid1:2x1MiB', 'raid5:3x1MiB:chunk=16KiB', 'raid10:4x1MiB:chunk=16KiB'])(
    '%s: a write flushed before the cut survives it; one written after the flush is lost', async (spec) => {
      const clock = new VirtualClock();
      const volume = await buildVolume(parseVolumeSpec(spec), { name: 'v', clock, writeCacheBytesMax: 1 << 20, random: new SeededRandom(1), service: { fixedMs: 0.01 } });
      const dev = volume.device;
      const run = <T>(p: Promise<T>) => runUntilSettled(clock, p);
      await run(dev.write(0, fill(0xa1, 64)));
      await run(dev.flush());
      await run(dev.write(256, fill(0xb2, 64)));
      for (const d of volume.disks) powerCutIfAble(d); // every member's cache, at one instant
      expect(await run(dev.read(0, 64))).toEqual(fill(0xa1, 64));
      expect(await run(dev.read(256, 64))).toEqual(new Uint8Array(64 * SS));
    });

  it('parses, formats and validates power=SIDE@TIME', () => {
    expect(parseDiskFaults('power=target@40ms')).toEqual([{ kind: 'power', side: 'target', atMs: 40 }]);
    expect(formatDiskFaults(parseDiskFaults('power=source@1s,power=source@2s'))).toBe('power=source@1000ms,power=source@2000ms');
    expect(() => parseDiskFaults('power=target')).toThrow(/power takes SIDE@TIME/);
    expect(() => parseDiskFaults('power=target@1ms,power=target@1ms')).toThrow(/given twice/);
    expect(() => parseDiskFaults('power=left@1ms')).toThrow(/cannot read/);
  });

  const base: EmulateOptions = { ...DEFAULT_EMULATE, writes: 1500, targetVolume: parseVolumeSpec('raid1:2x16MiB'), diskFaults: parseDiskFaults('power=target@20ms') };

  it('a target that never flushes: a power cut loses acknowledged writes, and the checker says so', async () => {
    // The shipped target flushes before it gives a write's token (docs/tag-tables.md, "Tokens"),
    // which is not before its ACK: without that flush, the cut finds acknowledged writes still cached.
    const r = await withPlantedBugs(['target-never-flushes'], () => runEmulation(base));
    expect(r.reproduce).toContain('--disk-faults power=target@20ms');
    const lost = r.violations.filter((v) => v.node === 'B' && v.invariant === 'data-intact');
    expect(lost.length, JSON.stringify(r.violations)).toBeGreaterThan(0);
    expect(lost[0]!.message).toMatch(/an acknowledged write is missing/);
  });

  it('a target that flushes each write before confirming it loses nothing acknowledged to the same cut', async () => {
    const r = await runEmulation(base, { beforeStart: targetFlushesEveryWrite });
    expect(r.violations, r.reproduce).toEqual([]);
    // A write whose flush the cut struck fails at the target, and its host is told (never acknowledged).
    expect(r.writes.acknowledged + r.writes.errors).toBe(1500);
    expect(r.writes.errors).toBeLessThanOrEqual(1);
  });

  it('a write torn by a power cut is caught by the content checks where no later write repaired it', async () => {
    const clock = new VirtualClock();
    const disk = new MemoryDisk({ name: 't', sectorCount: 64, clock, tornWrites: true, random: new SeededRandom(2), service: { fixedMs: 1 } });
    const history = new WriteHistory();
    history.add(1, 8, 8);
    const w = disk.write(8, writeData(1, 0, 1, 8, 8, SS)).catch(() => undefined);
    await clock.advance(0.5);
    disk.powerCut();
    await runUntilSettled(clock, w);
    history.completed(1, { applied: true }); // acknowledged before the cut, as a firmware that does not flush would have it
    const v = checkLatest(history, { bytes: disk.peek(0, 64), sectorSize: SS }, { node: 'B', lun: 0, writer: 1, tMs: 1 });
    expect(v).toMatchObject({ invariant: 'data-intact', lba: 12 });
    expect(v!.message).toMatch(/torn|zeros/);
  });
});
