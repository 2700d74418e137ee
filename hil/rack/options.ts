import { MIRROR_MODES, type LockRejectPolicyName, type MirrorMode } from '../../firmware/mirror/types.ts';
import { formatBytes, formatVolumeSpec, parseVolumeSpec, type VolumeSpec } from '../../host/disks/volume-spec.ts';
import { SeededRandom } from '../../host/random.ts';
import { volumeSectors } from '../../host/runtime/config.ts';
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

/**
 * What holds one side's copies (docs/rack.md 7), as `--source-volume` and `--target-volume` name it:
 *
 * - `image` (`file`, the default): an image file per LUN in the run's directory;
 * - `in-process` (`usb-emu:SIZE[:faults=...]`, `mem:SIZE`, `raidN:NxSIZE`): built inside the
 *   controller process, blank at each start, gone when it ends;
 * - `serial-pty` (`serial-disk`): a board stand-in (`mirrorlab serial-disk` over a memory disk) at
 *   the far end of a socat PTY pair the rack makes, one per LUN;
 * - `device` (`serial-disk:PATH[:BAUD]`, `usb:VID:PID[...]`): a real device, used as it is.
 */
export type RackVolume =
  | { kind: 'image' }
  | { kind: 'in-process'; spec: VolumeSpec }
  | { kind: 'serial-pty' }
  | { kind: 'device'; spec: Extract<VolumeSpec, { kind: 'serial-disk' | 'usb' }> };

export const RACK_VOLUME_SYNTAX = 'file (an image file per LUN in the run directory), usb-emu:SIZE[:faults=LIST], mem:SIZE or raidN:NxSIZE '
  + '(inside the controller process), serial-disk (a board stand-in on a socat PTY pair the rack makes), '
  + 'serial-disk:PATH[:BAUD] or usb:VID:PID[:SERIAL][:lun=N] (a real device, used as it is)';

/** The sector size of every copy in a rack: hosts write in its units, and a mirror's two sides must agree. */
export const RACK_SECTOR_BYTES = 512;

/** `--source-volume` / `--target-volume`; `flag` names the flag in messages. */
export function parseRackVolume(text: string, flag = '--target-volume'): RackVolume {
  if (text === 'file') return { kind: 'image' };
  if (text === 'serial-disk') return { kind: 'serial-pty' };
  let spec: VolumeSpec;
  try {
    spec = parseVolumeSpec(text);
  } catch (error) {
    throw new UsageError(`${flag}: ${(error as Error).message.replace(/; a volume is .*$/, '')}; a rack volume is ${RACK_VOLUME_SYNTAX}`);
  }
  if (spec.sectorSize !== RACK_SECTOR_BYTES) throw new UsageError(`${flag} ${text}: a rack's copies have ${RACK_SECTOR_BYTES}-byte sectors (sector=${spec.sectorSize} is for emulate)`);
  if (spec.kind === 'file') {
    throw new UsageError(`${flag} ${text}: the rack makes its image files in its run directory; give file (an image per LUN, of --volume-mib), or a device`);
  }
  if (spec.kind === 'serial-disk' || spec.kind === 'usb') return { kind: 'device', spec };
  return { kind: 'in-process', spec };
}

export function formatRackVolume(v: RackVolume): string {
  return v.kind === 'image' ? 'file' : v.kind === 'serial-pty' ? 'serial-disk' : formatVolumeSpec(v.spec);
}

/** Whether the copies die with the controller process (memory inside it): a primary on them must not be killed. */
export function isVolatile(v: RackVolume): boolean {
  return v.kind === 'in-process';
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
  /** What holds A's copies (the source's) and B's (the target's); see {@link RackVolume}. */
  sourceVolume: RackVolume;
  targetVolume: RackVolume;
  /**
   * Bytes of every copy the rack makes (image files, the board stand-ins' disks); null: the size an
   * in-process spec names (usb-emu:64MiB), else 8 MiB.
   */
  volumeBytes: number | null;
  /** The run's files go in a fresh directory under this one (null: the system's temp directory). */
  dir: string | null;
  /** Keep the run's files after a consistent run too (they are always kept after a failure). */
  keep: boolean;
  /** The bound on draining after the heal (s): past it, the run is a liveness failure. */
  drainS: number;
}

export const RACK_DEFAULTS: Readonly<RackOptions> = {
  link: 'tcp', seed: 1, faults: null, durationS: 6, mode: 'speculative', onLockReject: 'halt-resume', bidirectional: false, kill: null,
  writes: null, writeBytes: 4096, queueDepth: 8, connections: 2, sourceVolume: { kind: 'image' }, targetVolume: { kind: 'image' }, volumeBytes: null,
  dir: null, keep: false, drainS: 30,
};

