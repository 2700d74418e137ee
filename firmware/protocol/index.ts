/** The wire codec (docs/design.md 2.3): frame types, encoder, one-shot and streaming decoders, errors. */
export * from './frame.ts';
export { encodeBatch, encodeFrame, encodedLength } from './encode.ts';
export { BATCH_ENTRY_LAYOUT, LOCK_ENTRY_BYTES, UNLOCK_ENTRY_BYTES, WRITE_ENTRY_BYTES, subEntryBytes } from './batch.ts';
export type { SubEntryField } from './batch.ts';
export { RESYNC_ENTRY_LAYOUT } from './resync-entries.ts';
export type { ResyncEntryField } from './resync-entries.ts';
export { decodeFrame, FrameDecoder } from './decoder.ts';
export { FrameBufferPool, reassembledFrames } from './frame-pool.ts';
export type { DecodeOptions, FrameDecoderOptions } from './decoder.ts';
export { FrameError, FRAME_ERROR_CODES } from './errors.ts';
export type { FrameErrorCode, FrameHeaderInfo } from './errors.ts';
