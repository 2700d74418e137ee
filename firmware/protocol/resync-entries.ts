import { RESYNC_ENTRY_BYTES, U64_FIELD_MAX } from './frame.ts';
import type { ResyncEntry } from './frame.ts';
import { readU32, readU64, writeU32, writeU64 } from './layout.ts';

/**
 * The payload of a RESYNC_DATA frame (feature `resync`, docs/protocol.md, docs/tag-tables.md
 * "Resync"): `count` tag table entries back to back, RESYNC_ENTRY_BYTES each, big-endian, offsets
 * from the entry's start. The LUN is the frame's.
 *
 *   off size field
 *     0   8  tag    u64, at least 1: the source's tag for the write
 *     8   8  lba    u64
 *    16   4  count  u32, at least 1: sectors; lba + count at most 2^53-1
 *
 * The table below is the layout as data, for whoever generates or mutates frames (the fuzzer).
 */
export interface ResyncEntryField {
  readonly name: 'tag' | 'lba' | 'count';
  readonly offset: number;
  readonly bytes: 4 | 8;
}

export const RESYNC_ENTRY_LAYOUT: readonly ResyncEntryField[] = [
  { name: 'tag', offset: 0, bytes: 8 },
  { name: 'lba', offset: 8, bytes: 8 },
  { name: 'count', offset: 16, bytes: 4 },
];

/** What is wrong with a RESYNC_DATA's payload or its header's totals, for ML_ERR_FRAME_FIELD. */
export interface ResyncDataProblem {
  field: string;
  value: string;
  allowed: string;
}

/** Writes `entries` at `at` of `out` (exactly RESYNC_ENTRY_BYTES each). */
export function writeResyncEntries(out: Uint8Array, at: number, entries: readonly ResyncEntry[]): void {
  for (const e of entries) {
    writeU64(out, at, e.tag);
    writeU64(out, at + 8, e.lba);
    writeU32(out, at + 16, e.count);
    at += RESYNC_ENTRY_BYTES;
  }
}

/**
 * The first rule an entry breaks, or null: the same rules for the encoder (our own table, a
 * programmer error) and the decoder (a peer's, ML_ERR_FRAME_FIELD). `index` names it.
 */
export function resyncEntryProblem(e: ResyncEntry, index: number): ResyncDataProblem | null {
  const where = `entry ${index}`;
  if (!Number.isSafeInteger(e.tag) || e.tag < 1) {
    return { field: `${where} tag`, value: show(e.tag), allowed: 'allowed: 1 to 2^53-1 (every write has a tag)' };
  }
  if (!Number.isSafeInteger(e.lba) || e.lba < 0) return { field: `${where} lba`, value: show(e.lba), allowed: 'allowed: 0 to 2^53-1' };
  if (!Number.isInteger(e.count) || e.count < 1 || e.count > 0xffffffff) {
    return { field: `${where} count`, value: show(e.count), allowed: 'allowed: 1 to 4294967295 sectors' };
  }
  if (e.count > U64_FIELD_MAX - e.lba) {
    return { field: `${where} lba + count`, value: `${e.lba} + ${e.count}`, allowed: 'allowed: a sum of at most 2^53-1' };
  }
  return null;
}

/** The header rule across fields: the entries carried lie within the table's `total`. */
export function resyncSpanProblem(first: number, count: number, total: number): ResyncDataProblem | null {
  // Written so that no intermediate value passes 2^53 (where additions stop being exact).
  if (count <= total && first <= total - count) return null;
  return { field: 'first + count', value: `${first} + ${count}`, allowed: `allowed: at most total (${total}): a RESYNC_DATA carries entries of the table it counts` };
}

/**
 * Reads the `count` entries of a RESYNC_DATA payload whose header passed the rules: the payload
 * must hold exactly that many, each allowed by the entry rules. Returns the entries, or the first
 * problem. Never reads past `payload`; allocates one small object per entry (count is bounded by
 * RESYNC_ENTRIES_MAX).
 */
export function parseResyncEntries(payload: Uint8Array, count: number): ResyncEntry[] | ResyncDataProblem {
  if (payload.length !== count * RESYNC_ENTRY_BYTES) {
    return {
      field: 'payloadLength', value: String(payload.length),
      allowed: `exactly count x ${RESYNC_ENTRY_BYTES} = ${count * RESYNC_ENTRY_BYTES} bytes: a RESYNC_DATA payload holds exactly its entries`,
    };
  }
  const entries: ResyncEntry[] = new Array<ResyncEntry>(count);
  for (let i = 0, at = 0; i < count; i++, at += RESYNC_ENTRY_BYTES) {
    const e = { tag: readU64(payload, at), lba: readU64(payload, at + 8), count: readU32(payload, at + 16) };
    const bad = resyncEntryProblem(e, i);
    if (bad !== null) return bad;
    entries[i] = e;
  }
  return entries;
}

function show(v: number): string {
  return v > U64_FIELD_MAX ? 'a value above 2^53-1' : String(v);
}
