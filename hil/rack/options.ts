import { MIRROR_MODES, type LockRejectPolicyName, type MirrorMode } from '../../firmware/mirror/types.ts';
import { SeededRandom } from '../../host/random.ts';
import { drawSoakPlan } from '../faults/proxy/soak-plans.ts';
import { formatLinkFaults, parseLinkFaults, refuseCrashes, timedFaultsEndMsMax, type LinkFaultPlan } from '../faults/link-fault-plan.ts';
import { UsageError } from '../plan-error.ts';

/** Which controller `--kill` strikes: the source (A, the host writes there) or the target (B, which holds the copy). */
export type KillSide = 'source' | 'target';
export const KILL_SIDES: readonly KillSide[] = ['source', 'target'];
export const RACK_LINKS = ['tcp', 'serial'] as const;
export type RackLink = (typeof RACK_LINKS)[number];

/** `--kill SIDE[@S]`: the side, and the second of the run it dies at (null: drawn from the seed). */
export interface KillSpec {
  side: KillSide;
  atS: number | null;
}

/** A rack run as asked for (docs/rack.md 1). `faults` null: drawn from the seed. */
export interface RackOptions {
  link: RackLink;
  seed: number;
  faults: LinkFaultPlan | null;
  durationS: number;
  mode: MirrorMode;
  onLockReject: LockRejectPolicyName;
  bidirectional: boolean;
  kill: KillSpec | null;
  /** Writes each host issues at most (null: as many as the duration allows). */
  writes: number | null;
  writeBytes: number;
  queueDepth: number;
  /** TCP data connections (a serial line has one). */
  connections: number;
  /** Bytes of each image file. */
  volumeBytes: number;
  /** The run's files go in a fresh directory under this one (null: the system's temp directory). */
  dir: string | null;
  /** Keep the run's files after a consistent run too (they are always kept after a failure). */
  keep: boolean;
  /** The bound on draining after the heal (s): past it, the run is a liveness failure. */
  drainS: number;
}

export const RACK_DEFAULTS: Readonly<RackOptions> = {
  link: 'tcp', seed: 1, faults: null, durationS: 6, mode: 'speculative', onLockReject: 'halt-resume', bidirectional: false, kill: null,
  writes: null, writeBytes: 4096, queueDepth: 8, connections: 2, volumeBytes: 8 * 1024 * 1024, dir: null, keep: false, drainS: 30,
};

export const DURATION_S_MAX = 3600;
export const WRITE_BYTES_MAX = 256 * 1024;
export const QUEUE_DEPTH_MAX = 256;
export const MIB = 1024 * 1024;
export const VOLUME_MIB_MAX = 1024;
/** The kill falls in this share of the duration when drawn: late enough for writes to be in flight, early enough to recover. */
const KILL_DRAWN_SHARE = [0.25, 0.6] as const;

/** `--kill SIDE` or `--kill SIDE@S` (S seconds, a decimal, inside the run's duration). */
export function parseKill(text: string): KillSpec {
  const m = /^(source|target)(?:@(\d+(?:\.\d+)?)s?)?$/.exec(text.trim());
  if (!m) throw new UsageError(`--kill takes SIDE or SIDE@SECONDS, SIDE one of ${KILL_SIDES.join(', ')} (e.g. target@2.5), got "${text}"`);
  return { side: m[1] as KillSide, atS: m[2] === undefined ? null : Number(m[2]) };
}

export function formatKill(k: KillSpec): string {
  return k.atS === null ? k.side : `${k.side}@${k.atS}`;
}

/** The `--faults` plan, with `none` for a clean run (parseLinkFaults' own syntax otherwise). */
export function parseRackFaults(text: string): LinkFaultPlan {
  return refuseCrashes(parseLinkFaults(text), 'the rack');
}

/** A rack run with everything the seed decides drawn: the fault plan and the kill's time. */
export interface ResolvedRack extends RackOptions {
  plan: LinkFaultPlan;
  /** Whether the plan came from the seed (not `--faults`). */
  planDrawn: boolean;
  killAtS: number | null;
}

