import { decodeFrame, FrameDecoder, type FrameDecoderOptions } from '../../firmware/protocol/decoder.ts';
import { encodeFrame } from '../../firmware/protocol/encode.ts';
import { FRAME_ERROR_CODES, FrameError } from '../../firmware/protocol/errors.ts';
import { rawFieldsOf } from '../../firmware/protocol/fields.ts';
import { DEFAULT_PAYLOAD_BYTES_MAX, FRAME_OVERHEAD_BYTES, U64_FIELD_MAX, type Frame } from '../../firmware/protocol/frame.ts';
import { SeededRandom } from '../../host/random.ts';
import { concatBytes, weighted } from './bytes.ts';
import { cutStream, drawChunking, inputAt } from './chunking.ts';
import { MirrorFrameGen, type FuzzItem } from './frames.ts';
import { describeError, emptyOutcome, type CaseOutcome, type FuzzFailure } from './outcome.ts';
import { errorEvent, frameEvent, referenceDecode, type DecodeEvent } from './reference-decoder.ts';
import { between } from './values.ts';

/**
 * What the decoder fuzz drives: the streaming decoder's public face. The firmware's FrameDecoder
 * is one; tests hand in deliberately broken ones to show each check failing (docs/fuzzing.md 5).
 */
export interface DecoderUnderTest {
  push(chunk: Uint8Array): void;
  end(): void;
  /** Bytes held and not yet decoded. */
  readonly bufferedBytes: number;
  /** Bytes allocated for reassembly. */
  readonly reassemblyCapacity: number;
}

export type MakeDecoder = (opts: FrameDecoderOptions) => DecoderUnderTest;

export const makeFirmwareDecoder: MakeDecoder = (opts) => new FrameDecoder(opts);

export interface DecoderCaseOptions {
  makeDecoder?: MakeDecoder;
}

/** A case's inputs: how many, and how large a payload its decoder accepts. */
const PAYLOAD_BYTES_MAX_DRAW: readonly (readonly [number, number])[] = [
  [4, 0], [3, 1], [6, 100], [12, 512], [30, 4096], [35, 65_536], [10, DEFAULT_PAYLOAD_BYTES_MAX],
];

/**
 * One case of the decoder fuzz (docs/fuzzing.md 3): a stream of generated inputs; each alone
 * through the one-shot decoder (it must do what the input was built to make it do), all of them
 * through two streaming decoders cut differently (both must say exactly what the whole-stream
 * reference says, with the reassembly buffer never past one largest frame), and then clean frames
 * (the decoder must decode them all, whatever came before).
 */
export function runDecoderCase(seed: number, caseIndex: number, opts: DecoderCaseOptions = {}): CaseOutcome {
  const out = emptyOutcome();
  const rng = new SeededRandom(seed).fork(`decoder/${caseIndex}`);
  const payloadBytesMax = weighted(rng, PAYLOAD_BYTES_MAX_DRAW);
  const dataBytesMax = rng.chance(1, 8) ? payloadBytesMax : Math.min(payloadBytesMax, 64 * 1024);
  const gen = new MirrorFrameGen(rng.fork('gen'), {
    payloadBytesMax, dataBytesMax, sectorSize: rng.chance(1, 4) ? 4096 : 512,
    hints: { session: [1, between(rng, 1, U64_FIELD_MAX)], streamSeq: [1, 2, between(rng, 1, 1e6)], lockId: [1, 2] },
  });
  const fail = (f: Omit<FuzzFailure, 'target' | 'seed' | 'caseIndex'>): void => void out.failures.push({ target: 'decoder', seed, caseIndex, ...f });
  const items = drawItems(rng, gen, between(rng, 16, 160));
  items.forEach((item, i) => checkOneShot(item, i, payloadBytesMax, out, fail));
  const starts: number[] = [];
  let at = 0;
  for (const item of items) {
    starts.push(at);
    at += item.bytes.length;
  }
  const stream = concatBytes(items.map((i) => i.bytes));
  out.kinds.add('streams');
  const expected = referenceDecode(stream, payloadBytesMax);
  const make = opts.makeDecoder ?? makeFirmwareDecoder;
  for (const run of [0, 1]) {
    if (out.failures.length > 0) break;
    const chunks = cutStream(rng, stream, starts, drawChunking(rng, stream.length));
    const got = streamThrough(make, { payloadBytesMax, bound: largestFrameBytes(gen) }, chunks, out, (f) => fail({ ...f, frame: f.offset === undefined ? undefined : inputAt(starts, f.offset) }));
    if (got !== null) compareEvents(expected, got, (message, eventIndex) => fail({ invariant: 'differential', message: `cut ${run}: ${message}`, frame: eventIndex }));
  }
  if (out.failures.length === 0) checkRecovery(rng, gen, make, payloadBytesMax, out, fail);
  (out as { frames: number }).frames = items.length;
  (out as { bytes: number }).bytes = stream.length;
  return out;
}

