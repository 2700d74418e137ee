import { getShortestPaths } from '@xstate/graph';
import { describe, expect, it } from 'vitest';
import { sourceChannelMachine, type SourceChannelControl, type SourceChannelEvent } from '../../../firmware/machines/source-channel.machine.ts';
import { stateName } from '../../../firmware/machines/start-chart.ts';
import { targetChannelMachine, type TargetChannelControl, type TargetChannelEvent } from '../../../firmware/machines/target-channel.machine.ts';
import { linkSupervisorMachine, type LinkSupervisorControl, type LinkSupervisorEvent } from '../../../firmware/machines/link-supervisor.machine.ts';

/** A control with no side effects, so the graph walker can explore the chart's own structure. */
const sourceCtl: SourceChannelControl = {
  haltProbeMs: 50, lockRetryDelayMs: 1, grantProbeMs: 100,
  headSeq: () => 1, sentThrough: () => 1, hasSentUnconfirmed: () => true, isBusy: () => true, awaitsGrant: () => false,
  setGate: () => {}, rollBack: () => {}, rewind: () => {}, probe: () => {}, probeAwaitedGrant: () => {}, watchConfirmed: () => {}, count: () => {},
};

const sourceEvents: SourceChannelEvent[] = [
  { type: 'link.up' }, { type: 'link.down' }, { type: 'stream.restart' }, { type: 'stream.sent' }, { type: 'stream.drained' },
  { type: 'grant.awaited' }, { type: 'grant.settled' }, { type: 'stream.confirmed', upTo: 10 },
  { type: 'target.lock.rejected', seq: 1, lockId: 1, discarded: false }, { type: 'target.lock.rejected', seq: 1, lockId: 1, discarded: true },
  { type: 'target.lock.granted', lockId: 1 }, { type: 'target.nak', expected: 1 }, { type: 'ack.timeout' }, { type: 'connection.lost', fromSeq: 1 },
];

/** The events of every delayed (`after`) transition of a machine, so the graph walker can take them too. */
function delayedEvents(machine: { root: unknown }): { type: string }[] {
  const types = new Set<string>();
  const walk = (node: { after?: { eventType: string }[]; states?: Record<string, unknown> }): void => {
    for (const t of node.after ?? []) types.add(t.eventType);
    for (const child of Object.values(node.states ?? {})) walk(child as never);
  };
  walk(machine.root as never);
  return [...types].map((type) => ({ type }));
}

/**
 * The walker's key for a snapshot: its state and its context, without the control object (whose
 * functions the default serialiser cannot see through, so every snapshot would look new).
 */
