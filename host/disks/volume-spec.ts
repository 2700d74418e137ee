import { MirrorlabError } from '../../firmware/errors.ts';
import { RAID_MEMBERS_MAX } from './raid/array.ts';
import { formatUsbEmuFaults, parseUsbEmuFaults, type UsbEmuFaultPlan } from './usb/emulated/faults.ts';
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
 *     usb:VID:PID[:SERIAL][:OPTS]      a USB mass-storage device (VID, PID: 4 hex digits; lun=N picks a LUN)
 *     usb-emu:SIZE[:OPTS]              an emulated USB mass-storage device over a memory disk (faults=...)
 *     serial-disk:PATH[:BAUD][:OPTS]   a block device at the far end of a serial line (BAUD default 115200)
 *
 *     SIZE  an integer with a binary unit: B, KiB, MiB, GiB, TiB (64MiB)
 *     OPTS  key=value fields, ':'-separated: sector=512|4096 (all), chunk=SIZE (raid0/5/10;
 *           a power of two, default 64KiB), lun=N (usb), faults=LIST (usb-emu)
 *
 * e.g. `mem:64MiB`, `file:/tmp/a.img:64MiB`, `raid5:4x64MiB:chunk=64KiB`, `raid10:4x1GiB:sector=4096`,
 * `usb:0781:5581:4C530001:lun=0`, `usb-emu:64MiB:faults=stall-in@0.05,csw-tag`, `serial-disk:/dev/ttyUSB0:921600`.
 *
 * The attached kinds (usb, serial-disk) say which sector size they expect; the device must agree
 * when it is opened. A usb volume detaches a kernel driver only if `detachKernelDriver` is set,
 * which no spec text does: only the --detach-kernel-driver flag (docs/usb-serial-targets.md).
 */
export type VolumeSpec =
  | { kind: 'mem'; bytes: number; sectorSize: number }
  | { kind: 'file'; path: string; bytes: number; sectorSize: number }
  | { kind: RaidLevel; members: number; memberBytes: number; sectorSize: number; chunkBytes: number }
  | { kind: 'usb'; vendorId: number; productId: number; serial: string | null; lun: number; sectorSize: number; detachKernelDriver: boolean }
  | { kind: 'usb-emu'; bytes: number; sectorSize: number; faults: UsbEmuFaultPlan }
  | { kind: 'serial-disk'; path: string; baud: number; sectorSize: number };

/** A volume on a device attached to this machine (or emulated as if it were), not built in memory or from an image. */
export type AttachedVolumeSpec = Extract<VolumeSpec, { kind: 'usb' | 'usb-emu' | 'serial-disk' }>;

export function isAttachedSpec(spec: VolumeSpec): spec is AttachedVolumeSpec {
  return spec.kind === 'usb' || spec.kind === 'usb-emu' || spec.kind === 'serial-disk';
}

/**
 * Whether the volume may hold data from before the run (an image, a real device), rather than
 * being blank when built: such a mirror needs an initial synchronisation, and its untouched
 * sectors are held to what they held before.
 */
export function holdsPriorData(spec: VolumeSpec): boolean {
  return spec.kind === 'file' || spec.kind === 'usb' || spec.kind === 'serial-disk';
}

/** Whether the volume is reached over real I/O whose timing and faults no seed controls (a run over it is not byte-reproducible). */
export function isRealDevice(spec: VolumeSpec): boolean {
  return spec.kind === 'usb' || spec.kind === 'serial-disk';
}

/**
 * The spec with leave to detach a kernel driver from the device (usb only; other kinds unchanged).
 * Only the --detach-kernel-driver flag calls this: no spec text can ask for it.
 */
export function withKernelDriverDetach(spec: VolumeSpec): VolumeSpec {
  return spec.kind === 'usb' ? { ...spec, detachKernelDriver: true } : spec;
}

/** Baud rates a serial-disk line may run at (PTYs ignore the rate; real UARTs need one both ends agree on). */
export const SERIAL_BAUD_MIN = 1200;
export const SERIAL_BAUD_MAX = 4_000_000;
export const SERIAL_BAUD_DEFAULT = 115_200;

/** One member or disk may be at most this big (64 TiB; memory disks are sparse, so it is cheap). */
export const VOLUME_MEMBER_BYTES_MAX = 2 ** 46;
/** Longest spec accepted (characters): it is public input. */
export const VOLUME_SPEC_LENGTH_MAX = 4096;

