import { describe, expect, it } from 'vitest';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { withPlantedBugs } from '../../support/planted-bugs.ts';

/** The checker's violations name real places in a whole run, not LUN 0 LBA 0 by default. */
const bytes = 8 << 20;
const opts: EmulateOptions = {
  ...DEFAULT_EMULATE, writes: 300, queueDepth: 8, faults: parseLinkFaults('drop=0.02:WRITE'),
  sourceVolume: { kind: 'mem', bytes, sectorSize: 512 }, targetVolume: { kind: 'mem', bytes, sectorSize: 512 },
};

describe('ConsistencyChecker in a run', () => {
  it('names the LBA of each rollback entry a broken source dropped before its confirmation', async () => {
    const r = await withPlantedBugs(['source-drops-entry-before-ack'], () => runEmulation(opts));
    const early = r.violations.filter((v) => v.invariant === 'rollback-after-confirm');
    expect(early.length).toBeGreaterThan(0);
    const sectors = bytes / 512;
    for (const v of early) {
      expect(v.lba).toBeGreaterThanOrEqual(0);
      expect(v.lba).toBeLessThan(sectors);
      expect(v.message).toContain(`(LUN 0 LBA ${v.lba})`);
    }
    // Random writes over 16,384 sectors: the places differ, so they were looked up, not defaulted.
    expect(new Set(early.map((v) => v.lba)).size).toBeGreaterThan(1);
  });
});
