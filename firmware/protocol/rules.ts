import { assert } from '../errors.ts';
import {
  BATCH_BYTES_MAX_MIN,
  BATCH_ENTRIES_MAX,
  FEATURE_BITS,
  FrameFlag,
  FrameType,
  HEARTBEAT_PAYLOAD_BYTES,
  HEARTBEAT_TAGS_PAYLOAD_BYTES,
  HELLO_BATCH_PAYLOAD_BYTES,
  HELLO_TAGS_PAYLOAD_BYTES,
  HELLO_PAYLOAD_BYTES,
  HELLO_PAYLOAD_BYTES_MAX,
  LockMode,
  LockRejectPolicy,
  NakReason,
  RejectAction,
  RejectReason,
  RESYNC_ENTRIES_MAX,
  RESYNC_ENTRY_BYTES,
  TableState,
  U64_FIELD_MAX,
} from './frame.ts';
import {
  HEARTBEAT_OFF_PEER_SESSION, HEARTBEAT_OFF_PEER_STREAM, HEARTBEAT_OFF_STREAM, HEARTBEAT_OFF_TOKENS, HEARTBEAT_OFF_TOKENS_BACK,
  HELLO_OFF_BATCH_BYTES_MAX, HELLO_OFF_CONNECTION, HELLO_OFF_CONNECTIONS, HELLO_OFF_FEATURES, HELLO_OFF_LOCKS_WINDOW, HELLO_OFF_PEER_SESSION,
  HELLO_OFF_PEER_STREAM, HELLO_OFF_REQUIRED, HELLO_OFF_STREAM, readU16, readU32, readU64,
} from './layout.ts';
import type { RawFields } from './layout.ts';

/**
 * What each frame type allows in each header field: one table, read by the encoder (a violation
 * is a programmer error, asserted) and by the decoder (a violation is an operating error,
 * ML_ERR_FRAME_FIELD). Keeping both sides on one table means a frame the encoder accepts always
 * decodes, and the reverse. The rules themselves are explained in frame.ts's header comment.
 */
interface Rule {
  /** Smallest and largest value allowed. */
  readonly min: number;
  readonly max: number;
  /** Flag fields: the bits that may be set. Other fields: ALL_BITS (any bit). */
  readonly bits: number;
  /**
   * Enumerated fields: the allowed values as a bit set (bit v set: value v allowed; enumerations
   * stay below 32). Other fields: ALL_BITS, which lets every value through.
   */
  readonly members: number;
  /** What is allowed, for the error message. */
  readonly allowed: string;
  readonly hex: boolean;
}

/** Every bit of a 32-bit set: no restriction (for `v & ~bits` and `(members >>> v) & 1` alike). */
const ALL_BITS = -1;

/**
 * Rules are plain data and this is the one predicate over them, so the fast check and the
 * descriptive one below cannot disagree. Values are integers (the decoder reads them from fixed
 * slots; the encoder checks that first), so the bit tests are exact: with ALL_BITS they pass for
 * any value, and enumerated fields only reach them with a value in [min, max], below 32.
 */
function allows(rule: Rule, v: number): boolean {
  return v >= rule.min && v <= rule.max && (v & ~rule.bits) === 0 && ((rule.members >>> v) & 1) === 1;
}

export type FieldKey = 'flags' | 'code' | 'seq' | 'lba' | 'tag' | 'lockId' | 'count' | 'payloadLength';
const FIELD_KEYS: readonly FieldKey[] = ['flags', 'code', 'seq', 'lba', 'tag', 'lockId', 'count', 'payloadLength'];

type TypeRule = Record<FieldKey, Rule> & { names: Partial<Record<FieldKey, string>> };

export interface FieldProblem {
  field: string;
  value: string;
  allowed: string;
}

function range(min: number, max: number, allowed: string): Rule {
  return { min, max, bits: ALL_BITS, members: ALL_BITS, allowed, hex: false };
}

