import {
  BATCH_BYTES_MAX_MIN, FEATURE_BITS, FRAME_OVERHEAD_BYTES, FrameFlag, FrameType, HEARTBEAT_PAYLOAD_BYTES, HEARTBEAT_TAGS_PAYLOAD_BYTES, HELLO_BATCH_PAYLOAD_BYTES,
  HELLO_PAYLOAD_BYTES, HELLO_TAGS_PAYLOAD_BYTES, PROTOCOL_VERSION, U64_FIELD_MAX,
} from '../../firmware/protocol/frame.ts';
import {
  HEARTBEAT_OFF_PEER_SESSION, HEARTBEAT_OFF_PEER_STREAM, HEARTBEAT_OFF_STREAM, HEARTBEAT_OFF_TOKENS, HEARTBEAT_OFF_TOKENS_BACK, HELLO_OFF_CONNECTION,
  HELLO_OFF_CONNECTIONS, HELLO_OFF_FEATURES, HELLO_OFF_LOCKS_WINDOW, HELLO_OFF_BATCH_BYTES_MAX, HELLO_OFF_PEER_SESSION, HELLO_OFF_PEER_STREAM,
  HELLO_OFF_REQUIRED, HELLO_OFF_STREAM, emptyRawFields, writeU16, writeU32, type RawFields,
} from '../../firmware/protocol/layout.ts';
import { subEntryBytes, UNLOCK_ENTRY_BYTES, writeSubEntry } from '../../firmware/protocol/batch.ts';
import { writeResyncEntries } from '../../firmware/protocol/resync-entries.ts';
import { RESYNC_ENTRY_BYTES } from '../../firmware/protocol/frame.ts';
import { fieldsAllowed, payloadProblem } from '../../firmware/protocol/rules.ts';
import type { SeededRandom } from '../../host/random.ts';
import { pick, randomBytes, RANDOM_BYTES_MAX } from './bytes.ts';
import { damaged, garbage, type Expectation, type FuzzItem } from './damage.ts';
import { protocolCatalog, RULE_FIELDS, type ProtocolCatalog, type TypeSpec } from './catalog.ts';
import { writeRawFrame, writeU64Any, type RawFrameSpec, type U64 } from './raw-frame.ts';
import { allowedValue, between, forbiddenValue, hintKindOf, lunValue, type Hints } from './values.ts';

export type { Expectation, FuzzItem } from './damage.ts';

export interface FrameGenOptions {
  /** Largest payload to generate for WRITE-like frames (the decoder's payloadBytesMax, usually). */
  dataBytesMax: number;
  /** The decoder's payloadBytesMax, for lengths "at and past the maximum". */
  payloadBytesMax: number;
  sectorSize: number;
  hints?: Hints;
  /**
   * Leave out what takes a live link down (docs/fuzzing.md 3): frames of another version, sessions
   * not among the hints, HELLOs requiring features. A controller fuzz asks for those on purpose,
   * now and then; drawn at the decoder fuzz's rate they would keep the link down, and every later
   * byte would land on a closed connection.
   */
  tame?: boolean;
}

/**
 * Header fields whose allowed values depend on the frame's `seq` (feature `tags`, firmware/protocol/
 * rules.ts): the catalog's one-interval model reads them at the base header (seq 0 or 1), where
 * only 0 passes, so they are drawn here, against the drawn seq. `top(seq)`: the largest allowed.
 */
const TOKEN_FIELDS: Readonly<Partial<Record<number, { key: 'tag' | 'count'; top: (seq: number) => number }>>> = {
  [FrameType.Ack]: { key: 'tag', top: (seq) => seq },
  [FrameType.Write]: { key: 'count', top: (seq) => Math.min(seq - 1, 0xffff_ffff) },
  [FrameType.Batch]: { key: 'tag', top: (seq) => seq - 1 },
};

const REJECT_ANY: Expectation = { reject: 'any' };
const FIELD: Expectation = { reject: ['ML_ERR_FRAME_FIELD'] };

/**
 * The mirror protocol's frame generator. Valid frames come from the catalog (every known type, every
 * flag combination, field values at the edges of what the rules allow or hinted by the live peer);
 * everything else is built from a valid frame by breaking one thing: a field, the length, the
 * version, the type, a bit, a byte, a cut.
 */
export class MirrorFrameGen {
  readonly catalog: ProtocolCatalog = protocolCatalog();
  hints: Hints;