function drawItems(rng: SeededRandom, gen: MirrorFrameGen, count: number): FuzzItem[] {
  const items: FuzzItem[] = [];
  while (items.length < count) {
    const r = rng.int(100);
    if (items.length > 0 && r < 5) {
      items.push({ ...items[rng.int(items.length)]!, kind: 'duplicate' }); // a frame delivered twice
    } else if (items.length > 1 && r < 10) {
      const i = rng.int(items.length - 1);
      [items[i], items[items.length - 1]] = [items[items.length - 1]!, items[i]!]; // two frames swapped
    } else {
      items.push(gen.item());
    }
  }
  return items;
}

/** One input alone through decodeFrame: what it was built to do, and only typed errors. */
function checkOneShot(item: FuzzItem, index: number, payloadBytesMax: number, out: CaseOutcome, fail: (f: Omit<FuzzFailure, 'target' | 'seed' | 'caseIndex'>) => void): void {
  out.kinds.add(item.kind.split(':')[0]!);
  let frame: Frame | null = null;
  let error: unknown = null;
  try {
    frame = decodeFrame(item.bytes, { payloadBytesMax });
  } catch (e) {
    error = e;
  }
  if (error !== null && !(error instanceof FrameError)) return fail({ invariant: 'crash', frame: index, message: `decodeFrame threw ${describeError(error)} on a ${item.kind} input` });
  if (error instanceof FrameError && !isTypedError(error)) return fail({ invariant: 'error-type', frame: index, message: `decodeFrame: ${describeError(error)}` });
  const expect = item.expect;
  if (expect === null) return;
  if ('frame' in expect) {
    if (frame === null) return fail({ invariant: 'expectation', frame: index, message: `a valid ${item.cover} was rejected: ${describeError(error)}` });
    if (item.cover !== undefined) out.coverage.add(item.cover);
    return checkRoundTrip(item, frame, index, fail);
  }
  if (frame !== null) return fail({ invariant: 'expectation', frame: index, message: `a ${item.kind} input was accepted as ${frameEvent(frame).slice(0, 200)}` });
  const code = (error as FrameError).code;
  if (expect.reject !== 'any' && !expect.reject.includes(code)) {
    fail({ invariant: 'expectation', frame: index, message: `a ${item.kind} input was rejected with ${code}, expected ${expect.reject.join(' or ')}: ${(error as FrameError).message}` });
  }
}

/** A valid frame decodes to the fields it was written with, and (but for HELLO's extra bytes) encodes back to the same bytes. */
function checkRoundTrip(item: FuzzItem, frame: Frame, index: number, fail: (f: Omit<FuzzFailure, 'target' | 'seed' | 'caseIndex'>) => void): void {
  const spec = item.spec!;
  const raw = rawFieldsOf(frame);
  for (const key of ['type', 'flags', 'code', 'lun', 'seq', 'lba', 'tag', 'lockId', 'count'] as const) {
    if (raw[key] !== Number(spec[key])) return fail({ invariant: 'expectation', frame: index, message: `${item.cover}: ${key} decoded as ${raw[key]}, written as ${spec[key]}` });
  }
  if (item.extended) return;
  let bytes: Uint8Array;
  try {
    bytes = encodeFrame(frame);
  } catch (e) {
    return fail({ invariant: 'expectation', frame: index, message: `${item.cover}: the decoder accepted a frame the encoder refuses: ${describeError(e)}` });
  }
  if (!sameBytes(bytes, item.bytes)) {
    fail({ invariant: 'expectation', frame: index, message: `${item.cover}: re-encoding the decoded frame gives other bytes` });
  }
}

function isTypedError(e: FrameError): boolean {
  return FRAME_ERROR_CODES.includes(e.code) && e.message.length > 0 && !e.message.includes('\n');
}

interface StreamFailure {
  invariant: FuzzFailure['invariant'];
  message: string;
  /** Stream offset of the chunk being pushed when it happened. */
  offset?: number;
}

