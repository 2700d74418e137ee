import { describe, expect, it } from 'vitest';
import { sourceChannelMachine } from '../../../firmware/machines/source-channel.machine.ts';
import { targetChannelMachine } from '../../../firmware/machines/target-channel.machine.ts';
import { linkSupervisorMachine } from '../../../firmware/machines/link-supervisor.machine.ts';
import { FrameType } from '../../../firmware/protocol/frame.ts';
import {
  expectMirrorsEqual, linksUp, randomWrites, runConcurrentWrites, runWrites, scriptedFaults, sequentialWrites, settle, smallTopology,
} from '../../support/harness.ts';

type Topo = ReturnType<typeof smallTopology>['topo'];

/** The target's own server holds [lba, lba + count) of LUN `lun` on `on` for `holdMs` from now. */
async function localLockFor(topo: Topo, on: Topo['source'], lun: number, lba: number, count: number, holdMs: number): Promise<void> {
  const handle = await on.localLock(lun, lba, count, 'write');
  topo.clock.setTimeout(() => handle.release(), holdMs);
}

describe('lock-reject policies in every mode', () => {
  it.each(['sync', 'async'] as const)('retransmit (%s): the refused lock is discarded, re-sent after a back-off, then granted', async (mode) => {
    const { topo, tel } = smallTopology({ mode, onLockReject: 'retransmit', rttMs: 1 });
    await localLockFor(topo, topo.target, 0, 0, 64, 10);
    const results = await runWrites(topo, topo.source, 0, sequentialWrites(20, 8), 4);
    for (const r of results) expect(r.error).toBeUndefined();
    await settle(topo);
    await expectMirrorsEqual(topo);
    expect(tel.states('source:A->B')).toEqual(expect.arrayContaining(['rollback.backoff', 'rollback.resending']));
    expect(tel.states('target:A->B')).toContain('discarding');
    const src = topo.source.status()[0]!.source!.counters;
    const tgt = topo.target.status()[0]!.target.counters;
    expect(src.locksRejected).toBeGreaterThanOrEqual(1);
    expect(src.halts).toBe(0);
    expect(tgt.entriesDiscarded).toBeGreaterThan(0);
    expect(tgt.writesApplied).toBe(20);
    // Nothing was applied under the server's lock.
    expect(Math.min(...tel.of('target.apply').filter((e) => e.lba < 64).map((e) => e.t))).toBeGreaterThanOrEqual(10);
  });
});

describe('backpressure', () => {
  it('speculative: a full rollback log makes the host wait; nothing is dropped', async () => {
    const { topo } = smallTopology({ mode: 'speculative', rttMs: 5, limits: { rollbackLogEntriesMax: 12, rollbackLogBytesMax: 64 * 1024, payloadBytesMax: 16 * 1024 } });
    let waitingMax = 0;
    const probe = (): void => {
      waitingMax = Math.max(waitingMax, topo.source.status()[0]!.source!.rollbackLog.waiting);
      topo.clock.setTimeout(probe, 0.5);
    };
    probe();
    const results = await runWrites(topo, topo.source, 0, randomWrites(100, 8, 8192), 32);
    for (const r of results) expect(r.error).toBeUndefined();
    expect(waitingMax).toBeGreaterThan(0);
    // At most 12 entries in flight, 3 per write: writes waited well beyond one round trip.
    expect(Math.max(...results.map((r) => r.ackedAt - r.issuedAt))).toBeGreaterThan(3 * 5);
    await settle(topo);
    await expectMirrorsEqual(topo);
    expect(topo.target.status()[0]!.target.counters.writesApplied).toBe(100);
    expect(topo.source.status()[0]!.source!.counters.writesConfirmed).toBe(100);
  });
});

describe('bidirectional under faults', () => {
  it.each(['halt-resume', 'retransmit'] as const)('(%s) corrupt and dropped frames and a refused lock each way: every write completes without error, both pairs equal', async (policy) => {
    const { topo, tel } = smallTopology({ mode: 'speculative', onLockReject: policy, bidirectional: true, rttMs: 1 });
    topo.link.setFaults(scriptedFaults((dir, type, n) => {
      if (type === FrameType.Write && n % 9 === 4) return 'corrupt';
      if (type === FrameType.Ack && n % 5 === 2) return 'drop';
      if (type === FrameType.Lock && n === 3) return 'drop';
      return 'pass';
    }));
    await localLockFor(topo, topo.target, 0, 0, 64, 8);
    await localLockFor(topo, topo.source, 1, 0, 64, 6);
    const results = await runConcurrentWrites(topo, [
      { controller: topo.source, lun: 0, specs: [...sequentialWrites(8, 8), ...randomWrites(52, 8, 4096, 1)] },
      { controller: topo.target, lun: 1, specs: [...sequentialWrites(8, 8), ...randomWrites(52, 8, 4096, 2)] },
    ], 8);
    for (const job of results) {
      expect(job).toHaveLength(60);
      for (const r of job) expect(r.error, `write to LBA ${r.spec.lba}`).toBeUndefined();
    }
    await settle(topo);
    await expectMirrorsEqual(topo);
    expect(topo.pairs).toHaveLength(2);
    for (const c of [topo.source, topo.target]) {
      const s = c.status()[0]!;
      expect(s.source!.counters.locksRejected, `${c.name} had a lock refused`).toBeGreaterThan(0);
      expect(s.source!.counters.rollbacks, `${c.name} rolled back`).toBeGreaterThan(0);
      expect(s.target.counters.corrupt, `${c.name} saw corrupt frames`).toBeGreaterThan(0);
      expect(s.target.counters.writesApplied).toBe(60);
    }
    expect(tel.of('host.error')).toEqual([]);
  });
});

