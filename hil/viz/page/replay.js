/* global document, window */
// Replay mode (docs/viz.md, "Replay"): a scrubber over every event of the trace, play/pause/step,
// jumps to the next state change, fault or violation, plots of the whole run (or a zoomed part),
// and at the scrubbed instant: each chart's state, the counters, the events around it. The trace
// stays on the server; the page only ever asks for one instant or one window of events at a time.
import { el, ms } from './dom.js';
import { renderCounters, renderEvents, renderViolations, showViolation } from './panels.js';
import { lanesFromPlot, renderPlots } from './plots.js';

const PLAY_RATES = [['0.001', 0.001], ['0.01', 0.01], ['0.1', 0.1], ['1', 1]];
const PLAY_TICK_MS = 50;

async function getJson(url) {
  const r = await fetch(url);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error ?? `${url}: ${r.status}`);
  return body;
}

export async function startReplay(info, board) {
  const trace = info.trace;
  const last = trace.events - 1;
  const run = trace.run ?? {};
  document.getElementById('run-info').textContent = [trace.file, `${trace.events.toLocaleString('en-US')} events`, ms(trace.durationMs),
    run.seed !== undefined ? `seed ${run.seed}` : '', run.mode ?? '', run.reproduce ?? ''].filter(Boolean).join(' · ');
  const status = document.getElementById('status');
  status.textContent = trace.violationsTotal > 0 ? `${trace.violationsTotal} violation${trace.violationsTotal === 1 ? '' : 's'}` : 'no violations';
  status.className = trace.violationsTotal > 0 ? 'bad' : 'ok';

  const view = { index: -1, t: 0, wanted: 0, busy: false, focus: null, playing: null, rate: 0.01, range: [0, trace.durationMs] };
  const controls = buildControls(last);
  document.getElementById('controls').replaceChildren(...controls.nodes);

  let plots = null;
  const drawPlots = async () => {
    const container = document.getElementById('plots');
    const width = Math.max(400, container.clientWidth || 900);
    const [t0, t1] = view.range;
    const plot = await getJson(`/api/plot?t0=${t0}&t1=${t1}&buckets=${Math.max(50, Math.min(2000, width - 160))}`);
    plots = renderPlots(container, lanesFromPlot(plot, info.groups), { width, onSeek: (t) => seekTime(t), onViolation: (v) => focusOn(v) });
    plots.setCursor(view.t);
  };

  const show = (res) => {
    view.index = res.i;
    view.t = res.t;
    for (const [instance, s] of Object.entries(res.states)) board.show(instance, s?.state ?? null, s ? { from: s.from, to: s.state, event: s.event, t: s.index } : null);
    renderCounters(document.getElementById('counters'), res.series, res.counts);
    renderEvents(document.getElementById('events'), res.events, res.i, view.focus);
    plots?.setCursor(res.t);
    controls.scrubber.value = String(res.i);
    controls.position.textContent = `event ${res.i.toLocaleString('en-US')} of ${trace.events.toLocaleString('en-US')} · t = ${ms(res.t)}`;
    document.body.dataset.index = String(res.i);
    document.body.dataset.t = String(res.t);
    // When the frame showing it has been drawn (two animation frames on): what a scrub costs, as a person sees it.
    window.requestAnimationFrame(() => window.requestAnimationFrame(() => {
      document.body.dataset.paintedAt = String(window.performance.now());
      document.body.dataset.paintedIndex = String(res.i);
    }));
  };

  // Scrubbing: only the latest position wanted is fetched; positions passed over while a fetch was out are skipped.
  const scrubTo = (i) => {
    view.wanted = Math.max(0, Math.min(last, i));
    if (view.busy) return;
    view.busy = true;
    const loop = async () => {
      while (view.wanted !== view.index) {
        const want = view.wanted;
        const res = await getJson(`/api/at?i=${want}&around=20`);
        show(res);
        if (view.wanted === want) break;
      }
      view.busy = false;
    };
    loop().catch(fail);
  };
  const seekTime = (t) => getJson(`/api/at?t=${Math.max(0, t)}&around=20`).then((res) => scrubTo(res.i)).catch(fail);
  const jump = (to, dir) => getJson(`/api/jump?from=${Math.max(0, view.index)}&to=${to}&dir=${dir}`).then((r) => {
    if (r.index === null) flash(controls.position, `no ${dir === 'next' ? 'later' : 'earlier'} ${to === 'state' ? 'state change' : to}`);
    else scrubTo(r.index);
  }).catch(fail);
  const focusOn = (v) => {
    view.focus = v;
    showViolation(v);
    scrubTo(v.index);
    document.getElementById('events-panel').scrollIntoView({ block: 'nearest' });
  };

  const play = () => {
    if (view.playing) {
      window.clearInterval(view.playing);
      view.playing = null;
      controls.play.textContent = 'play';
      return;
    }
    controls.play.textContent = 'pause';
    let t = view.t;
    let before = performance.now();
    view.playing = window.setInterval(() => {
      const now = performance.now();
      t += (now - before) * view.rate;
      before = now;
      if (t >= trace.durationMs) {
        t = trace.durationMs;
        play();
      }
      if (!view.busy) seekTime(t);
    }, PLAY_TICK_MS);
  };

  const zoom = (factor) => {
    const [t0, t1] = view.range;
    const width = Math.min(trace.durationMs, Math.max(1e-3, (t1 - t0) * factor));
    const start = Math.max(0, Math.min(trace.durationMs - width, view.t - width / 2));
    view.range = factor >= 1 && width >= trace.durationMs ? [0, trace.durationMs] : [start, start + width];
    drawPlots().catch(fail);
  };

  controls.scrubber.addEventListener('input', () => scrubTo(Number(controls.scrubber.value)));
  controls.on('prev-state', () => jump('state', 'prev'));
  controls.on('step-back', () => scrubTo(view.index - 1));
  controls.play.addEventListener('click', play);
  controls.on('step', () => scrubTo(view.index + 1));
  controls.on('next-state', () => jump('state', 'next'));
  controls.on('next-fault', () => jump('fault', 'next'));
  controls.on('next-violation', () => jump('violation', 'next'));
  controls.on('zoom-in', () => zoom(0.25));
  controls.on('zoom-out', () => zoom(4));
  controls.rate.addEventListener('change', () => (view.rate = Number(controls.rate.value)));
  document.addEventListener('keydown', (ev) => {
    if (ev.target instanceof window.HTMLInputElement && ev.target.type !== 'range') return;
    if (ev.key === 'ArrowRight' && !ev.shiftKey) scrubTo(view.index + 1);
    else if (ev.key === 'ArrowLeft' && !ev.shiftKey) scrubTo(view.index - 1);
    else return;
    ev.preventDefault();
  });

  renderViolations(document.getElementById('violations'), trace.violations, trace.violationsTotal, (v) => focusOn(v));
  await drawPlots();
  show(await getJson('/api/at?i=0&around=20'));
}