const ZERO = range(0, 0, 'this frame type does not use the field, so it must be 0');
const U64 = range(0, U64_FIELD_MAX, 'allowed: 0 to 2^53-1');
const U64_MIN1 = range(1, U64_FIELD_MAX, 'allowed: 1 to 2^53-1');
/** u8/u16/u32 fields: the field width already bounds them. */
const ANY = range(0, Infinity, '');
const MIN1 = range(1, Infinity, 'allowed: at least 1');
const NO_PAYLOAD = range(0, 0, 'only WRITE, BATCH, HELLO, HEARTBEAT and RESYNC_DATA frames carry a payload, so it must be 0');
const DATA = range(1, Infinity, 'a WRITE carries at least 1 byte of data');
const HELLO_PAYLOAD = range(HELLO_PAYLOAD_BYTES, HELLO_PAYLOAD_BYTES_MAX, `a HELLO carries ${HELLO_PAYLOAD_BYTES} to ${HELLO_PAYLOAD_BYTES_MAX} bytes of payload`);
const ENTRIES = range(1, BATCH_ENTRIES_MAX, `a BATCH carries 1 to ${BATCH_ENTRIES_MAX} entries`);
const BATCH_PAYLOAD = range(1, Infinity, 'a BATCH carries its entries');
const ENTRIES_WANTED = range(1, RESYNC_ENTRIES_MAX, `a RESYNC_REQUEST asks for 1 to ${RESYNC_ENTRIES_MAX} entries`);
const ENTRIES_CARRIED = range(0, RESYNC_ENTRIES_MAX, `a RESYNC_DATA carries 0 to ${RESYNC_ENTRIES_MAX} entries`);
const TABLE_PAYLOAD = range(0, RESYNC_ENTRIES_MAX * RESYNC_ENTRY_BYTES, `a RESYNC_DATA carries its entries, ${RESYNC_ENTRY_BYTES} bytes each`);
const HEARTBEAT_PAYLOAD = range(
  HEARTBEAT_PAYLOAD_BYTES, HEARTBEAT_TAGS_PAYLOAD_BYTES,
  `a HEARTBEAT carries ${HEARTBEAT_PAYLOAD_BYTES} bytes (its peerSession), or ${HEARTBEAT_TAGS_PAYLOAD_BYTES} with feature tags`,
);
/** u32 fields that carry tokens (feature `tags`): any value, 0 meaning none. */
const TOKENS_U32 = range(0, Infinity, '');

function oneOf(values: Record<string, string | number>): Rule {
  const known = Object.entries(values).filter((e): e is [string, number] => typeof e[1] === 'number');
  const codes = known.map(([, v]) => v);
  assert(codes.every((v) => Number.isInteger(v) && v >= 0 && v < 32), 'enumerated field values must be integers from 0 to 31');
  return {
    min: Math.min(...codes),
    max: Math.max(...codes),
    bits: ALL_BITS,
    members: codes.reduce((set, v) => set | (1 << v), 0),
    allowed: `allowed: ${known.map(([k, v]) => `${v} (${k})`).join(', ')}`,
    hex: false,
  };
}

function flagsOf(...flags: FrameFlag[]): Rule {
  const mask = flags.reduce((m, f) => m | f, 0);
  const names = flags.map((f) => `0x${f.toString(16).padStart(2, '0')} (${FrameFlag[f]})`);
  const allowed = names.length === 0 ? 'this frame type defines no flags, so it must be 0' : `allowed bits: ${names.join(', ')}`;
  return { min: 0, max: Infinity, bits: mask, members: ALL_BITS, allowed, hex: true };
}

/** Every type's rules in one property order, so the fast check's loads see a single shape. */
function typeRule(r: TypeRule): TypeRule {
  return {
    flags: r.flags, code: r.code, seq: r.seq, lba: r.lba, tag: r.tag, lockId: r.lockId, count: r.count, payloadLength: r.payloadLength,
    names: r.names,
  };
}

const STREAM_FLAGS = flagsOf(FrameFlag.Retransmit);
const NO_FLAGS = flagsOf();
const NEVER = { lba: ZERO, tag: ZERO, lockId: ZERO, count: ZERO, code: ZERO, payloadLength: NO_PAYLOAD };

