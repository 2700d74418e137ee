import { FEATURE_BITS, KNOWN_FLAGS, PROTOCOL_VERSION, U64_FIELD_MAX, frameTypeName } from '../../firmware/protocol/frame.ts';
import { U32_MAX, emptyRawFields, type RawFields } from '../../firmware/protocol/layout.ts';
import { fieldLabel, fieldProblem, fieldsAllowed, isKnownFrameType, type FieldKey } from '../../firmware/protocol/rules.ts';

/**
 * What the wire protocol allows, read from the protocol's own tables (docs/fuzzing.md 2): the
 * frame types the decoder knows (`isKnownFrameType`), and per type what each header field may
 * hold, found by asking the field rules (`fieldsAllowed`, the table in firmware/protocol/rules.ts)
 * about probe values. Nothing here lists frame types or flags by hand, so a type, flag or code
 * added to the tables is generated, in every flag combination, the day it is added.
 *
 * Assumption, checked when the catalog is built: each numeric field's allowed values form one
 * interval, and the allowed flag bits of a type combine freely (the rules say so today; if a
 * rule ever stops being that simple, the build fails and says which field).
 */
export interface FieldSpec {
  readonly key: FieldKey;
  /** What the field is called in the frame object of this type (HELLO's lba is its sessionId). */
  readonly label: string;
  /** Width of the field's slot. */
  readonly bits: 8 | 32 | 64;
  /** The allowed values: [min, max] (a u64 slot's max is at most 2^53-1). */
  readonly min: number;
  readonly max: number;
  /** u8 fields (flags, code): exactly the allowed values. */
  readonly members: readonly number[] | null;
}

export interface TypeSpec {
  readonly type: number;
  readonly name: string;
  /** A valid header for this type: the smallest allowed value in every field. */
  readonly base: Readonly<RawFields>;
  readonly fields: Readonly<Record<FieldKey, FieldSpec>>;
  /** Flag bits this type defines, and every combination of them. */
  readonly flagsMask: number;
  readonly flagCombos: readonly number[];
}

export interface ProtocolCatalog {
  readonly version: number;
  readonly types: readonly TypeSpec[];
  /** Every flag bit some type defines. */
  readonly knownFlags: number;
  /** The feature bits HELLO may advertise (FEATURE_BITS' values; empty while none is defined). */
  readonly featureBits: readonly number[];
  /** Type bytes no type uses: what a newer peer might send. */
  readonly unknownTypes: readonly number[];
}

const FIELD_BITS: Readonly<Record<FieldKey, 8 | 32 | 64>> = {
  flags: 8, code: 8, seq: 64, lba: 64, tag: 64, lockId: 32, count: 32, payloadLength: 32,
};
/** The header fields the rules judge, in the order they judge them. */
export const RULE_FIELDS: readonly FieldKey[] = ['flags', 'code', 'seq', 'lba', 'tag', 'lockId', 'count', 'payloadLength'];

export function slotMax(bits: 8 | 32 | 64): number {
  return bits === 8 ? 0xff : bits === 32 ? U32_MAX : U64_FIELD_MAX;
}

/** Values to probe a field with from below: its smallest allowed value is found among them, or by bisection. */
const LOW_PROBES = Array.from({ length: 300 }, (_, i) => i);

class CatalogError extends Error {}

function allowedWith(base: RawFields, key: FieldKey, v: number): boolean {
  return fieldsAllowed({ ...base, [key]: v });
}

/** The smallest value of `key` the rules allow, given the other fields of `raw` (all valid). */
function smallestAllowed(raw: RawFields, key: FieldKey, bits: 8 | 32 | 64): number {
  const ok = (v: number): boolean => allowedWith(raw, key, v);
  const v = LOW_PROBES.find((p) => p <= slotMax(bits) && ok(p)) ?? bisectFirst(ok, LOW_PROBES.length, slotMax(bits));
  if (v === undefined) throw new CatalogError(`${frameTypeName(raw.type)}.${fieldLabel(raw.type, key)}: no allowed value found`);
  return v;
}

