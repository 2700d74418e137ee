import { FRAME_TYPE_NAMES } from '../../firmware/protocol/frame.ts';
import { UsageError, parseDurationMs, parsePerMillion } from '../plan-error.ts';

/**
 * The type byte of a heartbeat frame. The protocol reserves 9 for HEARTBEAT; until the codec names
 * it, fault plans know it by this constant (and when the codec does, the names below agree).
 */
export const HEARTBEAT_FRAME_TYPE = 9;

/** Frame names by type byte, as fault plans and traces use them: the protocol's, and HEARTBEAT. */
export const LINK_FRAME_TYPE_NAMES: Readonly<Record<number, string>> = { ...FRAME_TYPE_NAMES, [HEARTBEAT_FRAME_TYPE]: 'HEARTBEAT' };

/** Frame kinds a fault can target, by their protocol names. */
export const FRAME_KINDS = [...new Set(Object.values(LINK_FRAME_TYPE_NAMES))];

/**
 * The limits of a link fault plan (docs/conventions.md 6). Timed faults are scheduled one at a time, so
 * memory does not grow with their number; these bounds keep a plan within what a run can use:
 * - `partitionsMax`: partitions in all, drawn (`partition=N`) and explicit (`partition=AT+FOR`);
 *   drawn ones take 7 ms or more each, so 10,000 already outlast any fault phase;
 * - `bandwidthChangesMax`: `bandwidth=MBPS@AT` items;
 * - `silentCutsMax`, `onewayCutsMax`: `silent=` and `oneway=` items (each is kept in the plan);
 * - `flapsMax`: `flap=` items, each one timer while it runs; `flapCyclesMax`: their cycles together;
 * - `flapPeriodMsMin`: the shortest flap period (half of it down, half up);
 * - `timedFaultMsMax`: the latest AT, and the longest FOR, of a timed fault (one hour of virtual time);
 *   a flap's N x PERIOD counts as its FOR;
 * - `delayMsMax`: the largest `delay=P@MAX`;
 * - `bandwidthMbpsMax`: the same ceiling as `--bandwidth-mbps`.
 */
export const LINK_FAULT_LIMITS = {
  partitionsMax: 10_000,
  bandwidthChangesMax: 1_000,
  silentCutsMax: 1_000,
  onewayCutsMax: 1_000,
  flapsMax: 16,
  flapCyclesMax: 10_000,
  flapPeriodMsMin: 1,
  timedFaultMsMax: 3_600_000,
  delayMsMax: 60_000,
  bandwidthMbpsMax: 1_000_000,
  crashesMax: 64,
} as const;

/**
 * How long a crashed controller stays down when a `crash=` or `power=` item gives no `+DOWNFOR`
 * (docs/tag-tables.md, "Crash and power cut in the simulator"): 100 ms of virtual time, long
 * enough for its peer to notice a silence at a fast heartbeat, short enough for a short run.
 */
export const CRASH_DOWN_MS_DEFAULT = 100;

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

/** A black hole at `atMs` lasting `forMs`. */
export interface TimedCut {
  atMs: number;
  forMs: number;
}

/** Only frames from controller `from` to controller `to` are lost. */
export interface OneWayCut extends TimedCut {
  from: string;
  to: string;
}

/** Which controller a crash strikes: the source of LUN 0 (controller A) or its target (B). */
export type CrashSide = 'source' | 'target';

/**
 * A controller crash (`crash=SIDE@AT[+DOWNFOR]`) or power cut (`power=SIDE@AT[+DOWNFOR]`) in the
 * simulator (docs/tag-tables.md, "Crash and power cut in the simulator"): at `atMs` the side's
 * controller loses everything in memory; with `power`, every device of the side (its volumes and
 * its metadata device) loses its volatile write cache too. It starts again `downForMs` later.
 */
export interface ControllerCrash {
  side: CrashSide;
  atMs: number;
  downForMs: number;
  power: boolean;
}

/** `cycles` down/up cycles from `atMs`, each `periodMs`: silent both ways for the first half, working for the second. */
export interface Flap {
  cycles: number;
  periodMs: number;
  atMs: number;
}

