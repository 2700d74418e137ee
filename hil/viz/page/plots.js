// Plots over time (docs/viz.md, "What is plotted"): one lane per series group, a lane of faults and
// violations, partitions shaded across every lane, and a cursor at the instant shown. The same
// drawing serves replay (buckets the server summarised) and live mode (points the feed sent).
import { colour, ms, num, svg } from './dom.js';

const LANE_HEIGHT = 62;
const MARKER_LANE_HEIGHT = 40;
const LEFT = 150;
const RIGHT = 10;
const TOP = 6;

/**
 * Lanes from a replay plot: per series, per bucket, a band (min to max) and a line (last value),
 * a rate, or a mean with its maximum.
 */
export function lanesFromPlot(plot, groups) {
  const x = (b) => plot.t0 + ((b + 0.5) / plot.buckets) * (plot.t1 - plot.t0);
  const lanes = [];
  for (const g of groups) {
    const series = plot.series.filter((s) => s.group === g.group);
    if (series.length === 0) continue;
    lanes.push({
      ...g,
      lines: series.map((s) => {
        if (s.shape === 'rate') return { name: s.name, points: s.rate.map((v, b) => [x(b), v, v, v]) };
        if (s.shape === 'points') return { name: s.name, points: s.mean.map((v, b) => [x(b), v, s.max[b], v]) };
        return { name: s.name, points: s.last.map((v, b) => [x(b), s.min[b], s.max[b], v]) };
      }),
    });
  }
  const faultNames = Object.keys(plot.faults).filter((k) => !k.startsWith('partition') && k !== 'bandwidth');
  const faultCounts = new Array(plot.buckets).fill(0);
  for (const k of faultNames) plot.faults[k].forEach((n, b) => (faultCounts[b] += n));
  return {
    t0: plot.t0, t1: plot.t1, lanes,
    faults: faultCounts.map((n, b) => [x(b), n]).filter(([, n]) => n > 0),
    bandwidth: (plot.faults.bandwidth ?? []).map((n, b) => [x(b), n]).filter(([, n]) => n > 0),
    partitions: plot.partitions, violations: plot.violations,
  };
}

/**
 * Lanes from a live feed's history: `history[key]` holds [t, a, b, c] per tick (step: min, max,
 * last; rate: bytes so far in c; points: mean, max).
 */
export function lanesFromHistory(history, shapes, groups, markers, violations, tNow) {
  const keys = Object.keys(history);
  const t0 = Math.min(tNow, ...keys.map((k) => history[k][0]?.[0] ?? tNow));
  const lanes = [];
  for (const g of groups) {
    const own = keys.filter((k) => k.split('|')[0] === g.group).sort();
    if (own.length === 0) continue;
    lanes.push({
      ...g,
      lines: own.map((key) => {
        const h = history[key];
        const shape = shapes[g.group] ?? 'step';
        if (shape === 'rate') {
          const points = [];
          for (let k = 1; k < h.length; k++) {
            const dt = h[k][0] - h[k - 1][0];
            if (dt > 0) {
              const v = (h[k][3] - h[k - 1][3]) / 1e6 / (dt / 1000);
              points.push([h[k][0], v, v, v]);
            }
          }
          return { name: key.split('|')[1], points };
        }
        if (shape === 'points') return { name: key.split('|')[1], points: h.map((p) => [p[0], p[1], p[2], p[1]]) };
        return { name: key.split('|')[1], points: h.map((p) => [p[0], p[1], p[2], p[3]]) };
      }),
    });
  }
  const faults = markers.filter((m) => m.type === 'fault' && !m.name.startsWith('partition') && m.name !== 'bandwidth').map((m) => [m.t, 1]);
  const partitions = [];
  for (const m of markers) {
    if (m.name === 'partition.start') partitions.push({ startMs: m.t, endMs: tNow });
    else if (m.name === 'partition.heal' && partitions.length > 0) partitions[partitions.length - 1].endMs = m.t;
  }
  const vs = violations.map((v) => ({ atMs: typeof v.atMs === 'number' ? v.atMs : v.t, invariant: v.invariant, node: v.node, message: v.message, index: null }));
  return { t0, t1: Math.max(tNow, t0 + 1e-6), lanes, faults, bandwidth: [], partitions, violations: vs };
}

/**
 * Draw `data` into `container` (replacing what was there). `onSeek(t)` is called with the time
 * under a click; `onViolation(v)` when a violation marker is followed.
 */
export function renderPlots(container, data, { width, onSeek, onViolation }) {
  const plotWidth = Math.max(200, width - LEFT - RIGHT);
  const height = TOP + data.lanes.length * LANE_HEIGHT + MARKER_LANE_HEIGHT + 18;
  const span = data.t1 > data.t0 ? data.t1 - data.t0 : 1;
  const xOf = (t) => LEFT + ((t - data.t0) / span) * plotWidth;
  const root = svg('svg', { class: 'plots-svg', width, height, viewBox: `0 0 ${width} ${height}`, 'data-t0': data.t0, 'data-t1': data.t1 });
  const shade = svg('g', { class: 'partitions' });
  root.append(shade);
  data.lanes.forEach((lane, k) => root.append(drawLane(lane, TOP + k * LANE_HEIGHT, xOf, plotWidth)));
  const markerTop = TOP + data.lanes.length * LANE_HEIGHT;
  root.append(drawMarkers(data, markerTop, xOf, span / plotWidth, onViolation));
  for (const p of data.partitions) {
    const x0 = Math.max(LEFT, xOf(p.startMs));
    const x1 = Math.min(LEFT + plotWidth, xOf(p.endMs));
    if (x1 > x0) shade.append(svg('rect', { class: 'partition', x: x0, y: TOP, width: Math.max(1, x1 - x0), height: markerTop + MARKER_LANE_HEIGHT - TOP }, svg('title', { text: `partition ${ms(p.startMs)} to ${ms(p.endMs)}` })));
  }
  root.append(svg('text', { class: 'axis', x: LEFT, y: height - 4, text: ms(data.t0) }));
  root.append(svg('text', { class: 'axis', x: LEFT + plotWidth, y: height - 4, 'text-anchor': 'end', text: ms(data.t1) }));
  root.append(svg('line', { class: 'cursor', x1: -10, x2: -10, y1: TOP, y2: markerTop + MARKER_LANE_HEIGHT }));
  root.addEventListener('click', (ev) => {
    if (ev.target.closest('a')) return;
    const box = root.getBoundingClientRect();
    const px = ((ev.clientX - box.left) / box.width) * width;
    if (px >= LEFT && px <= LEFT + plotWidth) onSeek?.(data.t0 + ((px - LEFT) / plotWidth) * span);
  });
  container.replaceChildren(root);
  return { setCursor: (t) => setCursor(root, xOf, t, LEFT, LEFT + plotWidth) };
}