export const VOLUME_SPEC_HELP =
  'a volume is mem:SIZE, file:PATH:SIZE, raid0:NxSIZE, raid1:NxSIZE, raid5:NxSIZE, raid10:NxSIZE, ' +
  'usb:VID:PID[:SERIAL], usb-emu:SIZE or serial-disk:PATH[:BAUD], ' +
  'optionally followed by :sector=512|4096, for raid0/5/10 :chunk=SIZE, for usb :lun=N, for usb-emu :faults=LIST; ' +
  'SIZE is an integer with a unit B, KiB, MiB, GiB or TiB (e.g. raid5:4x64MiB:chunk=64KiB, usb:0781:5581:lun=0, ' +
  'usb-emu:64MiB:faults=stall-in@0.05, serial-disk:/dev/ttyUSB0:921600)';

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
  if (kind === 'usb') return parseUsb(fields, sectorSize, options.lun ?? 0, fail);
  if (kind === 'usb-emu') {
    if (fields.length !== 1) fail('usb-emu takes one size: usb-emu:SIZE');
    return { kind: 'usb-emu', bytes: parseDiskBytes(fields[0]!, sectorSize, fail), sectorSize, faults: options.faults ?? {} };
  }
  if (kind === 'serial-disk') return parseSerialDisk(fields, sectorSize, fail);
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
    case 'usb': {
      const hex = (v: number): string => v.toString(16).padStart(4, '0');
      return `usb:${hex(spec.vendorId)}:${hex(spec.productId)}${spec.serial === null ? '' : `:${spec.serial}`}${spec.lun === 0 ? '' : `:lun=${spec.lun}`}${sector}`;
    }
    case 'usb-emu': {
      const faults = formatUsbEmuFaults(spec.faults);
      return `usb-emu:${formatBytes(spec.bytes)}${faults === '' ? '' : `:faults=${faults}`}${sector}`;
    }
    case 'serial-disk': return `serial-disk:${spec.path}${spec.baud === SERIAL_BAUD_DEFAULT ? '' : `:${spec.baud}`}${sector}`;
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

interface Options {
  sector?: number;
  chunk?: number;
  lun?: number;
  faults?: UsbEmuFaultPlan;
}

function parseOptions(fields: string[], kind: string, fail: Fail): Options {
  const out: Options = {};
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
    } else if (key === 'lun') {
      if (kind !== 'usb') fail(`lun= applies to usb, not ${kind}`);
      if (out.lun !== undefined) fail('lun= given twice');
      if (!/^\d{1,2}$/.test(value!) || Number(value) > 15) fail(`lun=${value}: a LUN is 0 to 15`);
      out.lun = Number(value);
    } else if (key === 'faults') {
      if (kind !== 'usb-emu') fail(`faults= applies to usb-emu, not ${kind} (disk faults of a run: --disk-faults)`);
      if (out.faults !== undefined) fail('faults= given twice');
      try {
        out.faults = parseUsbEmuFaults(value!);
      } catch (error) {
        fail((error as Error).message);
      }
    } else {
      fail(`unknown option ${JSON.stringify(key)} (options: sector, chunk, lun, faults)`);
    }
  }
  return out;
}

/** `usb:VID:PID[:SERIAL]`: the IDs as 4 hex digits each, the serial as printable ASCII. */
function parseUsb(fields: string[], sectorSize: number, lun: number, fail: Fail): VolumeSpec {
  if (fields.length < 2 || fields.length > 3) fail('usb takes a vendor and a product ID, and optionally a serial number: usb:VID:PID[:SERIAL]');
  const id = (field: string, what: string): number => {
    if (!/^[0-9a-fA-F]{4}$/.test(field)) fail(`${what} ${JSON.stringify(field)} is not 4 hex digits (e.g. 0781)`);
    return parseInt(field, 16);
  };
  const serial = fields[2] ?? null;
  if (serial !== null && !/^[\x21-\x7e]{1,126}$/.test(serial)) fail(`serial number ${JSON.stringify(serial)} is not 1 to 126 printable ASCII characters`);
  return { kind: 'usb', vendorId: id(fields[0]!, 'vendor ID'), productId: id(fields[1]!, 'product ID'), serial, lun, sectorSize, detachKernelDriver: false };
}

/** `serial-disk:PATH[:BAUD]`: PATH may contain ':' (by-path names do), so a last all-digit field is the baud rate. */
function parseSerialDisk(fields: string[], sectorSize: number, fail: Fail): VolumeSpec {
  const last = fields[fields.length - 1];
  const hasBaud = fields.length >= 2 && last !== undefined && /^\d+$/.test(last);
  const path = (hasBaud ? fields.slice(0, -1) : fields).join(':');
  if (path === '') fail('serial-disk takes the path of a serial port: serial-disk:PATH[:BAUD]');
  const baud = hasBaud ? Number(last) : SERIAL_BAUD_DEFAULT;
  if (!(baud >= SERIAL_BAUD_MIN && baud <= SERIAL_BAUD_MAX)) fail(`baud rate ${last} is not ${SERIAL_BAUD_MIN} to ${SERIAL_BAUD_MAX}`);
  return { kind: 'serial-disk', path, baud, sectorSize };
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

/** A size like `64KiB` in bytes (units B, KiB, MiB, GiB, TiB); throws an Error saying what is allowed. */
export function parseSizeBytes(text: string): number {
  return parseSize(text, (problem) => {
    throw new Error(problem);
  });
}

function parseSize(field: string, fail: Fail): number {
  const match = /^(\d{1,16})(B|KiB|MiB|GiB|TiB)$/.exec(field);
  if (!match) fail(`${JSON.stringify(field)} is not a size like 64MiB (units: B, KiB, MiB, GiB, TiB)`);
  const bytes = Number(match![1]) * UNITS[match![2]!]!;
  if (!Number.isSafeInteger(bytes) || bytes === 0) fail(`${field} is not a size between 1 B and 2^53 B`);
  return bytes;
}
