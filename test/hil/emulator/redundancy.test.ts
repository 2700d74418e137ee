import { describe, expect, it } from 'vitest';
import type { StorageController } from '../../../firmware/controller/storage-controller.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { FaultyDisk } from '../../../host/disks/faulty.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { parseVolumeSpec } from '../../../host/disks/volume-spec.ts';
import { BLANK_BASELINE } from '../../../hil/checker/content-checks.ts';
import { ConsistencyChecker } from '../../../hil/checker/consistency-checker.ts';
import { finalContentChecks } from '../../../hil/emulator/final-checks.ts';
import { FootprintDevice } from '../../../hil/emulator/footprint.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import type { MirrorPair } from '../../../hil/emulator/topology.ts';
import { parseDiskFaults } from '../../../hil/faults/disk-fault-plan.ts';
import { writeData } from '../../../hil/workload/data.ts';

const mem = parseVolumeSpec('mem:8MiB');
const run = (o: Partial<EmulateOptions>) => runEmulation({ ...DEFAULT_EMULATE, writes: 600, sourceVolume: mem, targetVolume: mem, ...o });

describe('unreadable sectors left at the end are flagged', () => {
  it('bad sectors on a plain volume (nothing can repair them): volume-redundancy names the volume, member and LBA', async () => {
    const r = await run({ diskFaults: parseDiskFaults('bad=target:0:16') });
    const b = r.volumes.find((v) => v.name === 'B/lun0')!;
    expect(b.unreadableSectors).toBeGreaterThan(0);
    expect(b.unreadableSectors).toBeLessThanOrEqual(16);
    const v = r.violations.filter((x) => x.invariant === 'volume-redundancy');
    expect(v).toHaveLength(1);
    expect(v[0]).toMatchObject({ node: 'B', lun: 0, lba: b.firstUnreadable!.lba });
    expect(v[0]!.message).toMatch(new RegExp(`B/lun0 \\(mem:8MiB\\) has ${b.unreadableSectors} sectors left unreadable at the end .*member 0, at its LBA ${b.firstUnreadable!.lba}`));
    // They never held host data (a write remaps a bad sector): no content violation for them.
    expect(r.violations.map((x) => x.invariant)).toEqual(['volume-redundancy']);
  });

  it('the same run without bad sectors is consistent (it is the bad sectors that are flagged)', async () => {
    const r = await run({ diskFaults: parseDiskFaults('slow=target:0:2') });
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.volumes.every((v) => v.unreadableSectors === 0 && v.firstUnreadable === null)).toBe(true);
  });

  it('a sector holding the last write that cannot be read back is a lost write (data-intact), and the rest of its piece is still checked', async () => {
    const clock = new VirtualClock();
    const checker = new ConsistencyChecker();
    const faulty = new FaultyDisk({ inner: new MemoryDisk({ name: 'B/lun0', sectorCount: 4096, clock }), clock });
    const [a, b] = [new FootprintDevice(new MemoryDisk({ name: 'A/lun0', sectorCount: 4096, clock })), new FootprintDevice(faulty)];
    for (const [tag, lba] of [[1, 0], [2, 64]] as const) {
      checker.emit({ kind: 'host.write', t: 0, node: 'A', tag, lun: 0, lba, count: 8 });
      const data = writeData(1, 0, tag, lba, 8, 512);
      void a.write(lba, data);
      void b.write(lba, tag === 2 ? data.map((x, i) => (i === 100 ? x ^ 1 : x)) : data); // tag 2 lands torn on B
    }
    await clock.run();
    faulty.apply({ badSectors: [3] }); // the medium fails under tag 1's data
    const pair = { lun: 0, primary: { name: 'A', id: 1 } as StorageController, secondary: { name: 'B', id: 2 } as StorageController, primaryVolume: a, secondaryVolume: b } as MirrorPair;
    await finalContentChecks(clock, checker, [{ pair, primary: a, secondary: b, sparse: true, extraLbas: [], baseline: BLANK_BASELINE }]);
    expect(checker.violations.map((v) => [v.invariant, v.node, v.lba, v.seq])).toEqual([['data-intact', 'B', 3, 1], ['mirror-identical', 'B', 64, 0]]);
    expect(checker.violations[0]!.message).toMatch(/last write to it \(tag 1\) cannot be read back/);
  });
});
