/* global document, ELK */
// Statechart diagrams (docs/viz.md, "Charts"): each machine model the server sends is laid out once
// with elkjs (served from the installed package, never a CDN) and drawn as SVG by hand; every
// instance of the machine (per controller and peer) gets its own copy, highlighted on its own.
import { el, svg } from './dom.js';

const FONT = '12px sans-serif';
const SMALL_FONT = '10px sans-serif';
const LINE = 13;
const NOTE_LINE = 12;
let measureCtx = null;

function textWidth(text, font = FONT) {
  measureCtx ??= document.createElement('canvas').getContext('2d');
  measureCtx.font = font;
  return Math.ceil(measureCtx.measureText(text).width);
}

const isAncestor = (a, b) => a === '' ? b !== '' : b.startsWith(`${a}.`);

/** What a transition reads like on the drawing: event, guard, then actions on a second line. */
function labelLines(t) {
  const first = t.guard ? `${t.label} [${t.guard}]` : t.label;
  return t.actions.length > 0 ? [first, `/ ${t.actions.join(', ')}`] : [first];
}

/**
 * Sort the model's transitions into what is drawn where: edges between states; edges from an
 * "any state" marker inside a compound state (for a transition a compound state takes whatever its
 * child: the root's are "in any state"); and notes inside a state's box for transitions that stay
 * (actions only, or an event it ignores) and for its entry and exit actions.
 */
function classify(model) {
  const notes = new Map(model.states.map((s) => [s.path, []]));
  const ignores = new Map();
  const edges = [];
  const anyFrom = new Set();
  for (const s of model.states) {
    if (s.entry.length > 0) notes.get(s.path).push(`entry / ${s.entry.join(', ')}`);
    if (s.exit.length > 0) notes.get(s.path).push(`exit / ${s.exit.join(', ')}`);
  }
  model.transitions.forEach((t, n) => {
    if (t.targets.length === 0) {
      if (t.actions.length === 0 && !t.guard) {
        if (!ignores.has(t.source)) ignores.set(t.source, []);
        ignores.get(t.source).push(t.label);
      } else notes.get(t.source)?.push(`${labelLines(t).join(' ')}`);
      return;
    }
    for (const target of t.targets) {
      const fromAny = t.source === '' || isAncestor(t.source, target);
      if (fromAny) anyFrom.add(t.source);
      edges.push({ id: `t${n}-${edges.length}`, t, target, fromAny });
    }
  });
  for (const [path, list] of ignores) notes.get(path)?.push(`ignores ${list.join(', ')}`);
  return { notes, edges, anyFrom };
}

function stateNode(s, children, notes) {
  const noteLines = notes.get(s.path) ?? [];
  const nameWidth = textWidth(s.key) + 24;
  const noteWidth = Math.max(0, ...noteLines.map((l) => textWidth(l, SMALL_FONT) + 16));
  const node = { id: `s:${s.path}`, labels: [{ text: s.key, width: nameWidth - 16, height: LINE }] };
  if (children.length === 0) {
    node.width = Math.max(90, nameWidth, noteWidth);
    node.height = 26 + noteLines.length * NOTE_LINE;
    return node;
  }
  node.children = children;
  node.layoutOptions = {
    'elk.padding': `[top=${30 + noteLines.length * NOTE_LINE},left=12,bottom=12,right=12]`,
    'elk.nodeSize.constraints': 'MINIMUM_SIZE',
    'elk.nodeSize.minimum': `(${Math.max(nameWidth, noteWidth)},40)`,
  };
  return node;
}