  /** The types a decoder with this payloadBytesMax can accept at all (a WRITE needs room for a byte). */
  readonly validTypes: readonly TypeSpec[];

  constructor(private readonly rng: SeededRandom, private readonly opts: FrameGenOptions) {
    this.hints = opts.hints ?? {};
    // A BATCH holds at least one whole sub-entry (an UNLOCK's is the smallest): below that, none is valid.
    this.validTypes = this.catalog.types.filter((t) => t.fields.payloadLength.min <= this.acceptedBytes(t)
      && (t.type !== FrameType.Batch || this.acceptedBytes(t) >= UNLOCK_ENTRY_BYTES));
  }

  /**
   * The longest payload of type `t` the decoder accepts: payloadBytesMax, except that HELLO's and
   * HEARTBEAT's small fixed payloads are let through whatever it is (docs/protocol.md).
   */
  acceptedBytes(t: TypeSpec): number {
    const control = t.type === FrameType.Hello ? 256 : t.type === FrameType.Heartbeat ? HEARTBEAT_TAGS_PAYLOAD_BYTES : 0;
    return Math.min(t.fields.payloadLength.max, Math.max(this.opts.payloadBytesMax, control));
  }

  /** A valid frame of a type drawn from the catalog. */
  valid(type?: TypeSpec): FuzzItem {
    const t = type ?? pick(this.rng, this.validTypes);
    const { spec, extended } = this.validSpec(t);
    return { kind: 'valid', bytes: writeRawFrame(spec), expect: { frame: true }, cover: coverKey(t, spec.flags), spec, extended };
  }

  /** Header fields and payload a decoder must accept. */
  validSpec(t: TypeSpec): { spec: RawFrameSpec; extended: boolean } {
    for (let attempt = 0; ; attempt++) {
      const spec = this.drawSpec(t);
      this.drawTokens(spec);
      const { payload, extended } = t.type === FrameType.Batch ? this.batchPayload(spec, t) : t.type === FrameType.ResyncData ? this.tablePayload(spec, t) : this.payload(t, spec);
      spec.payload = payload;
      const raw = { ...spec, payloadLength: payload.length } as unknown as Parameters<typeof fieldsAllowed>[0];
      if (fieldsAllowed(raw)) return { spec, extended };
      // Fields allowed one by one can still break a rule about two (a LOCK's lba + count); draw again,
      // and fall back to the type's base header, which is valid by construction.
      if (attempt >= 4) return { spec: { ...this.drawSpec(t), ...pickBase(t), payload }, extended };
    }
  }

  private drawSpec(t: TypeSpec): RawFrameSpec {
    const spec: RawFrameSpec = {
      type: t.type, flags: pick(this.rng, t.flagCombos), code: 0, lun: lunValue(this.rng, this.hints),
      seq: 0, lba: 0, tag: 0, lockId: 0, count: 0, payload: new Uint8Array(0),
    };
    for (const key of RULE_FIELDS) {
      if (key === 'flags' || key === 'payloadLength') continue;
      const f = t.fields[key];
      const kind = hintKindOf(t, f.label, this.rng);
      const hints = kind === null ? [] : (this.hints[kind] ?? []);
      const value = kind === 'session' && this.opts.tame && hints.length > 0 ? pick(this.rng, hints) : allowedValue(this.rng, f, hints);
      (spec as unknown as Record<string, number>)[key] = value;
    }
    return spec;
  }

  /** Tokens (feature `tags`) where the frame's type carries them: none, the edge, or anything allowed. */
  private drawTokens(spec: RawFrameSpec): void {
    const tokens = TOKEN_FIELDS[spec.type];
    if (tokens === undefined || this.rng.chance(1, 3)) return;
    const top = tokens.top(Number(spec.seq));
    if (top < 1) return;
    spec[tokens.key] = pick(this.rng, [top, 1, between(this.rng, 1, top)]);
  }

  private payload(t: TypeSpec, spec: RawFrameSpec): { payload: Uint8Array; extended: boolean } {
    const f = t.fields.payloadLength;
    if (f.max === 0) return { payload: new Uint8Array(0), extended: false };
    if (t.type === FrameType.Hello) return this.helloPayload();
    if (t.type === FrameType.Heartbeat) return { payload: this.heartbeatPayload(this.session(), Number(spec.tag)), extended: false };
    const max = Math.max(f.min, Math.min(this.acceptedBytes(t), this.opts.dataBytesMax));
    return { payload: randomBytes(this.rng, this.dataLength(f.min, max)), extended: false };
  }

