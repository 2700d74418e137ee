import { crc32c } from '@node-rs/crc32';
import { CRC_BYTES, HEADER_BYTES } from '../../firmware/protocol/frame.ts';
import {
  BLOCK_PAYLOAD_BYTES_MAX, BlockFrameDecoder, BlockFrameError, BlockFrameType, decodeGeometry, type BlockFrame, type BlockFrameDecoderOptions,
} from '../../host/disks/serial-disk/block-frames.ts';
import { SeededRandom } from '../../host/random.ts';
import { BlockFrameGen } from './block-gen.ts';
import { concatBytes, weighted } from './bytes.ts';
import { cutStream, drawChunking, inputAt } from './chunking.ts';
import type { FuzzItem } from './damage.ts';
import { describeError, emptyOutcome, type CaseOutcome, type FuzzFailure } from './outcome.ts';
import { between } from './values.ts';

/** The serial block decoder's public face; tests hand in broken ones (docs/fuzzing.md 5). */
export interface BlockDecoderUnderTest {
  push(chunk: Uint8Array): void;
  reset(): void;
  readonly bufferedBytes: number;
}

export type MakeBlockDecoder = (opts: BlockFrameDecoderOptions) => BlockDecoderUnderTest;

export const makeFirmwareBlockDecoder: MakeBlockDecoder = (opts) => new BlockFrameDecoder(opts);

const BLOCK_ERROR_CODES: readonly string[] = [
  'ML_ERR_BLOCK_FRAME_GARBAGE', 'ML_ERR_BLOCK_FRAME_HEADER', 'ML_ERR_BLOCK_FRAME_TYPE', 'ML_ERR_BLOCK_FRAME_TOO_LARGE', 'ML_ERR_BLOCK_FRAME_CRC',
  'ML_ERR_BLOCK_FRAME_FIELD',
];

/** Smallest payloadBytesMax the decoder takes is an IDENTIFY reply with the longest name (92 bytes). */
const PAYLOAD_BYTES_MAX_DRAW: readonly (readonly [number, number])[] = [[10, 92], [20, 1024], [40, 4096], [25, 65_536], [5, BLOCK_PAYLOAD_BYTES_MAX]];

type Fail = (f: Omit<FuzzFailure, 'target' | 'seed' | 'caseIndex'>) => void;

/**
 * One case of the serial block decoder fuzz (docs/fuzzing.md 3): the same shape as the mirror
 * decoder's, but with no whole-stream reference (the block decoder has no end() and reports
 * garbage lazily): each input alone must do what it was built to, the whole stream pushed in one
 * piece and cut anyhow must give the same frames and errors, the buffer never passes one largest
 * frame, every IDENTIFY reply's geometry is judged without a throw, and clean frames after a
 * reset decode exactly.
 */
export function runBlockCase(seed: number, caseIndex: number, opts: { makeDecoder?: MakeBlockDecoder } = {}): CaseOutcome {
  const out = emptyOutcome();
  const rng = new SeededRandom(seed).fork(`block/${caseIndex}`);
  const payloadBytesMax = weighted(rng, PAYLOAD_BYTES_MAX_DRAW);
  const gen = new BlockFrameGen(rng.fork('gen'), { payloadBytesMax, dataBytesMax: rng.chance(1, 8) ? payloadBytesMax : Math.min(payloadBytesMax, 16 * 1024) });
  const make = opts.makeDecoder ?? makeFirmwareBlockDecoder;
  const fail: Fail = (f) => void out.failures.push({ target: 'block', seed, caseIndex, ...f });
  const items = Array.from({ length: between(rng, 16, 160) }, () => gen.item());
  items.forEach((item, i) => checkOneShot(make, payloadBytesMax, item, i, out, fail));
  const starts: number[] = [];
  let at = 0;
  for (const item of items) {
    starts.push(at);
    at += item.bytes.length;
  }
  const stream = concatBytes(items.map((i) => i.bytes));
  const bound = HEADER_BYTES + payloadBytesMax + CRC_BYTES;
  const runs: string[][] = [];
  for (const how of ['whole', drawChunking(rng, stream.length)] as const) {
    if (out.failures.length > 0) break;
    const chunks = cutStream(rng, stream, starts, how);
    const events = streamThrough(make, { payloadBytesMax, bound }, chunks, out, (f, offset) => fail({ ...f, frame: offset === undefined ? undefined : inputAt(starts, offset) }));
    if (events !== null) runs.push(events);
  }
  if (runs.length === 2) compare(runs[0]!, runs[1]!, (message, i) => fail({ invariant: 'differential', message: `whole vs cut: ${message}`, frame: i }));
  if (out.failures.length === 0) checkRecovery(rng, gen, make, payloadBytesMax, items, out, fail);
  (out as { frames: number }).frames = items.length;
  (out as { bytes: number }).bytes = stream.length;
  return out;
}

