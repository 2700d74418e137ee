import { MirrorlabError } from '../../firmware/errors.ts';
import { RAID_MEMBERS_MAX } from './raid/array.ts';
import { CHUNK_BYTES_DEFAULT } from './raid/chunks.ts';
import type { RaidLevel } from './raid/types.ts';

export { buildVolume, type BuildVolumeOptions, type Volume } from './volume.ts';

/**
 * A volume as the command line names it (`--source-volume`, `--target-volume`), parsed:
 *
 *     mem:SIZE[:OPTS]                  a sparse memory disk
 *     file:PATH:SIZE[:OPTS]            an image file (PATH may contain ':')
 *     raid0:NxSIZE[:OPTS]              N memory disks of SIZE each, striped      (N 2..32)
 *     raid1:NxSIZE[:OPTS]              N-way mirror                               (N 2..32)
 *     raid5:NxSIZE[:OPTS]              rotating parity, left-symmetric            (N 3..32)
 *     raid10:NxSIZE[:OPTS]             striped mirror pairs                       (N 4..32, even)
 *
 *     SIZE  an integer with a binary unit: B, KiB, MiB, GiB, TiB (64MiB)
 *     OPTS  key=value fields, ':'-separated: sector=512|4096 (all), chunk=SIZE (raid0/5/10;
 *           a power of two, default 64KiB)
 *
 * e.g. `mem:64MiB`, `file:/tmp/a.img:64MiB`, `raid5:4x64MiB:chunk=64KiB`, `raid10:4x1GiB:sector=4096`.
 */
export type VolumeSpec =
  | { kind: 'mem'; bytes: number; sectorSize: number }
  | { kind: 'file'; path: string; bytes: number; sectorSize: number }
  | { kind: RaidLevel; members: number; memberBytes: number; sectorSize: number; chunkBytes: number };

/** One member or disk may be at most this big (64 TiB; memory disks are sparse, so it is cheap). */
export const VOLUME_MEMBER_BYTES_MAX = 2 ** 46;
/** Longest spec accepted (characters): it is public input. */
export const VOLUME_SPEC_LENGTH_MAX = 4096;

export const VOLUME_SPEC_HELP =
  'a volume is mem:SIZE, file:PATH:SIZE, raid0:NxSIZE, raid1:NxSIZE, raid5:NxSIZE or raid10:NxSIZE, ' +
  'optionally followed by :sector=512|4096 and, for raid0/5/10, :chunk=SIZE; ' +
  'SIZE is an integer with a unit B, KiB, MiB, GiB or TiB (e.g. raid5:4x64MiB:chunk=64KiB)';

export class VolumeSpecError extends MirrorlabError {
  constructor(spec: string, problem: string) {
    super('ML_ERR_VOLUME_SPEC', `bad volume spec ${JSON.stringify(spec.slice(0, 200))}: ${problem}; ${VOLUME_SPEC_HELP}`);
  }
}

const UNITS: Record<string, number> = { B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 };
const MEMBERS_MIN: Record<RaidLevel, number> = { raid0: 2, raid1: 2, raid5: 3, raid10: 4 };
const RAID_LEVELS = Object.keys(MEMBERS_MIN) as RaidLevel[];

/** Parses a volume spec; throws {@link VolumeSpecError} saying what is wrong and what is allowed. */
export function parseVolumeSpec(text: string): VolumeSpec {
  const fail = (problem: string): never => {
    throw new VolumeSpecError(text, problem);
  };
  if (typeof text !== 'string' || text.length === 0) fail('it is empty');
  if (text.length > VOLUME_SPEC_LENGTH_MAX) fail(`it is longer than ${VOLUME_SPEC_LENGTH_MAX} characters`);
  const [kind = '', ...rest] = text.split(':');
  const optionStart = rest.findIndex((field, i) => i > 0 && field.includes('='));
  const fields = optionStart === -1 ? rest : rest.slice(0, optionStart);
  const options = parseOptions(optionStart === -1 ? [] : rest.slice(optionStart), kind, fail);
  const sectorSize = options.sector ?? 512;
  if (kind === 'mem') {
    if (fields.length !== 1) fail('mem takes one size: mem:SIZE');
    return { kind: 'mem', bytes: parseDiskBytes(fields[0]!, sectorSize, fail), sectorSize };
  }
  if (kind === 'file') {
    if (fields.length < 2 || fields.slice(0, -1).join(':') === '') fail('file takes a path and a size: file:PATH:SIZE');
    return { kind: 'file', path: fields.slice(0, -1).join(':'), bytes: parseDiskBytes(fields[fields.length - 1]!, sectorSize, fail), sectorSize };
  }
  if (!RAID_LEVELS.includes(kind as RaidLevel)) fail(`unknown kind ${JSON.stringify(kind)}`);
  const level = kind as RaidLevel;
  if (fields.length !== 1) fail(`${level} takes members x size: ${level}:NxSIZE`);
  return parseRaid(level, fields[0]!, sectorSize, options.chunk, fail);
}

