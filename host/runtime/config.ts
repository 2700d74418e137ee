import { readFile, stat } from 'node:fs/promises';
import { z } from 'zod';
import { DEFAULT_LIMITS, checkConfig, type ControllerLimits } from '../../firmware/controller/config.ts';
import { MirrorlabError } from '../../firmware/errors.ts';
import { planLayout } from '../../firmware/metadata/layout.ts';
import { LOCK_REJECT_POLICIES, MIRROR_MODES, type LockRejectPolicyName, type MirrorMode } from '../../firmware/mirror/types.ts';
import { parseSizeBytes, parseVolumeSpec, type VolumeSpec } from '../disks/volume-spec.ts';
import { RAID_MEMBERS_MAX } from '../disks/raid/array.ts';
import type { RaidLevel } from '../disks/raid/types.ts';
import { CHUNK_BYTES_DEFAULT } from '../disks/raid/chunks.ts';
import { LIVE_LINK_LIMITS, parseLiveLinkSpec, type LiveLinkSpec } from '../transports/live-link.ts';

/**
 * The controller process's configuration file (docs/controller-process.md 2): JSON, validated here,
 * at the boundary, with zod. Every mistake is a {@link ControllerConfigError} of one line naming the
 * field's path (`luns[1].mirror.mode`) and what is allowed; nothing past this module sees an
 * unchecked value.
 */
export class ControllerConfigError extends MirrorlabError {
  constructor(message: string) {
    super('ML_ERR_CONTROLLER_CONFIG', message);
  }
}

/** A config file larger than this is refused before it is parsed (bytes). */
export const CONFIG_FILE_BYTES_MAX = 1024 * 1024;
export const LUNS_MAX = 256;
export const PEERS_MAX = 16;
export const CONNECTIONS_PER_PEER_MAX = 16;
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Longest a clean stop may wait for host writes in flight and rollback logs to drain (ms). */
export const DRAIN_MS_MAX = 600_000;
export const DRAIN_MS_DEFAULT = 5_000;
export const CONTROL_CONNECTIONS_MAX = 256;
export const CONTROL_CONNECTIONS_DEFAULT = 16;
export const CONTROL_REQUESTS_IN_FLIGHT_MAX = 4096;
export const CONTROL_REQUESTS_IN_FLIGHT_DEFAULT = 64;
/** A control frame begun must be finished within this long (ms), or its connection is closed. */
export const CONTROL_FRAME_TIMEOUT_MS_DEFAULT = 10_000;
export const CONTROL_FRAME_TIMEOUT_MS_MAX = 600_000;
/** Longest path a unix socket may have on Linux (sun_path is 108 bytes with its NUL). */
export const UNIX_SOCKET_PATH_BYTES_MAX = 107;

/** A RAID array over image files (or memory disks): what no single volume spec can name. */
export interface RaidOverFiles {
  kind: 'raid-over-files';
  level: RaidLevel;
  members: VolumeSpec[];
  chunkBytes: number;
}

export type LunVolume = VolumeSpec | RaidOverFiles;

/**
 * What a LUN is for: `primary` (the host writes it, and it is mirrored to `mirror.peer`),
 * `replica` (the copy a peer mirrors into; host writes through the control socket are refused,
 * reads allowed), `local` (not mirrored).
 */
export type LunDesignation =
  | { role: 'primary'; peer: string; mode: MirrorMode }
  | { role: 'replica'; of: string }
  | { role: 'local' };

export interface LunSettings {
  lun: number;
  volume: LunVolume;
  designation: LunDesignation;
  lockRegionSectors?: number;
}

export interface PeerSettings {
  name: string;
  link: LiveLinkSpec;
  /** The link spec as written (for logs and status). */
  linkText: string;
}

