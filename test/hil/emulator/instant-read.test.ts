import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import type { FaultyDisk } from '../../../host/disks/faulty.ts';
import { buildVolume } from '../../../host/disks/volume.ts';
import { parseVolumeSpec } from '../../../host/disks/volume-spec.ts';
import { SeededRandom } from '../../../host/random.ts';
import { drive } from '../../../hil/emulator/chunks.ts';
import { copiesDiffer } from '../../../hil/emulator/divergence.ts';
import { FootprintDevice } from '../../../hil/emulator/footprint.ts';
import { instantReader } from '../../../hil/emulator/instant-read.ts';

/** Byte-equal (a native comparison: a deep equality of a MiB is slow). */
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** Fills `count` sectors at `lba` of a device with a pattern drawn from `r`, through the clock. */
async function fill(clock: VirtualClock, dev: { write(lba: number, data: Uint8Array): Promise<void>; sectorSize: number }, lba: number, count: number, r: SeededRandom): Promise<void> {
  const data = new Uint8Array(count * dev.sectorSize);
  for (let i = 0; i < data.length; i += 64) data[i] = 1 + r.int(255);
  await drive(clock, dev.write(lba, data));
}

describe('reading a volume at an instant (what resync-exact compares, docs/tag-tables.md)', () => {
  it.each(['mem:1MiB', 'raid0:3x512KiB:chunk=16KiB', 'raid1:2x1MiB', 'raid5:3x512KiB:chunk=16KiB', 'raid10:4x512KiB:chunk=16KiB'])(
    '%s: gives what a read gives, healthy and with a member failed',
    async (text) => {
      const clock = new VirtualClock();
      const r = new SeededRandom(7);
      const volume = await buildVolume(parseVolumeSpec(text), { name: 'v', clock, random: r.fork('disks') });
      const dev = new FootprintDevice(volume.device);
      for (let k = 0; k < 12; k++) await fill(clock, dev, r.int(dev.sectorCount - 40), 1 + r.int(40), r);
      const read = instantReader(dev)!;
      const all = async (): Promise<Uint8Array> => drive(clock, dev.read(0, dev.sectorCount));
      expect(same(read(0, dev.sectorCount), await all())).toBe(true);
      expect(same(read(37, 91), (await all()).subarray(37 * 512, 128 * 512))).toBe(true);
      if (volume.array === null || volume.array.level === 'raid0') return;
      // A member fails (the data member of some RAID-5 rows among them): reads reconstruct, and so must the instant view.
      (volume.array.member(1) as FaultyDisk).fail();
      volume.array.failMember(1);
      await fill(clock, dev, 100, 64, r);
      expect(same(read(0, dev.sectorCount), await all())).toBe(true);
      // The test can fail: a copy one byte off is told apart.
      const off = await all();
      off[200 * 512]! ^= 1;
      expect(same(read(0, dev.sectorCount), off)).toBe(false);
    },
  );

  it('is null for a device it cannot read without I/O', () => {
    const dev = { name: 'x', sectorSize: 512, sectorCount: 8, read: async () => new Uint8Array(0), write: async () => undefined, flush: async () => undefined };
    expect(instantReader(dev)).toBeNull();
    expect(copiesDiffer({ primary: new FootprintDevice(dev), secondary: new FootprintDevice(dev), sparse: true })).toBeNull();
  });

  it('finds the sectors where two copies differ, as runs, reading only written blocks of blank memory copies', async () => {
    const clock = new VirtualClock();
    const build = async (name: string) => new FootprintDevice((await buildVolume(parseVolumeSpec('mem:4MiB'), { name, clock })).device);
    const [a, b] = [await build('a'), await build('b')];
    const r = new SeededRandom(3);
    await fill(clock, a, 10, 6, r);
    await fill(clock, b, 2000, 3, r);
    await fill(clock, a, 5000, 1, r);
    await fill(clock, b, 5000, 1, r);
    expect(copiesDiffer({ primary: a, secondary: b, sparse: true })).toEqual([[10, 6], [2000, 3], [5000, 1]]);
    expect(copiesDiffer({ primary: a, secondary: a, sparse: false })).toEqual([]);
  });
});
