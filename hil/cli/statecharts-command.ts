import { Command } from 'commander';
import { sourceChannelMachine } from '../../firmware/machines/source-channel.machine.ts';
import { targetChannelMachine } from '../../firmware/machines/target-channel.machine.ts';
import { linkSupervisorMachine } from '../../firmware/machines/link-supervisor.machine.ts';

interface StateJson {
  key: string;
  states?: Record<string, StateJson>;
  on?: Record<string, { target?: string[]; guard?: unknown; actions?: unknown[] }[]>;
  always?: { target?: string[]; guard?: unknown; actions?: unknown[] }[];
}

/**
 * Every machine definition of the firmware, as XState JSON (what the visualizer draws). XState's
 * `toJSON()` leaves out eventless (`always`) transitions, so they are added here to each state that
 * has them, in the same shape as its `on` transitions (`target` as `#id` strings, guard by name).
 */
export function statechartsJson(): Record<string, unknown> {
  return {
    sourceChannel: machineJson(sourceChannelMachine),
    targetChannel: machineJson(targetChannelMachine),
    linkSupervisor: machineJson(linkSupervisorMachine),
  };
}

interface StateNodeLike {
  states?: Record<string, StateNodeLike>;
  always?: { target?: { id: string }[]; guard?: unknown; actions?: unknown[] }[];
}

function machineJson(machine: { toJSON(): unknown; root: unknown }): Record<string, unknown> {
  const json = JSON.parse(JSON.stringify(machine.toJSON())) as Record<string, unknown>;
  const addAlways = (node: StateNodeLike, out: Record<string, unknown>): void => {
    if (node.always && node.always.length > 0) {
      out.always = node.always.map((t) => ({
        target: t.target?.map((x) => `#${x.id}`), guard: typeof t.guard === 'string' ? t.guard : undefined,
        actions: (t.actions ?? []).map((a) => (typeof a === 'string' ? a : (a as { type?: string }).type)),
      }));
    }
    const children = (out.states ?? {}) as Record<string, Record<string, unknown>>;
    for (const [key, child] of Object.entries(node.states ?? {})) if (children[key]) addAlways(child, children[key]);
  };
  addAlways(machine.root as StateNodeLike, json);
  return json;
}

/** A plain-text outline: each state with its transitions. */
function outline(name: string, root: StateJson): string {
  const lines = [`${name}:`];
  const transitions = (node: StateJson, depth: number): void => {
    const on = { ...node.on, ...(node.always ? { '': node.always } : {}) };
    for (const [event, list] of Object.entries(on)) {
      for (const t of list) {
        const target = t.target?.map((x) => x.replace(/^#\w+\./, '')).join(', ') ?? '(stay)';
        const guard = typeof t.guard === 'string' ? ` [${t.guard}]` : '';
        const names = (t.actions ?? []).map((a) => (typeof a === 'string' ? a : (a as { type?: string }).type)).filter((a) => a && !a.startsWith('xstate.'));
        const actions = names.length > 0 ? ` / ${names.join(', ')}` : '';
        // A delayed transition's event is `xstate.after.<delay>.<state id>`; an eventless one is ''.
        const after = /^xstate\.after\.([^.]+)\./.exec(event);
        const label = after ? `after ${after[1]}` : event === '' ? 'always' : event;
        if (after || !event.startsWith('xstate.')) lines.push(`${'  '.repeat(depth)}${label}${guard} -> ${target}${actions}`);
      }
    }
  };
  const walk = (node: StateJson, depth: number): void => {
    for (const [key, child] of Object.entries(node.states ?? {})) {
      lines.push(`${'  '.repeat(depth)}${key}`);
      transitions(child, depth + 1);
      walk(child, depth + 1);
    }
  };
  if (Object.keys(root.on ?? {}).length > 0) {
    lines.push('  (in any state)');
    transitions(root, 2);
  }
  walk(root, 1);
  return lines.join('\n');
}

export function statechartsCommand(): Command {
  return new Command('statecharts')
    .description('print the firmware statecharts (with --json: their XState definitions)')
    .option('--json', 'print the machine definitions as one JSON document', false)
    .action((flags: { json: boolean }) => {
      const charts = statechartsJson();
      if (flags.json) process.stdout.write(`${JSON.stringify(charts, null, 2)}\n`);
      else process.stdout.write(`${Object.entries(charts).map(([n, c]) => outline(n, c as StateJson)).join('\n\n')}\n`);
    });
}
