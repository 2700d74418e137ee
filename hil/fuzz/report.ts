import type { FuzzProgress, FuzzReport, TargetSummary } from './campaign.ts';
import { protocolCatalog } from './catalog.ts';
import { coverKey } from './frames.ts';
import { replayCommand, type FuzzFailure, type FuzzTargetName } from './outcome.ts';

/** What a run prints (docs/fuzzing.md 4): a progress line, a summary, or the same as JSON. */

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

function perSecond(frames: number, ms: number): number {
  return ms > 0 ? (frames * 1000) / ms : 0;
}

export function formatProgress(p: FuzzProgress, minutes?: number): string {
  const parts = [...p.byTarget].map(([t, s]) => `${t} ${fmt(s.frames)}`);
  const goal = minutes !== undefined ? `${(p.elapsedMs / 60_000).toFixed(1)}/${minutes} min` : `${fmt(p.frames)}/${fmt(p.goal)}`;
  const failures = [...p.byTarget.values()].reduce((n, s) => n + s.failures.length, 0);
  return `fuzz: ${goal} inputs (${parts.join(', ')}), ${fmt(perSecond(p.frames, p.elapsedMs))}/s, failures ${failures}`;
}

/** Every (type, flags) combination the protocol's tables allow, as coverage keys. */
export function allCoverKeys(): string[] {
  return protocolCatalog().types.flatMap((t) => t.flagCombos.map((f) => coverKey(t, f)));
}

export function failureLines(f: FuzzFailure): string {
  const at = f.frame === undefined ? '' : `, input ${f.frame}`;
  return `FAIL ${f.target} seed ${f.seed} case ${f.caseIndex}${at}: ${f.invariant}: ${f.message}\n  replay: ${replayCommand(f.target, f.seed, f.caseIndex)}${f.target === 'controller' ? ' --verbose' : ''}\n`;
}

function targetLines(t: FuzzTargetName, s: TargetSummary): string {
  const crashes = s.failures.filter((f) => f.invariant === 'crash' || f.invariant === 'firmware-error').length;
  let out = `${t}: ${fmt(s.frames)} inputs (${fmt(s.bytes)} bytes) in ${fmt(s.cases)} cases, ${fmt(perSecond(s.frames, s.elapsedMs))} inputs/s, ` +
    `crashes ${crashes}, failures ${s.failures.length}\n`;
  if (t === 'decoder') {
    const all = allCoverKeys();
    const missed = all.filter((k) => !s.coverage.counts.has(k));
    out += `  valid frames decoded: ${all.length - missed.length} of ${all.length} type/flag combinations${missed.length > 0 && missed.length <= 8 ? ` (not reached: ${missed.join(', ')})` : ''}\n`;
  }
  for (const [name, m] of [...s.maxima.byName].sort(([a], [b]) => a.localeCompare(b))) {
    // Bounds are drawn per case: the closest approach is a fraction of that case's bound.
    out += `  ${name}: at most ${(100 * m.ratio).toFixed(1)}% of its bound (${fmt(m.ratio * m.bound)} of ${fmt(m.bound)} ${m.unit}); largest in any case ${fmt(m.max)}\n`;
  }
  const kinds = [...s.kinds.counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${fmt(n)}`);
  if (kinds.length > 0) out += `  inputs by kind: ${kinds.join(', ')}\n`;
  for (const [k, n] of s.notes.counts) out += `  ${k}: ${fmt(n)}\n`;
  return out;
}

export function formatReport(r: FuzzReport): string {
  const verdict = r.failures.length === 0 ? 'no failures' : `${r.failures.length} failure${r.failures.length === 1 ? '' : 's'}`;
  let out = `fuzz seed ${r.seed}: ${fmt(r.frames)} inputs in ${(r.elapsedMs / 1000).toFixed(1)} s (${fmt(perSecond(r.frames, r.elapsedMs))}/s), ${verdict}` +
    ` (ended: ${r.ended})\n`;
  for (const [t, s] of r.byTarget) out += targetLines(t, s);
  for (const f of r.failures.slice(0, 10)) out += failureLines(f);
  return out;
}

export function reportJson(r: FuzzReport): Record<string, unknown> {
  return {
    seed: r.seed, frames: r.frames, elapsedS: Math.round(r.elapsedMs / 100) / 10, perSecond: Math.round(perSecond(r.frames, r.elapsedMs)), ended: r.ended,
    failures: r.failures.map((f) => ({ ...f, replay: replayCommand(f.target, f.seed, f.caseIndex) })),
    targets: Object.fromEntries([...r.byTarget].map(([t, s]) => [t, {
      cases: s.cases, frames: s.frames, bytes: s.bytes, perSecond: Math.round(perSecond(s.frames, s.elapsedMs)),
      crashes: s.failures.filter((f) => f.invariant === 'crash' || f.invariant === 'firmware-error').length,
      maxima: Object.fromEntries([...s.maxima.byName].map(([n, m]) => [n, { max: m.max, bound: m.bound, ratio: Math.round(m.ratio * 1000) / 1000, unit: m.unit }])),
      coverage: s.coverage.counts.size,
    }])),
  };
}