/** The ELK graph of a model, with everything needed to draw the result. */
function elkGraph(model) {
  const { notes, edges, anyFrom } = classify(model);
  const byPath = new Map(model.states.map((s) => [s.path, s]));
  // Which ELK node holds which: every edge goes into the innermost node that holds both its ends
  // (ELK's own containment rule; an edge kept elsewhere can make the layout fail).
  const parentOf = new Map();
  const nodes = new Map();
  const build = (s, parentId) => {
    const id = s.path === '' ? 'root' : `s:${s.path}`;
    parentOf.set(id, parentId);
    const children = model.states.filter((c) => c.parent === s.path).map((c) => build(c, id));
    const pseudo = (pid, size) => {
      parentOf.set(pid, id);
      children.push({ id: pid, width: size, height: size });
    };
    if (s.initial !== null && byPath.has(s.initial)) pseudo(`i:${s.path}`, 12);
    if (anyFrom.has(s.path)) pseudo(`a:${s.path}`, 24);
    const node = stateNode(s, children, notes);
    node.id = id;
    node.edges = [];
    nodes.set(id, node);
    return node;
  };
  const top = build(model.states.find((s) => s.path === ''), null);
  const place = (edge) => {
    const up = (id) => {
      const chain = [];
      for (let p = parentOf.get(id); p !== null && p !== undefined; p = parentOf.get(p)) chain.push(p);
      return chain;
    };
    const targetChain = new Set(up(edge.targets[0]));
    const container = up(edge.sources[0]).find((p) => targetChain.has(p)) ?? 'root';
    nodes.get(container).edges.push(edge);
  };
  for (const s of model.states) {
    if (s.initial !== null && byPath.has(s.initial)) place({ id: `init:${s.path}`, sources: [`i:${s.path}`], targets: [`s:${s.initial}`] });
  }
  for (const e of edges) {
    // Re-entering an ancestor goes to its initial state: draw it to the ancestor's initial marker.
    let target = `s:${e.target}`;
    if (e.target === '' || isAncestor(e.target, e.t.source)) {
      if (!byPath.get(e.target)?.initial) continue;
      target = `i:${e.target}`;
    }
    const lines = labelLines(e.t);
    place({
      id: e.id, sources: [e.fromAny ? `a:${e.t.source}` : `s:${e.t.source}`], targets: [target],
      labels: [{ text: lines.join('\n'), width: Math.max(...lines.map((l) => textWidth(l, SMALL_FONT))) + 4, height: lines.length * NOTE_LINE }],
    });
  }
  top.layoutOptions = {
      'elk.algorithm': 'layered', 'elk.direction': 'DOWN', 'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.json.shapeCoords': 'ROOT', 'elk.json.edgeCoords': 'ROOT', 'elk.edgeRouting': 'ORTHOGONAL',
      'elk.layered.nodePlacement.strategy': 'NETWORK_SIMPLEX',
      'elk.layered.spacing.nodeNodeBetweenLayers': '36', 'elk.spacing.nodeNode': '28', 'elk.spacing.edgeLabel': '3',
      'elk.edgeLabels.placement': 'CENTER', 'elk.padding': '[top=8,left=8,bottom=8,right=8]',
  };
  delete top.labels;
  return { graph: top, notes, edges };
}

/** Lay a model out and draw it; the result is a template that {@link chartFigure} copies per instance. */
export async function drawModel(model) {
  const { graph, notes, edges } = elkGraph(model);
  let laid;
  try {
    laid = await new ELK().layout(graph);
  } catch (err) {
    return fallbackDrawing(model, err);
  }
  const width = Math.ceil(laid.width ?? 200);
  const height = Math.ceil(laid.height ?? 100);
  const root = svg('svg', { class: 'chart-svg', viewBox: `0 0 ${width} ${height}`, width, height, 'data-model': model.name });
  const layerStates = svg('g', { class: 'states' });
  const layerEdges = svg('g', { class: 'transitions' });
  root.append(layerStates, layerEdges);
  const byPath = new Map(model.states.map((s) => [s.path, s]));
  const walk = (node) => {
    for (const child of node.children ?? []) {
      drawNode(layerStates, child, byPath, notes);
      walk(child);
    }
  };
  walk(laid);
  const byId = new Map(edges.map((e) => [e.id, e]));
  const allEdges = [];
  const collect = (node) => {
    allEdges.push(...(node.edges ?? []));
    for (const child of node.children ?? []) collect(child);
  };
  collect(laid);
  for (const edge of allEdges) drawEdge(layerEdges, edge, byId.get(edge.id));
  return root;
}

