import type { SeededRandom } from '../../host/random.ts';

/**
 * Random bytes for payloads and garbage, cheaply: slices of one pool drawn once from a fixed seed.
 * Which slice a frame gets comes from the case's own random stream, so every case stays a pure
 * function of (seed, case index); drawing fresh bytes per frame would cost more than decoding them.
 */
const POOL_BYTES = 2 * 1024 * 1024 + 4096;
let pool: Uint8Array | null = null;

function bytePool(): Uint8Array {
  if (pool !== null) return pool;
  const p = new Uint8Array(POOL_BYTES);
  // splitmix32 from a fixed seed: the same pool on every machine.
  let s = 0x6d6c_667a;
  for (let i = 0; i < p.length; i += 4) {
    s = (s + 0x9e37_79b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85eb_ca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2_ae35);
    z ^= z >>> 16;
    p[i] = z;
    p[i + 1] = z >>> 8;
    p[i + 2] = z >>> 16;
    p[i + 3] = z >>> 24;
  }
  pool = p;
  return p;
}

/** Largest run of random bytes one call gives. */
export const RANDOM_BYTES_MAX = 2 * 1024 * 1024;

/** `n` random bytes (a fresh copy: the caller may change them). */
export function randomBytes(rng: SeededRandom, n: number): Uint8Array {
  if (n === 0) return new Uint8Array(0);
  if (n > RANDOM_BYTES_MAX) throw new RangeError(`randomBytes: at most ${RANDOM_BYTES_MAX} bytes, asked for ${n}`);
  const p = bytePool();
  const at = rng.int(POOL_BYTES - n + 1);
  return p.slice(at, at + n);
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Picks one element of a non-empty list. */
export function pick<T>(rng: SeededRandom, list: readonly T[]): T {
  return list[rng.int(list.length)]!;
}

/** Picks by weight: `[[weight, value], ...]`, integer weights. */
export function weighted<T>(rng: SeededRandom, table: readonly (readonly [number, T])[]): T {
  let total = 0;
  for (const [w] of table) total += w;
  let r = rng.int(total);
  for (const [w, v] of table) {
    if (r < w) return v;
    r -= w;
  }
  return table[table.length - 1]![1];
}
