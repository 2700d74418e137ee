import { VirtualClock } from '../../../host/clock/virtual.ts';
import { Raid0 } from '../../../host/disks/raid/raid0.ts';
import { Raid1 } from '../../../host/disks/raid/raid1.ts';
import { Raid10 } from '../../../host/disks/raid/raid10.ts';
import { Raid5 } from '../../../host/disks/raid/raid5.ts';
import { blockDeviceContract } from './contract.ts';
import { makeDisks, MEMBERS } from './raid-fixtures.ts';

// Small chunks (4 sectors) so that the contract's multi-sector requests cross chunks and stripes.
const SERVICE = { service: { fixedMs: 0.1 } };

blockDeviceContract('Raid0 over faulty memory disks', async ({ sectorSize }) => {
  const clock = new VirtualClock();
  const disks = makeDisks(clock, MEMBERS.raid0, sectorSize, 64, SERVICE);
  const device = new Raid0({ name: 'r0', members: disks.faulty, clock, chunkBytes: 4 * sectorSize });
  return {
    clock, device,
    injectMediaError: (lba) => {
      const { member, memberLba } = device.locate(lba);
      disks.faulty[member]!.apply({ badSectors: [memberLba] });
    },
    failDevice: () => disks.faulty.forEach((d) => d.fail()),
  };
});

blockDeviceContract('Raid1 (3-way) over faulty memory disks', async ({ sectorSize }) => {
  const clock = new VirtualClock();
  const disks = makeDisks(clock, 3, sectorSize, 64, SERVICE);
  const device = new Raid1({ name: 'r1', members: disks.faulty, clock });
  return {
    clock, device,
    injectMediaError: (lba) => disks.faulty.forEach((d) => d.apply({ badSectors: [lba] })),
    failDevice: () => disks.faulty.forEach((d) => d.fail()),
  };
});

blockDeviceContract('Raid1 over plain memory disks', async ({ sectorSize }) => {
  const clock = new VirtualClock();
  const device = new Raid1({ name: 'r1-plain', members: makeDisks(clock, 2, sectorSize, 64).inner, clock });
  return { clock, device };
});

blockDeviceContract('Raid5 over faulty memory disks', async ({ sectorSize }) => {
  const clock = new VirtualClock();
  const disks = makeDisks(clock, MEMBERS.raid5, sectorSize, 64, SERVICE);
  const device = new Raid5({ name: 'r5', members: disks.faulty, clock, chunkBytes: 4 * sectorSize });
  return {
    clock, device,
    injectMediaError: (lba) => {
      // One bad sector is repaired from parity; the same row bad on the parity member too is not.
      const { member, memberLba, parityMember } = device.locate(lba);
      disks.faulty[member]!.apply({ badSectors: [memberLba] });
      disks.faulty[parityMember]!.apply({ badSectors: [memberLba] });
    },
    failDevice: () => [0, 2].forEach((i) => disks.faulty[i]!.fail()),
  };
});

blockDeviceContract('Raid5 (3 members) over plain memory disks with write caches', async ({ sectorSize }) => {
  const clock = new VirtualClock();
  const disks = makeDisks(clock, 3, sectorSize, 64, { writeCacheBytesMax: 16 * sectorSize });
  return { clock, device: new Raid5({ name: 'r5-plain', members: disks.inner, clock, chunkBytes: 2 * sectorSize }) };
});

blockDeviceContract('Raid10 over faulty memory disks', async ({ sectorSize }) => {
  const clock = new VirtualClock();
  const disks = makeDisks(clock, MEMBERS.raid10, sectorSize, 64, SERVICE);
  const device = new Raid10({ name: 'r10', members: disks.faulty, clock, chunkBytes: 4 * sectorSize });
  return {
    clock, device,
    injectMediaError: (lba) => {
      const { members, memberLba } = device.locate(lba);
      for (const m of members) disks.faulty[m]!.apply({ badSectors: [memberLba] });
    },
    failDevice: () => disks.faulty.forEach((d) => d.fail()),
  };
});
