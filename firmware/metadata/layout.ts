import { MirrorlabError } from '../errors.ts';
import { HEADER_BYTES, OP_BYTES, PEER_NAME_BYTES_MAX, MIRROR_IDS_MAX } from './format.ts';
import { SNAPSHOT_FIXED_BYTES } from './image.ts';

/**
 * Where the metadata lives on its device and how much it may hold (docs/tag-tables.md, "Metadata
 * format"): two checkpoint slots, then the log ring. The layout depends only on the area and the
 * ring size, never on the bounds, so a store reopened with other bounds still finds its metadata;
 * the bounds are checked against what a slot can hold.
 */
export interface MetadataStoreOptions {
  /** First sector of the area on the device (default 0). */
  areaFirstLba?: number;
  /** Sectors in the area (default: from `areaFirstLba` to the end of the device). */
  areaSectors?: number;
  /** Tag-table entries held at most, every mirror and role together (default: what a slot holds, at most {@link ENTRIES_MAX_LIMIT}). */
  entriesMax?: number;
  /** Mirrors (peer, LUN, role) named at most (default {@link MIRRORS_MAX_DEFAULT}). */
  mirrorsMax?: number;
  /** Peers with stream state at most (default {@link STREAMS_MAX_DEFAULT}). */
  streamsMax?: number;
  /** Sectors of the log ring (default: a quarter of the area, from {@link RING_SECTORS_MIN} up to {@link RING_BYTES_MAX}). */
  ringSectors?: number;
  /** `reserveTags` persists reservations rounded up to a multiple of this many tags (default {@link TAG_RESERVATION_BLOCK_DEFAULT}). */
  tagReservationBlock?: number;
}

export const MIRRORS_MAX_DEFAULT = 64;
export const STREAMS_MAX_DEFAULT = 16;
export const TAG_RESERVATION_BLOCK_DEFAULT = 4096;
export const RING_SECTORS_MIN = 8;
/** The ring is read whole at open, so it is bounded (bytes). */
export const RING_BYTES_MAX = 64 * 1024 * 1024;
/** Largest area (bytes): a metadata area holds tables, not data. */
export const AREA_BYTES_MAX = 256 * 1024 * 1024;
/** Largest entry bound (the image keeps every entry in memory). */
export const ENTRIES_MAX_LIMIT = 1 << 20;

/** The area is too small, lies outside its device, or the options make no sense. */
export class MetadataAreaError extends MirrorlabError {
  constructor(message: string) {
    super('ML_ERR_METADATA_AREA', message);
  }
}

/** A mirror or stream beyond its bound, or a snapshot that would no longer fit a checkpoint slot. */
export class MetadataLimitError extends MirrorlabError {
  constructor(message: string) {
    super('ML_ERR_METADATA_LIMIT', message);
  }
}

export interface MetadataBounds {
  entriesMax: number;
  mirrorsMax: number;
  streamsMax: number;
}

export interface MetadataLayout extends MetadataBounds {
  sectorSize: number;
  firstLba: number;
  sectors: number;
  slotSectors: number;
  ringSectors: number;
  /** First sector of slot 0 and slot 1. */
  slotLba: readonly [number, number];
  ringLba: number;
  slotBytes: number;
  ringBytes: number;
  tagReservationBlock: number;
}

/** The largest checkpoint (header and body) the bounds allow: every mirror and stream with a longest name, every entry. */
export function checkpointBytesMax(b: MetadataBounds): number {
  return HEADER_BYTES + SNAPSHOT_FIXED_BYTES + b.streamsMax * (OP_BYTES.stream + PEER_NAME_BYTES_MAX)
    + b.mirrorsMax * (OP_BYTES.mirror + PEER_NAME_BYTES_MAX + OP_BYTES.meta) + b.entriesMax * OP_BYTES.entry;
}

/** Slot and ring sectors of an area (`ringAsked`: the ring option, if given). */
function split(areaSectors: number, sectorSize: number, ringAsked: number | undefined): { slot: number; ring: number } {
  const ringWanted = ringAsked ?? Math.min(Math.max(RING_SECTORS_MIN, Math.floor(areaSectors / 4)), RING_BYTES_MAX / sectorSize);
  const slot = Math.max(0, Math.floor((areaSectors - ringWanted) / 2));
  return { slot, ring: areaSectors - 2 * slot };
}

