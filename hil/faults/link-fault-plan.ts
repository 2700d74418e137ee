import { FRAME_TYPE_NAMES } from '../../firmware/protocol/frame.ts';
import { UsageError, parseDurationMs, parsePerMillion } from '../plan-error.ts';

/** Frame kinds a fault can target, by their protocol names. */
export const FRAME_KINDS = Object.values(FRAME_TYPE_NAMES);

/**
 * The limits of a link fault plan (docs/conventions.md 6). Timed faults are scheduled one at a time, so
 * memory does not grow with their number; these bounds keep a plan within what a run can use:
 * - `partitionsMax`: partitions in all, drawn (`partition=N`) and explicit (`partition=AT+FOR`);
 *   drawn ones take 7 ms or more each, so 10,000 already outlast any fault phase;
 * - `bandwidthChangesMax`: `bandwidth=MBPS@AT` items;
 * - `timedFaultMsMax`: the latest AT, and the longest FOR, of a timed fault (one hour of virtual time);
 * - `delayMsMax`: the largest `delay=P@MAX`;
 * - `bandwidthMbpsMax`: the same ceiling as `--bandwidth-mbps`.
 */
export const LINK_FAULT_LIMITS = {
  partitionsMax: 10_000,
  bandwidthChangesMax: 1_000,
  timedFaultMsMax: 3_600_000,
  delayMsMax: 60_000,
  bandwidthMbpsMax: 1_000_000,
} as const;

/**
 * Partitions drawn from the seed (`partition=N`): the first starts 1-20 ms into the run, then
 * each lasts 1-30 ms and the next starts 5-50 ms after it healed.
 */
export const DRAWN_PARTITIONS = { firstMs: [1, 20], lengthMs: [1, 30], gapMs: [5, 50] } as const;

/** A fault that strikes each frame (of the targeted kinds) with a probability. */
export interface FrameFault {
  perMillion: number;
  /** Frame kinds it applies to; empty means every kind. */
  kinds: string[];
}

/** Extra delay, uniform in [0, maxMs]. */
export interface DelayFault extends FrameFault {
  maxMs: number;
}

/**
 * Link faults as plain data (docs/design.md 2.6, docs/conventions.md 7): probabilities as integer parts per
 * million, times and durations in ms. The same plan and seed always strike the same frames.
 *
 * Each per-frame fault is a list of rules, so that one plan can drop 2% of LOCKs and 10% of ACKs
 * (`drop=0.02:LOCK,drop=0.1:ACK`); no frame kind is covered by two rules of one fault (the parser
 * refuses that), so at most one rule decides each frame. An empty list is no fault.
 */
export interface LinkFaultPlan {
  drop: FrameFault[];
  /** Flip one to three bits of a copy of the frame. */
  corrupt: FrameFault[];
  /** Deliver the frame twice. */
  duplicate: FrameFault[];
  /** Hold the frame back so that frames sent after it arrive first. */
  reorder: FrameFault[];
  delay: DelayFault[];
  /** Cut the link at `atMs` for `forMs`; `partitionsDrawn` more are drawn from the seed. */
  partitions: { atMs: number; forMs: number }[];
  partitionsDrawn: number;
  /** Change the link's bandwidth at a time. */
  bandwidth: { atMs: number; mbps: number }[];
}

export function emptyLinkFaultPlan(): LinkFaultPlan {
  return { drop: [], corrupt: [], duplicate: [], reorder: [], delay: [], partitions: [], partitionsDrawn: 0, bandwidth: [] };
}

const L = LINK_FAULT_LIMITS;

export const LINK_FAULT_SYNTAX = [
  'comma-separated NAME=VALUE items (or none):',
  '  drop=P | corrupt=P | duplicate=P | reorder=P   P a probability (0.02 or 2%), per frame',
  `  delay=P@MAX                                    extra delay up to MAX (e.g. delay=0.1@5ms; MAX at most ${L.delayMsMax} ms)`,
  '  partition=N | partition=AT+FOR                 N cuts drawn from the seed, or one at AT lasting FOR (100ms+50ms)',
  '  bandwidth=MBPS@AT                              change the link speed at AT (bandwidth=100@200ms)',
  `  add :KIND or :KIND|KIND to a per-frame fault to strike only those frames; kinds: ${FRAME_KINDS.join(', ')}`,
  '  a per-frame fault may be given again for other kinds (drop=0.02:LOCK,drop=0.1:ACK), never twice for one kind',
  `  limits: ${L.partitionsMax} partitions, ${L.bandwidthChangesMax} bandwidth changes; AT and FOR up to ${L.timedFaultMsMax} ms`,
].join('\n');

