import { expect } from 'vitest';
import type { BlockDevice } from '../../../firmware/ports/block-device.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { FaultyDisk } from '../../../host/disks/faulty.ts';
import { FileDisk } from '../../../host/disks/file.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { Raid0 } from '../../../host/disks/raid/raid0.ts';
import { Raid1 } from '../../../host/disks/raid/raid1.ts';
import type { Raid10 } from '../../../host/disks/raid/raid10.ts';
import { Raid5 } from '../../../host/disks/raid/raid5.ts';
import type { RaidArray, RaidLevel, RaidSuperblock } from '../../../host/disks/raid/types.ts';
import { blockDeviceContract, type ContractSubject } from './contract.ts';
import { syncSpy } from './file-spy.ts';
import { makeArray, makeDisks, MEMBERS } from './raid-fixtures.ts';
import { scratchDir } from '../../support/scratch-dir.ts';

// Small chunks (4 sectors) so that the contract's multi-sector requests cross chunks and stripes.
// Members have volatile write caches that lose everything unflushed at a power cut, so the
// durability case can tell a flush that reaches every member from one that does not.
const cached = (sectorSize: number) => ({ service: { fixedMs: 0.1 }, writeCacheBytesMax: 16 * sectorSize });
const ALL = { can: { mediaErrors: true, deviceFailure: true, powerCycle: true } };

/**
 * Where array sector `lba` lives on the members: the copy or copies of RAID-0/1/10, the data
 * chunk and its parity for RAID-5 (one bad sector is repaired from parity; the same row bad on
 * the parity member too is not).
 */
function placesOf(array: RaidArray, lba: number): { member: number; memberLba: number }[] {
  if (array instanceof Raid0) return [array.locate(lba)];
  if (array instanceof Raid1) return Array.from({ length: array.memberCount }, (_, member) => ({ member, memberLba: lba }));
  if (array instanceof Raid5) {
    const { member, memberLba, parityMember } = array.locate(lba);
    return [{ member, memberLba }, { member: parityMember, memberLba }];
  }
  const { members, memberLba } = (array as Raid10).locate(lba);
  return members.map((member) => ({ member, memberLba }));
}

/**
 * A subject over `members` (fault overlays): media errors on every place of an LBA, failure of
 * every member, and power cycles that stop the array and reassemble it from its superblock.
 */
function arraySubject(clock: VirtualClock, members: FaultyDisk[], make: (superblock?: RaidSuperblock) => RaidArray): ContractSubject {
  let array = make();
  return {
    clock,
    get device() {
      return array;
    },
    injectMediaError: (lba) => {
      for (const { member, memberLba } of placesOf(array, lba)) members[member]!.apply({ badSectors: [memberLba] });
    },
    failDevice: () => members.forEach((d) => d.fail()),
    powerCycle: () => {
      array.powerCut();
      array = make(array.superblock());
      return array;
    },
  };
}

function levelSubject(level: RaidLevel, n: number, sectorSize: number, prepare: (a: RaidArray) => void = () => {}): ContractSubject {
  const clock = new VirtualClock();
  const disks = makeDisks(clock, n, sectorSize, 64, cached(sectorSize));
  return arraySubject(clock, disks.faulty, (superblock) => {
    const array = makeArray(level, level, disks.faulty, clock, 4 * sectorSize, superblock);
    if (superblock === undefined) prepare(array);
    return array;
  });
}

blockDeviceContract('Raid0 over faulty memory disks', async ({ sectorSize }) => levelSubject('raid0', MEMBERS.raid0, sectorSize), ALL);
blockDeviceContract('Raid1 (3-way) over faulty memory disks', async ({ sectorSize }) => levelSubject('raid1', 3, sectorSize), ALL);
blockDeviceContract('Raid5 over faulty memory disks', async ({ sectorSize }) => levelSubject('raid5', MEMBERS.raid5, sectorSize), ALL);
blockDeviceContract('Raid10 over faulty memory disks', async ({ sectorSize }) => levelSubject('raid10', MEMBERS.raid10, sectorSize), ALL);

blockDeviceContract('Raid1 over plain memory disks', async ({ sectorSize }) => {
  const clock = new VirtualClock();
  const device = new Raid1({ name: 'r1-plain', members: makeDisks(clock, 2, sectorSize, 64).inner, clock });
  return { clock, device };
});