  /**
   * A BATCH's payload that a decoder must accept: 1 to 8 sub-entries (the header's count is set to
   * match), each packed from a valid LOCK, WRITE or UNLOCK drawn as a frame of its own and numbered
   * in turn from the BATCH's seq, within what the decoder accepts (docs/implied-locks.md).
   */
  private batchPayload(spec: RawFrameSpec, t: TypeSpec): { payload: Uint8Array; extended: boolean } {
    const kinds = this.validTypes.filter((v) => v.type === FrameType.Lock || v.type === FrameType.Write || v.type === FrameType.Unlock);
    const room = this.acceptedBytes(t);
    const entries: { raw: RawFields; data: Uint8Array | null }[] = [];
    let bytes = 0;
    const wanted = between(this.rng, 1, 8);
    for (let i = 0; i < wanted * 4 && entries.length < wanted; i++) {
      const k = pick(this.rng, kinds);
      const e = this.validSpec(k).spec;
      const data = k.type === FrameType.Write ? e.payload : null;
      const size = subEntryBytes(k.type, data?.length ?? 0);
      if (bytes + size > room) continue;
      bytes += size;
      entries.push({
        raw: { type: k.type, flags: e.flags & ~FrameFlag.Retransmit, code: e.code, lun: spec.lun, seq: 0, lba: Number(e.lba), tag: Number(e.tag), lockId: e.lockId, count: e.count, payloadLength: data?.length ?? 0 },
        data,
      });
    }
    if (entries.length === 0) {
      // Nothing fitted (a tiny payload maximum): one UNLOCK always does.
      bytes = subEntryBytes(FrameType.Unlock, 0);
      entries.push({ raw: { ...emptyRawFields(), type: FrameType.Unlock, lockId: 1 }, data: null });
    }
    spec.count = entries.length;
    // Every entry is numbered exactly: the last one's seq must stay within 2^53-1 (the edge is kept).
    if (BigInt(spec.seq) + BigInt(entries.length) - 1n > BigInt(Number.MAX_SAFE_INTEGER)) spec.seq = Number.MAX_SAFE_INTEGER - entries.length + 1;
    const out = new Uint8Array(bytes);
    let at = 0;
    for (const e of entries) at = writeSubEntry(out, at, e.raw, e.data);
    return { payload: out, extended: false };
  }

  /**
   * A RESYNC_DATA's payload that a decoder must accept (feature `resync`): 0 to 8 tag table
   * entries (now and then as many as fit), the header's count set to match and its first and total
   * moved so that the entries lie within the table (docs/protocol.md).
   */
  private tablePayload(spec: RawFrameSpec, t: TypeSpec): { payload: Uint8Array; extended: boolean } {
    const fit = Math.floor(this.acceptedBytes(t) / RESYNC_ENTRY_BYTES);
    const n = Math.min(fit, this.rng.chance(1, 10) ? fit : between(this.rng, 0, 8));
    const max = Number.MAX_SAFE_INTEGER;
    const entries = Array.from({ length: n }, () => {
      const count = pick(this.rng, [1, 8, 0xffff_ffff, between(this.rng, 1, 0xffff_ffff)]);
      const lba = pick(this.rng, [0, ...(this.hints.lba ?? []), max, between(this.rng, 0, max)]);
      return { tag: pick(this.rng, [1, max, between(this.rng, 1, max)]), lba: Math.min(lba, max - count), count };
    });
    spec.count = n;
    const first = Math.min(Number(spec.lba), max - n);
    spec.lba = first;
    spec.tag = first + n + Math.min(Number(spec.tag), max - first - n);
    const out = new Uint8Array(n * RESYNC_ENTRY_BYTES);
    writeResyncEntries(out, 0, entries);
    return { payload: out, extended: false };
  }

  /** Mostly whole sectors, sometimes any length, sometimes exactly the largest. */
  private dataLength(min: number, max: number): number {
    const ss = this.opts.sectorSize;
    const r = this.rng.int(100);
    if (r < 5) return max;
    if (r < 75 && max >= ss) return ss * between(this.rng, 1, Math.min(Math.floor(max / ss), 16));
    if (r < 85 && max >= ss) return ss * between(this.rng, 1, Math.floor(max / ss));
    return between(this.rng, min, Math.min(max, 4096));
  }