function buildControls(last) {
  const buttons = new Map();
  const button = (id, text, title) => {
    const b = el('button', { id: `btn-${id}`, type: 'button', title, text });
    buttons.set(id, b);
    return b;
  };
  const scrubber = el('input', { id: 'scrubber', type: 'range', min: 0, max: last, step: 1, value: 0, 'aria-label': 'position in the trace (event number)' });
  const rate = el('select', { id: 'play-rate', title: 'virtual ms per wall ms while playing' },
    ...PLAY_RATES.map(([label, v]) => el('option', { value: v, selected: v === 0.01, text: `×${label}` })));
  const position = el('span', { class: 'position', id: 'position', text: '' });
  const nodes = [
    button('prev-state', '◀◀ state', 'previous state change'), button('step-back', '◀', 'previous event (←)'),
    button('play', 'play', 'play through the trace in virtual time'), rate, button('step', '▶', 'next event (→)'),
    button('next-state', 'state ▶▶', 'next state change'), button('next-fault', 'fault ▶▶', 'next fault'),
    button('next-violation', 'violation ▶▶', 'next violation'), scrubber, position,
    button('zoom-in', 'zoom in', 'plots: a quarter of the span, around the cursor'), button('zoom-out', 'zoom out', 'plots: four times the span'),
  ];
  return { nodes, scrubber, position, rate, play: buttons.get('play'), on: (id, f) => buttons.get(id).addEventListener('click', f) };
}

function flash(node, text) {
  const before = node.textContent;
  node.textContent = text;
  window.setTimeout(() => {
    if (node.textContent === text) node.textContent = before;
  }, 1200);
}

function fail(err) {
  const box = document.getElementById('error');
  box.hidden = false;
  box.textContent = String(err?.message ?? err);
}
