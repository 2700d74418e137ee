import { getShortestPaths } from '@xstate/graph';
import { describe, expect, it } from 'vitest';
import { sourceChannelMachine, type SourceChannelControl, type SourceChannelEvent } from '../../../firmware/machines/source-channel.machine.ts';
import { stateName } from '../../../firmware/machines/start-chart.ts';
import { targetChannelMachine, type TargetChannelControl, type TargetChannelEvent } from '../../../firmware/machines/target-channel.machine.ts';

/** A control with no side effects, so the graph walker can explore the chart's own structure. */
const sourceCtl: SourceChannelControl = {
  haltProbeMs: 50, lockRetryDelayMs: 1,
  phase: () => 'active', hasSentUnconfirmed: () => true, setGate: () => {}, halt: () => {}, isHaltedLock: () => true,
  probeHaltedLock: () => {}, resume: () => {}, endResume: () => {}, rollBackTo: () => {}, rollBackToHead: () => {},
  endRollback: () => {}, rewindWhileHalted: () => {},
};

const sourceEvents: SourceChannelEvent[] = [
  { type: 'link.up' }, { type: 'link.down' }, { type: 'phase.idle' }, { type: 'phase.lockPending' }, { type: 'phase.active' },
  { type: 'target.lock.rejected', seq: 1, lockId: 1, discarded: false }, { type: 'target.lock.rejected', seq: 1, lockId: 1, discarded: true },
  { type: 'target.lock.granted', lockId: 1 }, { type: 'target.nak', expected: 1 }, { type: 'ack.timeout' },
  { type: 'rollback.done' }, { type: 'resume.done' },
];

function reached(paths: { state: { value: unknown } }[]): Set<string> {
  return new Set(paths.map((p) => stateName(p.state.value)));
}

/** Every leaf state a machine definition declares, as dotted paths. */
function declaredLeaves(json: { states?: Record<string, unknown> }, prefix = ''): string[] {
  return Object.entries(json.states ?? {}).flatMap(([key, node]) => {
    const n = node as { states?: Record<string, unknown> };
    const path = prefix ? `${prefix}.${key}` : key;
    return n.states && Object.keys(n.states).length > 0 ? declaredLeaves(n, path) : [path];
  });
}

/**
 * Every action and guard in a machine's JSON export is a name declared in setup(). An inline
 * function would serialise as null (or vanish), which the visualizer could not draw.
 */
const nameOf = (a: unknown): unknown => (a && typeof a === 'object' && 'type' in a ? (a as { type: unknown }).type : a);

function expectAllNamed(json: unknown, actions: string[], guards: string[]): void {
  const seen = { actions: new Set<unknown>(), guards: new Set<unknown>() };
  const walk = (node: unknown, key = ''): void => {
    if (Array.isArray(node)) {
      if (key === 'actions' || key === 'entry' || key === 'exit') node.forEach((a) => seen.actions.add(nameOf(a)));
      else node.forEach((n) => walk(n));
      return;
    }
    if (!node || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
      if (k === 'guard') seen.guards.add(nameOf(v));
      else walk(v, k);
    }
  };
  walk(json);
  // `xstate.*` are XState's own built-ins (the raise behind `after` delays), named by XState.
  for (const a of seen.actions) if (!String(a).startsWith('xstate.')) expect(actions, `action ${String(a)} is named in setup()`).toContain(a);
  for (const g of seen.guards) expect(guards, `guard ${String(g)} is named in setup()`).toContain(g);
  expect(seen.actions.size).toBeGreaterThan(1);
}

describe('statechart definitions', () => {
  it('source channel: every named state exists and is reachable', () => {
    const json = sourceChannelMachine.toJSON() as { states?: Record<string, unknown> };
    const leaves = declaredLeaves(json);
    for (const s of ['linkDown', 'idle', 'lockPending', 'speculativeSent', 'halted', 'resumed', 'rollback.backoff', 'rollback.resending']) {
      expect(leaves).toContain(s);
    }
    const paths = getShortestPaths(sourceChannelMachine, { input: { ctl: sourceCtl }, events: sourceEvents });
    expect([...reached(paths)].sort()).toEqual([...leaves].sort());
  });

  it('target channel: every named state exists and is reachable', () => {
    const ctl: TargetChannelControl = { retransmitPolicy: false, phase: () => 'applying', holdRejectedLock: () => {}, discardFromRejectedLock: () => {} };
    const events: TargetChannelEvent[] = [
      { type: 'phase.idle' }, { type: 'phase.applying' }, { type: 'lock.refused', seq: 1, lockId: 1 }, { type: 'lock.granted', seq: 1 }, { type: 'stream.resumed' },
    ];
    const holding = reached(getShortestPaths(targetChannelMachine, { input: { ctl }, events }));
    const discarding = reached(getShortestPaths(targetChannelMachine, { input: { ctl: { ...ctl, retransmitPolicy: true } }, events }));
    const leaves = declaredLeaves(targetChannelMachine.toJSON() as { states?: Record<string, unknown> });
    expect(leaves.sort()).toEqual(['applying', 'discarding', 'idle', 'lockWaiting']);
    expect(new Set([...holding, ...discarding])).toEqual(new Set(leaves));
    expect(holding.has('discarding')).toBe(false);
    expect(discarding.has('lockWaiting')).toBe(false);
  });

  it('export as JSON with every action and guard named', () => {
    const src = JSON.parse(JSON.stringify(sourceChannelMachine.toJSON())) as { id: string; states: object };
    const tgt = JSON.parse(JSON.stringify(targetChannelMachine.toJSON())) as { id: string; states: object };
    expect(src.id).toBe('source');
    expect(Object.keys(src.states)).toContain('halted');
    expectAllNamed(src, Object.keys(sourceChannelMachine.implementations.actions), Object.keys(sourceChannelMachine.implementations.guards));
    expectAllNamed(tgt, Object.keys(targetChannelMachine.implementations.actions), Object.keys(targetChannelMachine.implementations.guards));
  });
});
