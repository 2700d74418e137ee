import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation, type EmulationReport } from '../../../hil/emulator/run.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { parseVolumeSpec } from '../../../host/disks/volume-spec.ts';
import type { LooseEvent } from '../../../hil/viz/fold.ts';
import { withPlantedBugs, type PlantedBug } from '../../support/planted-bugs.ts';

/**
 * Traces for the visualizer's tests, made by real runs: one with link faults and a partition
 * (every chart moves), and one with a planted firmware bug (testing aid) that the checker catches,
 * so the trace ends with its violations.
 */
export const FAULTY: EmulateOptions = {
  ...DEFAULT_EMULATE, writes: 400, lockContentionPerMillion: 50_000, faults: parseLinkFaults('drop=0.01,corrupt=0.01,partition=5ms+10ms'),
  sourceVolume: parseVolumeSpec('mem:8MiB'), targetVolume: parseVolumeSpec('mem:8MiB'),
};
/** The options of the broken run; it runs with {@link BROKEN_BUGS} planted (makeTrace plants them for it). */
export const BROKEN: EmulateOptions = { ...FAULTY, writes: 300 };
export const BROKEN_BUGS: readonly PlantedBug[] = ['target-applies-without-lock'];

export interface TraceFixture {
  path: string;
  report: EmulationReport;
  events: LooseEvent[];
}

export async function makeTrace(dir: string, name: string, opts: EmulateOptions): Promise<TraceFixture> {
  const path = join(dir, `${name}.jsonl`);
  const bugs = opts === BROKEN ? BROKEN_BUGS : [];
  const report = await withPlantedBugs(bugs, () => runEmulation(opts, { tracePath: path }));
  const events = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as LooseEvent);
  return { path, report, events };
}