function frameEvent(f: BlockFrame): string {
  const { payload, ...rest } = f;
  return `frame ${JSON.stringify(rest)} payload ${payload.length}:${crc32c(payload)}`;
}

function isTyped(e: unknown): boolean {
  return e instanceof BlockFrameError && BLOCK_ERROR_CODES.includes(e.code) && e.message.length > 0 && !e.message.includes('\n');
}

interface Decoded {
  frames: BlockFrame[];
  errors: BlockFrameError[];
  /** Frames and errors in the order they were reported. */
  events: string[];
  problem: string | null;
  /** Stream offset of the chunk being pushed when the problem showed. */
  offset: number;
}

/** Push every chunk, then reset(); a throw, an untyped error or what `afterPush` objects to is the problem. */
function decodeAll(make: MakeBlockDecoder, payloadBytesMax: number, chunks: readonly Uint8Array[], afterPush: (d: BlockDecoderUnderTest) => string | null): Decoded {
  const r: Decoded = { frames: [], errors: [], events: [], problem: null, offset: 0 };
  let untyped: unknown = null;
  const d = make({
    payloadBytesMax,
    onFrame: (f) => {
      r.frames.push(f);
      r.events.push(frameEvent(f));
    },
    onError: (e) => {
      if (!isTyped(e)) untyped ??= e;
      r.errors.push(e);
      r.events.push(`error ${e.code} ${e.message}`);
    },
  });
  try {
    for (const c of chunks) {
      d.push(c);
      r.problem = afterPush(d);
      if (r.problem !== null) return r;
      r.offset += c.length;
    }
    d.reset();
  } catch (e) {
    r.problem = `crash: ${describeError(e)}`;
    return r;
  }
  if (untyped !== null) r.problem = `error-type: onError was given ${describeError(untyped)}`;
  return r;
}

function checkOneShot(make: MakeBlockDecoder, payloadBytesMax: number, item: FuzzItem, index: number, out: CaseOutcome, fail: Fail): void {
  out.kinds.add(item.kind.split(':')[0]!);
  const { frames, errors, problem } = decodeAll(make, payloadBytesMax, [item.bytes], () => null);
  if (problem !== null) return fail({ invariant: problem.startsWith('crash') ? 'crash' : 'error-type', frame: index, message: problem });
  for (const f of frames) checkGeometry(f, index, out, fail);
  const expect = item.expect;
  if (expect === null) return;
  if ('frame' in expect) {
    const spec = item.spec!;
    const f = frames[0];
    const ok = frames.length === 1 && errors.length === 0 && f!.type === spec.type && f!.seq === Number(spec.seq) && f!.session === Number(spec.tag) &&
      f!.lba === Number(spec.lba) && f!.count === spec.count && f!.code === spec.code && crc32c(f!.payload) === crc32c(spec.payload) && f!.payload.length === spec.payload.length;
    if (!ok) return fail({ invariant: 'expectation', frame: index, message: `a valid block frame type ${item.cover} gave ${frames.map(frameEvent).join(', ') || 'no frame'}${errors.map((e) => `; ${e.code}: ${e.message}`).join('')}` });
    out.coverage.add(`block type ${item.cover}`);
    return;
  }
  const codes = expect.reject;
  const wrong = errors.find((e) => codes !== 'any' && !codes.includes(e.code));
  if (frames.length > 0 || errors.length === 0 || wrong !== undefined) {
    const said = [...frames.map(frameEvent), ...errors.map((e) => e.code)].join(', ') || 'nothing';
    fail({ invariant: 'expectation', frame: index, message: `a ${item.kind} input gave ${said.slice(0, 300)}; expected only ${codes === 'any' ? 'errors' : codes.join(' or ')}` });
  }
}