/**
 * Link faults as plain data (docs/design.md 2.6, docs/conventions.md 7): probabilities as integer parts per
 * million, times and durations in ms. The same plan and seed always strike the same frames.
 *
 * Link-wide failures are silent, as real links fail (docs/simulated-link.md 5): a partition, a
 * `silent` cut, a `oneway` cut or a flap's down half is a black hole that tells nobody; the
 * firmware must notice the silence itself.
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
  /**
   * A silent black hole both ways at `atMs` for `forMs`; `partitionsDrawn` more are drawn from the
   * seed (short ones: 1-30 ms, below any interruption timeout, so they test retransmission).
   */
  partitions: TimedCut[];
  partitionsDrawn: number;
  /** Change the link's bandwidth at a time. */
  bandwidth: { atMs: number; mbps: number }[];
  /** Silent black holes both ways (`silent=AT+FOR`): the same as an explicit partition, named for what it is. */
  silent: TimedCut[];
  /** One-way black holes (`oneway=A>B@AT+FOR`). */
  oneway: OneWayCut[];
  /** Chance that a heartbeat (a datagram, or an inline heartbeat) is lost; data is untouched. */
  hblossPerMillion: number;
  /** Link flaps (`flap=N@PERIOD[@AT]`). */
  flaps: Flap[];
  /** Chance, per data frame, that the connection carrying it is reset (the frame is lost with it). */
  resetPerMillion: number;
  /** Controller crashes and power cuts (simulator only: the proxy and the rack refuse them). */
  crashes: ControllerCrash[];
}

export function emptyLinkFaultPlan(): LinkFaultPlan {
  return {
    drop: [], corrupt: [], duplicate: [], reorder: [], delay: [], partitions: [], partitionsDrawn: 0, bandwidth: [],
    silent: [], oneway: [], hblossPerMillion: 0, flaps: [], resetPerMillion: 0, crashes: [],
  };
}

const L = LINK_FAULT_LIMITS;

export const LINK_FAULT_SYNTAX = [
  'comma-separated NAME=VALUE items (or none):',
  '  drop=P | corrupt=P | duplicate=P | reorder=P   P a probability (0.02 or 2%), per frame',
  `  delay=P@MAX                                    extra delay up to MAX (e.g. delay=0.1@5ms; MAX at most ${L.delayMsMax} ms)`,
  '  partition=N | partition=AT+FOR                 N short silent cuts drawn from the seed, or one at AT lasting FOR (100ms+50ms)',
  '  silent=AT+FOR                                  a black hole both ways, announced to nobody (silent=1s+3s)',
  '  oneway=A>B@AT+FOR                              only frames from controller A to B are lost (oneway=A>B@1s+2s; B>A too)',
  '  hbloss=P                                       each heartbeat is lost with chance P; data flows on',
  '  flap=N@PERIOD[@AT]                             N cycles from AT (default 0): silent for PERIOD/2, then up for PERIOD/2',
  '  reset=P                                        chance per data frame that its connection is reset (the others stay up)',
  '  bandwidth=MBPS@AT                              change the link speed at AT (bandwidth=100@200ms)',
  `  crash=SIDE@AT[+DOWNFOR]                        simulator: the controller of SIDE (source or target) crashes at AT, losing its memory,`,
  `                                                 and starts again DOWNFOR later (default ${CRASH_DOWN_MS_DEFAULT} ms; crash=target@40ms+200ms)`,
  '  power=SIDE@AT[+DOWNFOR]                        simulator: as crash, and every device of SIDE loses its volatile write cache',
  `  add :KIND or :KIND|KIND to a per-frame fault to strike only those frames; kinds: ${FRAME_KINDS.join(', ')}`,
  '  a per-frame fault may be given again for other kinds (drop=0.02:LOCK,drop=0.1:ACK), never twice for one kind',
  `  limits: ${L.partitionsMax} partitions, ${L.silentCutsMax} silent and ${L.onewayCutsMax} oneway cuts, ${L.flapsMax} flaps of ${L.flapCyclesMax} cycles in all`
    + ` (PERIOD at least ${L.flapPeriodMsMin} ms), ${L.bandwidthChangesMax} bandwidth changes, ${L.crashesMax} crashes and power cuts;`
    + ` AT and FOR (and N x PERIOD, and DOWNFOR) up to ${L.timedFaultMsMax} ms`,
].join('\n');