const TYPE_RULES: Readonly<Record<FrameType, TypeRule>> = {
  [FrameType.Hello]: typeRule({
    flags: flagsOf(FrameFlag.Retransmit, FrameFlag.PeerRestarted), code: oneOf(LockRejectPolicy), seq: U64, lba: U64_MIN1, tag: U64, lockId: ANY, count: ANY,
    payloadLength: HELLO_PAYLOAD,
    names: { code: 'policy', lba: 'sessionId', tag: 'windowBytes', lockId: 'controllerId', count: 'windowEntries' },
  }),
  [FrameType.Lock]: typeRule({
    ...NEVER, flags: flagsOf(FrameFlag.GrantWanted, FrameFlag.Retransmit), code: oneOf(LockMode), seq: U64_MIN1,
    lba: U64, lockId: MIN1, count: MIN1, names: { code: 'mode' },
  }),
  [FrameType.Write]: typeRule({
    ...NEVER, flags: flagsOf(FrameFlag.Retransmit, FrameFlag.Ordered, FrameFlag.ImpliedLock), seq: U64_MIN1, lba: U64, tag: U64, lockId: MIN1,
    count: TOKENS_U32, payloadLength: DATA, names: { count: 'count (tokens back, as a distance)', payloadLength: 'payloadLength (data.length)' },
  }),
  [FrameType.Unlock]: typeRule({ ...NEVER, flags: STREAM_FLAGS, seq: U64_MIN1, lockId: MIN1, names: {} }),
  [FrameType.Ack]: typeRule({ ...NEVER, flags: NO_FLAGS, seq: U64, tag: U64, names: { tag: 'tag (tokens)' } }),
  [FrameType.LockGranted]: typeRule({ ...NEVER, flags: NO_FLAGS, seq: U64_MIN1, lockId: MIN1, names: {} }),
  [FrameType.LockRejected]: typeRule({
    ...NEVER, flags: NO_FLAGS, code: oneOf(RejectReason), seq: U64_MIN1, lockId: MIN1, count: oneOf(RejectAction),
    names: { code: 'reason', count: 'action' },
  }),
  [FrameType.Nak]: typeRule({ ...NEVER, flags: NO_FLAGS, code: oneOf(NakReason), seq: U64_MIN1, names: { code: 'reason' } }),
  [FrameType.Heartbeat]: typeRule({
    ...NEVER, flags: flagsOf(FrameFlag.Probe), seq: U64_MIN1, lba: U64_MIN1, tag: U64, lockId: ANY, payloadLength: HEARTBEAT_PAYLOAD,
    names: { seq: 'counter', lba: 'sessionId', tag: 'confirmedSeq', lockId: 'controllerId' },
  }),
  [FrameType.Batch]: typeRule({
    ...NEVER, flags: STREAM_FLAGS, seq: U64_MIN1, tag: U64, count: ENTRIES, payloadLength: BATCH_PAYLOAD,
    names: { count: 'count (entries)', tag: 'tag (tokens back)' },
  }),
  // Feature `resync` (docs/tag-tables.md, "Resync"): `seq` names the exchange; RESYNC_DATA's entries are checked with its payload.
  [FrameType.ResyncRequest]: typeRule({
    ...NEVER, flags: NO_FLAGS, seq: U64_MIN1, lba: U64, count: ENTRIES_WANTED, names: { seq: 'exchange', lba: 'first', count: 'entriesMax' },
  }),
  [FrameType.ResyncData]: typeRule({
    ...NEVER, flags: NO_FLAGS, code: oneOf(TableState), seq: U64_MIN1, lba: U64, tag: U64, count: ENTRIES_CARRIED, payloadLength: TABLE_PAYLOAD,
    names: { code: 'state', seq: 'exchange', lba: 'first', tag: 'total', count: 'count (entries)' },
  }),
  [FrameType.ResyncDone]: typeRule({ ...NEVER, flags: NO_FLAGS, seq: U64_MIN1, names: { seq: 'exchange' } }),
  [FrameType.ResyncAck]: typeRule({ ...NEVER, flags: NO_FLAGS, seq: U64_MIN1, names: { seq: 'exchange' } }),
};

