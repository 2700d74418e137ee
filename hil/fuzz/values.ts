import { FrameType, U64_FIELD_MAX } from '../../firmware/protocol/frame.ts';
import type { SeededRandom } from '../../host/random.ts';
import { pick } from './bytes.ts';
import { slotMax, type FieldSpec, type TypeSpec } from './catalog.ts';
import type { U64 } from './raw-frame.ts';

/**
 * Values worth trying in a field, beyond its edges: what the live peer is using right now (its
 * sessions, the sequence numbers around the one expected, the lock ids in use), so that generated
 * frames reach the controller's handling instead of all being stale (docs/fuzzing.md 2).
 */
export type HintKind = 'session' | 'streamSeq' | 'responseSeq' | 'counter' | 'lockId' | 'lba' | 'count' | 'lun';
export type Hints = Partial<Record<HintKind, readonly number[]>>;

/** Edges of any numeric field: around every power of two a decoder might get wrong. */
const EDGES = [
  2, 3, 7, 8, 255, 256, 0xffff, 0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x1_0000_0000, 2 ** 48, U64_FIELD_MAX - 1, U64_FIELD_MAX,
];

const STREAM_TYPES: ReadonlySet<number> = new Set([FrameType.Lock, FrameType.Write, FrameType.Unlock]);

/** Which hints a field of a type takes, by the name the frame object gives it. */
export function hintKindOf(t: TypeSpec, label: string, rng: SeededRandom): HintKind | null {
  switch (label) {
    case 'sessionId':
      return 'session';
    case 'counter':
      return 'counter';
    case 'confirmedSeq':
      return 'responseSeq';
    case 'lockId':
      return 'lockId';
    case 'lba':
      return 'lba';
    case 'count':
      return 'count';
    case 'seq':
      // A type the generator has never heard of may be either; frames of the stream carry its numbers.
      if (t.type in FrameType) return STREAM_TYPES.has(t.type) ? 'streamSeq' : 'responseSeq';
      return rng.chance(1, 2) ? 'streamSeq' : 'responseSeq';
    default:
      return null;
  }
}

/** Uniform in [min, max] (both at most 2^53-1). */
export function between(rng: SeededRandom, min: number, max: number): number {
  return min + rng.int(Math.min(max - min + 1, U64_FIELD_MAX));
}

/** Per field: its edges within its range, and the u8 values it forbids (worked out once). */
const edgesOf = new WeakMap<FieldSpec, readonly number[]>();
const outsideOf = new WeakMap<FieldSpec, readonly number[]>();

function fieldEdges(f: FieldSpec): readonly number[] {
  let edges = edgesOf.get(f);
  if (edges === undefined) {
    edges = [...new Set([f.min, f.min + 1, f.max, f.max - 1, ...EDGES])].filter((v) => v >= f.min && v <= f.max);
    edgesOf.set(f, edges);
  }
  return edges;
}

/** A value the field allows: a hint, an edge or anything in range. */
export function allowedValue(rng: SeededRandom, f: FieldSpec, hints: readonly number[]): number {
  if (f.members !== null) return pick(rng, f.members);
  const r = rng.int(100);
  if (r < 45 && hints.length > 0) {
    const h = pick(rng, hints);
    if (h >= f.min && h <= f.max) return h;
  }
  if (r < 75) return pick(rng, fieldEdges(f));
  return between(rng, f.min, f.max);
}

/**
 * A value the field does not allow, or null if every value its slot holds is allowed. A u64 slot
 * holds more than a number can: past 2^53-1 the value is a bigint.
 */
export function forbiddenValue(rng: SeededRandom, f: FieldSpec): U64 | null {
  if (f.members !== null) {
    let outside = outsideOf.get(f);
    if (outside === undefined) {
      outside = Array.from({ length: 256 }, (_, i) => i).filter((v) => !f.members!.includes(v));
      outsideOf.set(f, outside);
    }
    return outside.length === 0 ? null : pick(rng, outside);
  }
  const options: U64[] = [];
  if (f.min > 0) options.push(0, f.min - 1, rng.int(f.min));
  if (f.max < slotMax(f.bits)) options.push(f.max + 1, between(rng, f.max + 1, slotMax(f.bits)), slotMax(f.bits));
  if (f.bits === 64) options.push(2n ** 53n, 2n ** 53n + BigInt(rng.uint32()), 2n ** 63n, 2n ** 64n - 1n);
  return options.length === 0 ? null : pick(rng, options);
}

/** Hints for a lun: mostly LUNs that exist, sometimes ones that do not. */
export function lunValue(rng: SeededRandom, hints: Hints): number {
  const luns = hints.lun ?? [0];
  return rng.chance(9, 10) ? pick(rng, luns) : pick(rng, [0, 1, 2, 3, 255, 0xffff, rng.int(0x1_0000)]);
}