export interface ControllerProcessConfig {
  name: string;
  id: number;
  onLockReject: LockRejectPolicyName;
  luns: LunSettings[];
  peers: PeerSettings[];
  limits: ControllerLimits;
  /** What the config file asked of the limits (the rest are defaults). */
  limitOverrides: Partial<ControllerLimits>;
  control: { path: string | null; connectionsMax: number; requestsInFlightMax: number; frameTimeoutMs: number };
  telemetry: string | null;
  shutdown: { drainMs: number };
  /**
   * The volume holding the controller's persistent metadata (docs/tag-tables.md, "Metadata
   * format"): a `mem` or `file` spec that a metadata store with its default bounds fits; null
   * when the config names none.
   */
  metadata: Extract<VolumeSpec, { kind: 'mem' | 'file' }> | null;
}

// ---- the schema ----------------------------------------------------------------------------------

/** An object whose unknown fields are refused, naming the ones allowed. */
function strict<T extends z.ZodRawShape>(shape: T) {
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys'
      ? `unknown field${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => JSON.stringify(k)).join(', ')}; the fields here are ${Object.keys(shape).join(', ')}`
      : undefined),
  });
}

const name = (what: string) => z.string().regex(NAME_PATTERN, {
  error: `${what} is 1 to 64 characters: letters, digits, '_', '.', '-' (starting with a letter or digit)`,
});
const positive = (max: number) => z.number().positive().max(max);
const integer = (min: number, max: number) => z.number().int().min(min).max(max);