const serializeState = (s: { value: unknown; context: object }): string => JSON.stringify([s.value, { ...s.context, ctl: undefined }]);

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
  // A transition whose guard vanished from the export would be drawn as unguarded: every
  // transition of a guarded event group but its last (the fallback) must carry a named guard.
  const groups: unknown[][] = [];
  const seen = { actions: new Set<unknown>(), guards: new Set<unknown>() };
  const walk = (node: unknown, key = ''): void => {
    if (Array.isArray(node)) {
      if (key === 'actions' || key === 'entry' || key === 'exit') node.forEach((a) => seen.actions.add(nameOf(a)));
      else {
        if (node.every((t) => t && typeof t === 'object' && 'eventType' in t)) {
          const byEvent = new Map<unknown, unknown[]>();
          for (const t of node as { eventType: unknown }[]) byEvent.set(t.eventType, [...(byEvent.get(t.eventType) ?? []), t]);
          for (const group of byEvent.values()) if (group.length > 1) groups.push(group);
        }
        node.forEach((n) => walk(n));
      }
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
  for (const group of groups) for (const t of group.slice(0, -1)) expect(t, 'every alternative but the last has a named guard').toHaveProperty('guard');
  expect(seen.actions.size).toBeGreaterThan(1);
}

describe('statechart definitions', () => {
  it('source channel: every named state exists and is reachable', () => {
    const json = sourceChannelMachine.toJSON() as { states?: Record<string, unknown> };
    const leaves = declaredLeaves(json);
    for (const s of ['linkDown', 'idle', 'lockPending', 'speculativeSent', 'halted', 'resumed', 'rollback.backoff', 'rollback.resending']) {
      expect(leaves).toContain(s);
    }
    const events = [...sourceEvents, ...delayedEvents(sourceChannelMachine)];
    const busy = reached(getShortestPaths(sourceChannelMachine, { input: { ctl: sourceCtl }, events, serializeState } as never));
    const quiet = reached(getShortestPaths(sourceChannelMachine, { input: { ctl: { ...sourceCtl, hasSentUnconfirmed: () => false, isBusy: () => false } }, events, serializeState } as never));
    const granting = reached(getShortestPaths(sourceChannelMachine, { input: { ctl: { ...sourceCtl, awaitsGrant: () => true } }, events, serializeState } as never));
    // `settling` is transient: the chart never rests there.
    expect([...new Set([...busy, ...quiet, ...granting])].sort()).toEqual(leaves.filter((l) => l !== 'settling').sort());
  });

  it('target channel: every named state exists and is reachable, each policy to its own', () => {
    const ctl: TargetChannelControl = {
      retransmitPolicy: false, lockRetryMs: 10, rejectRepeatMs: 10,
      holdRefusedLock: () => {}, retryRefusedLock: () => {}, discardFromRefusedLock: () => {}, repeatDiscardNotice: () => {},
    };
    const events: TargetChannelEvent[] = [
      { type: 'lock.refused', seq: 1, lockId: 1 }, { type: 'lock.released' }, { type: 'lock.granted', seq: 1 }, { type: 'stream.resumed' },
      { type: 'stream.begin' }, ...(delayedEvents(targetChannelMachine) as TargetChannelEvent[]),
    ];
    const holding = reached(getShortestPaths(targetChannelMachine, { input: { ctl }, events, serializeState } as never));
    const discarding = reached(getShortestPaths(targetChannelMachine, { input: { ctl: { ...ctl, retransmitPolicy: true } }, events, serializeState } as never));
    const leaves = declaredLeaves(targetChannelMachine.toJSON() as { states?: Record<string, unknown> });
    expect(leaves.sort()).toEqual(['discarding', 'lockWaiting', 'streaming']);
    expect(new Set([...holding, ...discarding])).toEqual(new Set(leaves));
    expect(holding.has('discarding')).toBe(false);
    expect(discarding.has('lockWaiting')).toBe(false);
  });

  it('link supervisor: every state exists and is reachable', () => {
    const ctl: LinkSupervisorControl = {
      heartbeatMs: 100, suspectMs: 300, interruptionMs: 1000, probationMs: 2000, connectRetryMs: 200,
      silentForMs: () => Infinity, openConnections: () => {}, closeConnections: () => {}, reopenConnection: () => {},
      announceUp: () => {}, announceDown: () => {}, setProbing: () => {}, startNewStreams: () => {}, report: () => {},
    };
    const events: LinkSupervisorEvent[] = [
      { type: 'heartbeat.heard' }, { type: 'connection.ready', conn: 0 }, { type: 'connection.lost', conn: 0, reason: 'reset' },
      { type: 'peer.restarted' }, { type: 'peer.incompatible', reason: 'x' }, ...(delayedEvents(linkSupervisorMachine) as LinkSupervisorEvent[]),
    ];
    const leaves = declaredLeaves(linkSupervisorMachine.toJSON() as { states?: Record<string, unknown> });
    for (const s of ['connecting.asking', 'up', 'suspect', 'down', 'probation.clean']) expect(leaves).toContain(s);
    const silent = reached(getShortestPaths(linkSupervisorMachine, { input: { ctl }, events, serializeState } as never));
    const heard = reached(getShortestPaths(linkSupervisorMachine, { input: { ctl: { ...ctl, silentForMs: () => 0 } }, events, serializeState } as never));
    expect(new Set([...silent, ...heard])).toEqual(new Set(leaves));
  });

  it('export as JSON with every action and guard named', () => {
    const src = JSON.parse(JSON.stringify(sourceChannelMachine.toJSON())) as { id: string; states: object };
    const tgt = JSON.parse(JSON.stringify(targetChannelMachine.toJSON())) as { id: string; states: object };
    const link = JSON.parse(JSON.stringify(linkSupervisorMachine.toJSON())) as { id: string; states: object };
    expect(src.id).toBe('source');
    expect(link.id).toBe('link');
    expect(Object.keys(src.states)).toContain('halted');
    expectAllNamed(src, Object.keys(sourceChannelMachine.implementations.actions), Object.keys(sourceChannelMachine.implementations.guards));
    expectAllNamed(tgt, Object.keys(targetChannelMachine.implementations.actions), Object.keys(targetChannelMachine.implementations.guards));
    expectAllNamed(link, Object.keys(linkSupervisorMachine.implementations.actions), Object.keys(linkSupervisorMachine.implementations.guards));
  });
});
