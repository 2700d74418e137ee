import { HEADER_BYTES } from '../../firmware/protocol/frame.ts';
import type { SeededRandom } from '../../host/random.ts';
import { concatBytes as concat, randomBytes } from './bytes.ts';
import type { RawFrameSpec } from './raw-frame.ts';
import { between } from './values.ts';

/**
 * What a one-shot decode of an input must do: yield a frame, reject it (with one of these codes),
 * or either (null). Codes are the decoder's own `ML_ERR_*` strings.
 */
export type Expectation = { readonly frame: true } | { readonly reject: readonly string[] | 'any' } | null;

/** One generated input: a frame, a broken frame or garbage, as bytes (docs/fuzzing.md 2). */
export interface FuzzItem {
  readonly kind: string;
  readonly bytes: Uint8Array;
  readonly expect: Expectation;
  /** Valid frames: `TYPE flags 0x..`, for the coverage count. */
  readonly cover?: string;
  /** The header fields it was written with (valid and field-hostile frames). */
  readonly spec?: RawFrameSpec;
  /** A HELLO carrying payload beyond this version's fields: the encoder would not write those bytes back. */
  readonly extended?: boolean;
}

/**
 * A valid frame (from `valid`, of either protocol) damaged at the byte level, as a line or a buggy
 * sender damages it: cut short, bits flipped, bytes overwritten, inserted or deleted, or the head
 * of one frame spliced onto the tail of another. None of it fixes the CRCs.
 */
export function damaged(rng: SeededRandom, valid: () => Uint8Array): FuzzItem {
  const r = rng.int(100);
  if (r < 30) return truncated(rng, valid());
  if (r < 70) return bitFlipped(rng, valid());
  if (r < 85) return edited(rng, valid());
  const a = valid();
  const b = valid();
  return { kind: 'splice', bytes: concat([a.subarray(0, rng.int(a.length)), b.subarray(rng.int(b.length))]), expect: null };
}

function truncated(rng: SeededRandom, b: Uint8Array): FuzzItem {
  return { kind: 'truncated', bytes: b.subarray(0, between(rng, 1, b.length - 1)), expect: { reject: 'any' } };
}

/** One flipped bit is always caught by a CRC32C; several may cancel out, so then anything goes. */
function bitFlipped(rng: SeededRandom, b: Uint8Array): FuzzItem {
  const bytes = b.slice();
  const flips = rng.chance(1, 2) ? 1 : between(rng, 2, 8);
  for (let i = 0; i < flips; i++) {
    const at = rng.chance(1, 2) ? rng.int(Math.min(bytes.length, HEADER_BYTES)) : rng.int(bytes.length);
    bytes[at]! ^= 1 << rng.int(8);
  }
  return { kind: flips === 1 ? 'bitflip:1' : 'bitflip:n', bytes, expect: flips === 1 ? { reject: 'any' } : null };
}

function edited(rng: SeededRandom, b: Uint8Array): FuzzItem {
  const at = rng.int(b.length);
  const r = rng.int(3);
  if (r === 0) {
    const out = b.slice();
    for (let i = 0, n = between(rng, 1, 4); i < n; i++) out[(at + i) % out.length] = rng.int(256);
    return { kind: 'edit:overwrite', bytes: out, expect: null };
  }
  if (r === 1) return { kind: 'edit:insert', bytes: concat([b.subarray(0, at), randomBytes(rng, between(rng, 1, 16)), b.subarray(at)]), expect: null };
  const end = Math.min(b.length, at + between(rng, 1, 64));
  return { kind: 'edit:delete', bytes: concat([b.subarray(0, at), b.subarray(end)]), expect: null };
}

/** Bytes that are no frame: random, dense with the magic's bytes, or a lone first magic byte. */
export function garbage(rng: SeededRandom): FuzzItem {
  const r = rng.int(3);
  if (r === 0) return { kind: 'garbage:random', bytes: randomBytes(rng, between(rng, 1, 300)), expect: null };
  if (r === 1) {
    const b = randomBytes(rng, between(rng, 1, 200));
    for (let i = 0; i < b.length; i++) if (rng.chance(1, 3)) b[i] = rng.chance(1, 2) ? 0x4d : 0x4c;
    return { kind: 'garbage:magic', bytes: b, expect: null };
  }
  return { kind: 'garbage:lone-magic', bytes: Uint8Array.of(0x4d), expect: null };
}
