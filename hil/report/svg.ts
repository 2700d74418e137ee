import { escapeAttr, escapeText } from './xml.ts';

/**
 * Charts as inline SVG text, for reports that must open anywhere with no network and no script
 * (docs/reports.md, "HTML reports"). Colours come from the page's stylesheet: series slot k has
 * class `s{k % 8}`.
 */
export interface LineSeries {
  name: string;
  points: readonly (readonly [number, number])[];
  /** A reference (a limit, a floor): drawn dashed. */
  dashed?: boolean;
  /** Dots only, no line (a scatter). */
  dotsOnly?: boolean;
  /** Colour slot (default: the series' position). */
  slot?: number;
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  xLog?: boolean;
  width?: number;
  height?: number;
}

export interface BarChart {
  title: string;
  yLabel: string;
  categories: readonly string[];
  /** One bar per group in each category (side by side), or stacked. */
  groups: readonly { name: string; values: readonly number[]; slot?: number }[];
  stacked?: boolean;
  /** Horizontal reference lines (a floor, a limit). */
  references?: readonly { name: string; value: number }[];
  width?: number;
  height?: number;
}

const MARGIN = { left: 64, right: 16, top: 30, bottom: 46 };

/** Round-number ticks from at or below `lo` to at or above `hi` (so the last tick can be an axis's top). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  const top = Math.ceil(hi / step - 1e-9) * step;
  for (let v = Math.floor(lo / step + 1e-9) * step; v <= top + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

export function formatNumber(v: number): string {
  if (v !== 0 && (Math.abs(v) >= 1e6 || Math.abs(v) < 1e-3)) return v.toExponential(1);
  return v.toLocaleString('en-US', { maximumFractionDigits: Math.abs(v) < 10 ? 3 : Math.abs(v) < 1000 ? 1 : 0 });
}

function frame(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeAttr(title)}">`,
    `<title>${escapeText(title)}</title>`,
    `<text class="title" x="${MARGIN.left}" y="18">${escapeText(title)}</text>`,
    ...body,
    '</svg>',
  ].join('\n');
}

function legend(items: readonly { name: string; slot: number; dashed?: boolean }[], x: number, y: number): string[] {
  let cx = x;
  return items.map((it) => {
    const out = `<g class="legend"><line class="s${it.slot % 8}${it.dashed ? ' dashed' : ''}" x1="${cx}" y1="${y}" x2="${cx + 16}" y2="${y}"/><text x="${cx + 20}" y="${y + 4}">${escapeText(it.name)}</text></g>`;
    cx += 28 + it.name.length * 6.5;
    return out;
  });
}

/** A line chart (x may be logarithmic), with a point marker at every datum and a legend. */
export function lineChart(c: LineChart): string {
  const width = c.width ?? 640;
  const height = c.height ?? 320;
  const pw = width - MARGIN.left - MARGIN.right;
  const ph = height - MARGIN.top - MARGIN.bottom - 16;
  const all = c.series.flatMap((s) => s.points);
  if (all.length === 0) return frame(width, height, c.title, [`<text class="empty" x="${MARGIN.left}" y="${MARGIN.top + 20}">no data</text>`]);
  const xs = all.map((p) => p[0]);
  const fx = (v: number): number => (c.xLog ? Math.log10(Math.max(v, 1e-12)) : v);
  const [x0, x1] = [Math.min(...xs.map(fx)), Math.max(...xs.map(fx))];
  const yMax = Math.max(...all.map((p) => p[1]), 0);
  const yTicks = niceTicks(0, yMax > 0 ? yMax : 1);
  const yTop = yTicks[yTicks.length - 1]!;
  const X = (v: number): number => MARGIN.left + (x1 > x0 ? ((fx(v) - x0) / (x1 - x0)) * pw : pw / 2);
  const Y = (v: number): number => MARGIN.top + ph - (v / (yTop || 1)) * ph;
  const body: string[] = [`<rect class="plot" x="${MARGIN.left}" y="${MARGIN.top}" width="${pw}" height="${ph}"/>`];
  for (const t of yTicks) body.push(`<line class="grid" x1="${MARGIN.left}" x2="${MARGIN.left + pw}" y1="${Y(t)}" y2="${Y(t)}"/><text class="tick" x="${MARGIN.left - 6}" y="${Y(t) + 4}" text-anchor="end">${escapeText(formatNumber(t))}</text>`);
  const xTicks = c.xLog ? [...new Set(xs)].sort((a, b) => a - b) : niceTicks(x0, x1);
  for (const t of xTicks) body.push(`<text class="tick" x="${X(t)}" y="${MARGIN.top + ph + 16}" text-anchor="middle">${escapeText(formatNumber(t))}</text>`);
  body.push(`<text class="axis" x="${MARGIN.left + pw / 2}" y="${MARGIN.top + ph + 32}" text-anchor="middle">${escapeText(c.xLabel)}</text>`);
  body.push(`<text class="axis" transform="translate(14 ${MARGIN.top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeText(c.yLabel)}</text>`);
  c.series.forEach((s, k) => {
    const slot = s.slot ?? k;
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    if (!s.dotsOnly && pts.length > 1) {
      body.push(`<polyline class="s${slot % 8}${s.dashed ? ' dashed' : ''}" data-series="${escapeAttr(s.name)}" points="${pts.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' ')}"/>`);
    }
    for (const p of pts) body.push(`<circle class="s${slot % 8}${s.dashed ? ' hollow' : ''}" cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="${s.dotsOnly ? 2.5 : 3}"><title>${escapeText(`${s.name}: ${formatNumber(p[0])}, ${formatNumber(p[1])}`)}</title></circle>`);
  });
  body.push(...legend(c.series.map((s, k) => ({ name: s.name, slot: s.slot ?? k, dashed: s.dashed })), MARGIN.left, height - 8));
  return frame(width, height, c.title, body);
}

