import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { VirtualClock } from '../../../host/clock/virtual.ts';
import { FaultyDisk } from '../../../host/disks/faulty.ts';
import type { RaidLevel } from '../../../host/disks/raid/types.ts';
import type { SeededRandom } from '../../../host/random.ts';
import { arrayMatchesModel, honestDisk } from './raid-model.ts';

const LEVELS: RaidLevel[] = ['raid0', 'raid1', 'raid5', 'raid10'];
const NUM_RUNS = Number(process.env.MIRRORLAB_RAID_RUNS ?? 200);

describe('RAID arrays against a Map model of a disk (reads, writes, flushes, failures, rebuilds, power cuts)', () => {
  for (const level of LEVELS) {
    it(`${level} matches the model`, async () => {
      await fc.assert(arrayMatchesModel(level), { numRuns: NUM_RUNS });
    });
  }
});

/** A member that flips a bit of member sector 2 in everything it is asked to write there. */
class LyingDisk extends FaultyDisk {
  override write(lba: number, data: Uint8Array): Promise<void> {
    if (lba > 2 || lba + data.length / this.sectorSize <= 2) return super.write(lba, data);
    const bent = data.slice();
    bent[(2 - lba) * this.sectorSize + 7]! ^= 1;
    return super.write(lba, bent);
  }
}

const lyingFirst = (name: string, clock: VirtualClock, random: SeededRandom) => {
  const honest = honestDisk(name, clock, random);
  return name === 'm0' ? new LyingDisk({ inner: honest.inner, clock }) : honest;
};

describe('the model test can fail', () => {
  for (const level of ['raid1', 'raid5'] as const) {
    it(`catches a ${level} member that corrupts what it writes`, async () => {
      const result = await fc.check(arrayMatchesModel(level, lyingFirst), { numRuns: 30, seed: 1 });
      expect(result.failed).toBe(true);
    });
  }
});
