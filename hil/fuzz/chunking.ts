import { HEADER_BYTES } from '../../firmware/protocol/frame.ts';
import type { SeededRandom } from '../../host/random.ts';
import { pick } from './bytes.ts';
import { between } from './values.ts';

/**
 * How a byte stream reaches a decoder (docs/fuzzing.md 2): in one piece (everything coalesced), cut
 * at random points, cut next to the inputs' own boundaries (where a split header, a lone magic
 * byte or a split CRC hides), or a byte at a time.
 */
export type Chunking = 'whole' | 'random' | 'boundaries' | 'bytes';

/** Cutting a stream byte by byte costs a push per byte: only short streams get it. */
const BYTEWISE_BYTES_MAX = 4096;

export function drawChunking(rng: SeededRandom, streamBytes: number): Chunking {
  if (streamBytes <= BYTEWISE_BYTES_MAX && rng.chance(1, 10)) return 'bytes';
  return pick(rng, ['whole', 'random', 'random', 'boundaries', 'boundaries'] as const);
}

/** The chunks `stream` arrives in. `starts` are where its inputs begin. */
export function cutStream(rng: SeededRandom, stream: Uint8Array, starts: readonly number[], how: Chunking): Uint8Array[] {
  const n = stream.length;
  if (n === 0) return [];
  const cuts = new Set<number>();
  if (how === 'bytes') for (let i = 1; i < n; i++) cuts.add(i);
  if (how === 'random') for (let i = 0, k = between(rng, 1, Math.max(1, starts.length * 2)); i < k; i++) cuts.add(between(rng, 1, n));
  if (how === 'boundaries') {
    const offsets = [-1, 0, 1, 2, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + 1];
    for (const s of starts) if (rng.chance(2, 3)) cuts.add(s + pick(rng, offsets));
  }
  const sorted = [...cuts].filter((c) => c > 0 && c < n).sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const c of sorted) {
    chunks.push(stream.subarray(at, c));
    at = c;
  }
  chunks.push(stream.subarray(at));
  return chunks;
}

/** The index of the input holding byte `offset`, given where each input starts (ascending). */
export function inputAt(starts: readonly number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = lo + Math.ceil((hi - lo) / 2);
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