/** The fields HELLO and HEARTBEAT carry in their payload, as numbers (see frame.ts for the layout). */
export interface ControlPayload {
  locksWindow: number;
  features: number;
  requiredFeatures: number;
  connection: number;
  connections: number;
  peerSession: number;
  /** Feature `batch` (absent from a HELLO too short to carry it). */
  batchBytesMax?: number;
  /** Feature `tags` (absent from a HELLO too short to carry them). */
  stream?: number;
  peerStream?: number;
  /** HEARTBEAT, feature `tags`: with `confirmedSeq` from its header, which `tokens` may not pass. */
  tags?: { tokens: number; tokensBack: number; stream: number; peerStream: number };
  confirmedSeq?: number;
}

/**
 * The first payload field of a HELLO or HEARTBEAT that is not allowed, or null. Called by the
 * decoder with the payload bytes (whose length the header rules already checked) and, through
 * {@link controlPayloadProblem}, by the encoder with the frame's numbers.
 */
export function payloadProblem(type: FrameType, payload: Uint8Array, confirmedSeq = 0): FieldProblem | null {
  if (type === FrameType.Heartbeat) {
    if (payload.length !== HEARTBEAT_PAYLOAD_BYTES && payload.length !== HEARTBEAT_TAGS_PAYLOAD_BYTES) {
      return {
        field: 'payloadLength', value: String(payload.length),
        allowed: `a HEARTBEAT carries ${HEARTBEAT_PAYLOAD_BYTES} bytes (its peerSession), or ${HEARTBEAT_TAGS_PAYLOAD_BYTES} with feature tags`,
      };
    }
    const tags = payload.length === HEARTBEAT_TAGS_PAYLOAD_BYTES
      ? {
          tokens: readU64(payload, HEARTBEAT_OFF_TOKENS), tokensBack: readU64(payload, HEARTBEAT_OFF_TOKENS_BACK),
          stream: readU32(payload, HEARTBEAT_OFF_STREAM), peerStream: readU32(payload, HEARTBEAT_OFF_PEER_STREAM),
        }
      : undefined;
    return controlPayloadProblem(type, { peerSession: readU64(payload, HEARTBEAT_OFF_PEER_SESSION), confirmedSeq, ...(tags ? { tags } : {}) });
  }
  return controlPayloadProblem(type, {
    locksWindow: readU32(payload, HELLO_OFF_LOCKS_WINDOW),
    features: readU32(payload, HELLO_OFF_FEATURES),
    requiredFeatures: readU32(payload, HELLO_OFF_REQUIRED),
    connection: readU16(payload, HELLO_OFF_CONNECTION),
    connections: readU16(payload, HELLO_OFF_CONNECTIONS),
    peerSession: readU64(payload, HELLO_OFF_PEER_SESSION),
    ...(payload.length >= HELLO_BATCH_PAYLOAD_BYTES ? { batchBytesMax: readU32(payload, HELLO_OFF_BATCH_BYTES_MAX) } : {}),
    ...(payload.length >= HELLO_TAGS_PAYLOAD_BYTES ? { stream: readU32(payload, HELLO_OFF_STREAM), peerStream: readU32(payload, HELLO_OFF_PEER_STREAM) } : {}),
  });
}

const isU = (v: unknown, max: number): boolean => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;

/** The payload rules of HELLO and HEARTBEAT over their numbers (HEARTBEAT has only a peerSession). */
export function controlPayloadProblem(type: FrameType, p: Partial<ControlPayload>): FieldProblem | null {
  if (!isU(p.peerSession, U64_FIELD_MAX)) return { field: 'peerSession', value: showValue(p.peerSession), allowed: 'allowed: 0 to 2^53-1' };
  if (type === FrameType.Heartbeat) return heartbeatTagsProblem(p);
  if (!isU(p.locksWindow, 0xffffffff) || p.locksWindow === 0) return { field: 'locksWindow', value: showValue(p.locksWindow), allowed: 'allowed: 1 to 4294967295' };
  if (!isU(p.features, 0xffffffff)) return { field: 'features', value: showValue(p.features), allowed: 'allowed: a 32-bit set' };
  const required = p.requiredFeatures;
  if (!isU(required, 0xffffffff) || ((required as number) & ~(p.features as number)) !== 0) {
    return { field: 'requiredFeatures', value: showValue(required), allowed: 'allowed: a subset of features (a sender requires only what it implements)' };
  }
  if (!isU(p.connections, 0xffff) || p.connections === 0) return { field: 'connections', value: showValue(p.connections), allowed: 'allowed: 1 to 65535' };
  if (!isU(p.connection, (p.connections as number) - 1)) return { field: 'connection', value: showValue(p.connection), allowed: `allowed: 0 to connections - 1 (${(p.connections as number) - 1})` };
  return batchFieldProblem(p) ?? helloTagsProblem(p);
}

