/** The wire codec (docs/design.md 2.3): frame types, encoder, one-shot and streaming decoders, errors. */
export * from './frame.ts';
export { encodeFrame, encodedLength } from './encode.ts';
export { decodeFrame, FrameDecoder } from './decoder.ts';
export type { DecodeOptions, FrameDecoderOptions } from './decoder.ts';
export { FrameError, FRAME_ERROR_CODES } from './errors.ts';
export type { FrameErrorCode, FrameHeaderInfo } from './errors.ts';
