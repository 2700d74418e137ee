import { MirrorlabError } from '../errors.ts';
import {
  CRC_BYTES,
  FRAME_MAGIC,
  FRAME_TYPE_NAMES,
  HEADER_BYTES,
  PROTOCOL_VERSION,
  frameTypeName,
} from './frame.ts';

/**
 * Operating errors of the wire codec (docs/conventions.md 5): bad bytes off the wire. Every decoder
 * failure is a {@link FrameError} with one of these stable codes; anything else escaping the
 * decoder is a bug.
 */
export type FrameErrorCode =
  | 'ML_ERR_FRAME_MAGIC'
  | 'ML_ERR_FRAME_VERSION'
  | 'ML_ERR_FRAME_HEADER_CRC'
  | 'ML_ERR_FRAME_TYPE'
  | 'ML_ERR_FRAME_TOO_LARGE'
  | 'ML_ERR_FRAME_CRC'
  | 'ML_ERR_FRAME_FIELD'
  | 'ML_ERR_FRAME_TRUNCATED';

export const FRAME_ERROR_CODES: readonly FrameErrorCode[] = [
  'ML_ERR_FRAME_MAGIC',
  'ML_ERR_FRAME_VERSION',
  'ML_ERR_FRAME_HEADER_CRC',
  'ML_ERR_FRAME_TYPE',
  'ML_ERR_FRAME_TOO_LARGE',
  'ML_ERR_FRAME_CRC',
  'ML_ERR_FRAME_FIELD',
  'ML_ERR_FRAME_TRUNCATED',
];

/** What a trustworthy header (its CRC matched) said about the frame an error is about. */
export interface FrameHeaderInfo {
  type: number;
  seq: number;
  lun: number;
}

export class FrameError extends MirrorlabError {
  declare readonly code: FrameErrorCode;
  /** ML_ERR_FRAME_MAGIC: how many consecutive bytes were dropped while looking for the magic. */
  readonly skippedBytes: number;
  /**
   * Set when the header CRC matched, so these are the sender's values (TYPE, TOO_LARGE, CRC and,
   * from the streaming decoder, FIELD). `type` is the raw byte: it may be an unknown type.
   */
  readonly type: number | undefined;
  readonly seq: number | undefined;
  readonly lun: number | undefined;

  constructor(code: FrameErrorCode, message: string, header?: FrameHeaderInfo, skippedBytes = 0) {
    super(code, message);
    this.skippedBytes = skippedBytes;
    this.type = header?.type;
    this.seq = header?.seq;
    this.lun = header?.lun;
  }
}

const hex = (v: number): string => `0x${v.toString(16).padStart(8, '0')}`;
const plural = (n: number, unit: string): string => `${n} ${unit}${n === 1 ? '' : 's'}`;
const whichFrame = (h: FrameHeaderInfo): string => `${frameTypeName(h.type)} seq ${h.seq} lun ${h.lun}`;
const KNOWN_TYPES = Object.entries(FRAME_TYPE_NAMES).map(([v, name]) => `${v} (${name})`).join(', ');

export function magicError(skippedBytes: number): FrameError {
  const magic = `0x${FRAME_MAGIC.toString(16).toUpperCase()} ("ML")`;
  return new FrameError(
    'ML_ERR_FRAME_MAGIC',
    `skipped ${plural(skippedBytes, 'byte')} that did not start a frame; every frame starts with the magic ${magic}`,
    undefined,
    skippedBytes,
  );
}

/**
 * A frame whose header is sound (its CRC matched: the header layout is the same in every version)
 * but which speaks another protocol version: a peer running other firmware, never noise.
 */
export function versionError(version: number, h: FrameHeaderInfo): FrameError {
  return new FrameError(
    'ML_ERR_FRAME_VERSION',
    `${whichFrame(h)} speaks protocol version ${version}; this firmware speaks version ${PROTOCOL_VERSION} ` +
      '(the peer runs other firmware: upgrade one side)',
    h,
  );
}

export function headerCrcError(carried: number, computed: number): FrameError {
  return new FrameError(
    'ML_ERR_FRAME_HEADER_CRC',
    `header CRC32C mismatch: the header carries ${hex(carried)} but its first 44 bytes give ${hex(computed)}; ` +
      'the header (and its payload length) cannot be trusted',
  );
}

export function typeError(h: FrameHeaderInfo): FrameError {
  return new FrameError(
    'ML_ERR_FRAME_TYPE',
    `unknown frame type ${h.type} (seq ${h.seq} lun ${h.lun}); known types are ${KNOWN_TYPES}`,
    h,
  );
}

/** A declared payload beyond `max`: this decoder's payloadBytesMax, or (`by` 'type') what any frame of the type carries. */
export function tooLargeError(h: FrameHeaderInfo, payloadLength: number, max: number, by: 'decoder' | 'type' = 'decoder'): FrameError {
  const limit = by === 'type'
    ? `${frameTypeName(h.type)} frames carry at most ${plural(max, 'byte')}`
    : `this decoder accepts at most ${max} (payloadBytesMax)`;
  return new FrameError('ML_ERR_FRAME_TOO_LARGE', `${whichFrame(h)} declares a payload of ${plural(payloadLength, 'byte')}; ${limit}`, h);
}

export function crcError(h: FrameHeaderInfo, carried: number, computed: number): FrameError {
  return new FrameError(
    'ML_ERR_FRAME_CRC',
    `${whichFrame(h)}: frame CRC32C mismatch (the frame carries ${hex(carried)}, its bytes give ${hex(computed)}); ` +
      'the header was sound, so the whole frame was dropped',
    h,
  );
}

/** A field outside what its frame type allows. `header` is absent only when the header is not to be trusted. */
export function fieldError(h: FrameHeaderInfo | undefined, field: string, value: string, allowed: string): FrameError {
  const where = h === undefined ? '' : `${whichFrame(h)}: `;
  return new FrameError('ML_ERR_FRAME_FIELD', `${where}${field} = ${value} is not allowed; ${allowed}`, h);
}

export function truncatedError(haveBytes: number, needBytes: number): FrameError {
  const need = needBytes === HEADER_BYTES ? `at least ${HEADER_BYTES} for the header` : `${needBytes}`;
  return new FrameError(
    'ML_ERR_FRAME_TRUNCATED',
    `input ended ${plural(haveBytes, 'byte')} into a frame that needs ${need} ` +
      `(a frame is a ${HEADER_BYTES}-byte header, its payload and a ${CRC_BYTES}-byte CRC)`,
  );
}
