import { UsageError, parseDurationMs } from '../plan-error.ts';
import { LINK_FAULT_LIMITS, splitItems } from './link-fault-plan.ts';

export type Side = 'source' | 'target';

/**
 * Disk faults as plain data (docs/design.md 2.6): each item strikes one member disk of the volume of one
 * side (controller A is the source, B the target; in a bidirectional run, each side's LUN 0).
 * Counts of bad or rotted sectors are drawn from the seed; times are virtual.
 */
export type DiskFaultItem =
  | { kind: 'fail'; side: Side; member: number; atMs: number }
  /** The side's disks lose power at `atMs`: every volatile write cache is lost (docs/simulator.md 4). */
  | { kind: 'power'; side: Side; atMs: number }
  | { kind: 'bad'; side: Side; member: number; count: number }
  | { kind: 'corrupt'; side: Side; member: number; count: number }
  | { kind: 'slow'; side: Side; member: number; factor: number };

export const DISK_FAULT_SYNTAX = [
  'comma-separated items, SIDE is source or target, MEMBER a member index (0 for a plain disk):',
  '  fail=SIDE:MEMBER@TIME       the member fails at TIME (fail=source:1@50ms); a RAID rebuilds onto a hot spare',
  '  bad=SIDE:MEMBER:COUNT       COUNT bad sectors drawn from the seed (reads fail; a write remaps them)',
  '  corrupt=SIDE:MEMBER:COUNT   COUNT sectors rot silently (reads return flipped bits)',
  '  slow=SIDE:MEMBER:FACTOR     the member serves every request FACTOR times slower',
  '  power=SIDE@TIME             every disk of the side loses power at TIME (power=target@40ms): unflushed writes in',
  '                              their volatile write caches (1 MiB each, on with this item) are lost, writes in flight fail',
].join('\n');

/**
 * Limits of a disk fault plan (docs/conventions.md 6): bad or rotted sectors per item, the slow-down
 * factor, and the latest failure time (the same hour of virtual time as a link fault's).
 */
export const DISK_FAULT_LIMITS = { countMax: 10_000, slowFactorMax: 1_000, timedFaultMsMax: LINK_FAULT_LIMITS.timedFaultMsMax } as const;
const COUNT_MAX = DISK_FAULT_LIMITS.countMax;

/**
 * Parse the `--disk-faults` syntax. An empty plan or an empty item is refused (write `none`), and
 * so is one kind of fault given twice for the same member: `bad=target:0:3,bad=target:0:5` would
 * otherwise mean whichever the volume builder happened to apply last. `fail` is the exception when
 * the times differ: faults address the member slot, so `fail=source:1@50ms,fail=source:1@400ms`
 * fails the original disk, then the spare rebuilt into its slot.
 */
export function parseDiskFaults(text: string): DiskFaultItem[] {
  if (text.trim() === 'none') return [];
  const items = splitItems(text, '--disk-faults', 'fail=source:1@50ms,slow=target:0:4');
  const seen = new Map<string, string>();
  return items.map((text) => {
    const item = parseItem(text);
    const member = item.kind === 'power' ? 'all' : String(item.member);
    const key = `${item.kind}|${item.side}|${member}${item.kind === 'fail' || item.kind === 'power' ? `@${item.atMs}` : ''}`;
    const earlier = seen.get(key);
    if (earlier !== undefined) throw new UsageError(`--disk-faults: ${item.kind} is given twice for ${item.side} member ${member} ("${earlier}" and "${text}"); give each member one ${item.kind}`);
    seen.set(key, text);
    return item;
  });
}

function parseItem(item: string): DiskFaultItem {
  const power = /^power=(source|target)(?:@(.+))?$/.exec(item);
  if (power) {
    const [, side, at] = power as unknown as [string, Side, string | undefined];
    if (at === undefined) throw new UsageError(`--disk-faults: power takes SIDE@TIME, e.g. power=${side}@40ms`);
    const atMs = parseDurationMs(at, '--disk-faults power time');
    if (atMs > DISK_FAULT_LIMITS.timedFaultMsMax) throw new UsageError(`--disk-faults: power time in "${item}" is ${atMs} ms; allowed from 0 to ${DISK_FAULT_LIMITS.timedFaultMsMax} ms`);
    return { kind: 'power', side, atMs };
  }
  const m = /^(fail|bad|corrupt|slow)=(source|target):(\d+)(?:@(.+)|:(\d+))$/.exec(item);
  if (!m) throw new UsageError(`--disk-faults: cannot read "${item}"\n${DISK_FAULT_SYNTAX}`);
  const [, kind, side, memberText, at, number] = m as unknown as [string, Exclude<DiskFaultItem['kind'], 'power'>, Side, string, string | undefined, string | undefined];
  const member = Number(memberText);
  if (kind === 'fail') {
    if (at === undefined) throw new UsageError(`--disk-faults: fail takes SIDE:MEMBER@TIME, e.g. fail=${side}:${member}@50ms`);
    const atMs = parseDurationMs(at, '--disk-faults fail time');
    if (atMs > DISK_FAULT_LIMITS.timedFaultMsMax) throw new UsageError(`--disk-faults: fail time in "${item}" is ${atMs} ms; allowed from 0 to ${DISK_FAULT_LIMITS.timedFaultMsMax} ms`);
    return { kind, side, member, atMs };
  }
  if (number === undefined) throw new UsageError(`--disk-faults: ${kind} takes SIDE:MEMBER:${kind === 'slow' ? 'FACTOR' : 'COUNT'}`);
  const n = Number(number);
  if (kind === 'slow') {
    if (n < 1 || n > DISK_FAULT_LIMITS.slowFactorMax) throw new UsageError(`--disk-faults: slow factor must be 1 to ${DISK_FAULT_LIMITS.slowFactorMax}, got ${n}`);
    return { kind, side, member, factor: n };
  }
  if (n < 1 || n > COUNT_MAX) throw new UsageError(`--disk-faults: ${kind} count must be 1 to ${COUNT_MAX}, got ${n}`);
  return { kind, side, member, count: n };
}

export function formatDiskFaults(items: readonly DiskFaultItem[]): string {
  if (items.length === 0) return 'none';
  return items.map((f) => {
    switch (f.kind) {
      case 'fail': return `fail=${f.side}:${f.member}@${f.atMs}ms`;
      case 'power': return `power=${f.side}@${f.atMs}ms`;
      case 'slow': return `slow=${f.side}:${f.member}:${f.factor}`;
      default: return `${f.kind}=${f.side}:${f.member}:${f.count}`;
    }
  }).join(',');
}
