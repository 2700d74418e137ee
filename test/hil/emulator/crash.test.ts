import { describe, expect, it } from 'vitest';
import { parseVolumeSpec } from '../../../host/disks/volume-spec.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import type { TraceEvent, TraceSink } from '../../../hil/trace/events.ts';
import { mirrorlab } from '../../support/run-cli.ts';

/**
 * Crashes in the simulator (docs/tag-tables.md, "Crash and power cut in the simulator"): the
 * crashed controller's hosts lose what they had in flight and go on after the restart, the run
 * converges, and the checker finds nothing wrong with correct firmware.
 */
const mem = parseVolumeSpec('mem:8MiB');
const base: EmulateOptions = { ...DEFAULT_EMULATE, writes: 600, queueDepth: 8, sourceVolume: mem, targetVolume: mem, heartbeatMs: 10, interruptionMs: 100, probationMs: 200 };

/** Collects the harness's crash events and the controllers' starts. */
class Starts implements TraceSink {
  readonly enabled = true;
  readonly seen: string[] = [];
  emit(e: TraceEvent): void {
    if (e.kind === 'controller.crash') this.seen.push(`crash ${e.node}${e.power ? ' power' : ''} +${e.downForMs}`);
    if (e.kind === 'controller.start') this.seen.push(`start ${e.node}`);
  }
}

describe('crashes in the simulator', () => {
  it.each([
    ['sync', 'source'], ['sync', 'target'], ['speculative', 'source'], ['speculative', 'target'], ['async', 'source'], ['async', 'target'],
  ] as const)('%s, the %s crashes: the run converges consistent, and the hosts go on after the restart', async (mode, side) => {
    const starts = new Starts();
    // An async host is done within a couple of ms (acknowledged after the local write): strike it sooner.
    const atMs = mode === 'async' ? 0.5 : 4;
    const r = await runEmulation({ ...base, mode, faults: parseLinkFaults(`crash=${side}@${atMs}ms+30ms`) }, { tap: starts });
    expect(r.violations).toEqual([]);
    expect(r.verdict).toBe('consistent');
    const name = side === 'source' ? 'A' : 'B';
    expect(starts.seen).toEqual(['start A', 'start B', `crash ${name} +30`, `start ${name}`]);
    expect([r.crashes, r.powerCuts]).toEqual([1, 0]);
    const w = r.writes;
    // Every write issued completed, except those the crash interrupted; the hosts issued all they were asked for.
    expect(w.issued).toBe(w.requested);
    expect(w.acknowledged + w.errors + w.interrupted).toBe(w.issued);
    if (side === 'source') expect(w.interrupted).toBeGreaterThan(0);
    else expect(w.interrupted).toBe(0);
    // The restart is followed by a resync (a full copy without tag tables), measured and counted.
    expect(r.resync.runs).toBeGreaterThanOrEqual(1);
    expect(r.resync.unmeasured).toBe(0);
    expect(r.resync.bytesCopied).toBeGreaterThan(0);
  });

  it('both sides, twice, in one bidirectional run: still consistent, and the same trace every time', async () => {
    const o: EmulateOptions = { ...base, bidirectional: true, mode: 'speculative', faults: parseLinkFaults('crash=source@3ms+20ms,crash=target@10ms+40ms,crash=source@400ms+10ms') };
    const [a, b] = [await runEmulation(o), await runEmulation(o)];
    expect(a.violations).toEqual([]);
    expect(a.crashes).toBe(3);
    expect(b.traceHash).toBe(a.traceHash);
  });

  it('the stall watchdog does not count a crashed controller\'s down time', async () => {
    // Sync hosts wait for the crashed target for 3 s, far past --stall-ms: no liveness violation.
    const r = await runEmulation({ ...base, mode: 'sync', writes: 200, stallMs: 500, faults: parseLinkFaults('crash=target@5ms+3s') });
    expect(r.violations).toEqual([]);
    expect(r.faultPhaseMs).toBeGreaterThan(3000);
  });

  it('a crash after the fault phase\'s end, or a bad crash item, is refused before anything runs', async () => {
    const out = await mirrorlab(['emulate', '--writes', '10', '--fault-phase-max-ms', '1000', '--faults', 'crash=target@950ms']);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/--faults: crash=target@950ms\+100ms ends at 1050 ms, after the fault phase's maximum of 1000 ms/);
    expect(out.stderr).not.toMatch(/at .*\.ts:\d+/);
    const bad = await mirrorlab(['emulate', '--faults', 'power=left@1ms']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/"power=left@1ms" names the side "left"; allowed source \(controller A\) or target \(controller B\)/);
  });
});