describe('lost responses', () => {
  it.each(['speculative', 'sync'] as const)('a LOCK_GRANTED lost while halted (%s): the source still resumes; mirrors equal', async (mode) => {
    const { topo, tel } = smallTopology({ mode, onLockReject: 'halt-resume', rttMs: 1 });
    let dropped = 0;
    topo.link.setFaults(scriptedFaults((dir, type) => {
      // Drop every LOCK_GRANTED that answers the refused lock (sent once it is finally granted).
      if (dir === 'ba' && type === FrameType.LockGranted && topo.clock.now() >= 20 && dropped < 2) {
        dropped++;
        return 'drop';
      }
      return 'pass';
    }));
    await localLockFor(topo, topo.target, 0, 0, 64, 20);
    const results = await runWrites(topo, topo.source, 0, sequentialWrites(12, 8), 4);
    for (const r of results) expect(r.error).toBeUndefined();
    await settle(topo);
    await expectMirrorsEqual(topo);
    expect(dropped).toBeGreaterThan(0);
    expect(tel.states('source:A->B')).toEqual(expect.arrayContaining(['halted', 'resumed']));
    const c = topo.source.status()[0]!.source!.counters;
    expect(c.halts).toBeGreaterThan(0);
    expect(c.resumes).toBe(c.halts);
  });
});

/** Every state id a machine definition declares, compound ones and nested ones included (`rollback`, `rollback.backoff`). */
function declaredStates(node: { states?: Record<string, unknown> }, prefix = ''): string[] {
  return Object.entries(node.states ?? {}).flatMap(([key, child]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return [path, ...declaredStates(child as { states?: Record<string, unknown> }, path)];
  });
}

/** A visited leaf path and every state it is inside: `rollback.backoff` -> `rollback`, `rollback.backoff`. */
function withAncestors(paths: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const p of paths) {
    const parts = p.split('.');
    for (let i = 1; i <= parts.length; i++) out.add(parts.slice(0, i).join('.'));
  }
  return out;
}

describe('state coverage on the simulated link', () => {
  it('the scenarios together visit every state each chart declares', async () => {
    const visited = { source: [] as string[], target: [] as string[], link: [] as string[] };
    const collect = (tel: ReturnType<typeof smallTopology>['tel']): void => {
      visited.source.push(...tel.states('source:'));
      visited.target.push(...tel.states('target:'));
      visited.link.push(...tel.states('link:'));
    };
    // halt-resume: halted, resumed, lockWaiting (and linkDown, idle, speculativeSent, applying).
    {
      const { topo, tel } = smallTopology({ mode: 'speculative', onLockReject: 'halt-resume', rttMs: 1 });
      await localLockFor(topo, topo.target, 0, 0, 64, 10);
      await runWrites(topo, topo.source, 0, sequentialWrites(12, 8), 4);
      await settle(topo);
      collect(tel);
    }
    // retransmit: rollback.backoff, rollback.resending, discarding.
    {
      const { topo, tel } = smallTopology({ mode: 'speculative', onLockReject: 'retransmit', rttMs: 1 });
      await localLockFor(topo, topo.target, 0, 0, 64, 10);
      await runWrites(topo, topo.source, 0, sequentialWrites(12, 8), 4);
      await settle(topo);
      collect(tel);
    }
    // sync: lockPending.
    {
      const { topo, tel } = smallTopology({ mode: 'sync', rttMs: 2 });
      await runWrites(topo, topo.source, 0, randomWrites(10, 8, 8192), 1);
      await settle(topo);
      collect(tel);
    }
    // a silent cut longer than the interruption timeout: suspect, down, probation, connecting again.
    {
      const { topo, tel } = smallTopology({ mode: 'async', rttMs: 1, limits: { heartbeatMs: 5, interruptionMs: 20, probationMs: 40 } });
      await linksUp(topo);
      topo.link.blackhole('both', true);
      topo.clock.setTimeout(() => topo.link.blackhole('both', false), 100);
      await runWrites(topo, topo.source, 0, sequentialWrites(12, 8), 4);
      await settle(topo);
      await expectMirrorsEqual(topo);
      collect(tel);
    }
    // `settling` is transient: the chart passes through it without resting there.
    const sourceDeclared = declaredStates(sourceChannelMachine.toJSON() as { states?: Record<string, unknown> }).filter((s) => s !== 'settling');
    const targetDeclared = declaredStates(targetChannelMachine.toJSON() as { states?: Record<string, unknown> });
    const linkDeclared = declaredStates(linkSupervisorMachine.toJSON() as { states?: Record<string, unknown> });
    expect(sourceDeclared).toEqual(expect.arrayContaining(['linkDown', 'idle', 'lockPending', 'speculativeSent', 'halted', 'resumed', 'rollback', 'rollback.backoff', 'rollback.resending']));
    expect(linkDeclared).toEqual(expect.arrayContaining(['connecting', 'up', 'suspect', 'down', 'probation']));
    expect([...withAncestors(visited.source)].sort()).toEqual([...sourceDeclared].sort());
    expect([...withAncestors(visited.target)].sort()).toEqual([...targetDeclared].sort());
    expect([...withAncestors(visited.link)].sort()).toEqual([...linkDeclared].sort());
  });
});