  private session(): U64 {
    const sessions = this.hints.session ?? [];
    const r = this.rng.int(10);
    if (r < 6 && sessions.length > 0) return pick(this.rng, sessions);
    return pick(this.rng, [0, 1, U64_FIELD_MAX, between(this.rng, 1, U64_FIELD_MAX)]);
  }

  /** HELLO's payload: the fields this version defines, and sometimes bytes of features it does not. */
  helloPayload(bad?: 'locksWindow' | 'requiredFeatures' | 'connections' | 'connection' | 'peerSession'): { payload: Uint8Array; extended: boolean } {
    const rng = this.rng;
    const bits = this.catalog.featureBits;
    let features = rng.chance(1, 2) ? 0 : rng.chance(1, 2) && bits.length > 0 ? pick(rng, bits) : rng.uint32();
    // A HELLO offering batches carries the field that says how large a BATCH it takes; one
    // offering tags its stream numbers (docs/tag-tables.md, "Suspension").
    const batch = (features & FEATURE_BITS.batch) !== 0;
    const tags = (features & FEATURE_BITS.tags) !== 0;
    const base = tags ? HELLO_TAGS_PAYLOAD_BYTES : batch ? HELLO_BATCH_PAYLOAD_BYTES : HELLO_PAYLOAD_BYTES;
    const extended = rng.chance(1, 5);
    const p = extended ? randomBytes(rng, between(rng, base + 1, 256)) : new Uint8Array(base);
    if (batch) writeU32(p, HELLO_OFF_BATCH_BYTES_MAX, pick(rng, [BATCH_BYTES_MAX_MIN, 65_536, 0xffff_ffff, between(rng, BATCH_BYTES_MAX_MIN, 0xffff_ffff)]));
    if (tags) {
      writeU32(p, HELLO_OFF_STREAM, pick(rng, [0, 1, 1, 2, 0xffff_ffff, rng.uint32()]));
      writeU32(p, HELLO_OFF_PEER_STREAM, pick(rng, [0, 1, 1, 2, 0xffff_ffff, rng.uint32()]));
    }
    if (bad === 'requiredFeatures' && features === 0xffff_ffff) features = 0x7fff_ffff; // leave a bit to require
    const required = this.opts.tame || rng.chance(2, 3) ? 0 : (features & rng.uint32()) >>> 0;
    const connections = pick(rng, [1, 1, 2, 3, 64, 0xffff, between(rng, 1, 0xffff)]);
    writeU32(p, HELLO_OFF_LOCKS_WINDOW, bad === 'locksWindow' ? 0 : pick(rng, [1, 2, 64, 65_536, 0xffff_ffff, between(rng, 1, 0xffff_ffff)]));
    writeU32(p, HELLO_OFF_FEATURES, features);
    writeU32(p, HELLO_OFF_REQUIRED, bad === 'requiredFeatures' ? (features | notIn(rng, features)) >>> 0 : required);
    writeU16(p, HELLO_OFF_CONNECTIONS, bad === 'connections' ? 0 : connections);
    writeU16(p, HELLO_OFF_CONNECTION, bad === 'connection' ? between(rng, connections, 0xffff) : rng.int(connections));
    writeU64Any(p, HELLO_OFF_PEER_SESSION, bad === 'peerSession' ? 2n ** 53n + BigInt(rng.int(1000)) : this.session());
    if (bad === undefined && payloadProblem(FrameType.Hello, p) !== null) throw new Error('generator: a HELLO payload it meant to be valid is not');
    return { payload: p, extended };
  }