type PerFrame = 'drop' | 'corrupt' | 'duplicate' | 'reorder' | 'delay';
/** What the items parsed so far have claimed: per-frame rules by fault, timed faults by `partition@AT+FOR` / `bandwidth@AT`. */
interface Seen {
  rules: Map<string, { item: string; kinds: string[] }[]>;
  timed: Set<string>;
}
const PER_FRAME: readonly PerFrame[] = ['drop', 'corrupt', 'duplicate', 'reorder', 'delay'];

/** Parse the `--faults` syntax; a bad item throws a UsageError that says what is allowed. */
export function parseLinkFaults(text: string): LinkFaultPlan {
  const plan = emptyLinkFaultPlan();
  if (text.trim() === 'none') return plan;
  const items = splitItems(text, '--faults', 'drop=0.01,partition=1');
  const seen: Seen = { rules: new Map(), timed: new Set() };
  for (const item of items) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? '' : item.slice(eq + 1);
    if (eq < 0 || value === '') throw new UsageError(`--faults: "${item}" has no value\n${LINK_FAULT_SYNTAX}`);
    if ((PER_FRAME as readonly string[]).includes(name)) parsePerFrame(plan, name as PerFrame, value, item, seen);
    else if (name === 'partition') parsePartition(plan, value, item, seen);
    else if (name === 'bandwidth') parseBandwidth(plan, value, item, seen);
    else throw new UsageError(`--faults: unknown fault "${name}"\n${LINK_FAULT_SYNTAX}`);
  }
  return plan;
}

/**
 * Split a comma-separated plan into trimmed items, refusing an empty plan and empty items (two
 * commas in a row, a comma at an end): they are typing slips, and silently skipping them would
 * run a different plan from the one meant.
 */
export function splitItems(text: string, flag: string, example: string): string[] {
  if (text.trim() === '') throw new UsageError(`${flag}: the plan is empty; write none for no faults, or items such as ${example}`);
  const items = text.split(',').map((s) => s.trim());
  const empty = items.indexOf('');
  if (empty >= 0) {
    throw new UsageError(`${flag}: item ${empty + 1} of "${text}" is empty (two commas in a row, or a comma at an end); separate items with single commas, e.g. ${example}`);
  }
  return items;
}

function parsePerFrame(plan: LinkFaultPlan, name: PerFrame, value: string, item: string, seen: Seen): void {
  const [head, kindText] = splitOnce(value, ':');
  let probability = head;
  let maxMs = 0;
  if (name === 'delay') {
    const [p, max] = splitOnce(head, '@');
    if (max === undefined) throw new UsageError(`--faults: delay needs a maximum, e.g. delay=${p}@5ms`);
    probability = p;
    maxMs = parseDurationMs(max, '--faults delay maximum');
    if (maxMs > L.delayMsMax) throw new UsageError(`--faults: delay maximum ${maxMs} ms is too long; allowed 0 to ${L.delayMsMax} ms`);
  }
  const kinds = kindText === undefined ? [] : kindText.split('|').map((k) => k.trim().toUpperCase());
  for (const k of kinds) {
    if (!FRAME_KINDS.includes(k)) throw new UsageError(`--faults: ${name} targets unknown frame kind "${k}"; kinds: ${FRAME_KINDS.join(', ')}`);
  }
  const twice = kinds.find((k, i) => kinds.indexOf(k) !== i);
  if (twice !== undefined) throw new UsageError(`--faults: "${item}" names ${twice} twice`);
  refuseOverlap(name, item, kinds, seen);
  const perMillion = parsePerMillion(probability, `--faults ${name}`);
  if (name === 'delay') plan.delay.push({ perMillion, kinds, maxMs });
  else plan[name].push({ perMillion, kinds });
}

/** One rule per fault and frame kind: a second would make the plan mean two things at once. */
function refuseOverlap(name: PerFrame, item: string, kinds: string[], seen: Seen): void {
  const rules = seen.rules.get(name) ?? [];
  for (const r of rules) {
    if (r.kinds.length === 0 || kinds.length === 0) {
      throw new UsageError(`--faults: ${name} is given twice ("${r.item}" and "${item}"); give it once, or target different frame kinds (${name === 'delay' ? 'delay=0.1@5ms:LOCK,delay=0.2@1ms:ACK' : `${name}=0.02:LOCK,${name}=0.1:ACK`})`);
    }
    const both = kinds.find((k) => r.kinds.includes(k));
    if (both !== undefined) throw new UsageError(`--faults: ${name} is given twice for ${both} ("${r.item}" and "${item}"); each frame kind takes one ${name} rule`);
  }
  rules.push({ item, kinds });
  seen.rules.set(name, rules);
}