/** A volume spec string, parsed; its own parser's message says what is allowed. */
const volumeSpecText = z.string().transform((text, ctx) => {
  try {
    return parseVolumeSpec(text);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

const raidOverFiles = strict({
  raid: z.enum(['raid0', 'raid1', 'raid5', 'raid10']),
  members: z.array(volumeSpecText).min(2).max(RAID_MEMBERS_MAX),
  chunk: z.string().optional(),
});

const LIMIT_KEYS = Object.keys(DEFAULT_LIMITS) as (keyof ControllerLimits)[];
const limitsShape = Object.fromEntries(LIMIT_KEYS.map((k) => [k, positive(1e12).optional()])) as Record<keyof ControllerLimits, z.ZodOptional<z.ZodNumber>>;

const lunSchema = strict({
  lun: integer(0, 0xffff),
  volume: z.union([volumeSpecText, raidOverFiles], { error: 'must be a volume spec (e.g. "file:/srv/a.img:64MiB") or a RAID over files ({"raid": "raid1", "members": [...]})' }),
  mirror: strict({ peer: name('a peer name'), mode: z.enum(MIRROR_MODES as [MirrorMode, ...MirrorMode[]]) }).optional(),
  replicaOf: name('a peer name').optional(),
  lockRegionSectors: integer(1, 2 ** 31).refine((n) => Number.isInteger(Math.log2(n)), { error: 'must be a power of two' }).optional(),
});

const peerSchema = strict({
  name: name('a peer name'),
  link: z.string().min(1).max(4096),
  connections: integer(1, CONNECTIONS_PER_PEER_MAX).optional(),
});

const fileSchema = strict({
  name: name('the controller name'),
  id: integer(0, 0xffffffff),
  onLockReject: z.enum(LOCK_REJECT_POLICIES as [LockRejectPolicyName, ...LockRejectPolicyName[]]).optional(),
  luns: z.array(lunSchema).min(1).max(LUNS_MAX),
  peers: z.array(peerSchema).max(PEERS_MAX).optional(),
  supervision: strict({
    heartbeatMs: positive(3_600_000).optional(),
    interruptionMs: positive(3_600_000).optional(),
    probationMs: positive(3_600_000).optional(),
    connectRetryMs: positive(3_600_000).optional(),
  }).optional(),
  limits: strict(limitsShape).optional(),
  control: strict({
    path: z.string().min(1).optional(),
    connectionsMax: integer(1, CONTROL_CONNECTIONS_MAX).optional(),
    requestsInFlightMax: integer(1, CONTROL_REQUESTS_IN_FLIGHT_MAX).optional(),
    frameTimeoutMs: integer(1, CONTROL_FRAME_TIMEOUT_MS_MAX).optional(),
  }).optional(),
  telemetry: z.string().min(1).optional(),
  shutdown: strict({ drainMs: integer(0, DRAIN_MS_MAX).optional() }).optional(),
  metadata: volumeSpecText.optional(),
});

type ConfigFile = z.infer<typeof fileSchema>;

/**
 * Every field path the file may hold (arrays as `luns[]`), for the documentation's table and its
 * test: a field added to the schema and not to docs/controller-process.md fails that test.
 */
export function configFieldPaths(): string[] {
  const out: string[] = [];
  const walk = (schema: z.ZodType, prefix: string): void => {
    let s: z.ZodType = schema;
    for (;;) {
      if (s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
      else if (s instanceof z.ZodPipe) s = s.in as z.ZodType;
      else break;
    }
    if (s instanceof z.ZodObject) {
      for (const [key, child] of Object.entries(s.shape as Record<string, z.ZodType>)) {
        const path = prefix === '' ? key : `${prefix}.${key}`;
        out.push(path);
        walk(child, path);
      }
    } else if (s instanceof z.ZodArray) {
      walk(s.element as z.ZodType, `${prefix}[]`);
    } else if (s instanceof z.ZodUnion) {
      for (const option of s.options as z.ZodType[]) walk(option, prefix);
    }
  };
  walk(fileSchema, '');
  return out;
}

// ---- reading and checking ----------------------------------------------------------------------

/** Reads and checks the config file at `path`; throws {@link ControllerConfigError} (one line). */
export async function loadControllerConfig(path: string): Promise<ControllerProcessConfig> {
  let text: string;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new ControllerConfigError(`config file ${path} is not a regular file`);
    if (info.size > CONFIG_FILE_BYTES_MAX) throw new ControllerConfigError(`config file ${path} is ${info.size} bytes; at most ${CONFIG_FILE_BYTES_MAX} are read`);
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (error instanceof ControllerConfigError) throw error;
    throw new ControllerConfigError(`config file ${path} could not be read: ${(error as Error).message}`);
  }
  return parseControllerConfig(text, path);
}

/** Parses and checks config text; `source` names it in messages. */
export function parseControllerConfig(text: string, source = 'config'): ControllerProcessConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ControllerConfigError(`${source}: not valid JSON: ${(error as Error).message}`);
  }
  const parsed = fileSchema.safeParse(json, { reportInput: true });
  if (!parsed.success) throw new ControllerConfigError(`${source}: ${describeIssues(parsed.error.issues)}`);
  try {
    return resolve(parsed.data);
  } catch (error) {
    if (error instanceof FieldProblem) throw new ControllerConfigError(`${source}: ${error.path}: ${error.message}`);
    throw error;
  }
}

class FieldProblem extends Error {
  constructor(readonly path: string, message: string) {
    super(message);
  }
}

/** What the schema cannot say alone: names that refer to each other, sizes, the firmware's own limits. */
function resolve(file: ConfigFile): ControllerProcessConfig {
  const peers = resolvePeers(file);
  const peerNames = new Set(peers.map((p) => p.name));
  const luns = file.luns.map((l, i) => resolveLun(l, i, file.name, peerNames));
  const seen = new Map<number, number>();
  luns.forEach((l, i) => {
    const earlier = seen.get(l.lun);
    if (earlier !== undefined) throw new FieldProblem(`luns[${i}].lun`, `LUN ${l.lun} is configured twice (also luns[${earlier}]); each LUN number once`);
    seen.set(l.lun, i);
  });
  const metadata = file.metadata === undefined ? null : resolveMetadata(file.metadata);
  checkImagesOnce(luns, metadata);
  const limitOverrides: Partial<ControllerLimits> = { ...file.limits, ...file.supervision };
  let limits: ControllerLimits;
  try {
    // A process runs on the real clock: its defaults are the live links' (docs/live-links.md 9), not the simulator's.
    const asked = { ...LIVE_LINK_LIMITS, ...limitOverrides };
    limits = checkConfig({ name: file.name, id: file.id, luns: [], onLockReject: file.onLockReject ?? 'halt-resume', limits: asked });
  } catch (error) {
    throw new FieldProblem(file.supervision ? 'supervision' : 'limits', (error as Error).message);
  }
  const controlPath = file.control?.path ?? null;
  if (controlPath !== null) checkSocketPath(controlPath, 'control.path');
  if (file.telemetry?.startsWith('unix:')) checkSocketPath(file.telemetry.slice(5), 'telemetry');
  return {
    name: file.name, id: file.id, onLockReject: file.onLockReject ?? 'halt-resume', luns, peers, limits, limitOverrides,
    control: {
      path: controlPath,
      connectionsMax: file.control?.connectionsMax ?? CONTROL_CONNECTIONS_DEFAULT,
      requestsInFlightMax: file.control?.requestsInFlightMax ?? CONTROL_REQUESTS_IN_FLIGHT_DEFAULT,
      frameTimeoutMs: file.control?.frameTimeoutMs ?? CONTROL_FRAME_TIMEOUT_MS_DEFAULT,
    },
    telemetry: file.telemetry ?? null,
    shutdown: { drainMs: file.shutdown?.drainMs ?? DRAIN_MS_DEFAULT },
    metadata,
  };
}

/** The metadata volume: a plain memory disk or image file, of a size the metadata store can lay out (docs/tag-tables.md, "Bounds"). */
function resolveMetadata(v: VolumeSpec): Extract<VolumeSpec, { kind: 'mem' | 'file' }> {
  if (v.kind !== 'mem' && v.kind !== 'file') {
    throw new FieldProblem('metadata', `the metadata volume is a file:PATH:SIZE or mem:SIZE spec, not ${v.kind}`);
  }
  const sectorCount = v.bytes / v.sectorSize;
  try {
    planLayout({ name: 'metadata', sectorSize: v.sectorSize, sectorCount }, { areaSectors: sectorCount });
  } catch (error) {
    throw new FieldProblem('metadata', (error as Error).message.replace(/^metadata: /, ''));
  }
  return v;
}

function resolvePeers(file: ConfigFile): PeerSettings[] {
  const out: PeerSettings[] = [];
  (file.peers ?? []).forEach((p, i) => {
    if (p.name === file.name) throw new FieldProblem(`peers[${i}].name`, `a controller is not its own peer ("${p.name}" is this controller's name)`);
    if (out.some((q) => q.name === p.name)) throw new FieldProblem(`peers[${i}].name`, `peer "${p.name}" is configured twice; each peer once`);
    let link: LiveLinkSpec;
    try {
      link = parseLiveLinkSpec(p.link, p.connections === undefined ? {} : { connections: p.connections });
    } catch (error) {
      throw new FieldProblem(`peers[${i}].link`, (error as Error).message);
    }
    out.push({ name: p.name, link, linkText: p.link });
  });
  return out;
}

function resolveLun(l: ConfigFile['luns'][number], i: number, self: string, peers: ReadonlySet<string>): LunSettings {
  const at = `luns[${i}]`;
  const known = (peer: string, field: string): void => {
    if (peer === self) throw new FieldProblem(`${at}.${field}`, `"${peer}" is this controller; name one of its peers`);
    if (!peers.has(peer)) {
      throw new FieldProblem(`${at}.${field}`, `no peer "${peer}" is configured (peers: ${[...peers].join(', ') || 'none'}); add it under "peers" with its link`);
    }
  };
  if (l.mirror && l.replicaOf !== undefined) throw new FieldProblem(at, 'a LUN is either mirrored to a peer ("mirror") or a replica of one ("replicaOf"), not both');
  let designation: LunDesignation = { role: 'local' };
  if (l.mirror) {
    known(l.mirror.peer, 'mirror.peer');
    designation = { role: 'primary', peer: l.mirror.peer, mode: l.mirror.mode };
  } else if (l.replicaOf !== undefined) {
    known(l.replicaOf, 'replicaOf');
    designation = { role: 'replica', of: l.replicaOf };
  }
  const volume = resolveVolume(l.volume, `${at}.volume`);
  const sectors = volumeSectors(volume);
  if (l.lockRegionSectors !== undefined && sectors !== null && l.lockRegionSectors > sectors) {
    throw new FieldProblem(`${at}.lockRegionSectors`, `${l.lockRegionSectors} sectors is larger than the volume (${sectors} sectors)`);
  }
  return { lun: l.lun, volume, designation, ...(l.lockRegionSectors === undefined ? {} : { lockRegionSectors: l.lockRegionSectors }) };
}

function resolveVolume(v: ConfigFile['luns'][number]['volume'], at: string): LunVolume {
  // Attached kinds (usb, serial-disk, usb-emu) are taken as they are: whether the device is there,
  // free and of the spec's sector size is known only when it is opened (docs/usb-serial-targets.md 5).
  if (!('raid' in v)) return v;
  v.members.forEach((m, i) => {
    if (m.kind !== 'file' && m.kind !== 'mem') throw new FieldProblem(`${at}.members[${i}]`, `a RAID member is a file:PATH:SIZE or mem:SIZE spec, not ${m.kind}`);
  });
  const first = v.members[0]! as Extract<VolumeSpec, { kind: 'file' | 'mem' }>;
  const bytes = first.bytes;
  v.members.forEach((m, i) => {
    if (volumeBytes(m) !== bytes || m.sectorSize !== first.sectorSize) {
      throw new FieldProblem(`${at}.members[${i}]`, `every member must have the size and sector size of the first (${bytes} bytes, ${first.sectorSize}-byte sectors)`);
    }
  });
  const min = { raid0: 2, raid1: 2, raid5: 3, raid10: 4 }[v.raid];
  if (v.members.length < min) throw new FieldProblem(`${at}.members`, `${v.raid} takes at least ${min} members, not ${v.members.length}`);
  if (v.raid === 'raid10' && v.members.length % 2 !== 0) throw new FieldProblem(`${at}.members`, `raid10 takes an even number of members (mirror pairs), not ${v.members.length}`);
  let chunkBytes = CHUNK_BYTES_DEFAULT;
  if (v.chunk !== undefined) {
    try {
      chunkBytes = parseSizeBytes(v.chunk);
    } catch (error) {
      throw new FieldProblem(`${at}.chunk`, (error as Error).message);
    }
    if (!Number.isInteger(Math.log2(chunkBytes)) || chunkBytes < first.sectorSize || (v.raid !== 'raid1' && chunkBytes > bytes)) {
      throw new FieldProblem(`${at}.chunk`, `${v.chunk} must be a power of two from one ${first.sectorSize}-byte sector to a member's size (${bytes} bytes)`);
    }
  }
  return { kind: 'raid-over-files', level: v.raid, members: v.members, chunkBytes };
}

/** Bytes of one disk of a spec: the volume's for plain disks, a member's for arrays; null for a real device (known once opened). */
function volumeBytes(v: LunVolume): number | null {
  if (v.kind === 'raid-over-files') return volumeBytes(v.members[0]!);
  if (v.kind === 'mem' || v.kind === 'file' || v.kind === 'usb-emu') return v.bytes;
  if (v.kind === 'raid0' || v.kind === 'raid1' || v.kind === 'raid5' || v.kind === 'raid10') return v.memberBytes;
  return null;
}

/** Sectors a LUN's volume offers hosts; null for a real device (usb, serial-disk), whose size is known only once it is opened. */
export function volumeSectors(v: LunVolume): number | null {
  const bytes = volumeBytes(v);
  if (bytes === null) return null;
  const members = v.kind === 'raid-over-files' ? v.members.length : 'members' in v ? v.members : 1;
  const level = v.kind === 'raid-over-files' ? v.level : v.kind;
  const data = level === 'raid0' ? members : level === 'raid1' ? 1 : level === 'raid5' ? members - 1 : level === 'raid10' ? members / 2 : 1;
  const sectorSize = v.kind === 'raid-over-files' ? v.members[0]!.sectorSize : v.sectorSize;
  return (bytes / sectorSize) * data;
}

/**
 * Two LUNs on one image file would be refused by its lock when opened, and two on one serial port
 * or one USB device would fight over it (it is opened once); say so here, with the fields.
 */
function checkImagesOnce(luns: LunSettings[], metadata: VolumeSpec | null): void {
  const owner = new Map<string, string>();
  luns.forEach((l, i) => {
    const files = l.volume.kind === 'raid-over-files' ? l.volume.members : [l.volume];
    files.forEach((f, j) => {
      const held = heldResource(f);
      if (held === null) return;
      const at = l.volume.kind === 'raid-over-files' ? `luns[${i}].volume.members[${j}]` : `luns[${i}].volume`;
      const earlier = owner.get(held.key);
      if (earlier !== undefined) throw new FieldProblem(at, `${held.what} is already used by ${earlier}; ${held.rule}`);
      owner.set(held.key, at);
    });
  });
  const meta = metadata === null ? null : heldResource(metadata);
  if (meta !== null && owner.has(meta.key)) {
    throw new FieldProblem('metadata', `${meta.what} is already used by ${owner.get(meta.key)}; the metadata needs an image of its own`);
  }
}

/** What a volume holds for itself while open (an image, a port, a device), or null for memory. */
function heldResource(v: VolumeSpec): { key: string; what: string; rule: string } | null {
  if (v.kind === 'file') return { key: `file:${v.path}`, what: `image ${v.path}`, rule: 'each image backs one disk' };
  if (v.kind === 'serial-disk') return { key: `serial:${v.path}`, what: `serial port ${v.path}`, rule: 'each port reaches one board, which serves one volume' };
  if (v.kind === 'usb') {
    const id = `${v.vendorId.toString(16).padStart(4, '0')}:${v.productId.toString(16).padStart(4, '0')}${v.serial === null ? '' : `:${v.serial}`}`;
    return { key: `usb:${id}:${v.lun}`, what: `USB device ${id} LUN ${v.lun}`, rule: 'each device LUN backs one volume' };
  }
  return null;
}

function checkSocketPath(path: string, field: string): void {
  if (path === '') throw new FieldProblem(field, 'the socket path is empty');
  if (Buffer.byteLength(path) > UNIX_SOCKET_PATH_BYTES_MAX) {
    throw new FieldProblem(field, `a unix socket path is at most ${UNIX_SOCKET_PATH_BYTES_MAX} bytes, got ${Buffer.byteLength(path)}; use a shorter directory`);
  }
}

// ---- messages ------------------------------------------------------------------------------------

/** One line: the first problem, its field path and what is allowed, and how many more there are. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  const first = issues[0];
  if (!first) return 'invalid';
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  return `${describeIssue(first, [])}${more}`;
}

function describeIssue(issue: z.core.$ZodIssue, prefix: PropertyKey[]): string {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union') {
    // The branch that got furthest explains best: an object that failed inside, not "expected a string".
    const branches = issue.errors.filter((b) => b.length > 0);
    const inner = branches.find((b) => !(b[0]!.code === 'invalid_type' && b[0]!.path.length === 0));
    if (inner) return describeIssue(inner[0]!, path);
  }
  return `${formatPath(path)}: ${issueMessage(issue)}`;
}

export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

function shown(input: unknown): string {
  if (input === undefined) return 'nothing';
  const text = JSON.stringify(input);
  if (text === undefined) return typeof input;
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function issueMessage(issue: z.core.$ZodIssue): string {
  const got = 'input' in issue ? `, got ${shown(issue.input)}` : '';
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return `is required (${expectedName(issue.expected)})`;
      return `must be ${expectedName(issue.expected)}${got}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}${got}`;
    case 'too_small':
      return issue.origin === 'array' ? `needs at least ${issue.minimum} item${Number(issue.minimum) === 1 ? '' : 's'}`
        : issue.origin === 'string' ? 'must not be empty'
          : `must be ${issue.inclusive ? 'at least' : 'above'} ${issue.minimum}${got}`;
    case 'too_big':
      return issue.origin === 'array' ? `takes at most ${issue.maximum} items` : issue.origin === 'string' ? `is longer than ${issue.maximum} characters` : `must be at most ${issue.maximum}${got}`;
    case 'invalid_format':
      return `${issue.message}${got}`;
    default:
      return `${issue.message}${issue.code === 'custom' || issue.code === 'unrecognized_keys' ? '' : got}`;
  }
}

function expectedName(expected: string): string {
  switch (expected) {
    case 'int': return 'an integer';
    case 'number': return 'a number';
    case 'string': return 'a string';
    case 'object': return 'an object';
    case 'array': return 'an array';
    case 'boolean': return 'true or false';
    default: return expected;
  }
}
