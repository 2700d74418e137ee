import { execFileSync } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { RACK_DEFAULTS, parseRackVolume, type RackOptions } from '../../../hil/rack/options.ts';
import { runRack } from '../../../hil/rack/rack-run.ts';
import type { RackReport } from '../../../hil/rack/report.ts';
import { scratchDir } from '../../support/scratch-dir.ts';

const scratch = scratchDir('rack-volumes');
const ENTRY = new URL('../../support/controller-entry.ts', import.meta.url).pathname;
const MIB = 1024 * 1024;

/** A short rack on 1 MiB copies (read whole through a control socket at the end): 2 s of writing at queue depth 4. */
const short = (o: Partial<RackOptions>): RackOptions => ({
  ...RACK_DEFAULTS, durationS: 2, queueDepth: 4, volumeBytes: MIB, dir: scratch.dir(), drainS: 20, ...o,
});

/** Processes still running with the scratch directory in their command line (controllers, board stand-ins, socat). */
function leftovers(): string[] {
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(scratch.dir()) && !l.includes(' ps '));
}

function expectConsistent(r: RackReport): void {
  expect(r.violations, r.violations.map((v) => v.message).join('\n')).toEqual([]);
  expect(r.verdict).toBe('consistent');
  expect(r.drained).toBe(true);
  expect(r.writes.acknowledged).toBeGreaterThan(0);
  const [a, b] = [r.images.find((i) => i.node === 'A')!, r.images.find((i) => i.node === 'B')!];
  expect(a.sha256).toBe(b.sha256);
  expect(b.bytes).toBe(MIB);
}

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
