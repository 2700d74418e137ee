import { assert } from '../errors.ts';
import { BATCH_ENTRIES_MAX, FrameFlag, FrameType, HEADER_BYTES, U64_FIELD_MAX } from './frame.ts';
import type { StreamFrame } from './frame.ts';
import { OFF_CODE, OFF_COUNT, OFF_FLAGS, OFF_LBA, OFF_LOCK_ID, OFF_PAYLOAD_LENGTH, OFF_SEQ, OFF_TAG, OFF_TYPE, readU32, readU64, writeU32, writeU64 } from './layout.ts';
import type { RawFields } from './layout.ts';

/**
 * The payload of a BATCH frame (feature `batch`, docs/protocol.md, docs/implied-locks.md):
 * `count` sub-entries back to back, each a compact form of the stream frame it stands for. The
 * entry's LUN and sequence number are the batch's (`lun`, `seq + index`), so they are not repeated;
 * Retransmit is the batch's flag. Big-endian, offsets from the sub-entry's start:
 *
 *   kind     off size field
 *   any        0   1  kind      the stream frame type: 2 LOCK, 3 WRITE, 4 UNLOCK
 *              1   1  flags     the frame's flags without Retransmit (GrantWanted; Ordered, ImpliedLock)
 *              2   4  lockId    u32
 *   LOCK       6   1  mode      LockMode
 *              7   8  lba       u64
 *             15   4  count     u32, sectors                               (19 bytes in all)
 *   WRITE      6   8  lba       u64
 *             14   8  tag       u64
 *             22   4  length    u32, bytes of data
 *             26   n  data                                                 (26 + n bytes)
 *   UNLOCK     (nothing more)                                              (6 bytes)
 *
 * Each entry must satisfy its own type's field rules (rules.ts), exactly as the frame would.
 * The table below is the layout as data, for whoever generates or mutates batches (the fuzzer).
 */
export interface SubEntryField {
  readonly name: 'kind' | 'flags' | 'lockId' | 'mode' | 'lba' | 'count' | 'tag' | 'length';
  readonly offset: number;
  readonly bytes: 1 | 4 | 8;
}

const HEAD: readonly SubEntryField[] = [
  { name: 'kind', offset: 0, bytes: 1 },
  { name: 'flags', offset: 1, bytes: 1 },
  { name: 'lockId', offset: 2, bytes: 4 },
];

/** Every sub-entry kind's fields, in order; a WRITE's data follows its fixed part. */
export const BATCH_ENTRY_LAYOUT: Readonly<Record<FrameType.Lock | FrameType.Write | FrameType.Unlock, readonly SubEntryField[]>> = {
  [FrameType.Lock]: [...HEAD, { name: 'mode', offset: 6, bytes: 1 }, { name: 'lba', offset: 7, bytes: 8 }, { name: 'count', offset: 15, bytes: 4 }],
  [FrameType.Write]: [...HEAD, { name: 'lba', offset: 6, bytes: 8 }, { name: 'tag', offset: 14, bytes: 8 }, { name: 'length', offset: 22, bytes: 4 }],
  [FrameType.Unlock]: HEAD,
};

/** Fixed bytes of each kind's sub-entry (a WRITE's data comes on top). */
export const LOCK_ENTRY_BYTES = 19;
export const WRITE_ENTRY_BYTES = 26;
export const UNLOCK_ENTRY_BYTES = 6;

/** Bytes of the sub-entry for a stream frame of `type` carrying `dataBytes` (WRITE only). */
export function subEntryBytes(type: FrameType, dataBytes: number): number {
  return type === FrameType.Write ? WRITE_ENTRY_BYTES + dataBytes : type === FrameType.Lock ? LOCK_ENTRY_BYTES : UNLOCK_ENTRY_BYTES;
}

/** Payload bytes of a BATCH carrying `entries`. */
export function batchPayloadBytes(entries: readonly StreamFrame[]): number {
  let n = 0;
  for (const e of entries) n += subEntryBytes(e.type, e.type === FrameType.Write ? e.data.length : 0);
  return n;
}

/**
 * Write one sub-entry at `at` from raw fields (the entry's type, flags without Retransmit, code,
 * lockId, lba, tag, count) and `data` (WRITE); returns where the next one starts.
 */
export function writeSubEntry(out: Uint8Array, at: number, raw: RawFields, data: Uint8Array | null): number {
  out[at] = raw.type;
  out[at + 1] = raw.flags;
  writeU32(out, at + 2, raw.lockId);
  if (raw.type === FrameType.Lock) {
    out[at + 6] = raw.code;
    writeU64(out, at + 7, raw.lba);
    writeU32(out, at + 15, raw.count);
    return at + LOCK_ENTRY_BYTES;
  }
  if (raw.type === FrameType.Write) {
    writeU64(out, at + 6, raw.lba);
    writeU64(out, at + 14, raw.tag);
    writeU32(out, at + 22, data!.length);
    out.set(data!, at + WRITE_ENTRY_BYTES);
    return at + WRITE_ENTRY_BYTES + data!.length;
  }
  return at + UNLOCK_ENTRY_BYTES;
}