/** An IDENTIFY reply's geometry is input from a wire too: judged, never thrown over. */
function checkGeometry(f: BlockFrame, index: number, out: CaseOutcome, fail: Fail): void {
  if (f.type !== BlockFrameType.Reply) return;
  try {
    const g = decodeGeometry(f.payload);
    out.notes.add(typeof g === 'string' ? 'geometries refused' : 'geometries accepted');
  } catch (e) {
    fail({ invariant: 'crash', frame: index, message: `decodeGeometry threw ${describeError(e)}` });
  }
}

/**
 * The buffer the decoder reassembles in is private; its length is read here because "never more
 * than one largest frame" is about the allocation, not only the bytes held (a broken decoder can
 * hold a little in a huge buffer). A decoder without one reports 0.
 */
function capacityOf(d: BlockDecoderUnderTest): number {
  const buf = (d as unknown as { buf?: unknown }).buf;
  return buf instanceof Uint8Array ? buf.length : 0;
}

function streamThrough(
  make: MakeBlockDecoder, limits: { payloadBytesMax: number; bound: number }, chunks: readonly Uint8Array[], out: CaseOutcome,
  fail: (f: Omit<FuzzFailure, 'target' | 'seed' | 'caseIndex' | 'frame'>, offset?: number) => void,
): string[] | null {
  const r = decodeAll(make, limits.payloadBytesMax, chunks, (d) => {
    const held = out.maxima.observe('block decoder bytes held', d.bufferedBytes, limits.bound);
    const cap = out.maxima.observe('block decoder buffer', capacityOf(d), limits.bound);
    return held && cap ? null : `bound: the decoder holds ${d.bufferedBytes} bytes in a ${capacityOf(d)}-byte buffer; one largest frame is ${limits.bound}`;
  });
  if (r.problem === null) return r.events;
  const invariant = r.problem.startsWith('crash') ? 'crash' : r.problem.startsWith('error-type') ? 'error-type' : 'bound';
  fail({ invariant, message: r.problem }, r.offset);
  return null;
}

function compare(a: readonly string[], b: readonly string[], fail: (message: string, index: number) => void): void {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] === b[i]) continue;
    fail(`event ${i}: in one piece ${a[i]?.slice(0, 240) ?? 'nothing'}; cut ${b[i]?.slice(0, 240) ?? 'nothing'}`, i);
    return;
  }
}

/** Hostile bytes, reset(), then clean frames cut anyhow: exactly those frames, no error. */
function checkRecovery(rng: SeededRandom, gen: BlockFrameGen, make: MakeBlockDecoder, payloadBytesMax: number, hostile: readonly FuzzItem[], out: CaseOutcome, fail: Fail): void {
  const clean = Array.from({ length: between(rng, 1, 8) }, () => gen.valid());
  const frames: string[] = [];
  const errors: string[] = [];
  const d = make({ payloadBytesMax, onFrame: (f) => void frames.push(frameEvent(f)), onError: (e) => void errors.push(e.code) });
  try {
    for (const h of hostile.slice(0, between(rng, 1, 12))) d.push(h.bytes);
    d.reset();
    frames.length = 0;
    errors.length = 0;
    for (const c of cutStream(rng, concatBytes(clean.map((c) => c.bytes)), [], 'random')) d.push(c);
    d.reset();
  } catch (e) {
    return fail({ invariant: 'crash', message: `recovery: ${describeError(e)}` });
  }
  const expected = clean.map((c) => {
    const s = c.spec!;
    return frameEvent({ type: s.type as BlockFrame['type'], seq: Number(s.seq), session: Number(s.tag), lba: Number(s.lba), count: s.count, code: s.code, payload: s.payload });
  });
  if (errors.length > 0) return fail({ invariant: 'recovery', message: `clean frames after reset() gave errors: ${errors.join(', ')}` });
  compare(expected, frames, (message) => fail({ invariant: 'recovery', message: `clean frames after reset(): ${message}` }));
  out.kinds.add('recoveries');
}