blockDeviceContract('Raid5 (3 members) over plain memory disks with write caches', async ({ sectorSize }) => {
  const clock = new VirtualClock();
  const disks = makeDisks(clock, 3, sectorSize, 64, { writeCacheBytesMax: 16 * sectorSize });
  return { clock, device: new Raid5({ name: 'r5-plain', members: disks.inner, clock, chunkBytes: 2 * sectorSize }) };
});

// Degraded: one member (RAID-10: one per pair) failed before the first request.
blockDeviceContract('Raid1 (3-way) degraded', async ({ sectorSize }) => levelSubject('raid1', 3, sectorSize, (a) => a.failMember(0)), ALL);
blockDeviceContract('Raid5 degraded', async ({ sectorSize }) => levelSubject('raid5', MEMBERS.raid5, sectorSize, (a) => a.failMember(1)), ALL);
blockDeviceContract('Raid10 degraded', async ({ sectorSize }) => levelSubject('raid10', MEMBERS.raid10, sectorSize, (a) => {
  a.failMember(0);
  a.failMember(3);
}), ALL);

/**
 * While rebuilding: member 1 is replaced by a spare (itself under a fault overlay) and the
 * rebuild runs in the background, slowly (2 sectors a step, 512-sector members), so every case
 * meets it under way: below the rebuild cursor the spare serves reads, above it it does not.
 */
async function rebuildingSubject(level: RaidLevel, sectorSize: number): Promise<ContractSubject> {
  const clock = new VirtualClock();
  const memberSectors = 512;
  const disks = makeDisks(clock, MEMBERS[level], sectorSize, memberSectors, cached(sectorSize));
  const spare = new FaultyDisk({ inner: new MemoryDisk({ name: 'spare', sectorSize, sectorCount: memberSectors, clock, ...cached(sectorSize) }), clock });
  const members = [...disks.faulty];
  members[1] = spare;
  const subject = arraySubject(clock, members, (superblock) => {
    const array = makeArray(level, level, superblock === undefined ? disks.faulty : members, clock, 4 * sectorSize, superblock);
    if (superblock === undefined) {
      array.failMember(1);
      array.rebuild(1, spare, { stepSectors: 2 }).catch(() => undefined); // stopped by a power cut or a failure
    }
    return array;
  });
  const array = subject.device as RaidArray;
  await clock.run({ until: () => (array.rebuildProgress()?.doneSectors ?? 0) >= 64 });
  expect(array.state).toBe('rebuilding');
  return subject;
}

blockDeviceContract('Raid1 while rebuilding', async ({ sectorSize }) => rebuildingSubject('raid1', sectorSize), ALL);
blockDeviceContract('Raid5 while rebuilding', async ({ sectorSize }) => rebuildingSubject('raid5', sectorSize), ALL);
blockDeviceContract('Raid10 while rebuilding', async ({ sectorSize }) => rebuildingSubject('raid10', sectorSize), ALL);

// RAID over file disks: real images, fsync on flush (counted on the file handles).
const scratch = scratchDir('raid-files');

async function fileMembers(n: number, sectorSize: number, sectorCount: number, clock: VirtualClock) {
  const spy = syncSpy();
  const files: FileDisk[] = [];
  for (let i = 0; i < n; i++) {
    files.push(await FileDisk.open({ path: scratch.path('m'), sectorSize, sectorCount, clock, service: { fixedMs: 0.1 }, openFile: spy.openFile }));
  }
  return { files, spy, close: async () => void (await Promise.all(files.map((f) => f.close()))) };
}

blockDeviceContract('Raid1 over file disks', async ({ sectorSize }) => {
  const clock = new VirtualClock();
  const { files, spy, close } = await fileMembers(2, sectorSize, 64, clock);
  return { clock, device: new Raid1({ name: 'r1-files', members: files, clock }), barriers: spy.syncs, close };
}, { can: { barriers: true } });

blockDeviceContract('Raid5 over faulty file disks', async ({ sectorSize }) => {
  const clock = new VirtualClock();
  const { files, spy, close } = await fileMembers(3, sectorSize, 64, clock);
  const faulty = files.map((inner) => new FaultyDisk({ inner, clock }));
  const device: BlockDevice & Raid5 = new Raid5({ name: 'r5-files', members: faulty, clock, chunkBytes: 4 * sectorSize });
  return {
    clock, device, barriers: spy.syncs, close,
    injectMediaError: (lba) => {
      for (const { member, memberLba } of placesOf(device, lba)) faulty[member]!.apply({ badSectors: [memberLba] });
    },
    failDevice: () => faulty.forEach((d) => d.fail()),
  };
}, { can: { mediaErrors: true, deviceFailure: true, barriers: true } });