/**
 * Raw fields of the standalone stream frame encoded in `frame` (as the encoder made it), read
 * back for packing into a batch. Retransmit is dropped: it is the batch's flag.
 */
export function readStreamFrameFields(frame: Uint8Array, into: RawFields): RawFields {
  into.type = frame[OFF_TYPE]!;
  into.flags = frame[OFF_FLAGS]! & ~FrameFlag.Retransmit;
  into.code = frame[OFF_CODE]!;
  into.seq = readU64(frame, OFF_SEQ);
  into.lba = readU64(frame, OFF_LBA);
  into.tag = readU64(frame, OFF_TAG);
  into.lockId = readU32(frame, OFF_LOCK_ID);
  into.count = readU32(frame, OFF_COUNT);
  into.payloadLength = readU32(frame, OFF_PAYLOAD_LENGTH);
  return into;
}

/** What went wrong with a batch's payload, for ML_ERR_FRAME_FIELD: the entry and the field. */
export interface BatchProblem {
  field: string;
  value: string;
  allowed: string;
}

/**
 * Read the sub-entries of a BATCH payload into `raws` (reused) and `datas` (WRITE data as views of
 * `payload`), validating only the layout: every entry complete within the payload, a known kind,
 * exactly `count` of them filling it. Field rules are the caller's (the same table as for frames).
 * Returns null, or the first problem. Never reads past `payload`, never allocates per byte.
 */
export function parseSubEntries(payload: Uint8Array, count: number, firstSeq: number, raws: RawFields[], datas: (Uint8Array | null)[]): BatchProblem | null {
  assert(count >= 1 && count <= BATCH_ENTRIES_MAX, 'parseSubEntries: count was validated by the header rules');
  let at = 0;
  for (let i = 0; i < count; i++) {
    const where = `entry ${i} (seq ${firstSeq + i})`;
    if (payload.length - at < UNLOCK_ENTRY_BYTES) return runsPast(where, 'its kind, flags and lockId', at, payload.length);
    const kind = payload[at]!;
    if (kind !== FrameType.Lock && kind !== FrameType.Write && kind !== FrameType.Unlock) {
      return { field: `${where} kind`, value: String(kind), allowed: `allowed: ${FrameType.Lock} (LOCK), ${FrameType.Write} (WRITE), ${FrameType.Unlock} (UNLOCK)` };
    }
    const raw = raws[i] ?? (raws[i] = { type: 0, flags: 0, code: 0, lun: 0, seq: 0, lba: 0, tag: 0, lockId: 0, count: 0, payloadLength: 0 });
    raw.type = kind;
    raw.flags = payload[at + 1]!;
    raw.lockId = readU32(payload, at + 2);
    raw.seq = firstSeq + i;
    raw.code = 0;
    raw.lba = 0;
    raw.tag = 0;
    raw.count = 0;
    raw.payloadLength = 0;
    datas[i] = null;
    if (kind === FrameType.Lock) {
      if (payload.length - at < LOCK_ENTRY_BYTES) return runsPast(where, 'a LOCK entry', at, payload.length);
      raw.code = payload[at + 6]!;
      raw.lba = readU64(payload, at + 7);
      raw.count = readU32(payload, at + 15);
      at += LOCK_ENTRY_BYTES;
    } else if (kind === FrameType.Write) {
      if (payload.length - at < WRITE_ENTRY_BYTES) return runsPast(where, 'a WRITE entry', at, payload.length);
      raw.lba = readU64(payload, at + 6);
      raw.tag = readU64(payload, at + 14);
      const length = readU32(payload, at + 22);
      raw.payloadLength = length;
      const start = at + WRITE_ENTRY_BYTES;
      if (length > payload.length - start) {
        return { field: `${where} length`, value: String(length), allowed: `allowed: at most the ${payload.length - start} bytes left in the BATCH payload` };
      }
      datas[i] = payload.subarray(start, start + length);
      at = start + length;
    } else {
      at += UNLOCK_ENTRY_BYTES;
    }
  }
  if (at !== payload.length) {
    return { field: 'payloadLength', value: String(payload.length), allowed: `its ${count} entries take ${at} bytes; a BATCH payload holds exactly its entries` };
  }
  return null;
}

function runsPast(where: string, what: string, at: number, length: number): BatchProblem {
  return { field: where, value: `at byte ${at} of ${length}`, allowed: `the payload ends before ${what} does; a BATCH holds exactly count whole entries` };
}

/** The last sequence number of a batch must stay exact. */
export function batchSeqProblem(firstSeq: number, count: number): BatchProblem | null {
  // Written so that no intermediate value passes 2^53 (where additions stop being exact).
  if (count - 1 <= U64_FIELD_MAX - firstSeq) return null;
  return { field: 'seq + count - 1', value: `${firstSeq} + ${count} - 1`, allowed: 'allowed: at most 2^53-1 (every entry numbered exactly)' };
}

/** Bytes a standalone encoded stream frame's data takes (WRITE), or 0. */
export function dataBytesOf(frame: Uint8Array): number {
  return frame[OFF_TYPE] === FrameType.Write ? frame.length - HEADER_BYTES - 4 : 0;
}
