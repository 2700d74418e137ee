import { describe, expect, it } from 'vitest';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { attributeMismatches } from '../../../hil/emulator/volumes.ts';
import { parseDiskFaults } from '../../../hil/faults/disk-fault-plan.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { FaultyDisk } from '../../../host/disks/faulty.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { emptyCheck } from '../../../host/disks/raid/types.ts';
import { parseVolumeSpec } from '../../../host/disks/volume-spec.ts';

const base: EmulateOptions = { ...DEFAULT_EMULATE, writes: 400, sourceVolume: parseVolumeSpec('mem:4MiB'), targetVolume: parseVolumeSpec('mem:4MiB') };

describe('silent corruption is attributed to the corrupted member, not reported as a mirror failure', () => {
  it.each([
    ['raid1:2x4MiB', 'corrupt=target:0:40'],
    ['raid1:2x4MiB', 'corrupt=source:1:40'],
    ['raid5:3x2MiB:chunk=16KiB', 'corrupt=target:2:40'],
    ['raid10:4x2MiB:chunk=16KiB', 'corrupt=source:3:40,corrupt=target:0:40'],
  ])('%s with %s: consistent, every mismatch attributed to an injected (member, LBA)', async (spec, faults) => {
    const diskFaults = parseDiskFaults(faults);
    const r = await runEmulation({ ...base, diskReorder: true, sourceVolume: parseVolumeSpec(spec), targetVolume: parseVolumeSpec(spec), diskFaults });
    expect(r.violations, r.reproduce).toEqual([]);
    const struck = r.volumes.filter((v) => diskFaults.some((f) => v.name.startsWith(f.side === 'source' ? 'A/' : 'B/')));
    for (const v of struck) {
      expect(v.mismatches, v.name).toBe(0);
      expect(v.mismatchesAttributed, v.name).toBeGreaterThan(0);
      const members = new Set(diskFaults.filter((f) => v.name.startsWith(f.side === 'source' ? 'A/' : 'B/')).map((f) => ('member' in f ? f.member : -1)));
      for (const a of v.attributedTo) expect(members.has(a.member), JSON.stringify(a)).toBe(true);
    }
  });

  it('a plain disk with rotted sectors: the content checks read the pristine copy, so no mirror failure', async () => {
    const r = await runEmulation({ ...base, diskFaults: parseDiskFaults('corrupt=target:0:200') });
    expect(r.violations, r.reproduce).toEqual([]);
  });

  it('a mismatch no injected corruption explains is a failure (volume-redundancy), even beside injected ones', async () => {
    const r = await runEmulation(
      { ...base, sourceVolume: parseVolumeSpec('raid1:2x4MiB'), targetVolume: parseVolumeSpec('raid1:2x4MiB'), diskFaults: parseDiskFaults('corrupt=target:0:10') },
      {
        // A disk bug no fault plan describes: member 1 of the target's array silently holds other bytes at LBA 7000.
        beforeStart: (topo) => {
          const array = topo.pairs[0]!.secondaryVolume as unknown as { inner: { member(i: number): FaultyDisk } };
          void (array.inner.member(1).inner as MemoryDisk).write(7000, new Uint8Array(512).fill(0x5a));
        },
      },
    );
    const v = r.violations.find((x) => x.invariant === 'volume-redundancy');
    expect(v, JSON.stringify(r.violations)).toBeDefined();
    expect(v!.message).toMatch(/B\/lun0 \(raid1:2x4MiB\) ended optimal with 1 mismatches/);
    expect(r.volumes.find((x) => x.name === 'B/lun0')!.mismatchesAttributed).toBeGreaterThan(0);
  });

  it('attributeMismatches: explained only where a compared slot had corruption injected at that member LBA', () => {
    const clock = new VirtualClock();
    const disks = [0, 1, 2].map((i) => new FaultyDisk({ inner: new MemoryDisk({ name: `m${i}`, sectorCount: 64, clock }), clock }));
    disks[1]!.apply({ corruptSectors: [{ lba: 5, byte: 0, mask: 1 }] });
    const result = { ...emptyCheck(), mismatches: 3, mismatchPlaces: [{ lba: 5, members: [0, 1, 2] }, { lba: 6, members: [0, 1, 2] }, { lba: 5, members: [0, 2] }] };
    expect(attributeMismatches(result, disks)).toEqual({ unexplained: 2, attributed: 1, attributedTo: [{ member: 1, lba: 5 }] });
    // Mismatches beyond those the check named cannot be explained.
    expect(attributeMismatches({ ...result, mismatches: 10 }, disks).unexplained).toBe(9);
  });
});
