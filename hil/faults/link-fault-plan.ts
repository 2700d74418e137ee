import { FRAME_TYPE_NAMES } from '../../firmware/protocol/frame.ts';
import { UsageError, parseDurationMs, parsePerMillion } from '../plan-error.ts';

/** Frame kinds a fault can target, by their protocol names. */
export const FRAME_KINDS = Object.values(FRAME_TYPE_NAMES);

/** A fault that strikes each frame (of the targeted kinds) with a probability. */
export interface FrameFault {
  perMillion: number;
  /** Frame kinds it applies to; empty means every kind. */
  kinds: string[];
}

/**
 * Link faults as plain data (DESIGN 2.6, CONVENTIONS 7): probabilities as integer parts per
 * million, times and durations in ms. The same plan and seed always strike the same frames.
 */
export interface LinkFaultPlan {
  drop: FrameFault | null;
  /** Flip one to three bits of a copy of the frame. */
  corrupt: FrameFault | null;
  /** Deliver the frame twice. */
  duplicate: FrameFault | null;
  /** Hold the frame back so that frames sent after it arrive first. */
  reorder: FrameFault | null;
  /** Extra delay, uniform in [0, delayMaxMs]. */
  delay: FrameFault | null;
  delayMaxMs: number;
  /** Cut the link at `atMs` for `forMs`; `partitionsDrawn` more are drawn from the seed. */
  partitions: { atMs: number; forMs: number }[];
  partitionsDrawn: number;
  /** Change the link's bandwidth at a time. */
  bandwidth: { atMs: number; mbps: number }[];
}

export function emptyLinkFaultPlan(): LinkFaultPlan {
  return { drop: null, corrupt: null, duplicate: null, reorder: null, delay: null, delayMaxMs: 0, partitions: [], partitionsDrawn: 0, bandwidth: [] };
}

export const LINK_FAULT_SYNTAX = [
  'comma-separated NAME=VALUE items:',
  '  drop=P | corrupt=P | duplicate=P | reorder=P   P a probability (0.02 or 2%), per frame',
  '  delay=P@MAX                                    extra delay up to MAX (e.g. delay=0.1@5ms)',
  '  partition=N | partition=AT+FOR                 N cuts drawn from the seed, or one at AT lasting FOR (100ms+50ms)',
  '  bandwidth=MBPS@AT                              change the link speed at AT (bandwidth=100@200ms)',
  `  add :KIND or :KIND|KIND to a per-frame fault to strike only those frames; kinds: ${FRAME_KINDS.join(', ')}`,
].join('\n');

type PerFrame = 'drop' | 'corrupt' | 'duplicate' | 'reorder' | 'delay';
const PER_FRAME: readonly PerFrame[] = ['drop', 'corrupt', 'duplicate', 'reorder', 'delay'];

/** Parse the `--faults` syntax; a bad item throws a UsageError that says what is allowed. */
export function parseLinkFaults(text: string): LinkFaultPlan {
  const plan = emptyLinkFaultPlan();
  if (text.trim() === '' || text.trim() === 'none') return plan;
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? '' : item.slice(eq + 1);
    if (eq < 0 || value === '') throw new UsageError(`--faults: "${item}" has no value\n${LINK_FAULT_SYNTAX}`);
    if ((PER_FRAME as readonly string[]).includes(name)) parsePerFrame(plan, name as PerFrame, value);
    else if (name === 'partition') parsePartition(plan, value);
    else if (name === 'bandwidth') plan.bandwidth.push(parseBandwidth(value));
    else throw new UsageError(`--faults: unknown fault "${name}"\n${LINK_FAULT_SYNTAX}`);
  }
  return plan;
}

function parsePerFrame(plan: LinkFaultPlan, name: PerFrame, value: string): void {
  const [head, kindText] = splitOnce(value, ':');
  let probability = head;
  if (name === 'delay') {
    const [p, max] = splitOnce(head, '@');
    if (max === undefined) throw new UsageError(`--faults: delay needs a maximum, e.g. delay=${p}@5ms`);
    probability = p;
    plan.delayMaxMs = parseDurationMs(max, '--faults delay maximum');
  }
  const kinds = kindText === undefined ? [] : kindText.split('|').map((k) => k.trim().toUpperCase());
  for (const k of kinds) {
    if (!FRAME_KINDS.includes(k)) throw new UsageError(`--faults: ${name} targets unknown frame kind "${k}"; kinds: ${FRAME_KINDS.join(', ')}`);
  }
  plan[name] = { perMillion: parsePerMillion(probability, `--faults ${name}`), kinds };
}

function parsePartition(plan: LinkFaultPlan, value: string): void {
  if (/^\d+$/.test(value)) {
    plan.partitionsDrawn += Number(value);
    return;
  }
  const [at, length] = splitOnce(value, '+');
  if (length === undefined) throw new UsageError(`--faults: partition takes a count (partition=2) or AT+FOR (partition=100ms+50ms), got "${value}"`);
  plan.partitions.push({ atMs: parseDurationMs(at, '--faults partition start'), forMs: parseDurationMs(length, '--faults partition length') });
}

function parseBandwidth(value: string): { atMs: number; mbps: number } {
  const [mbps, at] = splitOnce(value, '@');
  const v = Number(mbps.replace(/mbps$/i, ''));
  if (!(v > 0) || at === undefined) throw new UsageError(`--faults: bandwidth takes MBPS@AT with MBPS > 0, e.g. bandwidth=100@200ms; got "${value}"`);
  return { atMs: parseDurationMs(at, '--faults bandwidth time'), mbps: v };
}

function splitOnce(text: string, sep: string): [string, string | undefined] {
  const i = text.indexOf(sep);
  return i < 0 ? [text, undefined] : [text.slice(0, i), text.slice(i + 1)];
}

/** The plan in the `--faults` syntax again (what a reproduce command prints). */
export function formatLinkFaults(plan: LinkFaultPlan): string {
  const items: string[] = [];
  const p = (ppm: number): string => String(ppm / 1_000_000);
  for (const name of PER_FRAME) {
    const f = plan[name];
    if (!f) continue;
    const kinds = f.kinds.length > 0 ? `:${f.kinds.join('|')}` : '';
    items.push(name === 'delay' ? `delay=${p(f.perMillion)}@${plan.delayMaxMs}ms${kinds}` : `${name}=${p(f.perMillion)}${kinds}`);
  }
  if (plan.partitionsDrawn > 0) items.push(`partition=${plan.partitionsDrawn}`);
  for (const part of plan.partitions) items.push(`partition=${part.atMs}ms+${part.forMs}ms`);
  for (const b of plan.bandwidth) items.push(`bandwidth=${b.mbps}@${b.atMs}ms`);
  return items.length === 0 ? 'none' : items.join(',');
}
