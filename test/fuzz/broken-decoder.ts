import { decodeFrame, type FrameDecoderOptions } from '../../firmware/protocol/decoder.ts';
import { FrameError, magicError } from '../../firmware/protocol/errors.ts';
import { HEADER_BYTES } from '../../firmware/protocol/frame.ts';
import { MAGIC_HI, MAGIC_LO } from '../../firmware/protocol/layout.ts';
import { declaredFrameBytes } from '../../firmware/protocol/parse.ts';
import type { DecoderUnderTest } from '../../hil/fuzz/decoder-target.ts';

/**
 * A deliberately broken streaming decoder (docs/fuzzing.md 5), to show the fuzzer catching the
 * classic bug: it trusts the header's length field. Once it has a header it waits for the whole
 * declared frame, buffering every byte until then, and only judges the frame when it is all there.
 * Everything else it does like a decoder should (resynchronises on the magic, reports typed
 * errors), so what the fuzzer reports is the bug, not noise. Test code only.
 */
export class LengthTrustingDecoder implements DecoderUnderTest {
  private held = new Uint8Array(0);
  private garbage = 0;

  constructor(private readonly opts: FrameDecoderOptions) {}

  get bufferedBytes(): number {
    return this.held.length;
  }

  get reassemblyCapacity(): number {
    return this.held.length;
  }

  push(chunk: Uint8Array): void {
    const joined = new Uint8Array(this.held.length + chunk.length);
    joined.set(this.held);
    joined.set(chunk, this.held.length);
    let p = 0;
    while (p < joined.length) {
      if (joined[p] !== MAGIC_HI || (p + 1 < joined.length && joined[p + 1] !== MAGIC_LO)) {
        this.garbage++;
        p++;
        continue;
      }
      if (joined.length - p < HEADER_BYTES) break;
      const want = declaredFrameBytes(joined, p); // the bug: believed, whatever it says
      if (joined.length - p < want) break;
      this.flushGarbage();
      try {
        this.opts.onFrame(decodeFrame(joined.subarray(p, p + want), { payloadBytesMax: this.opts.payloadBytesMax }));
      } catch (e) {
        this.opts.onError(e instanceof FrameError ? e : magicError(1));
      }
      p += want;
    }
    this.held = joined.slice(p);
  }

  end(): void {
    this.flushGarbage();
    this.held = new Uint8Array(0);
  }

  private flushGarbage(): void {
    if (this.garbage > 0) this.opts.onError(magicError(this.garbage));
    this.garbage = 0;
  }
}