export const DURATION_S_MAX = 3600;
export const WRITE_BYTES_MAX = 256 * 1024;
export const QUEUE_DEPTH_MAX = 256;
export const MIB = 1024 * 1024;
export const VOLUME_MIB_MAX = 1024;
/** The size of the copies the rack makes when nothing names one (bytes). */
export const VOLUME_BYTES_DEFAULT = 8 * MIB;
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
  /** Bytes of each copy the rack makes, and of every in-process one (they are all one size). */
  volumeBytes: number;
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
  const volumeBytes = resolveVolumes(o);
  let killAtS: number | null = null;
  if (o.kill !== null) {
    killAtS = o.kill.atS ?? drawKillAtS(o.seed, o.durationS);
    if (killAtS <= 0 || killAtS >= o.durationS) {
      throw new UsageError(`--kill ${formatKill(o.kill)}: the kill must fall inside the run, after 0 s and before --duration-s ${o.durationS}`);
    }
  }
  return { ...o, volumeBytes, plan, planDrawn, killAtS };
}

function sameDevice(a: Extract<VolumeSpec, { kind: 'serial-disk' | 'usb' }>, b: Extract<VolumeSpec, { kind: 'serial-disk' | 'usb' }>): boolean {
  if (a.kind === 'serial-disk' && b.kind === 'serial-disk') return a.path === b.path;
  if (a.kind === 'usb' && b.kind === 'usb') return a.vendorId === b.vendorId && a.productId === b.productId && a.serial === b.serial && a.lun === b.lun;
  return false;
}

const sideFlag = (side: 'source' | 'target'): string => `--${side}-volume`;

/**
 * The size of the rack's copies, and what no single volume flag can check: the two sides of a
 * mirror are one size (an in-process spec names it, or --volume-mib does for both), a real device
 * backs one copy (not LUN 1 of a bidirectional run too, nor both sides), and no primary whose
 * copies live in its process's memory is killed (its acknowledged writes would die with it).
 */
function resolveVolumes(o: RackOptions): number {
  const sides = [['source', o.sourceVolume], ['target', o.targetVolume]] as const;
  let named: { side: 'source' | 'target'; bytes: number } | null = null;
  for (const [side, v] of sides) {
    if (v.kind !== 'in-process') continue;
    const bytes = volumeSectors(v.spec)! * RACK_SECTOR_BYTES;
    if (named !== null && named.bytes !== bytes) {
      throw new UsageError(`${sideFlag(named.side)} offers ${formatBytes(named.bytes)} and ${sideFlag(side)} ${formatBytes(bytes)}; a mirror's two copies are one size`);
    }
    if (o.volumeBytes !== null && o.volumeBytes !== bytes) {
      throw new UsageError(`${sideFlag(side)} ${formatRackVolume(v)} offers ${formatBytes(bytes)}, but --volume-mib asks ${formatBytes(o.volumeBytes)}; a mirror's two copies are one size: drop --volume-mib or make them agree`);
    }
    named = { side, bytes };
  }
  for (const [side, v] of sides) {
    if (v.kind === 'device' && o.bidirectional) {
      throw new UsageError(`${sideFlag(side)} ${formatRackVolume(v)} is one device, but --bidirectional needs a second copy on that side (LUN 1); run without --bidirectional, or use file, serial-disk or an in-process kind there`);
    }
  }
  const [s, t] = [o.sourceVolume, o.targetVolume];
  if (s.kind === 'device' && t.kind === 'device' && sameDevice(s.spec, t.spec)) {
    throw new UsageError(`--source-volume and --target-volume both name ${formatRackVolume(s)}; a mirror needs two copies on two devices`);
  }
  if (o.kill !== null) {
    // Both sides are primaries in a bidirectional run; otherwise only the source is.
    const killed = o.kill.side === 'source' ? s : t;
    if (isVolatile(killed) && (o.kill.side === 'source' || o.bidirectional)) {
      throw new UsageError(`--kill ${o.kill.side}: its copies (${formatRackVolume(killed)}) live in the controller process's memory and die with it, taking acknowledged writes `
        + 'that no firmware could keep; kill the other side, or give this one file or serial-disk copies');
    }
  }
  return named?.bytes ?? o.volumeBytes ?? VOLUME_BYTES_DEFAULT;
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
  flag('--source-volume', formatRackVolume(o.sourceVolume), formatRackVolume(d.sourceVolume));
  flag('--target-volume', formatRackVolume(o.targetVolume), formatRackVolume(d.targetVolume));
  // The size once, where a flag must give it: an in-process spec carries its own.
  if (!isVolatile(o.sourceVolume) && !isVolatile(o.targetVolume)) flag('--volume-mib', o.volumeBytes / MIB, VOLUME_BYTES_DEFAULT / MIB);
  flag('--drain-s', o.drainS, d.drainS);
  return args.join(' ');
}

export { formatLinkFaults };