function drawNode(layer, node, byPath, notes) {
  const [kind, path] = [node.id.slice(0, 1), node.id.slice(2)];
  if (kind === 'i') {
    layer.append(svg('g', { class: 'pseudo initial', 'data-of': path }, svg('circle', { cx: node.x + 6, cy: node.y + 6, r: 5 })));
    return;
  }
  if (kind === 'a') {
    layer.append(svg('g', { class: 'pseudo any', 'data-of': path },
      svg('circle', { cx: node.x + 12, cy: node.y + 12, r: 11 }), svg('text', { x: node.x + 12, y: node.y + 16, 'text-anchor': 'middle', text: '*' }),
      svg('title', { text: path === '' ? 'in any state' : `in any state of ${path}` })));
    return;
  }
  const state = byPath.get(path);
  const compound = (node.children ?? []).length > 0;
  const g = svg('g', { class: `state ${compound ? 'compound' : 'atomic'}`, 'data-state': path });
  g.append(svg('rect', { x: node.x, y: node.y, width: node.width, height: node.height, rx: compound ? 8 : 6 }));
  g.append(svg('text', { class: 'state-name', x: node.x + 8, y: node.y + 17, text: state?.key ?? path }));
  (notes.get(path) ?? []).forEach((line, k) => g.append(svg('text', { class: 'note', x: node.x + 8, y: node.y + 30 + k * NOTE_LINE, text: line })));
  layer.append(g);
}