type PerFrame = 'drop' | 'corrupt' | 'duplicate' | 'reorder' | 'delay';
/** What the items parsed so far have claimed: per-frame rules by fault; timed faults by kind and time (`partition@AT+FOR`, `bandwidth@AT`, ...), and `hbloss` and `reset`, which are given once. */
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
    else if (name === 'silent') parseSilent(plan, value, item, seen);
    else if (name === 'oneway') parseOneway(plan, value, item, seen);
    else if (name === 'flap') parseFlap(plan, value, item, seen);
    else if (name === 'hbloss' || name === 'reset') parseChance(plan, name, value, item, seen);
    else if (name === 'crash' || name === 'power') parseCrash(plan, name, value, item);
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

/** `AT+FOR`, each checked against the limits; `what` names the item in messages. */
function parseCut(value: string, item: string, what: string): TimedCut {
  const [at, length] = splitOnce(value, '+');
  if (length === undefined) throw new UsageError(`--faults: ${what} takes AT+FOR (e.g. ${what}=1s+3s), got "${value}"`);
  const cut = { atMs: parseDurationMs(at, `--faults ${what} start`), forMs: parseDurationMs(length, `--faults ${what} length`) };
  timedInRange(cut.atMs, `${what} start in "${item}"`, 0);
  timedInRange(cut.forMs, `${what} length in "${item}"`, Number.MIN_VALUE);
  return cut;
}

function parseSilent(plan: LinkFaultPlan, value: string, item: string, seen: Seen): void {
  const cut = parseCut(value, item, 'silent');
  claim(seen, `silent@${cut.atMs}+${cut.forMs}`, `--faults: the silent cut "${item}" is given twice`);
  if (plan.silent.length >= L.silentCutsMax) throw new UsageError(`--faults: more than ${L.silentCutsMax} silent cuts; allowed at most ${L.silentCutsMax}`);
  plan.silent.push(cut);
}

/** Controller names as the emulator and the rack give them. */
const NAME = '[A-Za-z][A-Za-z0-9_.-]{0,31}';

function parseOneway(plan: LinkFaultPlan, value: string, item: string, seen: Seen): void {
  const m = new RegExp(`^(${NAME})>(${NAME})@(.+)$`).exec(value);
  if (!m) throw new UsageError(`--faults: oneway takes FROM>TO@AT+FOR with controller names (oneway=A>B@1s+2s), got "${value}"`);
  const [, from, to, when] = m as unknown as [string, string, string, string];
  if (from === to) throw new UsageError(`--faults: "${item}" names ${from} at both ends; a one-way cut goes from one controller to the other (A>B or B>A)`);
  const cut = { from, to, ...parseCut(when, item, 'oneway') };
  claim(seen, `oneway@${from}>${to}@${cut.atMs}+${cut.forMs}`, `--faults: the one-way cut "${item}" is given twice`);
  if (plan.oneway.length >= L.onewayCutsMax) throw new UsageError(`--faults: more than ${L.onewayCutsMax} one-way cuts; allowed at most ${L.onewayCutsMax}`);
  plan.oneway.push(cut);
}

function parseFlap(plan: LinkFaultPlan, value: string, item: string, seen: Seen): void {
  const m = /^(\d+)@([^@]+)(?:@([^@]+))?$/.exec(value);
  if (!m) throw new UsageError(`--faults: flap takes N@PERIOD or N@PERIOD@AT (flap=3@3s: three cycles of 1.5 s down, 1.5 s up), got "${value}"`);
  const cycles = Number(m[1]);
  const periodMs = parseDurationMs(m[2]!, '--faults flap period');
  const atMs = m[3] === undefined ? 0 : parseDurationMs(m[3], '--faults flap start');
  const cyclesInAll = plan.flaps.reduce((n, f) => n + f.cycles, 0) + cycles;
  if (cycles < 1 || cyclesInAll > L.flapCyclesMax) throw new UsageError(`--faults: "${item}": flaps may have 1 to ${L.flapCyclesMax} cycles in all; this plan would have ${cyclesInAll}`);
  if (periodMs < L.flapPeriodMsMin || cycles * periodMs > L.timedFaultMsMax) {
    throw new UsageError(`--faults: "${item}": the flap period must be at least ${L.flapPeriodMsMin} ms and N x PERIOD at most ${L.timedFaultMsMax} ms`);
  }
  timedInRange(atMs, `flap start in "${item}"`, 0);
  claim(seen, `flap@${cycles}@${periodMs}@${atMs}`, `--faults: the flap "${item}" is given twice`);
  if (plan.flaps.length >= L.flapsMax) throw new UsageError(`--faults: more than ${L.flapsMax} flaps; allowed at most ${L.flapsMax}`);
  plan.flaps.push({ cycles, periodMs, atMs });
}