/** The canonical text of a spec (what `parseVolumeSpec` reads back to the same spec). */
export function formatVolumeSpec(spec: VolumeSpec): string {
  const sector = spec.sectorSize === 512 ? '' : `:sector=${spec.sectorSize}`;
  switch (spec.kind) {
    case 'mem': return `mem:${formatBytes(spec.bytes)}${sector}`;
    case 'file': return `file:${spec.path}:${formatBytes(spec.bytes)}${sector}`;
    default: {
      const chunk = spec.kind === 'raid1' || spec.chunkBytes === CHUNK_BYTES_DEFAULT ? '' : `:chunk=${formatBytes(spec.chunkBytes)}`;
      return `${spec.kind}:${spec.members}x${formatBytes(spec.memberBytes)}${chunk}${sector}`;
    }
  }
}

/** Bytes as the largest unit that divides them exactly: 65536 -> 64KiB. */
export function formatBytes(bytes: number): string {
  for (const unit of ['TiB', 'GiB', 'MiB', 'KiB']) {
    if (bytes % UNITS[unit]! === 0) return `${bytes / UNITS[unit]!}${unit}`;
  }
  return `${bytes}B`;
}

type Fail = (problem: string) => never;

function parseOptions(fields: string[], kind: string, fail: Fail): { sector?: number; chunk?: number } {
  const out: { sector?: number; chunk?: number } = {};
  for (const field of fields) {
    const [key, value, extra] = field.split('=');
    if (value === undefined || extra !== undefined || value === '') fail(`option ${JSON.stringify(field)} is not key=value`);
    if (key === 'sector') {
      if (value !== '512' && value !== '4096') fail(`sector=${value}: the sector size is 512 or 4096`);
      if (out.sector !== undefined) fail('sector= given twice');
      out.sector = Number(value);
    } else if (key === 'chunk') {
      if (kind !== 'raid0' && kind !== 'raid5' && kind !== 'raid10') fail(`chunk= applies to raid0, raid5 and raid10, not ${kind}`);
      if (out.chunk !== undefined) fail('chunk= given twice');
      out.chunk = parseSize(value!, fail);
    } else {
      fail(`unknown option ${JSON.stringify(key)} (options: sector, chunk)`);
    }
  }
  return out;
}

function parseRaid(level: RaidLevel, field: string, sectorSize: number, chunk: number | undefined, fail: Fail): VolumeSpec {
  const match = /^(\d{1,3})x(.+)$/.exec(field);
  if (!match) fail(`${JSON.stringify(field)} is not NxSIZE (e.g. 4x64MiB)`);
  const members = Number(match![1]);
  const min = MEMBERS_MIN[level];
  if (members < min || members > RAID_MEMBERS_MAX) fail(`${level} takes ${min} to ${RAID_MEMBERS_MAX} members, not ${members}`);
  if (level === 'raid10' && members % 2 !== 0) fail(`raid10 takes an even number of members (mirror pairs), not ${members}`);
  const memberBytes = parseDiskBytes(match![2]!, sectorSize, fail);
  const chunkBytes = chunk ?? CHUNK_BYTES_DEFAULT;
  if ((chunkBytes & (chunkBytes - 1)) !== 0 || chunkBytes < sectorSize) fail(`chunk=${formatBytes(chunkBytes)} must be a power of two of at least one ${sectorSize}-byte sector`);
  if (level !== 'raid1' && chunkBytes > memberBytes) fail(`chunk=${formatBytes(chunkBytes)} is larger than a member (${formatBytes(memberBytes)})`);
  return { kind: level, members, memberBytes, sectorSize, chunkBytes };
}

function parseDiskBytes(field: string, sectorSize: number, fail: Fail): number {
  const bytes = parseSize(field, fail);
  if (bytes > VOLUME_MEMBER_BYTES_MAX) fail(`${field} is larger than the ${formatBytes(VOLUME_MEMBER_BYTES_MAX)} a disk may have`);
  if (bytes % sectorSize !== 0) fail(`${field} is not a whole number of ${sectorSize}-byte sectors`);
  return bytes;
}

function parseSize(field: string, fail: Fail): number {
  const match = /^(\d{1,16})(B|KiB|MiB|GiB|TiB)$/.exec(field);
  if (!match) fail(`${JSON.stringify(field)} is not a size like 64MiB (units: B, KiB, MiB, GiB, TiB)`);
  const bytes = Number(match![1]) * UNITS[match![2]!]!;
  if (!Number.isSafeInteger(bytes) || bytes === 0) fail(`${field} is not a size between 1 B and 2^53 B`);
  return bytes;
}
