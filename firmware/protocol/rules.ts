import {
  FrameFlag,
  FrameType,
  LockMode,
  LockRejectPolicy,
  NakReason,
  RejectAction,
  RejectReason,
  U64_FIELD_MAX,
} from './frame.ts';
import type { RawFields } from './layout.ts';

/**
 * What each frame type allows in each header field: one table, read by the encoder (a violation
 * is a programmer error, asserted) and by the decoder (a violation is an operating error,
 * ML_ERR_FRAME_FIELD). Keeping both sides on one table means a frame the encoder accepts always
 * decodes, and the reverse. The rules themselves are explained in frame.ts's header comment.
 */
interface Rule {
  ok(v: number): boolean;
  /** What is allowed, for the error message. */
  allowed: string;
  hex?: boolean;
}

export type FieldKey = 'flags' | 'code' | 'seq' | 'lba' | 'tag' | 'lockId' | 'count' | 'payloadLength';
const FIELD_KEYS: readonly FieldKey[] = ['flags', 'code', 'seq', 'lba', 'tag', 'lockId', 'count', 'payloadLength'];

type TypeRule = Record<FieldKey, Rule> & { names: Partial<Record<FieldKey, string>> };

export interface FieldProblem {
  field: string;
  value: string;
  allowed: string;
}

const ZERO: Rule = { ok: (v) => v === 0, allowed: 'this frame type does not use the field, so it must be 0' };
const U64: Rule = { ok: (v) => v <= U64_FIELD_MAX, allowed: 'allowed: 0 to 2^53-1' };
const U64_MIN1: Rule = { ok: (v) => v >= 1 && v <= U64_FIELD_MAX, allowed: 'allowed: 1 to 2^53-1' };
/** u8/u16/u32 fields: the field width already bounds them. */
const ANY: Rule = { ok: () => true, allowed: '' };
const MIN1: Rule = { ok: (v) => v >= 1, allowed: 'allowed: at least 1' };
const NO_PAYLOAD: Rule = { ok: (v) => v === 0, allowed: 'only WRITE frames carry a payload, so it must be 0' };
const DATA: Rule = { ok: (v) => v >= 1, allowed: 'a WRITE carries at least 1 byte of data' };

function oneOf(values: Record<string, string | number>): Rule {
  const known = Object.entries(values).filter((e): e is [string, number] => typeof e[1] === 'number');
  const set = new Set(known.map(([, v]) => v));
  return { ok: (v) => set.has(v), allowed: `allowed: ${known.map(([k, v]) => `${v} (${k})`).join(', ')}` };
}

function flagsOf(...flags: FrameFlag[]): Rule {
  const mask = flags.reduce((m, f) => m | f, 0);
  const names = flags.map((f) => `0x${f.toString(16).padStart(2, '0')} (${FrameFlag[f]})`);
  const allowed = names.length === 0 ? 'this frame type defines no flags, so it must be 0' : `allowed bits: ${names.join(', ')}`;
  return { ok: (v) => (v & ~mask) === 0, allowed, hex: true };
}

const STREAM_FLAGS = flagsOf(FrameFlag.Retransmit);
const NO_FLAGS = flagsOf();
const NEVER = { lba: ZERO, tag: ZERO, lockId: ZERO, count: ZERO, code: ZERO, payloadLength: NO_PAYLOAD };

const TYPE_RULES: Readonly<Record<FrameType, TypeRule>> = {
  [FrameType.Hello]: {
    flags: flagsOf(FrameFlag.Retransmit), code: oneOf(LockRejectPolicy), seq: U64, lba: U64, tag: U64, lockId: ANY, count: ANY,
    payloadLength: NO_PAYLOAD,
    names: { code: 'policy', lba: 'sessionId', tag: 'windowBytes', lockId: 'controllerId', count: 'windowEntries' },
  },
  [FrameType.Lock]: {
    ...NEVER, flags: flagsOf(FrameFlag.GrantWanted, FrameFlag.Retransmit), code: oneOf(LockMode), seq: U64_MIN1,
    lba: U64, lockId: MIN1, count: MIN1, names: { code: 'mode' },
  },
  [FrameType.Write]: {
    ...NEVER, flags: STREAM_FLAGS, seq: U64_MIN1, lba: U64, tag: U64, lockId: MIN1, payloadLength: DATA,
    names: { payloadLength: 'payloadLength (data.length)' },
  },
  [FrameType.Unlock]: { ...NEVER, flags: STREAM_FLAGS, seq: U64_MIN1, lockId: MIN1, names: {} },
  [FrameType.Ack]: { ...NEVER, flags: NO_FLAGS, seq: U64, names: {} },
  [FrameType.LockGranted]: { ...NEVER, flags: NO_FLAGS, seq: U64_MIN1, lockId: MIN1, names: {} },
  [FrameType.LockRejected]: {
    ...NEVER, flags: NO_FLAGS, code: oneOf(RejectReason), seq: U64_MIN1, lockId: MIN1, count: oneOf(RejectAction),
    names: { code: 'reason', count: 'action' },
  },
  [FrameType.Nak]: { ...NEVER, flags: NO_FLAGS, code: oneOf(NakReason), seq: U64_MIN1, names: { code: 'reason' } },
};

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

/** The first field of `raw` its type does not allow, or null. `raw.type` must be a known type. */
export function fieldProblem(raw: RawFields): FieldProblem | null {
  const rules = TYPE_RULES[raw.type as FrameType];
  for (const key of FIELD_KEYS) {
    const rule = rules[key];
    const value = raw[key];
    if (!rule.ok(value)) return { field: rules.names[key] ?? key, value: show(value, rule.hex), allowed: rule.allowed };
  }
  // The end of a lock range (lba + count, exclusive) must itself be a safe integer, so that range
  // arithmetic in the lock tables stays exact.
  if (raw.type === FrameType.Lock && raw.lba + raw.count > U64_FIELD_MAX) {
    return { field: 'lba + count', value: `${raw.lba} + ${raw.count}`, allowed: 'allowed: a sum of at most 2^53-1' };
  }
  return null;
}
