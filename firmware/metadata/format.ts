import { assert } from '../errors.ts';
import { crc32cRange } from '../protocol/crc.ts';
import type { MirrorSyncState } from '../telemetry/events.ts';
import type { MirrorRole, TagEntry } from '../tags/tag-table.ts';

/**
 * The metadata area's byte format (docs/tag-tables.md, "Metadata format"): the 64-byte headers of
 * checkpoints and log records, and the operations both carry. Big-endian, like the wire protocol.
 * Encoding takes values the store has already checked (a violation is an assert); decoding takes
 * bytes off a device and answers `null` for anything it cannot trust, never a throw.
 */

export const HEADER_BYTES = 64;
export const FORMAT_VERSION = 1;
/** 'MLMC': a checkpoint slot's header. */
export const CHECKPOINT_MAGIC = 0x4d4c4d43;
/** 'MLMR': a log record's header. */
export const RECORD_MAGIC = 0x4d4c4d52;
/** Sequence numbers, generations and log positions stay below this (2^48): a larger one is not ours. */
export const COUNTER_LIMIT = 2 ** 48;
/** Every u64 field holds a safe integer (sessions are 53 random bits): a larger one is not ours. */
const U64_HI_LIMIT = 2 ** 21;
/** A peer name is 1 to this many printable ASCII bytes (the controller config's names are shorter). */
export const PEER_NAME_BYTES_MAX = 64;
/** Mirror ids are u16; 0xffff is never used. */
export const MIRROR_IDS_MAX = 0xffff;
/** u32 fields: LUN, sector count of an entry. */
const U32_MAX = 0xffff_ffff;

export interface MirrorKey {
  peer: string;
  lun: number;
  role: MirrorRole;
}

/** A mirror's persisted state. */
export interface MirrorMeta {
  state: MirrorSyncState;
  doneSectors: number;
  overflowed: boolean;
}

export interface StreamMeta {
  sourceSession: number;
  targetSession: number;
  confirmedSeq: number;
}

export const SYNC_STATES: readonly MirrorSyncState[] = ['in-sync', 'needs-resync', 'resyncing', 'suspended'];
const ROLES: readonly MirrorRole[] = ['source', 'target'];

/** One change to the metadata; a record is a commit's list of them, a checkpoint the list that rebuilds everything. */
export type MetadataOp =
  | { op: 'mirror'; id: number; key: MirrorKey }
  | { op: 'entry'; id: number; entry: TagEntry }
  | { op: 'drop'; id: number; tag: number }
  | { op: 'meta'; id: number; meta: MirrorMeta }
  | { op: 'session'; session: number }
  | { op: 'stream'; peer: string; stream: StreamMeta }
  | { op: 'tags'; upTo: number };

const CODE = { mirror: 1, entry: 2, drop: 3, meta: 4, session: 5, stream: 6, tags: 7 } as const;

/** Encoded size of each kind of op, without its peer name's bytes. */
export const OP_BYTES = { mirror: 9, entry: 27, drop: 11, meta: 13, session: 9, stream: 26, tags: 9 } as const;

export function opBytes(o: MetadataOp): number {
  if (o.op === 'mirror') return OP_BYTES.mirror + o.key.peer.length;
  if (o.op === 'stream') return OP_BYTES.stream + o.peer.length;
  return OP_BYTES[o.op];
}

/** Whether `name` can be stored: 1 to 64 printable ASCII characters. */
export function isStorablePeerName(name: string): boolean {
  if (name.length < 1 || name.length > PEER_NAME_BYTES_MAX) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// ---- writing ------------------------------------------------------------------------------------

class Writer {
  readonly view: DataView;
  at: number;

  constructor(readonly bytes: Uint8Array, at: number) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.at = at;
  }

  u8(v: number): void {
    this.view.setUint8(this.at, v);
    this.at += 1;
  }

  u16(v: number): void {
    this.view.setUint16(this.at, v);
    this.at += 2;
  }

  u32(v: number): void {
    this.view.setUint32(this.at, v);
    this.at += 4;
  }

  /** A safe, non-negative integer as u64. */
  u64(v: number): void {
    assert(Number.isSafeInteger(v) && v >= 0, `metadata: ${v} is not a non-negative safe integer`);
    this.view.setUint32(this.at, Math.floor(v / 2 ** 32));
    this.view.setUint32(this.at + 4, v >>> 0);
    this.at += 8;
  }

  name(s: string): void {
    assert(isStorablePeerName(s), `metadata: peer name ${JSON.stringify(s)} is not 1 to ${PEER_NAME_BYTES_MAX} printable ASCII characters`);
    this.u8(s.length);
    for (let i = 0; i < s.length; i++) this.bytes[this.at + i] = s.charCodeAt(i);
    this.at += s.length;
  }
}