  /**
   * HEARTBEAT's payload: the peerSession, and now and then the `tags` fields (tokens at most
   * `confirmedSeq`, as the rules want; `badTokens` puts them past it).
   */
  heartbeatPayload(peerSession: U64, confirmedSeq: number, badTokens = false): Uint8Array {
    const tags = badTokens || this.rng.chance(1, 2);
    const p = new Uint8Array(tags ? HEARTBEAT_TAGS_PAYLOAD_BYTES : HEARTBEAT_PAYLOAD_BYTES);
    writeU64Any(p, HEARTBEAT_OFF_PEER_SESSION, peerSession);
    if (!tags) return p;
    const seq = Math.max(0, Math.min(confirmedSeq, U64_FIELD_MAX));
    const tokens = badTokens ? seq + 1 + this.rng.int(1000) : pick(this.rng, [0, seq, this.rng.int(Math.min(seq, 2 ** 31) + 1)]);
    writeU64Any(p, HEARTBEAT_OFF_TOKENS, BigInt(tokens));
    writeU64Any(p, HEARTBEAT_OFF_TOKENS_BACK, pick(this.rng, [0, 1, U64_FIELD_MAX, between(this.rng, 1, U64_FIELD_MAX)]));
    writeU32(p, HEARTBEAT_OFF_STREAM, pick(this.rng, [0, 1, 2, 0xffff_ffff, this.rng.uint32()]));
    writeU32(p, HEARTBEAT_OFF_PEER_STREAM, pick(this.rng, [0, 1, 2, 0xffff_ffff, this.rng.uint32()]));
    return p;
  }

  // ---- broken frames -------------------------------------------------------------------------

  /** A frame with sound CRCs and one field its type does not allow. */
  fieldHostile(): FuzzItem {
    const t = pick(this.rng, this.validTypes);
    const { spec } = this.validSpec(t);
    if (t.type === FrameType.Hello && this.rng.chance(1, 3)) {
      const bad = pick(this.rng, ['locksWindow', 'requiredFeatures', 'connections', 'connection', 'peerSession'] as const);
      spec.payload = this.helloPayload(bad).payload;
      return { kind: `field:HELLO.${bad}`, bytes: writeRawFrame(spec), expect: FIELD, spec };
    }
    if (t.type === FrameType.Heartbeat && this.rng.chance(1, 3)) {
      if (this.rng.chance(1, 2) && Number(spec.tag) < U64_FIELD_MAX - 1000) {
        spec.payload = this.heartbeatPayload(this.session(), Number(spec.tag), true);
        return { kind: 'field:HEARTBEAT.tokens', bytes: writeRawFrame(spec), expect: FIELD, spec };
      }
      spec.payload = this.heartbeatPayload(2n ** 53n + BigInt(this.rng.int(1 << 20)), Number(spec.tag));
      return { kind: 'field:HEARTBEAT.peerSession', bytes: writeRawFrame(spec), expect: FIELD, spec };
    }
    const key = pick(this.rng, RULE_FIELDS);
    const f = t.fields[key];
    const tokens = TOKEN_FIELDS[t.type];
    if (tokens?.key === key) return this.badTokens(t, spec, tokens.key, tokens.top(Number(spec.seq)));
    const bad = forbiddenValue(this.rng, f);
    if (bad === null) return this.valid(t);
    if (key === 'payloadLength') return this.badPayloadLength(t, spec, Number(bad));
    (spec as unknown as Record<string, U64>)[key] = bad;
    return { kind: `field:${t.name}.${f.label}`, bytes: writeRawFrame(spec), expect: FIELD, spec };
  }

  /** Tokens past what the frame's seq allows (an ACK's beyond what it confirms, a return reaching past entry 1). */
  private badTokens(t: TypeSpec, spec: RawFrameSpec, key: 'tag' | 'count', top: number): FuzzItem {
    const slot = key === 'count' ? 0xffff_ffff : U64_FIELD_MAX;
    if (top >= slot) return this.valid(t);
    spec[key] = pick(this.rng, [top + 1, slot, between(this.rng, top + 1, slot)]);
    return { kind: `field:${t.name}.${t.fields[key].label}`, bytes: writeRawFrame(spec), expect: FIELD, spec };
  }

  /** A length its type does not allow, carried in full when that is affordable. */
  private badPayloadLength(t: TypeSpec, spec: RawFrameSpec, length: number): FuzzItem {
    const affordable = length <= 64 * 1024;
    spec.payload = affordable ? randomBytes(this.rng, length) : spec.payload;
    if (!affordable) spec.payloadLength = length;
    // Beyond what the decoder takes, or what any frame of the type carries: judged from the header.
    const tooLarge = length > this.acceptedBytes(t);
    const expect: Expectation = tooLarge ? { reject: ['ML_ERR_FRAME_TOO_LARGE'] } : affordable ? FIELD : REJECT_ANY;
    return { kind: `field:${t.name}.payloadLength`, bytes: writeRawFrame(spec), expect, spec };
  }