function drawEdge(layer, edge, info) {
  const section = edge.sections?.[0];
  if (!section) return;
  const pts = [section.startPoint, ...(section.bendPoints ?? []), section.endPoint];
  const d = pts.map((p, k) => `${k === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
  const attrs = info
    ? { class: 'transition', 'data-event': info.t.event, 'data-source': info.t.source, 'data-target': info.target, 'data-label': info.t.label }
    : { class: 'transition initial-edge' };
  const g = svg('g', attrs, svg('path', { d, 'marker-end': 'url(#arrow)' }));
  for (const label of edge.labels ?? []) {
    const text = svg('text', { class: 'edge-label', x: label.x + 2, y: label.y + 10 });
    label.text.split('\n').forEach((line, k) => text.append(svg('tspan', { x: label.x + 2, dy: k === 0 ? 0 : NOTE_LINE, text: line })));
    g.append(text);
  }
  layer.append(g);
}

/** If layout fails, still show every state (as a list), so highlighting keeps working and the failure is visible. */
function fallbackDrawing(model, err) {
  const states = model.states.filter((s) => s.path !== '');
  const height = 30 + states.length * 24;
  const root = svg('svg', { class: 'chart-svg layout-failed', viewBox: `0 0 360 ${height}`, width: 360, height, 'data-model': model.name });
  root.append(svg('text', { class: 'note', x: 8, y: 14, text: `layout failed: ${String(err?.message ?? err).slice(0, 80)}` }));
  states.forEach((s, k) => {
    root.append(svg('g', { class: 'state atomic', 'data-state': s.path },
      svg('rect', { x: 8, y: 22 + k * 24, width: 300, height: 20, rx: 4 }), svg('text', { class: 'state-name', x: 14, y: 36 + k * 24, text: s.path })));
  });
  return root;
}

/** A figure for one instance: its name, its current state in words, and a copy of its machine's drawing. */
export function chartFigure(instance, template) {
  const state = el('span', { class: 'chart-state', text: '' });
  const figure = el('figure', { class: 'chart', 'data-instance': instance, 'data-model': template.getAttribute('data-model') },
    el('figcaption', {}, el('strong', { text: instance }), ' ', state),
    template.cloneNode(true));
  return figure;
}

/**
 * Show `state` (a dotted path) as current in an instance's figure, its ancestors as active, and
 * `last` (the state change that led there) as the transition just taken.
 */
export function highlight(figure, state, last) {
  for (const n of figure.querySelectorAll('.state.current, .state.active, .transition.taken')) n.classList.remove('current', 'active', 'taken');
  const caption = figure.querySelector('.chart-state');
  figure.dataset.state = state ?? '';
  if (!state) {
    caption.textContent = '';
    return;
  }
  const node = figure.querySelector(`.state[data-state="${cssEscape(state)}"]`);
  figure.classList.toggle('unknown-state', !node);
  caption.textContent = node ? state : `${state} (not in this machine's definition)`;
  node?.classList.add('current');
  const parts = state.split('.');
  for (let k = parts.length - 1; k > 0; k--) figure.querySelector(`.state[data-state="${cssEscape(parts.slice(0, k).join('.'))}"]`)?.classList.add('active');
  if (!last || last.from === '') return;
  const within = (path, node) => node === '' || path === node || path.startsWith(`${node}.`);
  const transitions = [...figure.querySelectorAll('.transition[data-event]')];
  // One step may pass through transient states: the event's transition into one, then eventless
  // (`always`) transitions on to where the step ended. Mark every link of that chain.
  const onward = (state, seen) => {
    if (within(last.to, state)) return [];
    if (seen.has(state)) return null;
    seen.add(state);
    for (const t of transitions) {
      if (t.dataset.event !== '' || !within(state, t.dataset.source)) continue;
      const rest = onward(t.dataset.target, seen);
      if (rest) return [t, ...rest];
    }
    return null;
  };
  for (const t of transitions) {
    if (t.dataset.event !== last.event || !within(last.from, t.dataset.source)) continue;
    const chain = onward(t.dataset.target, new Set());
    if (chain) for (const n of [t, ...chain]) n.classList.add('taken');
  }
}

function cssEscape(s) {
  return s.replace(/["\\]/g, '\\$&');
}

/**
 * Every chart on the page: one drawing per machine model (laid out once), one figure per running
 * instance. Models the server re-sends (a machine pieced together from what a live run showed)
 * are redrawn when they change.
 */
export class ChartBoard {
  constructor(container) {
    this.container = container;
    this.templates = new Map();
    this.drawn = new Map();
    this.figures = new Map();
  }

  async setModels(models) {
    for (const m of models) {
      const text = JSON.stringify(m);
      if (this.drawn.get(m.name) === text) continue;
      this.drawn.set(m.name, text);
      this.templates.set(m.name, await drawModel(m));
      for (const [name, fig] of this.figures) {
        if (fig.dataset.model !== m.name) continue;
        const fresh = chartFigure(name, this.templates.get(m.name));
        fig.replaceWith(fresh);
        this.figures.set(name, fresh);
      }
    }
  }

  /** Make a figure for every instance not shown yet, in name order. */
  ensure(instances) {
    for (const { name, model } of instances) {
      if (this.figures.has(name) || !this.templates.has(model)) continue;
      this.figures.set(name, chartFigure(name, this.templates.get(model)));
    }
    const sorted = [...this.figures.keys()].sort();
    this.container.replaceChildren(...sorted.map((n) => this.figures.get(n)));
  }

  /** Show an instance's state; `last` is the change that led there. Nothing is touched when nothing changed. */
  show(instance, state, last) {
    const fig = this.figures.get(instance);
    if (!fig) return;
    const key = `${state}|${last?.from}|${last?.event}|${last?.t}`;
    if (fig.dataset.shown === key) return;
    fig.dataset.shown = key;
    const before = fig.dataset.state;
    highlight(fig, state, last);
    // A brief glow when the state changes (the Web Animations API: no forced layout, no inline style).
    if (before !== undefined && before !== '' && before !== state) fig.animate?.([{ boxShadow: '0 0 0 4px #93c5fd' }, { boxShadow: '0 0 0 0 transparent' }], { duration: 600 });
  }
}