/** A bar chart: groups side by side (or stacked) in each category, with optional reference lines. */
export function barChart(c: BarChart): string {
  const width = c.width ?? 640;
  const height = c.height ?? 320;
  const pw = width - MARGIN.left - MARGIN.right;
  const ph = height - MARGIN.top - MARGIN.bottom - 16;
  const totals = c.categories.map((_, i) => (c.stacked ? c.groups.reduce((s, g) => s + (g.values[i] ?? 0), 0) : Math.max(0, ...c.groups.map((g) => g.values[i] ?? 0))));
  const yMax = Math.max(0, ...totals, ...(c.references ?? []).map((r) => r.value));
  const yTicks = niceTicks(0, yMax > 0 ? yMax : 1);
  const yTop = yTicks[yTicks.length - 1]!;
  const Y = (v: number): number => MARGIN.top + ph - (v / (yTop || 1)) * ph;
  const band = pw / Math.max(1, c.categories.length);
  const body: string[] = [`<rect class="plot" x="${MARGIN.left}" y="${MARGIN.top}" width="${pw}" height="${ph}"/>`];
  for (const t of yTicks) body.push(`<line class="grid" x1="${MARGIN.left}" x2="${MARGIN.left + pw}" y1="${Y(t)}" y2="${Y(t)}"/><text class="tick" x="${MARGIN.left - 6}" y="${Y(t) + 4}" text-anchor="end">${escapeText(formatNumber(t))}</text>`);
  body.push(`<text class="axis" transform="translate(14 ${MARGIN.top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeText(c.yLabel)}</text>`);
  c.categories.forEach((cat, i) => {
    const x = MARGIN.left + i * band;
    body.push(`<text class="tick" x="${x + band / 2}" y="${MARGIN.top + ph + 16}" text-anchor="middle">${escapeText(cat)}</text>`);
    const barW = c.stacked ? band * 0.6 : (band * 0.8) / Math.max(1, c.groups.length);
    let base = 0;
    c.groups.forEach((g, k) => {
      const v = g.values[i] ?? 0;
      const bx = c.stacked ? x + band * 0.2 : x + band * 0.1 + k * barW;
      const top = Y(base + v);
      const h = Y(base) - top;
      body.push(`<rect class="bar s${(g.slot ?? k) % 8}" x="${bx.toFixed(1)}" y="${top.toFixed(1)}" width="${Math.max(1, barW - 2).toFixed(1)}" height="${Math.max(0, h).toFixed(1)}"><title>${escapeText(`${cat}, ${g.name}: ${formatNumber(v)}`)}</title></rect>`);
      if (c.stacked) base += v;
    });
  });
  (c.references ?? []).forEach((r, k) => {
    body.push(`<line class="reference dashed s${(c.groups.length + k) % 8}" x1="${MARGIN.left}" x2="${MARGIN.left + pw}" y1="${Y(r.value)}" y2="${Y(r.value)}"><title>${escapeText(`${r.name}: ${formatNumber(r.value)}`)}</title></line>`);
  });
  const items = [...c.groups.map((g, k) => ({ name: g.name, slot: g.slot ?? k })), ...(c.references ?? []).map((r, k) => ({ name: r.name, slot: c.groups.length + k, dashed: true }))];
  body.push(...legend(items, MARGIN.left, height - 8));
  return frame(width, height, c.title, body);
}
