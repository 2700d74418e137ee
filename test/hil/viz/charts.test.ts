import { setup } from 'xstate';
import { describe, expect, it } from 'vitest';
import { statechartsJson } from '../../../hil/cli/statecharts-command.ts';
import { chartModel, discoveredChart, eventLabel, firmwareCharts, machineIdOf } from '../../../hil/viz/charts.ts';

describe('chart models', () => {
  it('has every machine the firmware exports, with every state the definitions have', () => {
    const charts = firmwareCharts();
    const json = statechartsJson() as Record<string, { states: Record<string, { states?: Record<string, unknown> }> }>;
    expect(charts.map((c) => c.name)).toEqual(Object.keys(json));
    for (const c of charts) {
      const expected = Object.entries(json[c.name]!.states).flatMap(([k, s]) => [k, ...Object.keys(s.states ?? {}).map((child) => `${k}.${child}`)]);
      expect(c.states.map((s) => s.path).filter((p) => p !== '').sort()).toEqual(expected.sort());
    }
  });

  it('keeps transitions with their event, guard, actions and targets by name, and the initial states', () => {
    const source = firmwareCharts().find((c) => c.id === 'source')!;
    expect(source.states.find((s) => s.path === '')!.initial).toBe('linkDown');
    expect(source.states.find((s) => s.path === 'rollback')!.initial).toBe('rollback.resending');
    // "In any state": the root's transitions.
    expect(source.transitions).toContainEqual({ source: '', targets: ['rollback.backoff'], event: 'target.lock.rejected', label: 'target.lock.rejected', guard: 'lockWasDiscarded', actions: ['markRollbackPoint', 'resendFromRollbackPoint', 'watchRollbackPoint'], reenter: false });
    const probe = source.transitions.find((t) => t.source === 'halted' && t.event.startsWith('xstate.after.'))!;
    expect(probe).toMatchObject({ targets: ['halted'], label: 'after haltProbe', actions: ['probeHaltedLock'], reenter: true });
    // A transition that only runs actions stays; one that ignores its event has neither target nor action.
    expect(source.transitions.find((t) => t.source === 'halted' && t.event === 'target.nak')).toMatchObject({ targets: [], actions: ['rewindWhileHalted'] });
    expect(source.transitions.find((t) => t.source === 'linkDown' && t.event === 'target.nak')).toMatchObject({ targets: [], actions: [] });
    // Eventless transitions (XState's toJSON() leaves them out) are drawn from `always`.
    expect(source.transitions.filter((t) => t.source === 'settling').map((t) => t.label)).toContain('always');
    // The link supervisor is drawn too.
    const link = firmwareCharts().find((c) => c.id === 'link')!;
    expect(link.states.map((s) => s.path)).toEqual(expect.arrayContaining(['connecting', 'up', 'suspect', 'down', 'probation']));
    // Entry and exit actions by name, without XState's own bookkeeping for delays.
    expect(source.states.find((s) => s.path === 'halted')).toMatchObject({ entry: ['closeGate'], exit: [] });
  });

  it('draws a machine it has never seen: whatever setup() builds, nested and eventless transitions included', () => {
    const machine = setup({
      actions: { openConnections: () => {}, closeConnections: () => {} },
      guards: { probationPassed: () => true },
      delays: { probationMs: 500 },
    }).createMachine({
      id: 'link',
      initial: 'down',
      states: {
        down: { entry: 'closeConnections', on: { 'heartbeat.heard': 'probation' } },
        probation: {
          initial: 'listening',
          states: { listening: { after: { probationMs: 'passed' } }, passed: { always: { guard: 'probationPassed', target: '#link.up' } } },
          on: { 'heartbeat.missed': '.listening' },
        },
        up: { entry: 'openConnections', on: { 'heartbeat.silence': 'down' } },
      },
    });
    const model = chartModel('linkSupervisor', JSON.parse(JSON.stringify(machine.toJSON())));
    expect(model.id).toBe('link');
    expect(model.states.map((s) => s.path).sort()).toEqual(['', 'down', 'probation', 'probation.listening', 'probation.passed', 'up']);
    expect(model.transitions).toContainEqual(expect.objectContaining({ source: 'probation.listening', targets: ['probation.passed'], label: 'after probationMs' }));
    expect(model.transitions).toContainEqual(expect.objectContaining({ source: 'probation', targets: ['probation.listening'], event: 'heartbeat.missed' }));
    expect(model.states.find((s) => s.path === 'up')!.entry).toEqual(['openConnections']);
    // XState's toJSON() leaves eventless transitions out; given them (as `always`), they are drawn.
    const json = JSON.parse(JSON.stringify(machine.toJSON()));
    json.states.probation.states.passed.always = [{ target: ['#link.up'], guard: 'probationPassed', actions: [] }];
    expect(chartModel('linkSupervisor', json).transitions).toContainEqual(expect.objectContaining({ source: 'probation.passed', targets: ['up'], label: 'always', guard: 'probationPassed' }));
  });

  it('pieces a chart together from what a trace showed of a machine no definition matches', () => {
    const model = discoveredChart('link', [
      { from: '', to: 'down', event: 'xstate.init' },
      { from: 'down', to: 'probation.listening', event: 'heartbeat.heard' },
      { from: 'probation.listening', to: 'up', event: 'probation.passed' },
      { from: 'probation.listening', to: 'up', event: 'probation.passed' },
    ]);
    expect(model.discovered).toBe(true);
    expect(model.states.map((s) => [s.path, s.parent, s.type])).toEqual([
      ['', null, 'compound'], ['down', '', 'atomic'], ['probation', '', 'compound'], ['probation.listening', 'probation', 'atomic'], ['up', '', 'atomic'],
    ]);
    expect(model.states[0]!.initial).toBe('down');
    expect(model.transitions.map((t) => `${t.source} ${t.event} ${t.targets[0]}`)).toEqual(['down heartbeat.heard probation.listening', 'probation.listening probation.passed up']);
  });

  it('names instances by their machine id and labels events as people read them', () => {
    expect(machineIdOf('source:A->B')).toBe('source');
    expect(machineIdOf('link:A->B')).toBe('link');
    expect(machineIdOf('weird')).toBe('weird');
    expect(eventLabel('')).toBe('always');
    expect(eventLabel('xstate.after.500.x.y', 500)).toBe('after 500 ms');
    expect(eventLabel('xstate.done.actor.sync')).toBe('done sync');
    expect(eventLabel('phase.idle')).toBe('phase.idle');
  });
});
