/* global document */
// The visualizer's page (docs/viz.md): it asks the server what it is showing (a recorded trace,
// a live run, or the charts alone), draws every statechart, then hands over to replay or live mode.
import { ChartBoard } from './charts.js';
import { el } from './dom.js';
import { startLive } from './live.js';
import { startReplay } from './replay.js';

async function main() {
  const response = await fetch('/api/info');
  if (!response.ok) throw new Error(`the server said ${response.status}`);
  const info = await response.json();
  document.body.dataset.mode = info.mode;
  document.getElementById('mode').textContent = { replay: 'replay', live: 'live', charts: 'statecharts' }[info.mode] ?? info.mode;
  const board = new ChartBoard(document.getElementById('charts'));
  await board.setModels(info.charts.models);
  board.ensure(info.charts.instances);
  if (info.mode === 'replay') await startReplay(info, board);
  else if (info.mode === 'live') await startLive(info, board);
  else {
    document.getElementById('controls').append(el('span', { class: 'note', text: 'No trace and no live run: every firmware statechart, as defined. Open a trace with `mirrorlab viz --trace FILE`, or watch a run with `mirrorlab emulate --viz`.' }));
    for (const panel of ['plots-panel', 'counters-panel', 'violations-panel', 'events-panel']) document.getElementById(panel).hidden = true;
  }
  document.body.dataset.ready = 'true';
}

main().catch((err) => {
  const box = document.getElementById('error');
  box.hidden = false;
  box.textContent = `The visualizer could not start: ${err?.message ?? err}`;
  document.body.dataset.error = String(err?.message ?? err);
});