function largestAllowed(raw: RawFields, key: FieldKey, min: number, bits: 8 | 32 | 64): number {
  let lo = min;
  let hi = slotMax(bits);
  while (lo < hi) {
    const mid = lo + Math.ceil((hi - lo) / 2); // (lo + hi) could pass 2^53 and round
    if (allowedWith(raw, key, mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * A valid header for `type`, field by field in the order the rules judge them: the rules name the
 * first field they object to, so once the fields before `key` are valid, a value of `key` passes
 * its own rule exactly when the objection (if any) is about a later field.
 */
function baseHeader(type: number): RawFields {
  const raw = { ...emptyRawFields(), type };
  for (const key of RULE_FIELDS) {
    const label = fieldLabel(type, key);
    const passes = (v: number): boolean => fieldProblem({ ...raw, [key]: v })?.field !== label;
    const probes = FIELD_BITS[key] === 8 ? Array.from({ length: 256 }, (_, i) => i) : LOW_PROBES;
    let v = probes.find(passes);
    if (v === undefined && FIELD_BITS[key] !== 8) v = bisectFirst(passes, LOW_PROBES.length, slotMax(FIELD_BITS[key]));
    if (v === undefined) throw new CatalogError(`${frameTypeName(type)}.${label}: no allowed value`);
    raw[key] = v;
  }
  if (!fieldsAllowed(raw)) throw new CatalogError(`${frameTypeName(type)}: the smallest allowed fields do not make a valid header`);
  return raw;
}

/** The first value in [lo, hi] for which `ok` holds, if `ok` holds from some point on; undefined if not even at hi. */
function bisectFirst(ok: (v: number) => boolean, lo: number, hi: number): number | undefined {
  if (!ok(hi)) return undefined;
  while (lo < hi) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (ok(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function fieldSpec(base: RawFields, key: FieldKey): FieldSpec {
  const bits = FIELD_BITS[key];
  const label = fieldLabel(base.type, key);
  if (bits === 8) {
    const members = Array.from({ length: 256 }, (_, i) => i).filter((v) => allowedWith(base, key, v));
    return { key, label, bits, min: Math.min(...members), max: Math.max(...members), members };
  }
  const min = smallestAllowed(base, key, bits);
  const max = largestAllowed(base, key, min, bits);
  for (const v of [min, min + Math.floor((max - min) / 2), max]) {
    if (!allowedWith(base, key, v)) throw new CatalogError(`${frameTypeName(base.type)}.${label}: allowed values are not one interval`);
  }
  return { key, label, bits, min, max, members: null };
}

function flagCombos(type: number, base: RawFields, members: readonly number[]): { mask: number; combos: number[] } {
  const mask = members.reduce((m, v) => m | v, 0);
  const combos: number[] = [];
  for (let sub = mask; ; sub = (sub - 1) & mask) {
    combos.push(sub);
    if (sub === 0) break;
  }
  for (const c of combos) {
    if (!allowedWith(base, 'flags', c)) throw new CatalogError(`${frameTypeName(type)}: flags 0x${c.toString(16)} combine allowed bits but are refused`);
  }
  return { mask, combos: combos.sort((a, b) => a - b) };
}

function typeSpec(type: number): TypeSpec {
  const base = baseHeader(type);
  const fields = Object.fromEntries(RULE_FIELDS.map((k) => [k, fieldSpec(base, k)])) as Record<FieldKey, FieldSpec>;
  const { mask, combos } = flagCombos(type, base, fields.flags.members!);
  return { type, name: frameTypeName(type), base, fields, flagsMask: mask, flagCombos: combos };
}

let built: ProtocolCatalog | null = null;

/** The catalog of the protocol this firmware speaks (built once, from the tables). */
export function protocolCatalog(): ProtocolCatalog {
  if (built !== null) return built;
  const typeBytes = Array.from({ length: 256 }, (_, i) => i);
  const types = typeBytes.filter((t) => isKnownFrameType(t)).map(typeSpec);
  const knownFlags = types.reduce((m, t) => m | t.flagsMask, 0);
  if ((knownFlags & ~KNOWN_FLAGS) !== 0) throw new CatalogError(`the rules allow flags 0x${knownFlags.toString(16)} beyond KNOWN_FLAGS`);
  built = {
    version: PROTOCOL_VERSION,
    types,
    knownFlags,
    featureBits: Object.values(FEATURE_BITS),
    unknownTypes: typeBytes.filter((t) => !isKnownFrameType(t)),
  };
  return built;
}
