import { assert } from '../firmware/errors.ts';
import type { Random } from '../firmware/ports/random.ts';

/**
 * A seeded PRNG implementing the Random port: sfc32 (Chris Doty-Humphrey's small fast counting
 * generator, period >= 2^32, passes PractRand), seeded through splitmix32 so that neighbouring
 * seeds give unrelated streams. Integer-only: the same seed draws the same numbers on every
 * platform.
 *
 * Seeds are integers in [0, 2^53). `fork(label)` derives a child from the *seed* and the label,
 * not from the current state, so a component's stream never depends on how many numbers another
 * component drew first.
 */
export class SeededRandom implements Random {
  readonly seed: number;
  private readonly salt: number;
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, salt = 0) {
    assert(Number.isSafeInteger(seed) && seed >= 0, `seed must be an integer in [0, 2^53), got ${seed}`);
    this.seed = seed;
    this.salt = salt >>> 0;
    let s = mix32((seed % 0x100000000) ^ mix32(Math.floor(seed / 0x100000000) ^ 0x9e3779b9) ^ this.salt);
    const next = (): number => (s = (s + 0x9e3779b9) | 0, mix32(s));
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, bound) for integer bounds up to 2^53, without modulo bias. */
  int(bound: number): number {
    assert(Number.isSafeInteger(bound) && bound >= 1, `int(bound) needs an integer bound >= 1, got ${bound}`);
    if (bound <= 0x100000000) {
      // Rejection sampling: draw again when the draw falls in the incomplete last block.
      const limit = 0x100000000 - (0x100000000 % bound);
      for (;;) {
        const x = this.uint32();
        if (x < limit) return x % bound;
      }
    }
    const span = 2 ** 53;
    const limit = span - (span % bound);
    for (;;) {
      const x = (this.uint32() >>> 11) * 0x100000000 + this.uint32();
      if (x < limit) return x % bound;
    }
  }

  chance(numerator: number, denominator: number): boolean {
    assert(
      Number.isSafeInteger(numerator) && Number.isSafeInteger(denominator) && denominator >= 1 && numerator >= 0 && numerator <= denominator,
      `chance(${numerator}, ${denominator}) needs integers with 0 <= numerator <= denominator`,
    );
    if (numerator === 0) return false;
    if (numerator === denominator) return true;
    return this.int(denominator) < numerator;
  }

  fork(label: string): SeededRandom {
    return new SeededRandom(this.seed, mix32(this.salt ^ fnv1a(label)));
  }
}

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