  /**
   * A header (sound CRC) whose payloadLength disagrees with the bytes carried: at and past the
   * maximum, zero, 2^31, 2^32-1, or anything.
   */
  hostileLength(): FuzzItem {
    const t = pick(this.rng, this.validTypes);
    const { spec } = this.validSpec(t);
    const max = this.opts.payloadBytesMax;
    const declared = pick(this.rng, [max, max + 1, max + 2, 2 * max + 1, 0, 1, 0x8000_0000, 0xffff_ffff, 0xffff_ffff - FRAME_OVERHEAD_BYTES, this.rng.uint32()]);
    if (declared === spec.payload.length) return this.valid(t);
    spec.payloadLength = declared;
    return { kind: `length:${declared === 0xffff_ffff ? '2^32-1' : declared > max ? 'past-max' : declared === max ? 'at-max' : 'other'}`, bytes: writeRawFrame(spec), expect: REJECT_ANY, spec };
  }

  /** A WRITE-like frame one byte past the maximum, carried in full: dropped whole, as it streams past. */
  oversized(): FuzzItem {
    const data = this.catalog.types.filter((t) => t.fields.payloadLength.max > this.opts.payloadBytesMax && t.fields.payloadLength.max > 256);
    const size = this.opts.payloadBytesMax + 1;
    if (data.length === 0 || size > RANDOM_BYTES_MAX) return this.hostileLength();
    const t = pick(this.rng, data);
    const { spec } = this.validSpec(t);
    spec.payload = randomBytes(this.rng, size);
    return { kind: 'length:past-max-carried', bytes: writeRawFrame(spec), expect: { reject: ['ML_ERR_FRAME_TOO_LARGE'] }, spec };
  }

  /** A sound frame of another protocol version: a peer running other firmware. */
  foreignVersion(): FuzzItem {
    const item = this.rng.chance(1, 4) ? this.hostileLength() : this.valid();
    const version = pick(this.rng, [0, 1, PROTOCOL_VERSION + 1, 0x7f, 0xff, between(this.rng, PROTOCOL_VERSION + 1, 0xff)]);
    const spec = { ...item.spec!, version };
    return { kind: 'version', bytes: writeRawFrame(spec), expect: { reject: ['ML_ERR_FRAME_VERSION'] }, spec };
  }

  /** A sound frame of a type this version does not define (a newer peer's, or another protocol's). */
  unknownType(): FuzzItem {
    const { spec } = this.validSpec(pick(this.rng, this.validTypes));
    spec.type = pick(this.rng, this.catalog.unknownTypes);
    if (this.rng.chance(1, 3)) spec.payloadLength = this.rng.uint32();
    return { kind: 'type', bytes: writeRawFrame(spec), expect: { reject: ['ML_ERR_FRAME_TYPE'] }, spec };
  }

  /** Any item, by the mix docs/fuzzing.md 2 gives. */
  item(): FuzzItem {
    const r = this.rng.int(100);
    if (r < 40) return this.valid();
    if (r < 52) return this.fieldHostile();
    if (r < 58) return this.hostileLength();
    if (r < 59) return this.oversized();
    if (r < 63) return this.opts.tame ? this.valid() : this.foreignVersion();
    if (r < 66) return this.unknownType();
    if (r < 91) return damaged(this.rng, () => this.valid().bytes);
    if (r < 95) return garbage(this.rng);
    const { spec } = this.validSpec(pick(this.rng, this.validTypes));
    return { kind: 'garbage:header-crc', bytes: writeRawFrame({ ...spec, goodHeaderCrc: false }), expect: { reject: 'any' } };
  }
}

export function coverKey(t: TypeSpec, flags: number): string {
  return `${t.name} flags 0x${flags.toString(16).padStart(2, '0')}`;
}

function pickBase(t: TypeSpec): Partial<RawFrameSpec> {
  const b = t.base;
  return { flags: b.flags, code: b.code, seq: b.seq, lba: b.lba, tag: b.tag, lockId: b.lockId, count: b.count };
}

/** A bit that is not set in `set` (a u32), or bit 31 if every bit is. */
function notIn(rng: SeededRandom, set: number): number {
  const free = Array.from({ length: 32 }, (_, i) => 2 ** i).filter((bit) => Math.floor(set / bit) % 2 === 0);
  return free.length === 0 ? 0x8000_0000 : pick(rng, free);
}