function parseChance(plan: LinkFaultPlan, name: 'hbloss' | 'reset', value: string, item: string, seen: Seen): void {
  claim(seen, name, `--faults: ${name} is given twice (one is "${item}"); give it once`);
  if (value.includes(':')) throw new UsageError(`--faults: ${name} takes no frame kinds (${name === 'hbloss' ? 'it strikes heartbeats only; drop=P:HEARTBEAT is the per-frame way' : 'it strikes data frames on any connection'}), got "${item}"`);
  const perMillion = parsePerMillion(value, `--faults ${name}`);
  if (name === 'hbloss') plan.hblossPerMillion = perMillion;
  else plan.resetPerMillion = perMillion;
}

/**
 * `crash=SIDE@AT[+DOWNFOR]` and `power=SIDE@AT[+DOWNFOR]`. A side cannot crash while it is down
 * (the items' down times must not overlap for one side): the second crash would strike nothing.
 */
function parseCrash(plan: LinkFaultPlan, name: 'crash' | 'power', value: string, item: string): void {
  const m = /^([A-Za-z]+)@([^+]+)(?:\+(.+))?$/.exec(value);
  if (!m) throw new UsageError(`--faults: ${name} takes SIDE@AT or SIDE@AT+DOWNFOR, SIDE source or target (${name}=target@40ms+200ms), got "${value}"`);
  const [, side, at, down] = m as unknown as [string, string, string, string | undefined];
  if (side !== 'source' && side !== 'target') throw new UsageError(`--faults: "${item}" names the side "${side}"; allowed source (controller A) or target (controller B)`);
  const atMs = parseDurationMs(at, `--faults ${name} time`);
  const downForMs = down === undefined ? CRASH_DOWN_MS_DEFAULT : parseDurationMs(down, `--faults ${name} down time`);
  timedInRange(atMs, `${name} time in "${item}"`, 0);
  timedInRange(downForMs, `${name} down time in "${item}"`, Number.MIN_VALUE);
  const crash: ControllerCrash = { side, atMs, downForMs, power: name === 'power' };
  const clash = plan.crashes.find((c) => c.side === side && c.atMs < atMs + downForMs && atMs < c.atMs + c.downForMs);
  if (clash !== undefined) {
    throw new UsageError(`--faults: "${item}" strikes the ${side} while it is down after ${formatCrash(clash)} (from ${clash.atMs} to ${clash.atMs + clash.downForMs} ms); give one side's crashes at different times, each after the last one's DOWNFOR`);
  }
  if (plan.crashes.length >= L.crashesMax) throw new UsageError(`--faults: more than ${L.crashesMax} crashes and power cuts; allowed at most ${L.crashesMax}`);
  plan.crashes.push(crash);
}

/** A crash item as `--faults` writes it, DOWNFOR always given. */
export function formatCrash(c: ControllerCrash): string {
  return `${c.power ? 'power' : 'crash'}=${c.side}@${c.atMs}ms+${c.downForMs}ms`;
}

/**
 * Refuses a plan with crash or power items where only the link can be struck (the fault proxy, the
 * rack, whose processes are killed by its own `--kill`): `where` names the command.
 */
