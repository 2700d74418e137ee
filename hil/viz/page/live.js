/* global document, window, location */
// Live mode (docs/viz.md, "Live mode"): the page follows a running emulation over a WebSocket. Each
// tick brings the charts' states and the transitions just taken, series points, event counts, the
// latest events, faults and violations; the page can pause the run and change its speed.
import { el, ms } from './dom.js';
import { renderCounters, renderEvents, renderViolations, showViolation } from './panels.js';
import { lanesFromHistory, renderPlots } from './plots.js';

/** Points kept per series, and markers, on the page (the server keeps the same bounds). */
const HISTORY_MAX = 3000;
const MARKERS_MAX = 2000;
const REDRAW_MS = 250;

export async function startLive(info, board) {
  const state = { history: {}, shapes: {}, markers: [], violations: [], t: 0, series: {}, ended: null, control: null, lastDraw: 0 };
  const status = document.getElementById('status');
  const pause = el('button', { id: 'btn-live-pause', type: 'button', text: 'pause' });
  const speed = el('input', { id: 'live-speed', type: 'number', min: '0.00001', max: '1000', step: 'any', value: '0.01', title: 'virtual ms per wall ms' });
  const apply = el('button', { id: 'btn-live-speed', type: 'button', text: 'set speed' });
  const clock = el('span', { class: 'position', id: 'position', text: '' });
  document.getElementById('controls').replaceChildren(pause, el('label', {}, 'speed ', speed), apply, clock,
    el('span', { class: 'note', text: 'live: the run is paced to this speed (virtual ms per wall ms)' }));

  const ws = new WebSocket(`ws://${location.host}/live`);
  const sendControl = (msg) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify(msg));
  pause.addEventListener('click', () => sendControl({ type: state.control?.paused ? 'resume' : 'pause' }));
  apply.addEventListener('click', () => sendControl({ type: 'speed', value: Number(speed.value) }));

  const redraw = (force) => {
    const now = window.performance.now();
    if (!force && now - state.lastDraw < REDRAW_MS) return;
    state.lastDraw = now;
    const container = document.getElementById('plots');
    const width = Math.max(400, container.clientWidth || 900);
    const plots = renderPlots(container, lanesFromHistory(state.history, state.shapes, info.groups, state.markers, state.violations, state.t), { width, onSeek: null, onViolation: (v) => showViolation(v) });
    plots.setCursor(state.t);
  };
  const showStates = (states) => {
    for (const [instance, ch] of Object.entries(states)) board.show(instance, ch.to, ch);
  };
  const showControl = (control) => {
    state.control = control;
    if (!control) return;
    pause.textContent = control.paused ? 'resume' : 'pause';
    if (document.activeElement !== speed) speed.value = String(control.speed);
  };
  const showStatus = () => {
    if (state.ended) {
      status.textContent = `finished: ${state.ended.verdict}${state.ended.violations > 0 ? ` (${state.ended.violations} violations)` : ''}`;
      status.className = state.ended.verdict === 'consistent' ? 'ok' : 'bad';
    } else {
      status.textContent = state.control?.paused ? 'paused' : 'running';
      status.className = '';
    }
    clock.textContent = `t = ${ms(state.t)}`;
    document.body.dataset.t = String(state.t);
  };
  const addPoints = (points) => {
    for (const [key, p] of Object.entries(points)) {
      const h = (state.history[key] ??= []);
      h.push(p);
      if (h.length > HISTORY_MAX) h.splice(0, h.length - HISTORY_MAX);
      state.series[key] = p[3];
    }
  };
  const addMarkers = (markers, violations) => {
    state.markers.push(...markers);
    if (state.markers.length > MARKERS_MAX) state.markers.splice(0, state.markers.length - MARKERS_MAX);
    if (violations.length > 0) {
      state.violations.push(...violations);
      renderViolations(document.getElementById('violations'), state.violations.map(asViolation), state.violations.length, (v) => showViolation(v));
    }
  };

  ws.addEventListener('message', async (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === 'hello') {
      state.shapes = msg.shapes;
      state.t = msg.t;
      if (msg.run) document.getElementById('run-info').textContent = [`seed ${msg.run.seed}`, msg.run.mode, msg.run.reproduce].join(' · ');
      if (msg.source) {
        // Controller processes on the real clock: nothing to pause or pace.
        document.getElementById('run-info').textContent = `following ${msg.source}`;
        document.getElementById('controls').replaceChildren(clock, el('span', { class: 'note', text: 'live: controller processes, real time' }));
      }
      await board.setModels(msg.charts.models);
      board.ensure(msg.charts.instances);
      showStates(msg.states);
      state.history = msg.history;
      for (const [key, h] of Object.entries(msg.history)) if (h.length > 0) state.series[key] = h[h.length - 1][3];
      addMarkers(msg.markers, msg.violations);
      renderViolations(document.getElementById('violations'), state.violations.map(asViolation), state.violations.length, (v) => showViolation(v));
      renderCounters(document.getElementById('counters'), state.series, msg.counts);
      renderEvents(document.getElementById('events'), msg.events.map((e) => ({ index: null, event: e })), null, null);
      showControl(msg.control);
      state.ended = msg.ended;
      showStatus();
      redraw(true);
      document.body.dataset.live = 'connected';
      return;
    }
    if (msg.type === 'tick') {
      state.t = msg.t;
      if (msg.models.length > 0) await board.setModels(msg.models);
      board.ensure(msg.instances);
      showStates(msg.states);
      addPoints(msg.points);
      addMarkers(msg.markers, msg.violations);
      renderCounters(document.getElementById('counters'), state.series, msg.counts);
      renderEvents(document.getElementById('events'), msg.events.map((e) => ({ index: null, event: e })), null, null);
      showControl(msg.control);
      showStatus();
      redraw(false);
      document.body.dataset.ticks = String(Number(document.body.dataset.ticks ?? 0) + 1);
      return;
    }
    if (msg.type === 'end') {
      state.ended = msg;
      showStatus();
      redraw(true);
      if (msg.violations > 0) showViolation({ invariant: msg.verdict, atMs: state.t, node: '', message: `${msg.summary}\nreproduce: ${msg.reproduce}` });
      document.body.dataset.live = 'ended';
    }
  });
  ws.addEventListener('close', () => {
    if (!state.ended) {
      status.textContent = 'disconnected';
      status.className = 'bad';
    }
    document.body.dataset.live = state.ended ? 'ended' : 'disconnected';
  });
}

function asViolation(e) {
  return { atMs: typeof e.atMs === 'number' ? e.atMs : e.t, invariant: e.invariant, node: e.node, lun: e.lun, lba: e.lba, seq: e.seq, message: e.message, index: null };
}
