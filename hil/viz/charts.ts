import { statechartsJson } from '../cli/statecharts-command.ts';

/**
 * The firmware's statecharts as the visualizer draws them (docs/viz.md, "Charts"): a neutral model
 * made from each machine's `toJSON()` (states and their nesting, every transition with its event,
 * guard and actions by name), so the page needs no XState and knows no machine by name. A new
 * machine, a renamed state or a new transition shows up in the drawing with no change here.
 */
export interface ChartState {
  /** Dotted path from the machine's root (`rollback.resending`); `''` is the root itself. */
  path: string;
  key: string;
  parent: string | null;
  type: string;
  /** The path of the initial child (compound states). */
  initial: string | null;
  entry: string[];
  exit: string[];
}

export interface ChartTransition {
  /** Path of the state that has the transition (`''`: the root, i.e. "in any state"). */
  source: string;
  /** Paths of the target states; empty for a transition that stays (it only runs actions, or ignores the event). */
  targets: string[];
  /** The event type as the machine sees it (`target.nak`, `xstate.after.haltProbe.source.halted`). */
  event: string;
  /** What a reader sees: the event, `after haltProbe` for a delayed transition, `always` for an eventless one. */
  label: string;
  guard: string | null;
  actions: string[];
  reenter: boolean;
}

export interface ChartModel {
  /** The definition's name in `statecharts --json` (`sourceChannel`). */
  name: string;
  /** The machine's id (`source`): a running instance is named `<id>:<where>`, e.g. `source:A->B`. */
  id: string;
  states: ChartState[];
  transitions: ChartTransition[];
  /** True for a chart pieced together from what a trace showed, for a machine no definition matched. */
  discovered: boolean;
}

interface StateJson {
  id?: string;
  key?: string;
  type?: string;
  initial?: { target?: unknown[] };
  states?: Record<string, StateJson>;
  transitions?: TransitionJson[];
  /** Eventless transitions. XState's `toJSON()` leaves them out; read here should `statecharts --json` add them. */
  always?: TransitionJson[];
  entry?: unknown[];
  exit?: unknown[];
}

interface TransitionJson {
  target?: unknown[];
  guard?: unknown;
  actions?: unknown[];
  eventType?: string;
  delay?: unknown;
  reenter?: boolean;
}

/** Every machine the firmware exports, as chart models (the same list `statecharts --json` prints). */
export function firmwareCharts(): ChartModel[] {
  return Object.entries(statechartsJson()).map(([name, json]) => chartModel(name, json as StateJson));
}

