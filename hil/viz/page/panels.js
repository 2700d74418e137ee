/* global document */
// The side panels: counters at the instant shown, the events around it, the violations.
import { el, eventDetail, ms, num } from './dom.js';

const CHANNEL_ROWS = [
  ['rollback', 'rollback log (entries)'],
  ['commit', 'commit log (entries)'],
  ['inflight', 'frames in flight'],
  ['locks', 'mirror locks held'],
  ['link', 'link (source channel)'],
  ['supervision', 'link supervisor'],
  ['latency', 'last write latency (ms)'],
  ['applied', 'applied on the target (MB)'],
];

/**
 * Counters: per channel the derived figures (`series`), then how many events of each kind each
 * node emitted (`counts`). Rebuilt only when the rows or columns change; otherwise only the
 * numbers are rewritten.
 */
export function renderCounters(container, series, counts) {
  const shape = `${Object.keys(series).sort().join(',')}|${Object.keys(counts).sort().join(',')}`;
  if (container.dataset.shape === shape) {
    for (const td of container.querySelectorAll('td[data-counter]')) td.textContent = counterText(td.dataset.counter, series[td.dataset.counter]);
    for (const td of container.querySelectorAll('td[data-count]')) td.textContent = counts[td.dataset.count] === undefined ? '' : num(counts[td.dataset.count]);
    return;
  }
  container.dataset.shape = shape;
  const channels = [...new Set(Object.keys(series).map((k) => k.split('|')[1]))].sort();
  const derived = el('table', { class: 'derived' }, el('tr', {}, el('th', { text: '' }), ...channels.map((c) => el('th', { text: c }))));
  for (const [group, title] of CHANNEL_ROWS) {
    if (!channels.some((c) => series[`${group}|${c}`] !== undefined)) continue;
    derived.append(el('tr', {}, el('td', { text: title }), ...channels.map((c) => {
      const key = `${group}|${c}`;
      return el('td', { 'data-counter': key, text: counterText(key, series[key]) });
    })));
  }
  const nodes = [...new Set(Object.keys(counts).map((k) => k.slice(k.lastIndexOf('@') + 1)))].sort();
  const kinds = [...new Set(Object.keys(counts).map((k) => k.slice(0, k.lastIndexOf('@'))))].sort();
  const table = el('table', { class: 'counts' }, el('tr', {}, el('th', { text: 'events so far' }), ...nodes.map((n) => el('th', { text: n || '–' }))));
  for (const kind of kinds) {
    table.append(el('tr', {}, el('td', { text: kind }), ...nodes.map((n) => {
      const v = counts[`${kind}@${n}`];
      return el('td', { 'data-count': `${kind}@${n}`, text: v === undefined ? '' : num(v) });
    })));
  }
  container.replaceChildren(derived, table);
}

function counterText(key, v) {
  if (v === undefined) return '';
  const group = key.split('|')[0];
  if (group === 'applied') return num(v / 1e6, 2);
  if (group === 'latency') return num(v, 3);
  if (group === 'link' || group === 'supervision') return v >= 1 ? 'up' : v > 0 ? 'probation' : 'down';
  return num(v);
}

/** Is `e` about the same place as violation `v` (same stream sequence number or LBA, at or with its node)? */
export function relatedTo(e, v) {
  if (!v) return false;
  const sameNode = e.node === v.node || e.peer === v.node;
  if (!sameNode) return false;
  return (v.seq !== 0 && e.seq === v.seq) || (v.lba !== 0 && e.lba === v.lba) || (e.kind === 'violation' && e.invariant === v.invariant);
}

/** The events list: only the window it is given is ever in the DOM. */
export function renderEvents(container, events, currentIndex, focus) {
  const items = events.map(({ index, event }) => {
    const li = el('li', { 'data-index': index ?? '', class: [index !== null && index === currentIndex ? 'current' : '', relatedTo(event, focus) ? 'related' : ''].join(' ').trim() || null },
      el('span', { class: 'i', text: index === null || index === undefined ? '' : `#${index} ` }),
      `${ms(event.t)} ${event.node ?? ''} `, el('span', { class: 'k', text: event.kind }), ` ${eventDetail(event)}`);
    li.title = JSON.stringify(event);
    return li;
  });
  container.replaceChildren(...items);
  // Scroll the list (only the list: never the page) so the current event sits in its middle.
  const current = container.querySelector('li.current');
  if (current) container.scrollTop = Math.max(0, current.offsetTop - container.offsetTop - container.clientHeight / 2);
}

/** The violations list; each links to the events around it. */
export function renderViolations(container, violations, total, onPick) {
  const items = violations.map((v, k) => {
    const a = el('a', { href: `#violation-${k}`, class: 'violation-link', 'data-atms': v.atMs, 'data-index': v.index ?? '', text: `${v.invariant} at ${ms(v.atMs)} on ${v.node}` });
    a.addEventListener('click', (ev) => {
      ev.preventDefault();
      onPick(v, k);
    });
    return el('li', { id: `violation-${k}` }, a);
  });
  if (violations.length === 0) items.push(el('li', { class: 'none', text: 'none' }));
  else if (total > violations.length) items.push(el('li', { text: `… and ${total - violations.length} more` }));
  container.replaceChildren(...items);
}

export function showViolation(v) {
  const box = document.getElementById('violation-detail');
  box.textContent = v ? `${v.invariant} at ${ms(v.atMs)} on ${v.node}, LUN ${v.lun ?? '?'} LBA ${v.lba ?? '?'} seq ${v.seq ?? '?'}:\n${v.message}` : '';
}