export function refuseCrashes(plan: LinkFaultPlan, where: string): LinkFaultPlan {
  const first = plan.crashes[0];
  if (first !== undefined) {
    throw new UsageError(`--faults: ${formatCrash(first)}: crash and power items strike the simulator's controllers (emulate, campaign); ${where} strikes only the link${where === 'the rack' ? ' (its --kill stops a controller process)' : ''}`);
  }
  return plan;
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
 * partitions', silent and one-way cuts' and flaps' ends, bandwidth changes, and drawn partitions
 * each at their longest. For checks
 * that must hold before a seed is known (a fault phase long enough for every timed fault).
 */
export function timedFaultsEndMsMax(plan: LinkFaultPlan): number {
  const D = DRAWN_PARTITIONS;
  const drawn = plan.partitionsDrawn === 0 ? 0 : D.firstMs[1] + plan.partitionsDrawn * D.lengthMs[1] + (plan.partitionsDrawn - 1) * D.gapMs[1];
  let end = drawn;
  for (const t of explicitTimedFaults(plan)) end = Math.max(end, t.endMs);
  return end;
}

/** When a flap's last cycle comes back up. */
export function flapEndMs(f: Flap): number {
  return f.atMs + (f.cycles - 0.5) * f.periodMs;
}

/** Every explicit timed item of `plan` (not the drawn partitions), as written in `--faults`, with when it ends. */
export function explicitTimedFaults(plan: LinkFaultPlan): { item: string; endMs: number }[] {
  return [
    ...plan.partitions.map((p) => ({ item: `partition=${p.atMs}ms+${p.forMs}ms`, endMs: p.atMs + p.forMs })),
    ...plan.bandwidth.map((b) => ({ item: `bandwidth=${b.mbps}@${b.atMs}ms`, endMs: b.atMs })),
    ...plan.silent.map((c) => ({ item: `silent=${c.atMs}ms+${c.forMs}ms`, endMs: c.atMs + c.forMs })),
    ...plan.oneway.map((c) => ({ item: formatOneway(c), endMs: c.atMs + c.forMs })),
    ...plan.flaps.map((f) => ({ item: formatFlap(f), endMs: flapEndMs(f) })),
    ...plan.crashes.map((c) => ({ item: formatCrash(c), endMs: c.atMs + c.downForMs })),
  ];
}

/**
 * The first explicit timed item of `plan` that ends after `maxMs`, said in a sentence, or null:
 * for checks that every timed fault falls within a fault phase.
 */
export function lateLinkFault(plan: LinkFaultPlan, maxMs: number): string | null {
  const late = explicitTimedFaults(plan).find((t) => t.endMs > maxMs);
  return late === undefined ? null : `--faults: ${late.item} ends at ${late.endMs} ms`;
}

function formatOneway(c: OneWayCut): string {
  return `oneway=${c.from}>${c.to}@${c.atMs}ms+${c.forMs}ms`;
}

function formatFlap(f: Flap): string {
  return `flap=${f.cycles}@${f.periodMs}ms${f.atMs === 0 ? '' : `@${f.atMs}ms`}`;
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
  for (const c of plan.silent) items.push(`silent=${c.atMs}ms+${c.forMs}ms`);
  for (const c of plan.oneway) items.push(formatOneway(c));
  if (plan.hblossPerMillion > 0) items.push(`hbloss=${p(plan.hblossPerMillion)}`);
  for (const f of plan.flaps) items.push(formatFlap(f));
  if (plan.resetPerMillion > 0) items.push(`reset=${p(plan.resetPerMillion)}`);
  for (const c of plan.crashes) items.push(formatCrash(c));
  return items.length === 0 ? 'none' : items.join(',');
}

/** Frame type codes are one byte. */
const FRAME_TYPES = 256;

/** A per-frame fault as a table by frame type code: parts per million (0: never), and a delay maximum. */
export interface FrameFaultRates {
  perMillion: Uint32Array;
  maxMs: Float64Array;
}

/**
 * The rules of one per-frame fault as a table indexed by the frame's type byte, so that deciding
 * an unstruck frame costs an array read and no allocation (the simulator's injector and the proxy).
 */
export function frameFaultRates(rules: readonly FrameFault[]): FrameFaultRates {
  const r: FrameFaultRates = { perMillion: new Uint32Array(FRAME_TYPES), maxMs: new Float64Array(FRAME_TYPES) };
  for (const rule of rules) {
    for (const [code, name] of Object.entries(LINK_FRAME_TYPE_NAMES)) {
      if (rule.kinds.length > 0 && !rule.kinds.includes(name)) continue;
      r.perMillion[Number(code)] = rule.perMillion;
      r.maxMs[Number(code)] = (rule as Partial<DelayFault>).maxMs ?? 0;
    }
  }
  return r;
}

/** Every per-frame fault of a plan as tables by frame type, and the rates that do not depend on the frame's type. */
export interface FrameFaultTables {
  drop: FrameFaultRates;
  corrupt: FrameFaultRates;
  duplicate: FrameFaultRates;
  reorder: FrameFaultRates;
  delay: FrameFaultRates;
  hblossPerMillion: number;
  resetPerMillion: number;
}

export function frameFaultTables(plan: LinkFaultPlan): FrameFaultTables {
  return {
    drop: frameFaultRates(plan.drop), corrupt: frameFaultRates(plan.corrupt), duplicate: frameFaultRates(plan.duplicate),
    reorder: frameFaultRates(plan.reorder), delay: frameFaultRates(plan.delay),
    hblossPerMillion: plan.hblossPerMillion, resetPerMillion: plan.resetPerMillion,
  };
}
