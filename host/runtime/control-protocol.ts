import { z } from 'zod';
import { MirrorlabError } from '../../firmware/errors.ts';

/**
 * The control socket's protocol (docs/controller-process.md 5): request/response frames over a unix
 * stream socket, several requests in flight per connection, answered in any order and matched by id.
 *
 * A frame is a 12-byte prefix, a JSON header and the data (reads, writes):
 *
 *   0  4  magic "MLC1"
 *   4  4  header bytes (u32 BE), 2..CONTROL_HEADER_BYTES_MAX
 *   8  4  data bytes (u32 BE), 0..CONTROL_DATA_BYTES_MAX
 *  12  n  header: one JSON object, UTF-8
 *  ..  m  data: raw bytes
 *
 * Requests: `{"id":N,"op":"write","lun":L,"lba":A,"tag"?:T}` + the data; `{"id":N,"op":"read","lun":L,"lba":A,"count":C}`;
 * `{"id":N,"op":"flush","lun"?:L}`; `{"id":N,"op":"status"}`; `{"id":N,"op":"stop"}`;
 * `{"id":N,"op":"lock","lun":L,"lba":A,"count":C,"holdMs":H}` (a local lock held H ms from its grant,
 * answered at the grant: how a conformance run makes this controller refuse a mirror lock, docs/conformance.md 5).
 * Responses: `{"id":N,"ok":true}` (+ the data of a read; `"status":{...}` for status), or
 * `{"id":N,"ok":false,"code":"ML_ERR_...","message":"..."}`. A frame that cannot be read at all
 * (bad magic, a length out of bounds, a header that is not JSON) is answered with id null, and the
 * connection is closed: after it, where the next frame starts is unknown.
 */
export const CONTROL_MAGIC = 0x4d4c4331; // "MLC1"
export const CONTROL_PREFIX_BYTES = 12;
export const CONTROL_HEADER_BYTES_MAX = 64 * 1024;
/** Largest data part of one frame: a 16 MiB read or write (the controller's own limit may be lower). */
export const CONTROL_DATA_BYTES_MAX = 16 * 1024 * 1024;

/** Longest a `lock` request may hold its region (ms): a local lock that is never released would stall the mirror. */
export const LOCK_HOLD_MS_MAX = 60_000;

export class ControlProtocolError extends MirrorlabError {
  constructor(message: string, code = 'ML_ERR_CONTROL_FRAME') {
    super(code, message);
  }
}

const id = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const lun = z.number().int().min(0).max(0xffff);
const lba = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const controlRequestSchema = z.discriminatedUnion('op', [
  z.strictObject({ id, op: z.literal('write'), lun, lba, tag: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional() }),
  z.strictObject({ id, op: z.literal('read'), lun, lba, count: z.number().int().min(1).max(CONTROL_DATA_BYTES_MAX) }),
  z.strictObject({ id, op: z.literal('flush'), lun: lun.optional() }),
  z.strictObject({ id, op: z.literal('status') }),
  z.strictObject({ id, op: z.literal('lock'), lun, lba, count: z.number().int().min(1).max(2 ** 31), holdMs: z.number().int().min(1).max(LOCK_HOLD_MS_MAX) }),
  z.strictObject({ id, op: z.literal('stop') }),
]);
export type ControlRequest = z.infer<typeof controlRequestSchema>;
export const CONTROL_OPS = ['write', 'read', 'flush', 'status', 'stop', 'lock'] as const;

export const controlResponseSchema = z.union([
  z.object({ id, ok: z.literal(true), status: z.record(z.string(), z.unknown()).optional() }),
  z.object({ id: id.nullable(), ok: z.literal(false), code: z.string().max(100), message: z.string().max(CONTROL_HEADER_BYTES_MAX) }),
]);
export type ControlResponse = z.infer<typeof controlResponseSchema>;

export interface ControlFrame {
  header: unknown;
  data: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/** One frame: prefix, header, data. */
export function encodeControlFrame(header: object, data: Uint8Array = EMPTY): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  if (json.length > CONTROL_HEADER_BYTES_MAX) throw new ControlProtocolError(`a control header may have at most ${CONTROL_HEADER_BYTES_MAX} bytes, this one has ${json.length}`);
  if (data.length > CONTROL_DATA_BYTES_MAX) throw new ControlProtocolError(`a control frame carries at most ${CONTROL_DATA_BYTES_MAX} bytes of data, this one ${data.length}`);
  const prefix = Buffer.allocUnsafe(CONTROL_PREFIX_BYTES);
  prefix.writeUInt32BE(CONTROL_MAGIC, 0);
  prefix.writeUInt32BE(json.length, 4);
  prefix.writeUInt32BE(data.length, 8);
  return Buffer.concat([prefix, json, data]);
}