function parsePartition(plan: LinkFaultPlan, value: string, item: string, seen: Seen): void {
  if (/^\d+$/.test(value)) {
    if (plan.partitionsDrawn > 0) throw new UsageError(`--faults: partition=N is given twice ("partition=${plan.partitionsDrawn}" and "${item}"); give the number of drawn partitions once`);
    const n = Number(value);
    if (n < 1 || n > L.partitionsMax) throw new UsageError(`--faults: partition=${value}: the number of drawn partitions must be 1 to ${L.partitionsMax}`);
    plan.partitionsDrawn = n;
  } else {
    const [at, length] = splitOnce(value, '+');
    if (length === undefined) throw new UsageError(`--faults: partition takes a count (partition=2) or AT+FOR (partition=100ms+50ms), got "${value}"`);
    const p = { atMs: parseDurationMs(at, '--faults partition start'), forMs: parseDurationMs(length, '--faults partition length') };
    timedInRange(p.atMs, `partition start in "${item}"`, 0);
    timedInRange(p.forMs, `partition length in "${item}"`, Number.MIN_VALUE);
    claim(seen, `partition@${p.atMs}+${p.forMs}`, `--faults: the partition "${item}" is given twice`);
    plan.partitions.push(p);
  }
  if (plan.partitionsDrawn + plan.partitions.length > L.partitionsMax) {
    throw new UsageError(`--faults: ${plan.partitionsDrawn + plan.partitions.length} partitions in all; allowed at most ${L.partitionsMax}`);
  }
}

function parseBandwidth(plan: LinkFaultPlan, value: string, item: string, seen: Seen): void {
  const [mbps, at] = splitOnce(value, '@');
  const text = mbps.replace(/mbps$/i, '');
  const v = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!(v > 0 && v <= L.bandwidthMbpsMax) || at === undefined) {
    throw new UsageError(`--faults: bandwidth takes MBPS@AT with MBPS above 0 and at most ${L.bandwidthMbpsMax}, e.g. bandwidth=100@200ms; got "${value}"`);
  }
  const atMs = parseDurationMs(at, '--faults bandwidth time');
  timedInRange(atMs, `bandwidth change time in "${item}"`, 0);
  claim(seen, `bandwidth@${atMs}`, `--faults: two bandwidth changes at ${atMs} ms (one is "${item}"); give one per instant`);
  if (plan.bandwidth.length >= L.bandwidthChangesMax) throw new UsageError(`--faults: more than ${L.bandwidthChangesMax} bandwidth changes; allowed at most ${L.bandwidthChangesMax}`);
  plan.bandwidth.push({ atMs, mbps: v });
}

function claim(seen: Seen, key: string, message: string): void {
  if (seen.timed.has(key)) throw new UsageError(message);
  seen.timed.add(key);
}

function timedInRange(ms: number, what: string, min: number): void {
  if (ms < min || ms > L.timedFaultMsMax) {
    throw new UsageError(`--faults: ${what} is ${ms} ms; allowed ${min === 0 ? 'from 0' : 'above 0'} to ${L.timedFaultMsMax} ms`);
  }
}

function splitOnce(text: string, sep: string): [string, string | undefined] {
  const i = text.indexOf(sep);
  return i < 0 ? [text, undefined] : [text.slice(0, i), text.slice(i + 1)];
}

/**
 * The latest time at which any timed fault of `plan` can end, whatever the seed: explicit
 * partitions' ends, bandwidth changes, and drawn partitions each at their longest. For checks
 * that must hold before a seed is known (a fault phase long enough for every timed fault).
 */
export function timedFaultsEndMsMax(plan: LinkFaultPlan): number {
  const D = DRAWN_PARTITIONS;
  const drawn = plan.partitionsDrawn === 0 ? 0 : D.firstMs[1] + plan.partitionsDrawn * D.lengthMs[1] + (plan.partitionsDrawn - 1) * D.gapMs[1];
  let end = drawn;
  for (const p of plan.partitions) end = Math.max(end, p.atMs + p.forMs);
  for (const b of plan.bandwidth) end = Math.max(end, b.atMs);
  return end;
}

/** The plan in the `--faults` syntax again (what a reproduce command prints). */
export function formatLinkFaults(plan: LinkFaultPlan): string {
  const items: string[] = [];
  const p = (ppm: number): string => String(ppm / 1_000_000);
  for (const name of PER_FRAME) {
    for (const f of plan[name]) {
      const kinds = f.kinds.length > 0 ? `:${f.kinds.join('|')}` : '';
      items.push(name === 'delay' ? `delay=${p(f.perMillion)}@${(f as DelayFault).maxMs}ms${kinds}` : `${name}=${p(f.perMillion)}${kinds}`);
    }
  }
  if (plan.partitionsDrawn > 0) items.push(`partition=${plan.partitionsDrawn}`);
  for (const part of plan.partitions) items.push(`partition=${part.atMs}ms+${part.forMs}ms`);
  for (const b of plan.bandwidth) items.push(`bandwidth=${b.mbps}@${b.atMs}ms`);
  return items.length === 0 ? 'none' : items.join(',');
}