function writeOp(w: Writer, o: MetadataOp): void {
  w.u8(CODE[o.op]);
  switch (o.op) {
    case 'mirror':
      w.u16(o.id);
      w.u8(ROLES.indexOf(o.key.role));
      w.u32(o.key.lun);
      w.name(o.key.peer);
      return;
    case 'entry':
      w.u16(o.id);
      w.u64(o.entry.tag);
      w.u32(o.entry.lun);
      w.u64(o.entry.lba);
      w.u32(o.entry.count);
      return;
    case 'drop':
      w.u16(o.id);
      w.u64(o.tag);
      return;
    case 'meta':
      w.u16(o.id);
      w.u8(SYNC_STATES.indexOf(o.meta.state));
      w.u8(o.meta.overflowed ? 1 : 0);
      w.u64(o.meta.doneSectors);
      return;
    case 'session':
      w.u64(o.session);
      return;
    case 'stream':
      w.name(o.peer);
      w.u64(o.stream.sourceSession);
      w.u64(o.stream.targetSession);
      w.u64(o.stream.confirmedSeq);
      return;
    case 'tags':
      w.u64(o.upTo);
  }
}

/** What a checkpoint's header says besides its body. */
export interface CheckpointHeader {
  generation: number;
  /** Absolute log position of the first record that follows this checkpoint. */
  logStart: number;
  /** Sequence number of that record. */
  logSeq: number;
  bodyBytes: number;
  bodyCrc: number;
  slotSectors: number;
  ringSectors: number;
  sectorSize: number;
  opCount: number;
}

export interface RecordHeader {
  seq: number;
  /** Absolute log position the record was written at. */
  pos: number;
  bodyBytes: number;
  bodyCrc: number;
  opCount: number;
}

/** `ops` after a 64-byte header, padded with zeros to whole sectors; the header is filled in by the caller. */
function encodeBody(ops: readonly MetadataOp[], sectorSize: number): { bytes: Uint8Array; bodyBytes: number; bodyCrc: number } {
  let bodyBytes = 0;
  for (const o of ops) bodyBytes += opBytes(o);
  const bytes = new Uint8Array(roundUp(HEADER_BYTES + bodyBytes, sectorSize));
  const w = new Writer(bytes, HEADER_BYTES);
  for (const o of ops) writeOp(w, o);
  assert(w.at === HEADER_BYTES + bodyBytes, 'metadata: op sizes disagree with their encoding');
  return { bytes, bodyBytes, bodyCrc: crc32cRange(bytes, HEADER_BYTES, HEADER_BYTES + bodyBytes) };
}

function sealHeader(bytes: Uint8Array): void {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(60, crc32cRange(bytes, 0, 60));
}

export function encodeCheckpoint(h: Omit<CheckpointHeader, 'bodyBytes' | 'bodyCrc' | 'opCount'>, ops: readonly MetadataOp[]): Uint8Array {
  const { bytes, bodyBytes, bodyCrc } = encodeBody(ops, h.sectorSize);
  const w = new Writer(bytes, 0);
  w.u32(CHECKPOINT_MAGIC);
  w.u16(FORMAT_VERSION);
  w.u16(HEADER_BYTES);
  w.u64(h.generation);
  w.u64(h.logStart);
  w.u64(h.logSeq);
  w.u32(bodyBytes);
  w.u32(bodyCrc);
  w.u32(h.slotSectors);
  w.u32(h.ringSectors);
  w.u32(h.sectorSize);
  w.u32(ops.length);
  sealHeader(bytes);
  return bytes;
}

export function encodeRecord(seq: number, pos: number, ops: readonly MetadataOp[], sectorSize: number): Uint8Array {
  const { bytes, bodyBytes, bodyCrc } = encodeBody(ops, sectorSize);
  const w = new Writer(bytes, 0);
  w.u32(RECORD_MAGIC);
  w.u16(FORMAT_VERSION);
  w.u16(HEADER_BYTES);
  w.u64(seq);
  w.u64(pos);
  w.u32(bodyBytes);
  w.u32(bodyCrc);
  w.u32(ops.length);
  sealHeader(bytes);
  return bytes;
}