/** The fewest sectors an area needs for `bounds` (with the ring option, if given). */
export function areaSectorsMin(bounds: MetadataBounds, sectorSize: number, ringAsked?: number): number {
  const slotNeeded = Math.ceil(checkpointBytesMax(bounds) / sectorSize);
  const ring = ringAsked ?? RING_SECTORS_MIN;
  let area = ringAsked !== undefined ? 2 * slotNeeded + ring : Math.max(2 * slotNeeded + ring, Math.ceil((slotNeeded * 8) / 3));
  while (split(area, sectorSize, ringAsked).slot < slotNeeded) area++;
  while (area > 1 && split(area - 1, sectorSize, ringAsked).slot >= slotNeeded) area--;
  return area;
}

function positiveInt(v: number | undefined, name: string, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isSafeInteger(v) || v < 1 || v > max) throw new MetadataAreaError(`metadata option ${name} is ${v}; allowed: an integer from 1 to ${max}`);
  return v;
}

/** Checks the options against the device and lays the area out; a {@link MetadataAreaError} says what is wrong and what is needed. */
export function planLayout(device: { name: string; sectorSize: number; sectorCount: number }, options: MetadataStoreOptions): MetadataLayout {
  const ss = device.sectorSize;
  const firstLba = options.areaFirstLba ?? 0;
  if (!Number.isSafeInteger(firstLba) || firstLba < 0 || firstLba >= device.sectorCount) {
    throw new MetadataAreaError(`${device.name}: metadata area start ${firstLba} is not a sector of the device (0..${device.sectorCount - 1})`);
  }
  const sectors = options.areaSectors ?? Math.min(device.sectorCount - firstLba, Math.floor(AREA_BYTES_MAX / ss));
  if (!Number.isSafeInteger(sectors) || sectors < 1 || firstLba + sectors > device.sectorCount) {
    throw new MetadataAreaError(`${device.name}: metadata area [${firstLba}, +${sectors}) does not lie within the device's ${device.sectorCount} sectors`);
  }
  if (sectors * ss > AREA_BYTES_MAX) throw new MetadataAreaError(`${device.name}: a metadata area is at most ${AREA_BYTES_MAX} bytes; this one is ${sectors * ss}`);
  const ringAsked = positiveInt(options.ringSectors, 'ringSectors', RING_BYTES_MAX / ss);
  if (ringAsked !== undefined && ringAsked < RING_SECTORS_MIN) throw new MetadataAreaError(`metadata option ringSectors is ${ringAsked}; allowed: ${RING_SECTORS_MIN} or more`);
  const mirrorsMax = positiveInt(options.mirrorsMax, 'mirrorsMax', MIRROR_IDS_MAX) ?? MIRRORS_MAX_DEFAULT;
  const streamsMax = positiveInt(options.streamsMax, 'streamsMax', 4096) ?? STREAMS_MAX_DEFAULT;
  const entriesAsked = positiveInt(options.entriesMax, 'entriesMax', ENTRIES_MAX_LIMIT);
  const tagReservationBlock = positiveInt(options.tagReservationBlock, 'tagReservationBlock', 2 ** 32) ?? TAG_RESERVATION_BLOCK_DEFAULT;
  const { slot, ring } = split(sectors, ss, ringAsked);
  const room = slot * ss - checkpointBytesMax({ entriesMax: 0, mirrorsMax, streamsMax });
  const entriesMax = entriesAsked ?? Math.min(ENTRIES_MAX_LIMIT, Math.floor(room / OP_BYTES.entry));
  const bounds = { entriesMax: Math.max(1, entriesMax), mirrorsMax, streamsMax };
  if (entriesMax < 1 || checkpointBytesMax(bounds) > slot * ss || ring < RING_SECTORS_MIN) {
    const need = areaSectorsMin(bounds, ss, ringAsked);
    throw new MetadataAreaError(
      `${device.name}: a metadata area of ${sectors} sectors (${sectors * ss} bytes) is too small for ${bounds.entriesMax} entries, ${mirrorsMax} mirrors and ${streamsMax} streams: `
      + `two checkpoint slots of ${Math.ceil(checkpointBytesMax(bounds) / ss)} sectors and a ring of at least ${ringAsked ?? RING_SECTORS_MIN} need ${need} sectors (${need * ss} bytes)`,
    );
  }
  return {
    sectorSize: ss, firstLba, sectors, slotSectors: slot, ringSectors: ring, slotLba: [firstLba, firstLba + slot], ringLba: firstLba + 2 * slot,
    slotBytes: slot * ss, ringBytes: ring * ss, tagReservationBlock, ...bounds,
  };
}
