import { describe, expect, it } from 'vitest';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { parseDiskFaults } from '../../../hil/faults/disk-fault-plan.ts';
import { parseVolumeSpec } from '../../../host/disks/volume-spec.ts';
import { targetTrustsCompletionOrder } from '../../support/broken-firmware.ts';

// One host write at a time (queue depth 1): the source never has overlapping writes in flight,
// but the target's commit log collects many (async, a slow target disk), and a hot spot makes
// them overlap.
const base: EmulateOptions = {
  ...DEFAULT_EMULATE, mode: 'async', writes: 1500, queueDepth: 1, pattern: 'hot', seed: 4,
  sourceVolume: parseVolumeSpec('mem:1MiB'), targetVolume: parseVolumeSpec('mem:1MiB'), diskFaults: parseDiskFaults('slow=target:0:50'),
};

describe('disks that reorder completions catch firmware that depends on completion order', () => {
  it('a target that applies overlapping writes together is caught once its disk reorders them', async () => {
    const caught = await runEmulation({ ...base, diskReorder: true }, { beforeStart: targetTrustsCompletionOrder });
    const onTarget = caught.violations.filter((v) => v.node === 'B' && (v.invariant === 'data-intact' || v.invariant === 'write-order' || v.invariant === 'mirror-identical'));
    expect(onTarget.length, caught.reproduce).toBeGreaterThan(0);
    expect(caught.reproduce).toContain('--disk-reorder');
  });

  it('a run on reordering disks is still a pure function of its seed', async () => {
    const o = { ...base, diskReorder: true, writes: 300, queueDepth: 16 };
    const [a, b] = [await runEmulation(o), await runEmulation(o)];
    expect(b.traceHash).toBe(a.traceHash);
    expect((await runEmulation({ ...o, seed: 5 })).traceHash).not.toBe(a.traceHash);
  });

  it('the same broken target passes on disks that keep issue order: only reordering shows the bug', async () => {
    const r = await runEmulation({ ...base }, { beforeStart: targetTrustsCompletionOrder });
    expect(r.violations, r.reproduce).toEqual([]);
  });

  it('the real target (which never has overlapping writes in flight) passes on reordering disks, RAID members included', async () => {
    for (const target of ['mem:1MiB', 'raid1:2x1MiB', 'raid5:3x1MiB:chunk=16KiB']) {
      const r = await runEmulation({ ...base, diskReorder: true, targetVolume: parseVolumeSpec(target), sourceVolume: parseVolumeSpec(target) });
      expect(r.violations, `${target}: ${r.reproduce}`).toEqual([]);
    }
  });
});