/** Bytes a record of `ops` takes on the device (whole sectors). */
export function recordBytes(ops: readonly MetadataOp[], sectorSize: number): number {
  let n = HEADER_BYTES;
  for (const o of ops) n += opBytes(o);
  return roundUp(n, sectorSize);
}

export function roundUp(n: number, unit: number): number {
  return Math.ceil(n / unit) * unit;
}

// ---- reading ------------------------------------------------------------------------------------

class Reader {
  private readonly view: DataView;
  at: number;

  constructor(private readonly bytes: Uint8Array, at: number, readonly end: number) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.at = at;
  }

  has(n: number): boolean {
    return this.at + n <= this.end;
  }

  u8(): number {
    return this.view.getUint8(this.at++);
  }

  u16(): number {
    const v = this.view.getUint16(this.at);
    this.at += 2;
    return v;
  }

  u32(): number {
    const v = this.view.getUint32(this.at);
    this.at += 4;
    return v;
  }

  /** A u64 that is a safe integer, or -1 for anything larger. */
  u64(): number {
    const hi = this.view.getUint32(this.at);
    const lo = this.view.getUint32(this.at + 4);
    this.at += 8;
    return hi >= U64_HI_LIMIT ? -1 : hi * 2 ** 32 + lo;
  }

  /** A peer name, or null if its length or bytes are not allowed. */
  name(): string | null {
    if (!this.has(1)) return null;
    const n = this.u8();
    if (n < 1 || n > PEER_NAME_BYTES_MAX || !this.has(n)) return null;
    let s = '';
    for (let i = 0; i < n; i++) {
      const c = this.bytes[this.at + i]!;
      if (c < 0x21 || c > 0x7e) return null;
      s += String.fromCharCode(c);
    }
    this.at += n;
    return s;
  }
}

function headerSealed(bytes: Uint8Array, magic: number): boolean {
  if (bytes.length < HEADER_BYTES) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  return view.getUint32(0) === magic && view.getUint16(4) === FORMAT_VERSION && view.getUint16(6) === HEADER_BYTES
    && view.getUint32(60) === crc32cRange(bytes, 0, 60);
}

/** A checkpoint header whose own CRC holds and whose counters are in range; null otherwise. */
export function decodeCheckpointHeader(bytes: Uint8Array): CheckpointHeader | null {
  if (!headerSealed(bytes, CHECKPOINT_MAGIC)) return null;
  const r = new Reader(bytes, 8, HEADER_BYTES);
  const h: CheckpointHeader = {
    generation: r.u64(), logStart: r.u64(), logSeq: r.u64(), bodyBytes: r.u32(), bodyCrc: r.u32(),
    slotSectors: r.u32(), ringSectors: r.u32(), sectorSize: r.u32(), opCount: r.u32(),
  };
  const counters = [h.generation, h.logStart, h.logSeq];
  if (counters.some((c) => c < 0 || c >= COUNTER_LIMIT) || new DataView(bytes.buffer, bytes.byteOffset).getUint32(56) !== 0) return null;
  return h;
}

/** A record header whose own CRC holds and whose counters are in range; null otherwise. */
export function decodeRecordHeader(bytes: Uint8Array): RecordHeader | null {
  if (!headerSealed(bytes, RECORD_MAGIC)) return null;
  const r = new Reader(bytes, 8, HEADER_BYTES);
  const h: RecordHeader = { seq: r.u64(), pos: r.u64(), bodyBytes: r.u32(), bodyCrc: r.u32(), opCount: r.u32() };
  if (h.seq < 0 || h.pos < 0 || h.seq >= COUNTER_LIMIT || h.pos >= COUNTER_LIMIT) return null;
  for (let i = 36; i < 60; i++) if (bytes[i] !== 0) return null;
  return h;
}

/** Whether the body after a header (at `bytes[64, 64 + bodyBytes)`) is what its CRC says. */
export function bodyIntact(bytes: Uint8Array, bodyBytes: number, bodyCrc: number): boolean {
  return HEADER_BYTES + bodyBytes <= bytes.length && crc32cRange(bytes, HEADER_BYTES, HEADER_BYTES + bodyBytes) === bodyCrc;
}

/**
 * The ops of a body (`bytes[64, 64 + bodyBytes)`), exactly `opCount` of them filling it exactly,
 * each with fields the format allows; null for anything else (an unknown code, a truncated op, a
 * role or state out of range, a zero-length entry, an entry past 2^48 sectors).
 */
