import { Command } from 'commander';
import { sourceChannelMachine } from '../../firmware/machines/source-channel.machine.ts';
import { targetChannelMachine } from '../../firmware/machines/target-channel.machine.ts';

interface StateJson {
  key: string;
  states?: Record<string, StateJson>;
  on?: Record<string, { target?: string[]; guard?: unknown; actions?: unknown[] }[]>;
}

/** Every machine definition of the firmware, as XState JSON (what the visualizer draws). */
export function statechartsJson(): Record<string, unknown> {
  return {
    sourceChannel: JSON.parse(JSON.stringify(sourceChannelMachine.toJSON())),
    targetChannel: JSON.parse(JSON.stringify(targetChannelMachine.toJSON())),
  };
}

/** A plain-text outline: each state with its transitions. */
function outline(name: string, root: StateJson): string {
  const lines = [`${name}:`];
  const transitions = (node: StateJson, depth: number): void => {
    for (const [event, list] of Object.entries(node.on ?? {})) {
      for (const t of list) {
        const target = t.target?.map((x) => x.replace(/^#\w+\./, '')).join(', ') ?? '(stay)';
        const guard = typeof t.guard === 'string' ? ` [${t.guard}]` : '';
        if (!event.startsWith('xstate.')) lines.push(`${'  '.repeat(depth)}${event}${guard} -> ${target}`);
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
