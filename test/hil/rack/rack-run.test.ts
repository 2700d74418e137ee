import { execFileSync } from 'node:child_process';
import { access, readdir, rm } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { RACK_DEFAULTS, type RackOptions } from '../../../hil/rack/options.ts';
import { runRack } from '../../../hil/rack/rack-run.ts';
import type { RackReport } from '../../../hil/rack/report.ts';
import { scratchDir } from '../../support/scratch-dir.ts';

const scratch = scratchDir('rack');
const ENTRY = new URL('../../support/controller-entry.ts', import.meta.url).pathname;

/** A short rack: 2 s of writing at queue depth 4 on 4 MiB images, files under this test file's scratch directory. */
const short = (o: Partial<RackOptions>): RackOptions => ({
  ...RACK_DEFAULTS, durationS: 2, queueDepth: 4, volumeBytes: 4 * 1024 * 1024, dir: scratch.dir(), drainS: 20, ...o,
});

/** No process still running has the scratch directory in its command line (controllers, socat). */
function leftovers(): string[] {
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(scratch.dir()) && !l.includes(' ps '));
}

function expectConsistent(r: RackReport): void {
  expect(r.violations, r.violations.map((v) => v.message).join('\n')).toEqual([]);
  expect(r.verdict).toBe('consistent');
  expect(r.drained).toBe(true);
  expect(r.writes.acknowledged).toBeGreaterThan(0);
  for (const lun of new Set(r.images.map((i) => i.lun))) {
    const pair = r.images.filter((i) => i.lun === lun);
    expect(pair).toHaveLength(2);
    expect(pair[0]!.sha256).toBe(pair[1]!.sha256);
  }
  expect(r.telemetry.edges).toBeGreaterThan(0);
}

describe('mirrorlab rack run', () => {
  it('a clean run over TCP, both ways, ends consistent; its files and processes are gone', async () => {
    const r = await runRack(short({ faults: parseLinkFaults('none'), bidirectional: true, mode: 'sync' }));
    expectConsistent(r);
    expect(r.images.map((i) => `${i.node}${i.lun}`).sort()).toEqual(['A0', 'A1', 'B0', 'B1']);
    expect(r.processes.map((p) => p.exits)).toEqual([[{ code: 0, signal: null }], [{ code: 0, signal: null }]]);
    expect(r.restarts).toBe(0);
    expect(r.dir).toBeNull();
    expect(await readdir(scratch.dir())).toEqual([]);
    expect(leftovers()).toEqual([]);
  });

  it('over TCP with faults and the target SIGKILLed and restarted: the source sees the new session, and the pair ends consistent', async () => {
    const faults = parseLinkFaults('drop=0.01,corrupt=0.01,duplicate=0.01,delay=0.02@5ms,reset=0.002,silent=200ms+600ms');
    const r = await runRack(short({ faults, kill: { side: 'target', atS: 1 }, mode: 'speculative' }));
    expectConsistent(r);
    const b = r.processes.find((p) => p.name === 'B')!;
    expect(b.sessions).toHaveLength(2);
    expect(b.exits).toEqual([{ code: null, signal: 'SIGKILL' }, { code: 0, signal: null }]);
    expect(r.restarts).toBe(1);
    expect(r.faultsInjected.silentCuts).toBe(1);
    expect(r.faultsInjected.framesDropped + r.faultsInjected.framesCorrupted + r.faultsInjected.framesDuplicated).toBeGreaterThan(0);
    expect(r.reproduce).toContain('--kill target@1');
    expect(leftovers()).toEqual([]);
  });

  it('over serial (two socat PTY pairs with the relay between them) with drops and corruption ends consistent', async () => {
    const r = await runRack(short({ link: 'serial', faults: parseLinkFaults('drop=0.01,corrupt=0.01,hbloss=0.1'), mode: 'async' }));
    expectConsistent(r);
    expect(r.proxy?.link).toBe('serial');
    expect(leftovers()).toEqual([]);
  });

  it('catches a planted firmware bug (the target confirms before it applies): inconsistent, the invariant named, files kept', async () => {
    const r = await runRack(short({ faults: parseLinkFaults('none'), mode: 'sync', seed: 7 }), {
      entryModule: ENTRY, entryArgs: { B: ['--plant', 'target-acks-before-write'] },
    });
    expect(r.verdict).toBe('inconsistent');
    expect(r.violations.map((v) => v.invariant)).toContain('ack-after-apply');
    expect(r.reproduce).toMatch(/^npx mirrorlab rack run --link tcp --seed 7 --mode sync --faults none/);
    expect(r.dir).not.toBeNull();
    await access(`${r.dir}/b.jsonl`);
    await rm(r.dir!, { recursive: true, force: true });
    expect(leftovers()).toEqual([]);
  });

  it('stops everything and removes its files when interrupted (Ctrl-C)', async () => {
    const abort = new AbortController();
    let writing = false;
    const run = runRack(short({ faults: parseLinkFaults('none'), durationS: 30 }), {
      signal: abort.signal,
      onProgress: (p) => {
        if (p.phase === 'writing' && p.writesAcked > 0 && !writing) {
          writing = true;
          abort.abort();
        }
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'ML_ERR_RACK_INTERRUPTED' });
    expect(writing).toBe(true);
    expect(await readdir(scratch.dir())).toEqual([]);
    expect(leftovers()).toEqual([]);
  });
});
