/**
 * Shared test material for the wire codec: arbitraries of valid frames, an independent
 * header builder (written against the layout table in frame.ts, not against the encoder, so the
 * two can check each other), and a decoder that records what it yields.
 */
import { crc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { expect } from 'vitest';
import {
  BATCH_ENTRIES_MAX,
  FEATURE_BITS,
  FrameDecoder,
  FrameFlag,
  FrameType,
  LockMode,
  LockRejectPolicy,
  NakReason,
  PROTOCOL_VERSION,
  RejectAction,
  RejectReason,
  RESYNC_ENTRIES_MAX,
  TableState,
  FrameError,
  decodeFrame,
} from '../../../firmware/protocol/index.ts';
import type { Frame, FrameDecoderOptions, StreamFrame } from '../../../firmware/protocol/index.ts';

export const MAX = Number.MAX_SAFE_INTEGER;

/** The FrameError `decodeFrame` throws for `bytes` (a test fails if it accepts them). */
export function decodeError(bytes: Uint8Array, payloadBytesMax?: number): FrameError {
  try {
    decodeFrame(bytes, payloadBytesMax === undefined ? {} : { payloadBytesMax });
  } catch (err) {
    expect(err).toBeInstanceOf(FrameError);
    return err as FrameError;
  }
  throw new Error('decodeFrame accepted the bytes');
}

const lun = fc.integer({ min: 0, max: 0xffff });
const u64 = fc.maxSafeNat();
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const streamSeq = fc.integer({ min: 1, max: MAX });
const lockId = fc.integer({ min: 1, max: 0xffffffff });
const retransmit = fc.constantFrom(0, FrameFlag.Retransmit);

const session = fc.integer({ min: 1, max: MAX });

function hello(): fc.Arbitrary<Frame> {
  return fc
    .record({
      type: fc.constant(FrameType.Hello as const), lun, seq: u64, flags: fc.constantFrom(0, FrameFlag.Retransmit, FrameFlag.PeerRestarted, FrameFlag.Retransmit | FrameFlag.PeerRestarted),
      controllerId: u32, sessionId: session, windowBytes: u64, windowEntries: u32,
      policy: fc.constantFrom(LockRejectPolicy.HaltResume, LockRejectPolicy.Retransmit), locksWindow: fc.integer({ min: 1, max: 0xffffffff }),
      features: u32, requiredMask: u32, connections: fc.integer({ min: 1, max: 0xffff }), connectionPick: fc.nat(), peerSession: u64,
      batchBytesMax: fc.option(fc.integer({ min: 64, max: 0xffffffff }), { nil: undefined }),
      streams: fc.option(fc.tuple(u32, u32), { nil: undefined }),
    })
    .map(({ requiredMask, connectionPick, batchBytesMax, streams, ...f }) => {
      const hello = { ...f, requiredFeatures: (f.features & requiredMask) >>> 0, connection: connectionPick % f.connections };
      // A HELLO advertising `batch` must say how large a BATCH it takes; others may or may not.
      let batch = (f.features & FEATURE_BITS.batch) !== 0 ? batchBytesMax ?? 1 << 20 : batchBytesMax;
      // One advertising `tags` carries its stream numbers (and with them the batch field's slot, 0 if unused).
      const tags = (f.features & FEATURE_BITS.tags) !== 0 ? streams ?? [1, 0] : streams;
      if (tags !== undefined) batch ??= 0;
      const withBatch = batch === undefined ? hello : { ...hello, batchBytesMax: batch };
      return tags === undefined ? withBatch : { ...withBatch, stream: tags[0], peerStream: tags[1] };
    });
}

function heartbeat(): fc.Arbitrary<Frame> {
  return fc
    .record({
      type: fc.constant(FrameType.Heartbeat as const), lun, seq: streamSeq, flags: fc.constantFrom(0, FrameFlag.Probe),
      controllerId: u32, sessionId: session, confirmedSeq: u64, peerSession: u64,
      tags: fc.option(fc.record({ tokens: u64, tokensBack: u64, stream: u32, peerStream: u32 }), { nil: undefined }),
    })
    .map(({ tags, ...f }) => (tags === undefined ? f : { ...f, tags: { ...tags, tokens: Math.min(tags.tokens, f.confirmedSeq) } }));
}

/** Tokens on a frame (feature `tags`): absent, or a seq below `seq` (at most `seq` with `orEqual`). */
function tokensBelow(seq: number, pick: number, orEqual = false): number | undefined {
  const top = orEqual ? seq : seq - 1;
  return pick === 0 || top < 1 ? undefined : 1 + (pick % top);
}

function lock(): fc.Arbitrary<Frame> {
  return fc
    .record({
      type: fc.constant(FrameType.Lock as const), lun, seq: streamSeq,
      flags: fc.constantFrom(0, 1, 2, 3), lockId, lba: u64, count: fc.integer({ min: 1, max: 0xffffffff }),
      mode: fc.constantFrom(LockMode.Write, LockMode.Read),
    })
    .map((f) => ({ ...f, lba: Math.min(f.lba, MAX - f.count) }));
}

/** WRITE flags: any mix of Ordered and ImpliedLock, with or without Retransmit. */
const writeFlags = fc.subarray([FrameFlag.Ordered, FrameFlag.ImpliedLock]).map((fs) => fs.reduce((a, b) => a | b, 0));

function write(dataBytesMax: number): fc.Arbitrary<Frame> {
  return fc
    .record({
      type: fc.constant(FrameType.Write as const), lun, seq: streamSeq, flags: fc.tuple(writeFlags, retransmit).map(([w, r]) => w | r), lockId, lba: u64, tag: u64,
      data: fc.uint8Array({ minLength: 1, maxLength: dataBytesMax }), tokensPick: fc.nat(),
    })
    .map(({ tokensPick, ...f }) => {
      // Tokens back travel as a u32 distance: within 2^32-1 of the WRITE's own seq.
      const back = tokensBelow(Math.min(f.seq, 0xffffffff), tokensPick % 3 === 0 ? 0 : tokensPick);
      return back === undefined ? f : { ...f, tokensBack: f.seq - Math.min(f.seq, 0xffffffff) + back };
    });
}

/**
 * One entry of a batch, of any stream kind, as the frame it stands for (its seq and LUN are set by
 * {@link batch}; Retransmit is the batch's, never an entry's).
 */
function batchEntry(dataBytesMax: number): fc.Arbitrary<StreamFrame> {
  const base = { lun: fc.constant(0), seq: fc.constant(1) };
  return fc.oneof(
    fc.record({
      type: fc.constant(FrameType.Lock as const), ...base, flags: fc.constantFrom(0, FrameFlag.GrantWanted), lockId, lba: u64,
      count: fc.integer({ min: 1, max: 0xffffffff }), mode: fc.constantFrom(LockMode.Write, LockMode.Read),
    }).map((f) => ({ ...f, lba: Math.min(f.lba, MAX - f.count) })),
    fc.record({
      type: fc.constant(FrameType.Write as const), ...base, flags: writeFlags, lockId, lba: u64, tag: u64,
      data: fc.uint8Array({ minLength: 1, maxLength: dataBytesMax }),
    }),
    fc.record({ type: fc.constant(FrameType.Unlock as const), ...base, flags: fc.constant(0), lockId }),
  );
}

/** A BATCH of 1 to 8 consecutive entries (and now and then many tiny ones, towards BATCH_ENTRIES_MAX). */
export function batch(dataBytesMax: number): fc.Arbitrary<Frame> {
  const entries: fc.Arbitrary<StreamFrame[]> = fc.oneof(
    { weight: 4, arbitrary: fc.array(batchEntry(Math.max(1, Math.floor(dataBytesMax / 4))), { minLength: 1, maxLength: 8 }) },
    { weight: 1, arbitrary: fc.array(fc.record({ type: fc.constant(FrameType.Unlock as const), lun: fc.constant(0), seq: fc.constant(1), flags: fc.constant(0), lockId }), { minLength: 1, maxLength: Math.min(BATCH_ENTRIES_MAX, 64) }) },
  );
  return fc.record({ lun, seq: fc.integer({ min: 1, max: MAX - BATCH_ENTRIES_MAX }), flags: retransmit, entries, tokensPick: fc.nat() }).map(({ lun: l, seq, flags, entries: es, tokensPick }) => {
    const b = { type: FrameType.Batch as const, lun: l, seq, flags, entries: es.map((e: StreamFrame, i: number): StreamFrame => ({ ...e, lun: l, seq: seq + i })) };
    const back = tokensBelow(seq, tokensPick % 3 === 0 ? 0 : tokensPick);
    return back === undefined ? b : { ...b, tokensBack: back };
  });
}

function responses(): fc.Arbitrary<Frame>[] {
  return [
    fc.record({ type: fc.constant(FrameType.Unlock as const), lun, seq: streamSeq, flags: retransmit, lockId }),
    fc.record({ type: fc.constant(FrameType.Ack as const), lun, seq: u64, flags: fc.constant(0), tokensPick: fc.nat() }).map(({ tokensPick, ...f }) => {
      const tokens = tokensBelow(f.seq, tokensPick % 3 === 0 ? 0 : tokensPick, true);
      return tokens === undefined ? f : { ...f, tokens };
    }),
    fc.record({ type: fc.constant(FrameType.LockGranted as const), lun, seq: streamSeq, flags: fc.constant(0), lockId }),
    fc.record({
      type: fc.constant(FrameType.LockRejected as const), lun, seq: streamSeq, flags: fc.constant(0), lockId,
      reason: fc.constantFrom(RejectReason.LocalLock, RejectReason.MirrorLock, RejectReason.TableFull),
      action: fc.constantFrom(RejectAction.Held, RejectAction.Discarded),
    }),
    fc.record({
      type: fc.constant(FrameType.Nak as const), lun, seq: streamSeq, flags: fc.constant(0),
      reason: fc.constantFrom(
        NakReason.Corrupt, NakReason.Gap, NakReason.OutOfRange, NakReason.NotLocked, NakReason.Overflow, NakReason.MediaError, NakReason.LockInUse, NakReason.LocksExceeded,
      ),
    }),
  ];
}

const tableEntry = fc.record({ tag: session, lba: u64, count: fc.integer({ min: 1, max: 0xffffffff }) }).map((e) => ({ ...e, lba: Math.min(e.lba, MAX - e.count) }));

/**
 * The table exchange of a resync (feature `resync`): requests, RESYNC_DATA with 0 to 8 entries
 * (and now and then many, towards RESYNC_ENTRIES_MAX) lying within its total, RESYNC_DONE and RESYNC_ACK.
 */
export function resyncFrames(): fc.Arbitrary<Frame>[] {
  const exchange = fc.integer({ min: 1, max: MAX });
  const entries = fc.oneof(
    { weight: 4, arbitrary: fc.array(tableEntry, { maxLength: 8 }) },
    { weight: 1, arbitrary: fc.array(tableEntry, { minLength: 64, maxLength: Math.min(RESYNC_ENTRIES_MAX, 512) }) },
  );
  return [
    fc.record({ type: fc.constant(FrameType.ResyncRequest as const), lun, seq: exchange, flags: fc.constant(0), first: u64, entriesMax: fc.integer({ min: 1, max: RESYNC_ENTRIES_MAX }) }),
    fc.record({ lun, seq: exchange, first: u64, extra: u64, state: fc.constantFrom(TableState.Trusted, TableState.Untrusted), entries }).map(({ first, extra, entries: es, ...f }) => {
      const start = Math.min(first, MAX - es.length);
      return { type: FrameType.ResyncData as const, ...f, flags: 0, first: start, total: start + es.length + Math.min(extra, MAX - start - es.length), entries: es };
    }),
    fc.record({ type: fc.constantFrom(FrameType.ResyncDone as const, FrameType.ResyncAck as const), lun, seq: exchange, flags: fc.constant(0) }),
  ];
}

/** Any valid frame; WRITE data up to `dataBytesMax` bytes. */
export function frameArb(dataBytesMax = 200): fc.Arbitrary<Frame> {
  return fc.oneof(hello(), heartbeat(), lock(), write(dataBytesMax), batch(dataBytesMax), ...responses(), ...resyncFrames());
}

/** Header fields as the wire holds them; u64 fields as bigint so tests can go past 2^53. */
export interface WireHeader {
  magic: number;
  version: number;
  type: number;
  flags: number;
  code: number;
  lun: number;
  seq: bigint | number;
  lba: bigint | number;
  tag: bigint | number;
  lockId: number;
  count: number;
  payloadLength: number;
}

/**
 * Builds a frame from raw header fields with both CRCs correct (unless `crcs` is false), so a
 * test can put any field on the wire. `payloadLength` defaults to the payload's length.
 */
export function wireFrame(h: Partial<WireHeader>, payload: Uint8Array = new Uint8Array(0), crcs = true): Uint8Array {
  const out = new Uint8Array(48 + payload.length + 4);
  const v = new DataView(out.buffer);
  v.setUint16(0, h.magic ?? 0x4d4c);
  v.setUint8(2, h.version ?? PROTOCOL_VERSION);
  v.setUint8(3, h.type ?? FrameType.Ack);
  v.setUint8(4, h.flags ?? 0);
  v.setUint8(5, h.code ?? 0);
  v.setUint16(6, h.lun ?? 0);
  v.setBigUint64(8, BigInt(h.seq ?? 0));
  v.setBigUint64(16, BigInt(h.lba ?? 0));
  v.setBigUint64(24, BigInt(h.tag ?? 0));
  v.setUint32(32, h.lockId ?? 0);
  v.setUint32(36, h.count ?? 0);
  v.setUint32(40, h.payloadLength ?? payload.length);
  out.set(payload, 48);
  return crcs ? seal(out) : out;
}

/** Recomputes the header CRC and the frame CRC of the frame filling `frame`. */
export function seal(frame: Uint8Array): Uint8Array {
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  v.setUint32(44, crc32c(frame.subarray(0, 44)));
  if (frame.length >= 52) v.setUint32(frame.length - 4, crc32c(frame.subarray(0, frame.length - 4)));
  return frame;
}

/** A bare 48-byte header with a correct header CRC (for declared lengths nobody will send). */
export function sealedHeader(h: Partial<WireHeader>): Uint8Array {
  const header = wireFrame(h, new Uint8Array(0), false).subarray(0, 48);
  new DataView(header.buffer, header.byteOffset).setUint32(44, crc32c(header.subarray(0, 44)));
  return header.slice();
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Cuts `bytes` at the given offsets (taken modulo length + 1, sorted); chunks may be empty. */
export function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    chunks.push(bytes.slice(from, p));
    from = p;
  }
  chunks.push(bytes.slice(from));
  return chunks;
}

export interface Recorder {
  decoder: FrameDecoder;
  frames: Frame[];
  errors: FrameError[];
}

export function recorder(opts: Partial<FrameDecoderOptions> = {}): Recorder {
  const frames: Frame[] = [];
  const errors: FrameError[] = [];
  const decoder = new FrameDecoder({
    onFrame: (f) => frames.push(f),
    onError: (e) => errors.push(e),
    ...opts,
  });
  return { decoder, frames, errors };
}