export function decodeOps(bytes: Uint8Array, bodyBytes: number, opCount: number): MetadataOp[] | null {
  const r = new Reader(bytes, HEADER_BYTES, HEADER_BYTES + bodyBytes);
  const ops: MetadataOp[] = [];
  while (r.at < r.end) {
    const o = readOp(r);
    if (o === null) return null;
    ops.push(o);
  }
  return ops.length === opCount ? ops : null;
}

/** The op codes by number. */
const KINDS = new Map<number, keyof typeof CODE>(Object.entries(CODE).map(([k, c]) => [c, k as keyof typeof CODE]));
/** Bytes each op needs after its code before any name (a name checks its own length). */
const FIXED_AFTER_CODE = { mirror: 7, entry: 26, drop: 10, meta: 12, session: 8, stream: 0, tags: 8 } as const;

function readOp(r: Reader): MetadataOp | null {
  const kind = KINDS.get(r.u8());
  if (kind === undefined || !r.has(FIXED_AFTER_CODE[kind])) return null;
  switch (kind) {
    case 'mirror': {
      const id = r.u16();
      const role = ROLES[r.u8()];
      const lun = r.u32();
      const peer = r.name();
      if (role === undefined || peer === null || id === MIRROR_IDS_MAX) return null;
      return { op: 'mirror', id, key: { peer, lun, role } };
    }
    case 'entry': {
      const id = r.u16();
      const tag = r.u64();
      const lun = r.u32();
      const lba = r.u64();
      const count = r.u32();
      if (tag < 0 || lba < 0 || count === 0 || !Number.isSafeInteger(lba + count)) return null;
      return { op: 'entry', id, entry: { tag, lun, lba, count } };
    }
    case 'drop': {
      const id = r.u16();
      const tag = r.u64();
      return tag < 0 ? null : { op: 'drop', id, tag };
    }
    case 'meta': {
      const id = r.u16();
      const state = SYNC_STATES[r.u8()];
      const flags = r.u8();
      const doneSectors = r.u64();
      if (state === undefined || flags > 1 || doneSectors < 0) return null;
      return { op: 'meta', id, meta: { state, overflowed: flags === 1, doneSectors } };
    }
    case 'session': {
      const session = r.u64();
      return session < 0 ? null : { op: 'session', session };
    }
    case 'stream': {
      const peer = r.name();
      if (peer === null || !r.has(24)) return null;
      const stream = { sourceSession: r.u64(), targetSession: r.u64(), confirmedSeq: r.u64() };
      if (stream.sourceSession < 0 || stream.targetSession < 0 || stream.confirmedSeq < 0) return null;
      return { op: 'stream', peer, stream };
    }
    case 'tags': {
      const upTo = r.u64();
      return upTo < 0 ? null : { op: 'tags', upTo };
    }
  }
}

/** Field checks the store makes on what callers hand it (programmer errors: asserts). */
export function checkEntry(e: TagEntry): void {
  assert(Number.isSafeInteger(e.tag) && e.tag >= 0, `metadata: tag ${e.tag} must be a non-negative safe integer`);
  assert(Number.isInteger(e.lun) && e.lun >= 0 && e.lun <= U32_MAX, `metadata: LUN ${e.lun} must be a u32`);
  assert(Number.isSafeInteger(e.lba) && e.lba >= 0 && Number.isInteger(e.count) && e.count >= 1 && e.count <= U32_MAX
    && Number.isSafeInteger(e.lba + e.count), `metadata: entry [${e.lba}, +${e.count}) must have count 1..2^32-1 and end at a safe integer`);
}

export function checkKey(k: MirrorKey): void {
  assert(isStorablePeerName(k.peer), `metadata: peer name ${JSON.stringify(k.peer)} is not 1 to ${PEER_NAME_BYTES_MAX} printable ASCII characters`);
  assert(Number.isInteger(k.lun) && k.lun >= 0 && k.lun <= U32_MAX, `metadata: LUN ${k.lun} must be a u32`);
  assert(ROLES.includes(k.role), `metadata: role ${String(k.role)} must be source or target`);
}

/** A u64 field's value from a caller: a non-negative safe integer. */
export function checkU64(v: number, what: string): void {
  assert(Number.isSafeInteger(v) && v >= 0, `metadata: ${what} ${v} must be a non-negative safe integer`);
}

export function checkMeta(m: MirrorMeta): void {
  assert(SYNC_STATES.includes(m.state), `metadata: mirror state ${String(m.state)} is not one of ${SYNC_STATES.join(', ')}`);
  checkU64(m.doneSectors, 'doneSectors');
  assert(typeof m.overflowed === 'boolean', 'metadata: overflowed must be a boolean');
}