function setCursor(root, xOf, t, lo, hi) {
  const line = root.querySelector('.cursor');
  const x = t === null || t === undefined ? -10 : Math.min(hi, Math.max(lo, xOf(t)));
  line.setAttribute('x1', x);
  line.setAttribute('x2', x);
  root.dataset.cursor = t ?? '';
}

function drawLane(lane, top, xOf, plotWidth) {
  const g = svg('g', { class: 'lane', 'data-group': lane.group });
  const h = LANE_HEIGHT - 14;
  let max = 0;
  for (const l of lane.lines) for (const p of l.points) max = Math.max(max, p[2] ?? 0, p[3] ?? 0);
  if (lane.group === 'link' || lane.group === 'supervision') max = 1;
  max = max > 0 ? max : 1;
  const yOf = (v) => top + h - (v / max) * h;
  g.append(svg('rect', { class: 'lane-bg', x: LEFT, y: top, width: plotWidth, height: h }));
  g.append(svg('text', { class: 'lane-title', x: 4, y: top + 12, text: lane.title }));
  g.append(svg('text', { class: 'lane-unit', x: 4, y: top + 25, text: `max ${num(max, 2)} ${lane.unit}` }));
  lane.lines.forEach((line, k) => {
    const cls = colour(k);
    const pts = line.points.filter((p) => p[3] !== null && p[3] !== undefined);
    const band = line.points.filter((p) => p[1] !== null && p[2] !== null && p[2] !== p[1]);
    if (band.length > 0) {
      const upper = band.map((p) => `${xOf(p[0]).toFixed(1)},${yOf(p[2]).toFixed(1)}`);
      const lower = band.slice().reverse().map((p) => `${xOf(p[0]).toFixed(1)},${yOf(p[1]).toFixed(1)}`);
      g.append(svg('polygon', { class: `band ${cls}`, points: [...upper, ...lower].join(' ') }));
    }
    if (pts.length > 0) g.append(svg('polyline', { class: `line ${cls}`, 'data-series': `${lane.group}|${line.name}`, points: pts.map((p) => `${xOf(p[0]).toFixed(1)},${yOf(p[3]).toFixed(1)}`).join(' ') }));
    g.append(svg('text', { class: `legend ${cls}`, x: 4, y: top + 37 + k * 10, text: line.name }));
  });
  return g;
}

function drawMarkers(data, top, xOf, msPerPx, onViolation) {
  const g = svg('g', { class: 'lane markers', 'data-group': 'markers' });
  const h = MARKER_LANE_HEIGHT - 8;
  g.append(svg('text', { class: 'lane-title', x: 4, y: top + 12, text: 'faults, violations' }));
  const maxFaults = Math.max(1, ...data.faults.map(([, n]) => n));
  const barWidth = Math.max(1, 1 / Math.max(msPerPx, 1e-9));
  for (const [t, n] of data.faults) {
    const bh = Math.max(2, (n / maxFaults) * (h - 12));
    g.append(svg('rect', { class: 'fault', x: xOf(t) - barWidth / 2, y: top + h - bh, width: Math.max(1, Math.min(barWidth, 6)), height: bh }, svg('title', { text: `${n} frame fault${n === 1 ? '' : 's'} near ${ms(t)}` })));
  }
  for (const [t] of data.bandwidth) g.append(svg('path', { class: 'bandwidth', d: `M${xOf(t)},${top + 2} l4,6 l-8,0 z` }, svg('title', { text: `bandwidth change near ${ms(t)}` })));
  // Violations a few pixels apart share one marker (it lists them all and links to the first),
  // so that no marker hides another.
  const groups = [];
  data.violations.forEach((v, k) => {
    const x = xOf(v.atMs);
    const last = groups[groups.length - 1];
    if (last && Math.abs(x - last.x) < 6) last.items.push([v, k]);
    else groups.push({ x, items: [[v, k]] });
  });
  for (const { x, items } of groups) {
    const [v, k] = items[0];
    const text = items.map(([w]) => `${w.invariant} at ${ms(w.atMs)} on ${w.node}: ${w.message}`).join('\n');
    const a = svg('a', { class: 'violation-marker', href: `#violation-${k}`, 'data-atms': v.atMs, 'data-index': v.index ?? '', 'data-count': items.length },
      svg('path', { d: `M${x},${top + h} l7,-12 l-14,0 z` }), svg('title', { text }));
    a.addEventListener('click', (ev) => {
      ev.preventDefault();
      onViolation?.(v, k);
    });
    g.append(a);
  }
  return g;
}