/**
 * Draws what the seed decides and checks what no single flag can: the plan's timed faults (times
 * from the proxy's start) end before the duration does; a serial line takes no `reset=`; the kill
 * falls inside the run. Every problem is a {@link UsageError} of one line.
 */
export function resolveRack(o: RackOptions): ResolvedRack {
  if (!MIRROR_MODES.includes(o.mode)) throw new UsageError(`--mode must be one of ${MIRROR_MODES.join(', ')}`);
  const planDrawn = o.faults === null;
  const plan = o.faults ?? drawSoakPlan(o.seed, o.link);
  const durationMs = o.durationS * 1000;
  const endMs = timedFaultsEndMsMax(plan);
  if (endMs > durationMs) {
    const what = planDrawn ? `the plan drawn from seed ${o.seed} (${formatLinkFaults(plan)})` : '--faults';
    const enough = Math.ceil(endMs / 1000) + 1;
    throw new UsageError(`${what} has timed faults until ${endMs} ms, after the run's ${o.durationS} s; `
      + `give --duration-s ${enough} or more, or another plan (none for a clean run)`);
  }
  if (o.link === 'serial' && plan.resetPerMillion > 0) {
    throw new UsageError('--faults: reset=P resets a TCP connection, and a serial line has none; use drop=P, or silent=AT+FOR to cut the line');
  }
  let killAtS: number | null = null;
  if (o.kill !== null) {
    killAtS = o.kill.atS ?? drawKillAtS(o.seed, o.durationS);
    if (killAtS <= 0 || killAtS >= o.durationS) {
      throw new UsageError(`--kill ${formatKill(o.kill)}: the kill must fall inside the run, after 0 s and before --duration-s ${o.durationS}`);
    }
  }
  return { ...o, plan, planDrawn, killAtS };
}

/** The kill's second, drawn from the seed within {@link KILL_DRAWN_SHARE} of the duration, to the millisecond. */
export function drawKillAtS(seed: number, durationS: number): number {
  const r = new SeededRandom(seed).fork('rack-kill');
  const [lo, hi] = KILL_DRAWN_SHARE;
  const ms = Math.round(durationS * 1000 * (lo + ((hi - lo) * r.int(1001)) / 1000));
  return ms / 1000;
}

/** Quote a shell word only when it needs it. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=@+%,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command that runs this rack again: the seed, link and mode always; the plan only when it was
 * given (a drawn one comes from the seed again); the kill with its resolved time; every other
 * option where it differs from the default. A seed reproduces the proxy's fault decisions and the
 * kill's time, not the whole run: with real sockets and processes, timing differs (docs/rack.md 5).
 */
export function rackReproduceCommand(o: ResolvedRack): string {
  const d = RACK_DEFAULTS;
  const args = ['npx', 'mirrorlab', 'rack', 'run', '--link', o.link, '--seed', String(o.seed), '--mode', o.mode];
  const flag = (name: string, value: string | number, dflt: string | number): void => {
    if (value !== dflt) args.push(name, shellWord(String(value)));
  };
  if (!o.planDrawn) args.push('--faults', shellWord(formatLinkFaults(o.plan)));
  flag('--duration-s', o.durationS, d.durationS);
  flag('--on-lock-reject', o.onLockReject, d.onLockReject);
  if (o.bidirectional) args.push('--bidirectional');
  if (o.kill !== null) args.push('--kill', `${o.kill.side}@${o.killAtS}`);
  if (o.writes !== null) args.push('--writes', String(o.writes));
  flag('--write-bytes', o.writeBytes, d.writeBytes);
  flag('--queue-depth', o.queueDepth, d.queueDepth);
  flag('--connections', o.connections, d.connections);
  flag('--volume-mib', o.volumeBytes / MIB, d.volumeBytes / MIB);
  flag('--drain-s', o.drainS, d.drainS);
  return args.join(' ');
}

export { formatLinkFaults };