/**
 * The largest frame a decoder may buffer: the largest payload it accepts of any type (payloadBytesMax,
 * or a HELLO's if that is more) plus the frame overhead. Worked out from the catalog and the
 * configuration, never taken from the decoder's own word.
 */
export function largestFrameBytes(gen: MirrorFrameGen): number {
  return Math.max(...gen.catalog.types.map((t) => gen.acceptedBytes(t))) + FRAME_OVERHEAD_BYTES;
}

/**
 * The chunks through a fresh decoder, then end(): its events, or null after a crash. After every
 * push the reassembly buffer and the bytes held are held to one largest frame.
 */
function streamThrough(
  make: MakeDecoder, limits: { payloadBytesMax: number; bound: number }, chunks: readonly Uint8Array[], out: CaseOutcome, fail: (f: StreamFailure) => void,
): DecodeEvent[] | null {
  const frames: (Frame | FrameError)[] = [];
  const { payloadBytesMax, bound } = limits;
  let badError: unknown = null;
  const decoder = make({
    payloadBytesMax,
    onFrame: (f) => void frames.push(f),
    onError: (e) => {
      if (!(e instanceof FrameError) || !isTypedError(e)) badError ??= e;
      frames.push(e);
    },
  });
  let offset = 0;
  for (const chunk of [...chunks, null]) {
    try {
      if (chunk === null) decoder.end();
      else decoder.push(chunk);
    } catch (e) {
      fail({ invariant: 'crash', message: `${chunk === null ? 'end()' : 'push()'} threw ${describeError(e)}`, offset });
      return null;
    }
    const capacityOk = out.maxima.observe('decoder reassembly buffer', decoder.reassemblyCapacity, bound);
    const heldOk = out.maxima.observe('decoder bytes held', decoder.bufferedBytes, bound);
    if (!capacityOk || !heldOk) {
      fail({ invariant: 'bound', message: `the decoder holds ${decoder.bufferedBytes} bytes in a ${decoder.reassemblyCapacity}-byte buffer; one largest frame is ${bound}`, offset });
      return null;
    }
    if (badError !== null) {
      fail({ invariant: 'error-type', message: `onError was given ${describeError(badError)}`, offset });
      return null;
    }
    offset += chunk?.length ?? 0;
  }
  return frames.map((f) => (f instanceof FrameError ? errorEvent(f) : frameEvent(f)));
}

function compareEvents(expected: readonly DecodeEvent[], got: readonly DecodeEvent[], fail: (message: string, eventIndex: number) => void): void {
  const n = Math.max(expected.length, got.length);
  for (let i = 0; i < n; i++) {
    if (expected[i] === got[i]) continue;
    const show = (e: DecodeEvent | undefined): string => (e === undefined ? 'nothing' : e.slice(0, 240));
    fail(`event ${i} of ${expected.length}: expected ${show(expected[i])}; the decoder said ${show(got[i])}`, i);
    return;
  }
}

/** After the hostile stream and end(): clean frames, cut anyhow, must all decode, and nothing else. */
function checkRecovery(rng: SeededRandom, gen: MirrorFrameGen, make: MakeDecoder, payloadBytesMax: number, out: CaseOutcome, fail: (f: Omit<FuzzFailure, 'target' | 'seed' | 'caseIndex'>) => void): void {
  const clean = Array.from({ length: between(rng, 1, 8) }, () => gen.valid());
  const hostile = Array.from({ length: between(rng, 1, 12) }, () => gen.item());
  const events: DecodeEvent[] = [];
  const decoder = make({ payloadBytesMax, onFrame: (f) => void events.push(frameEvent(f)), onError: (e) => void events.push(errorEvent(e)) });
  try {
    for (const h of hostile) decoder.push(h.bytes);
    decoder.end();
    events.length = 0;
    const stream = concatBytes(clean.map((c) => c.bytes));
    for (const chunk of cutStream(rng, stream, [], 'random')) decoder.push(chunk);
    decoder.end();
  } catch (e) {
    return fail({ invariant: 'crash', message: `recovery: ${describeError(e)}` });
  }
  const expected = clean.map((c) => frameEvent(decodeFrame(c.bytes, { payloadBytesMax })));
  compareEvents(expected, events, (message) => fail({ invariant: 'recovery', message: `clean frames after end(): ${message}` }));
  out.kinds.add('recoveries');
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
