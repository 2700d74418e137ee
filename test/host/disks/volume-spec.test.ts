import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { FaultyDisk } from '../../../host/disks/faulty.ts';
import { Raid5 } from '../../../host/disks/raid/raid5.ts';
import { buildVolume, formatVolumeSpec, parseVolumeSpec, VolumeSpecError, type VolumeSpec } from '../../../host/disks/volume-spec.ts';
import { pattern, runUntilSettled } from './helpers.ts';

const MiB = 2 ** 20;

describe('parseVolumeSpec', () => {
  it('reads every kind of the issue\'s examples', () => {
    expect(parseVolumeSpec('mem:64MiB')).toEqual({ kind: 'mem', bytes: 64 * MiB, sectorSize: 512 });
    expect(parseVolumeSpec('file:/tmp/a:b.img:64MiB')).toEqual({ kind: 'file', path: '/tmp/a:b.img', bytes: 64 * MiB, sectorSize: 512 });
    expect(parseVolumeSpec('raid0:2x64MiB')).toEqual({ kind: 'raid0', members: 2, memberBytes: 64 * MiB, sectorSize: 512, chunkBytes: 65536 });
    expect(parseVolumeSpec('raid1:2x64MiB')).toMatchObject({ kind: 'raid1', members: 2 });
    expect(parseVolumeSpec('raid5:4x64MiB:chunk=64KiB')).toEqual({ kind: 'raid5', members: 4, memberBytes: 64 * MiB, sectorSize: 512, chunkBytes: 65536 });
    expect(parseVolumeSpec('raid10:4x64MiB')).toMatchObject({ kind: 'raid10', members: 4 });
    expect(parseVolumeSpec('raid5:3x1GiB:chunk=512KiB:sector=4096')).toEqual({ kind: 'raid5', members: 3, memberBytes: 2 ** 30, sectorSize: 4096, chunkBytes: 512 * 1024 });
    expect(parseVolumeSpec('mem:4TiB:sector=4096')).toEqual({ kind: 'mem', bytes: 4 * 2 ** 40, sectorSize: 4096 });
  });

  it('rejects bad specs with ML_ERR_VOLUME_SPEC, saying what is wrong and what is allowed', () => {
    const cases: [string, RegExp][] = [
      ['', /empty/],
      ['disk:64MiB', /unknown kind "disk"/],
      ['mem', /mem takes one size/],
      ['mem:64', /not a size like 64MiB/],
      ['mem:64MB', /units: B, KiB, MiB, GiB, TiB/],
      ['mem:0MiB', /between 1 B/],
      ['mem:1000B', /whole number of 512-byte sectors/],
      ['mem:128TiB', /larger than the 64TiB/],
      ['file:64MiB', /file takes a path and a size/],
      ['raid5:2x64MiB', /raid5 takes 3 to 32 members, not 2/],
      ['raid10:5x64MiB', /even number of members/],
      ['raid1:64MiB', /not NxSIZE/],
      ['raid0:40x1MiB', /2 to 32 members/],
      ['raid5:4x64MiB:chunk=48KiB', /power of two/],
      ['raid5:4x64KiB:chunk=1MiB', /larger than a member/],
      ['raid1:2x64MiB:chunk=64KiB', /chunk= applies to raid0, raid5 and raid10/],
      ['mem:64MiB:sector=1024', /512 or 4096/],
      ['mem:64MiB:speed=fast', /unknown option "speed"/],
      ['mem:64MiB:sector', /mem takes one size/],
      ['mem:64MiB:sector=512:sector=512', /given twice/],
      ['x'.repeat(5000), /longer than 4096/],
    ];
    for (const [spec, problem] of cases) {
      let error: unknown;
      try {
        parseVolumeSpec(spec);
      } catch (e) {
        error = e;
      }
      expect(error, spec.slice(0, 40)).toBeInstanceOf(VolumeSpecError);
      expect((error as VolumeSpecError).code).toBe('ML_ERR_VOLUME_SPEC');
      expect((error as VolumeSpecError).message).toMatch(problem);
      expect((error as VolumeSpecError).message).toContain('a volume is mem:SIZE');
    }
  });

  it('formats specs so that they parse back the same', () => {
    const sizeArb = fc.integer({ min: 1, max: 4096 }).map((k) => k * 4096);
    const specArb: fc.Arbitrary<VolumeSpec> = fc.oneof(
      fc.record({ kind: fc.constant('mem' as const), bytes: sizeArb, sectorSize: fc.constantFrom(512, 4096) }),
      fc.record({ kind: fc.constant('file' as const), path: fc.constantFrom('/tmp/x.img', 'rel/a:b.img'), bytes: sizeArb, sectorSize: fc.constantFrom(512, 4096) }),
      fc.record({
        kind: fc.constantFrom('raid0' as const, 'raid5' as const), members: fc.integer({ min: 3, max: 32 }),
        memberBytes: sizeArb.map((b) => b * 16), sectorSize: fc.constant(4096), chunkBytes: fc.constantFrom(4096, 65536),
      }),
    );
    fc.assert(fc.property(specArb, (spec) => {
      expect(parseVolumeSpec(formatVolumeSpec(spec))).toEqual(spec);
    }), { numRuns: 200 });
    expect(formatVolumeSpec(parseVolumeSpec('raid5:4x64MiB:chunk=64KiB'))).toBe('raid5:4x64MiB');
  });

  it('never throws anything but a VolumeSpecError on arbitrary text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 40 }), (text) => {
      try {
        parseVolumeSpec(text);
      } catch (error) {
        expect(error).toBeInstanceOf(VolumeSpecError);
      }
    }), { numRuns: 500 });
  });
});

describe('buildVolume', () => {
  it('builds a RAID-5 of faulty memory disks that works', async () => {
    const clock = new VirtualClock();
    const volume = await buildVolume(parseVolumeSpec('raid5:4x1MiB:chunk=16KiB'), { name: 'src', clock });
    expect(volume.array).toBeInstanceOf(Raid5);
    expect(volume.device.sectorCount).toBe((3 * MiB) / 512);
    expect(volume.disks.map((d) => d.name)).toEqual(['src.m0', 'src.m1', 'src.m2', 'src.m3']);
    expect(volume.disks.every((d) => d instanceof FaultyDisk)).toBe(true);
    await runUntilSettled(clock, volume.device.write(100, pattern(1, 64 * 512)));
    (volume.disks[1] as FaultyDisk).fail();
    expect(await runUntilSettled(clock, volume.device.read(100, 64))).toEqual(pattern(1, 64 * 512));
    expect(volume.array?.state).toBe('degraded');
  });

  it('builds every layout, and a file volume it can close', async () => {
    const clock = new VirtualClock();
    for (const text of ['mem:1MiB', 'raid0:2x1MiB', 'raid1:3x1MiB', 'raid10:4x1MiB:sector=4096']) {
      const volume = await buildVolume(parseVolumeSpec(text), { name: 'v', clock, faultOverlay: false });
      await runUntilSettled(clock, volume.device.write(0, pattern(2, 4096)));
      expect(await runUntilSettled(clock, volume.device.read(0, 4096 / volume.device.sectorSize))).toEqual(pattern(2, 4096));
    }
    const dir = await mkdtemp(join(tmpdir(), 'mirrorlab-volume-'));
    try {
      const volume = await buildVolume(parseVolumeSpec(`file:${join(dir, 'v.img')}:1MiB`), { name: 'f', clock });
      await runUntilSettled(clock, volume.device.write(1, pattern(3, 512)));
      await volume.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