/**
 * Reassembles frames from a byte stream split or coalesced anywhere. It never holds more than one
 * frame (prefix, at most {@link CONTROL_HEADER_BYTES_MAX} of header, at most `dataBytesMax` of
 * data): a prefix that declares more, a wrong magic or a header that is not a JSON object is a
 * {@link ControlProtocolError}, after which the stream is unusable.
 */
export class ControlFrameReader {
  private chunks: Buffer[] = [];
  private held = 0;
  private failed: ControlProtocolError | null = null;

  constructor(private readonly dataBytesMax = CONTROL_DATA_BYTES_MAX) {}

  /** Bytes held: part of a frame not complete yet. */
  get buffered(): number {
    return this.held;
  }

  /** Takes a chunk; returns the frames it completed, or throws once the stream is malformed. */
  push(chunk: Uint8Array): ControlFrame[] {
    if (this.failed) throw this.failed;
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.held += chunk.byteLength;
    const out: ControlFrame[] = [];
    for (;;) {
      const frame = this.next();
      if (frame === null) return out;
      out.push(frame);
    }
  }

  private next(): ControlFrame | null {
    if (this.held < CONTROL_PREFIX_BYTES) return null;
    const prefix = this.peek(CONTROL_PREFIX_BYTES);
    const magic = prefix.readUInt32BE(0);
    const headerBytes = prefix.readUInt32BE(4);
    const dataBytes = prefix.readUInt32BE(8);
    if (magic !== CONTROL_MAGIC) return this.fail(`a control frame starts with "MLC1", these bytes start with ${prefix.subarray(0, 4).toString('hex')}`);
    if (headerBytes < 2 || headerBytes > CONTROL_HEADER_BYTES_MAX) return this.fail(`a control header has 2 to ${CONTROL_HEADER_BYTES_MAX} bytes, this frame declares ${headerBytes}`);
    if (dataBytes > this.dataBytesMax) return this.fail(`a control frame carries at most ${this.dataBytesMax} bytes of data, this one declares ${dataBytes}`);
    const total = CONTROL_PREFIX_BYTES + headerBytes + dataBytes;
    if (this.held < total) return null;
    const whole = this.take(total);
    let header: unknown;
    try {
      header = JSON.parse(whole.subarray(CONTROL_PREFIX_BYTES, CONTROL_PREFIX_BYTES + headerBytes).toString('utf8'));
    } catch (error) {
      return this.fail(`a control header is one JSON object: ${(error as Error).message}`);
    }
    if (header === null || typeof header !== 'object' || Array.isArray(header)) return this.fail('a control header is one JSON object');
    return { header, data: whole.subarray(CONTROL_PREFIX_BYTES + headerBytes) };
  }

  private fail(message: string): never {
    this.failed = new ControlProtocolError(message);
    this.chunks = [];
    this.held = 0;
    throw this.failed;
  }

  /** The first `n` bytes held, without taking them. */
  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined.subarray(0, n);
  }

  /** Take the first `n` bytes held (copied out of the chunks only when a frame spans several). */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const joined = Buffer.concat(this.chunks);
      out = joined.subarray(0, n);
      this.chunks = joined.length > n ? [joined.subarray(n)] : [];
    }
    this.held -= n;
    return out;
  }
}

/** A request header that is a JSON object but not a valid request: one line naming the field and what is allowed. */
export function describeRequestProblem(issues: readonly z.core.$ZodIssue[]): string {
  const first = issues[0];
  if (!first) return 'invalid request';
  const path = first.path.length === 0 ? 'request' : first.path.join('.');
  if (first.code === 'invalid_union') return `"op" must be one of ${CONTROL_OPS.join(', ')}`;
  if (first.code === 'unrecognized_keys') return `${path}: unknown field${first.keys.length > 1 ? 's' : ''} ${first.keys.join(', ')}`;
  return `${path}: ${first.message}`;
}