/** A HEARTBEAT's `tags` fields: tokens never pass what it confirms. */
function heartbeatTagsProblem(p: Partial<ControlPayload>): FieldProblem | null {
  const t = p.tags;
  if (t === undefined) return null;
  if (!isU(t.tokensBack, U64_FIELD_MAX)) return { field: 'tokensBack', value: showValue(t.tokensBack), allowed: 'allowed: 0 to 2^53-1' };
  if (!isU(t.stream, 0xffffffff)) return { field: 'stream', value: showValue(t.stream), allowed: 'allowed: a u32' };
  if (!isU(t.peerStream, 0xffffffff)) return { field: 'peerStream', value: showValue(t.peerStream), allowed: 'allowed: a u32' };
  const confirmed = p.confirmedSeq ?? 0;
  if (!isU(t.tokens, U64_FIELD_MAX) || t.tokens > confirmed) {
    return { field: 'tokens', value: showValue(t.tokens), allowed: `allowed: 0 to confirmedSeq (${confirmed}): only confirmed writes can be durable` };
  }
  return null;
}

/** A HELLO advertising `tags` carries its stream numbers (HELLO_TAGS_PAYLOAD_BYTES). */
function helloTagsProblem(p: Partial<ControlPayload>): FieldProblem | null {
  for (const field of ['stream', 'peerStream'] as const) {
    const v = p[field];
    if (v !== undefined && !isU(v, 0xffffffff)) return { field, value: showValue(v), allowed: 'allowed: a u32' };
  }
  if (((p.features as number) & FEATURE_BITS.tags) === 0 || p.stream !== undefined) return null;
  return {
    field: 'stream', value: 'absent',
    allowed: `a HELLO advertising the tags feature carries stream and peerStream (at least ${HELLO_TAGS_PAYLOAD_BYTES} bytes of payload)`,
  };
}

/** A HELLO advertising `batch` says how large a BATCH it accepts (HELLO_OFF_BATCH_BYTES_MAX). */
function batchFieldProblem(p: Partial<ControlPayload>): FieldProblem | null {
  const v = p.batchBytesMax;
  if (v !== undefined && !isU(v, 0xffffffff)) return { field: 'batchBytesMax', value: showValue(v), allowed: 'allowed: a u32' };
  if (((p.features as number) & FEATURE_BITS.batch) === 0) return null;
  if (v === undefined || v < BATCH_BYTES_MAX_MIN) {
    return {
      field: 'batchBytesMax', value: v === undefined ? 'absent' : String(v),
      allowed: `a HELLO advertising the batch feature carries batchBytesMax (at least ${HELLO_BATCH_PAYLOAD_BYTES} bytes of payload), from ${BATCH_BYTES_MAX_MIN} to 4294967295`,
    };
  }
  return null;
}

function showValue(v: unknown): string {
  return typeof v === 'number' && v > U64_FIELD_MAX ? 'a value above 2^53-1' : String(v);
}

/**
 * The most payload a frame of `type` may ever carry (Infinity: only the decoder's payloadBytesMax
 * bounds it). A header declaring more is judged on its own, before anyone waits for the payload.
 */
export function payloadBytesMaxOf(type: FrameType): number {
  return TYPE_RULES[type].payloadLength.max;
}

export function isKnownFrameType(type: number): type is FrameType {
  return TYPE_RULES[type as FrameType] !== undefined;
}

/** The field's name in the frame object of that type (HELLO's `lba` is its `sessionId`). */
export function fieldLabel(type: FrameType, key: FieldKey): string {
  return TYPE_RULES[type].names[key] ?? key;
}

function show(v: number, hex: boolean | undefined): string {
  if (hex === true) return `0x${v.toString(16).padStart(2, '0')}`;
  return v > U64_FIELD_MAX ? 'a value above 2^53-1' : String(v);
}