/** One machine's `toJSON()` as a chart model. */
export function chartModel(name: string, root: StateJson): ChartModel {
  const id = root.id ?? root.key ?? name;
  const byXstateId = new Map<string, string>();
  const states: ChartState[] = [];
  const walk = (node: StateJson, path: string, parent: string | null): void => {
    byXstateId.set(node.id ?? (path === '' ? id : `${id}.${path}`), path);
    const children = Object.entries(node.states ?? {});
    const initialId = typeof node.initial?.target?.[0] === 'string' ? (node.initial.target[0] as string).replace(/^#/, '') : null;
    states.push({ path, key: path === '' ? id : (node.key ?? path), parent, type: node.type ?? (children.length > 0 ? 'compound' : 'atomic'), initial: initialId, entry: names(node.entry), exit: names(node.exit) });
    for (const [key, child] of children) walk(child, path === '' ? key : `${path}.${key}`, path);
  };
  walk(root, '', null);
  // Initial targets are XState ids; turn them into paths now that every state is known.
  for (const s of states) if (s.initial !== null) s.initial = byXstateId.get(s.initial) ?? null;
  const transitions: ChartTransition[] = [];
  const collect = (node: StateJson, path: string): void => {
    for (const t of node.transitions ?? []) transitions.push(transition(t, path, byXstateId));
    for (const t of node.always ?? []) transitions.push(transition({ ...t, eventType: '' }, path, byXstateId));
    for (const [key, child] of Object.entries(node.states ?? {})) collect(child, path === '' ? key : `${path}.${key}`);
  };
  collect(root, '');
  return { name, id, states, transitions, discovered: false };
}

function transition(t: TransitionJson, source: string, byXstateId: Map<string, string>): ChartTransition {
  const event = t.eventType ?? '';
  const targets = (t.target ?? []).filter((x): x is string => typeof x === 'string').map((x) => {
    const ref = x.replace(/^#/, '');
    return byXstateId.get(ref) ?? ref;
  });
  return { source, targets, event, label: eventLabel(event, t.delay), guard: nameOf(t.guard), actions: names(t.actions), reenter: t.reenter === true };
}

/** `xstate.after.haltProbe.source.halted` reads `after haltProbe`; an eventless transition reads `always`. */
export function eventLabel(event: string, delay?: unknown): string {
  if (event === '') return 'always';
  if (event.startsWith('xstate.after.')) {
    if (typeof delay === 'number') return `after ${delay} ms`;
    return `after ${typeof delay === 'string' ? delay : event.slice('xstate.after.'.length).split('.')[0]}`;
  }
  if (event.startsWith('xstate.done.actor.')) return `done ${event.slice('xstate.done.actor.'.length)}`;
  if (event.startsWith('xstate.error.actor.')) return `error ${event.slice('xstate.error.actor.'.length)}`;
  return event;
}

/** Names of actions (strings or `{ type }`), without XState's own bookkeeping (`xstate.raise` and `xstate.cancel` for delays). */
function names(list: unknown[] | undefined): string[] {
  return (list ?? []).map(nameOf).filter((n): n is string => n !== null && !n.startsWith('xstate.'));
}

function nameOf(x: unknown): string | null {
  if (typeof x === 'string') return x;
  if (x && typeof x === 'object' && typeof (x as { type?: unknown }).type === 'string') return (x as { type: string }).type;
  // An inline function has no name in toJSON(); docs/conventions.md 2 forbids them, but say so rather than hide it.
  return x === undefined || x === null ? null : '(inline)';
}

/** The definition an instance runs: `source:A->B` runs the machine whose id is `source`. */
export function machineIdOf(instance: string): string {
  const colon = instance.indexOf(':');
  return colon < 0 ? instance : instance.slice(0, colon);
}

/**
 * A chart pieced together from what a trace or a live feed showed of a machine no definition
 * matched (a machine newer than this build, or a trace from another one): every state seen
 * (nested by its dots) and every transition taken, labelled with its event.
 */
export function discoveredChart(machineId: string, seen: Iterable<{ from: string; to: string; event: string }>): ChartModel {
  const states = new Map<string, ChartState>([['', { path: '', key: machineId, parent: null, type: 'compound', initial: null, entry: [], exit: [] }]]);
  const add = (path: string): void => {
    if (path === '' || states.has(path)) return;
    const dot = path.lastIndexOf('.');
    const parent = dot < 0 ? '' : path.slice(0, dot);
    add(parent);
    states.set(path, { path, key: dot < 0 ? path : path.slice(dot + 1), parent, type: 'atomic', initial: null, entry: [], exit: [] });
    states.get(parent)!.type = 'compound';
  };
  const transitions = new Map<string, ChartTransition>();
  for (const s of seen) {
    add(s.to);
    if (s.from === '') {
      const root = states.get('')!;
      root.initial ??= s.to;
      continue;
    }
    add(s.from);
    const key = `${s.from}|${s.event}|${s.to}`;
    if (!transitions.has(key)) transitions.set(key, { source: s.from, targets: [s.to], event: s.event, label: eventLabel(s.event), guard: null, actions: [], reenter: false });
  }
  return { name: machineId, id: machineId, states: [...states.values()], transitions: [...transitions.values()], discovered: true };
}
