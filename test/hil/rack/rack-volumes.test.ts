import { readdir, rm } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { parseRackVolume } from '../../../hil/rack/options.ts';
import { runRack } from '../../../hil/rack/rack-run.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { attachedRack, expectConsistent } from './attached-copies.ts';

const scratch = scratchDir('rack-volumes');
const ENTRY = new URL('../../support/controller-entry.ts', import.meta.url).pathname;
const { short, leftovers } = attachedRack(scratch);

describe('mirrorlab rack run on emulated USB copies', () => {
  it('an emulated USB target (with its own recoverable faults) under link faults ends consistent, its copy read through the control socket', async () => {
    const r = await runRack(short({
      targetVolume: parseRackVolume('usb-emu:1MiB:faults=stall-in@0.02,short@0.02,csw-tag@0.01'), volumeBytes: null,
      faults: parseLinkFaults('drop=0.01,corrupt=0.01,duplicate=0.01,reset=0.002'), mode: 'sync',
    }));
    expectConsistent(r);
    expect(r.images.map((i) => [i.node, i.volume, i.read])).toEqual([
      ['A', 'file', 'image file'], ['B', 'usb-emu:1MiB:faults=stall-in@0.02,short@0.02,csw-tag@0.01', 'control socket'],
    ]);
    expect(r.faultsInjected.framesDropped + r.faultsInjected.framesCorrupted + r.faultsInjected.framesDuplicated).toBeGreaterThan(0);
    expect(r.reproduce).toContain('--target-volume usb-emu:1MiB:faults=stall-in@0.02,short@0.02,csw-tag@0.01');
    expect(r.reproduce).not.toContain('--volume-mib');
    expect(await readdir(scratch.dir())).toEqual([]);
    expect(leftovers()).toEqual([]);
  });

  it('catches a target that corrupts what it applies to an emulated USB copy, which only reading the copy shows', async () => {
    const r = await runRack(short({ targetVolume: parseRackVolume('usb-emu:1MiB'), volumeBytes: null, faults: parseLinkFaults('none'), mode: 'sync', seed: 5 }), {
      entryModule: ENTRY, entryArgs: { B: ['--plant', 'target-corrupts-applied-data'] },
    });
    expect(r.verdict).toBe('inconsistent');
    const seen = new Set(r.violations.map((v) => `${v.invariant}@${v.node}`));
    expect(seen).toEqual(new Set(['mirror-identical@B', 'data-intact@B']));
    expect(r.violations.find((v) => v.invariant === 'data-intact')!.message).toMatch(/holds neither a whole written sector nor zeros/);
    expect(r.dir).not.toBeNull();
    await rm(r.dir!, { recursive: true, force: true });
    expect(leftovers()).toEqual([]);
  });
});