/**
 * Rules across two fields. The end of a lock range (lba + count, exclusive) must itself be a safe
 * integer, so that range arithmetic in the lock tables stays exact. Tokens (feature `tags`) name
 * entries before the frame's own: an ACK's durable watermark (`tag`) is at most what it confirms
 * (`seq`); a WRITE's `count` reaches back at most to entry 1; a BATCH's `tag` is below its first
 * entry.
 */
function crossFieldBad(raw: RawFields): boolean {
  switch (raw.type) {
    case FrameType.Lock:
      return raw.lba + raw.count > U64_FIELD_MAX;
    case FrameType.Ack:
      return raw.tag > raw.seq;
    case FrameType.Write:
      return raw.count >= raw.seq;
    case FrameType.Batch:
      return raw.tag >= raw.seq;
    default:
      return false;
  }
}

function crossFieldProblem(raw: RawFields): FieldProblem | null {
  if (!crossFieldBad(raw)) return null;
  switch (raw.type) {
    case FrameType.Lock:
      return { field: 'lba + count', value: `${raw.lba} + ${raw.count}`, allowed: 'allowed: a sum of at most 2^53-1' };
    case FrameType.Ack:
      return { field: 'tag (tokens)', value: String(raw.tag), allowed: `allowed: at most seq (${raw.seq}): only confirmed writes can be durable` };
    case FrameType.Write:
      return { field: 'count (tokens back, as a distance)', value: String(raw.count), allowed: `allowed: 0 (none) to seq - 1 (${raw.seq - 1})` };
    default:
      return { field: 'tag (tokens back)', value: String(raw.tag), allowed: `allowed: 0 (none) to seq - 1 (${raw.seq - 1})` };
  }
}

/**
 * A BATCH's sub-entry, as raw fields of the frame it stands for: allowed if that frame would be,
 * and its flags leave Retransmit to the batch. Null, or what is wrong (the field named after the
 * entry). `raw.type` must be LOCK, WRITE or UNLOCK.
 */
export function subEntryProblem(raw: RawFields, index: number): FieldProblem | null {
  const where = `entry ${index} (seq ${raw.seq})`;
  if ((raw.flags & FrameFlag.Retransmit) !== 0) {
    return { field: `${where} flags`, value: show(raw.flags, true), allowed: 'Retransmit (0x02) is the BATCH\'s flag, never an entry\'s' };
  }
  if (raw.type === FrameType.Write && raw.count !== 0) {
    return { field: `${where} tokensBack`, value: String(raw.seq - raw.count), allowed: 'tokens back travel in the BATCH\'s tag, never in an entry' };
  }
  if (fieldsAllowed(raw)) return null;
  const p = fieldProblem(raw)!;
  return { ...p, field: `${where} ${p.field}` };
}

/**
 * True if its type allows every field of `raw`: the verdict of `fieldProblem(raw) === null`, from
 * the same table and predicate, but written out field by field and building nothing, because the
 * codec asks it for every frame. `raw.type` must be a known type.
 */
export function fieldsAllowed(raw: RawFields): boolean {
  const r = TYPE_RULES[raw.type as FrameType];
  return (
    allows(r.flags, raw.flags) && allows(r.code, raw.code) && allows(r.seq, raw.seq) && allows(r.lba, raw.lba) &&
    allows(r.tag, raw.tag) && allows(r.lockId, raw.lockId) && allows(r.count, raw.count) &&
    allows(r.payloadLength, raw.payloadLength) && !crossFieldBad(raw)
  );
}

/**
 * The first field of `raw` its type does not allow, or null, with what is allowed instead: the
 * message side of {@link fieldsAllowed}, run once something is known to be wrong. `raw.type`
 * must be a known type.
 */
export function fieldProblem(raw: RawFields): FieldProblem | null {
  const rules = TYPE_RULES[raw.type as FrameType];
  for (const key of FIELD_KEYS) {
    const rule = rules[key];
    const value = raw[key];
    if (!allows(rule, value)) return { field: rules.names[key] ?? key, value: show(value, rule.hex), allowed: rule.allowed };
  }
  return crossFieldProblem(raw);
}
