import { describe, expect, it } from 'vitest';
import type { MirrorSyncState, TelemetryEvent } from '../../../firmware/telemetry/events.ts';
import { RecoveryWatch } from '../../../hil/emulator/recovery-watch.ts';
import { DEFAULT_EMULATE } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { parseVolumeSpec } from '../../../host/disks/volume-spec.ts';
import type { TraceEvent, TraceSink } from '../../../hil/trace/events.ts';

/** When an async target is held to the prefix rule (docs/tag-tables.md, "What the checker checks"). */
describe('the recovery watch', () => {
  const state = (node: string, lun: number, s: MirrorSyncState): TelemetryEvent => ({ kind: 'mirror.state', t: 1, node, peer: node === 'A' ? 'B' : 'A', lun, state: s, doneSectors: 0, totalSectors: 0 });
  const mirrors = [{ source: 'A', target: 'B', lun: 0 }, { source: 'B', target: 'A', lun: 1 }];

  it('holds the targets to it except while a resync is due or copying; a suspended mirror is frozen, a prefix still', () => {
    const w = new RecoveryWatch(mirrors);
    expect(w.holds()).toBe(true);
    w.emit(state('A', 0, 'suspended'));
    expect(w.holds()).toBe(true);
    w.emit(state('A', 0, 'needs-resync'));
    expect([w.holds(), w.recovered()]).toEqual([false, false]);
    w.emit(state('A', 0, 'resyncing'));
    w.emit(state('A', 0, 'in-sync'));
    expect([w.holds(), w.recovered(), w.recovered()]).toEqual([true, true, false]);
  });

  it('after a crash of either side, not until the crashed side started again and a resync then finished', () => {
    const w = new RecoveryWatch(mirrors);
    w.emit({ kind: 'controller.crash', t: 2, node: 'B', power: true, downForMs: 10 });
    expect(w.holds()).toBe(false);
    // A resync of the old start, or an in-sync said before the crashed side is back, does not count.
    w.emit(state('A', 0, 'in-sync'));
    w.emit({ kind: 'resync.done', t: 3, node: 'B', peer: 'A', lun: 1, resync: 1, sectorsCopied: 0, virtualMs: 1 });
    expect(w.holds()).toBe(false);
    w.emit({ kind: 'controller.start', t: 12, node: 'B', session: 9 });
    w.emit({ kind: 'resync.done', t: 20, node: 'A', peer: 'B', lun: 0, resync: 1, sectorsCopied: 8, virtualMs: 1 });
    expect(w.holds()).toBe(false); // LUN 1's mirror, whose source crashed, has not resynced yet
    w.emit(state('B', 1, 'in-sync'));
    expect([w.holds(), w.recovered()]).toEqual([true, true]);
  });
});

/** Write-order checkpoint times, and when each controller started. */
class Times implements TraceSink {
  readonly enabled = true;
  readonly starts: number[] = [];
  emit(e: TraceEvent): void {
    if (e.kind === 'controller.start') this.starts.push(e.t);
  }
}

describe('async checkpoints across a power cut of the target', () => {
  it('none while the target recovers, one once it has; no violation', async () => {
    const mem = parseVolumeSpec('mem:8MiB');
    const times = new Times();
    const r = await runEmulation({
      ...DEFAULT_EMULATE, mode: 'async', writes: 500, queueDepth: 4, thinkMs: 0.2, sourceVolume: mem, targetVolume: mem,
      heartbeatMs: 10, interruptionMs: 100, probationMs: 200, faults: parseLinkFaults('power=target@20ms+30ms'),
    }, { tap: times });
    expect(r.violations).toEqual([]);
    const restart = times.starts[2]!;
    expect(restart).toBeGreaterThanOrEqual(50);
    const cp = r.writeOrderCheckpointsMs;
    expect(cp.filter((t) => t > 20 && t < restart)).toEqual([]);
    expect(cp.some((t) => t > restart)).toBe(true);
  });
});
