/* global document */
// Small DOM helpers shared by the page's modules (docs/viz.md). No framework: the page is small,
// and every node it makes is made here, so nothing is ever built from unescaped HTML strings.

export const SVG_NS = 'http://www.w3.org/2000/svg';

/** An HTML element with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

/** An SVG element with attributes and children. */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function setAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') node.textContent = String(v);
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
}

/** A millisecond figure as people read it. */
export function ms(t) {
  if (t === null || t === undefined || !Number.isFinite(t)) return '–';
  if (t >= 1000) return `${(t / 1000).toFixed(3)} s`;
  return `${t.toFixed(t >= 100 ? 1 : 3)} ms`;
}

export function num(v, digits = 0) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return v.toLocaleString('en-US', { maximumFractionDigits: digits });
}

/** The fields of an event other than kind, t and node, as `k=v` text. */
export function eventDetail(e) {
  const parts = [];
  for (const [k, v] of Object.entries(e)) {
    if (k === 'kind' || k === 't' || k === 'node') continue;
    const text = typeof v === 'object' ? JSON.stringify(v) : String(v);
    parts.push(`${k}=${text.length > 160 ? `${text.slice(0, 160)}…` : text}`);
  }
  return parts.join(' ');
}

/** The colour slot of the i-th series of a plot (CSS classes .c0 … .c7). */
export function colour(i) {
  return `c${i % 8}`;
}
