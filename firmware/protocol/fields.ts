import { AssertionError, assert } from '../errors.ts';
import {
  FrameType, RESYNC_ENTRY_BYTES, HEARTBEAT_PAYLOAD_BYTES, HEARTBEAT_TAGS_PAYLOAD_BYTES, HELLO_BATCH_PAYLOAD_BYTES, HELLO_PAYLOAD_BYTES, HELLO_TAGS_PAYLOAD_BYTES, frameTypeName,
} from './frame.ts';
import { batchPayloadBytes } from './batch.ts';
import type { Frame, HeartbeatFrame, HelloFrame } from './frame.ts';
import {
  HEARTBEAT_OFF_PEER_SESSION, HEARTBEAT_OFF_PEER_STREAM, HEARTBEAT_OFF_STREAM, HEARTBEAT_OFF_TOKENS, HEARTBEAT_OFF_TOKENS_BACK,
  HELLO_OFF_BATCH_BYTES_MAX, HELLO_OFF_CONNECTION, HELLO_OFF_CONNECTIONS, HELLO_OFF_FEATURES, HELLO_OFF_LOCKS_WINDOW, HELLO_OFF_PEER_SESSION,
  HELLO_OFF_PEER_STREAM, HELLO_OFF_REQUIRED, HELLO_OFF_STREAM, clearRawFields, emptyRawFields, readU16, readU32, readU64,
} from './layout.ts';
import type { RawFields } from './layout.ts';

/**
 * The per-type mapping between a {@link Frame} object and the header's raw fields, both ways.
 * HELLO reuses lba/tag/lockId/count/code as sessionId/windowBytes/controllerId/windowEntries/policy
 * (its payload fields are read here from `data` and written by the encoder); HEARTBEAT reuses
 * seq/lba/tag/lockId as counter/sessionId/confirmedSeq/controllerId, with its peerSession as payload;
 * LOCK_REJECTED carries its reason in `code` and its action in `count`. Fields a type does not
 * use stay 0 here, and rules.ts insists on it. `into` lets the encoder reuse one scratch object
 * instead of allocating one per frame.
 */
export function rawFieldsOf(frame: Frame, into: RawFields = emptyRawFields()): RawFields {
  const raw = clearRawFields(into);
  // Each case reads the common fields itself: read once before the switch, those loads would see
  // every frame type's object shape (megamorphic), and this runs for every frame encoded.
  switch (frame.type) {
    case FrameType.Hello:
      setCommon(raw, FrameType.Hello, frame.flags, frame.lun, frame.seq);
      raw.lba = frame.sessionId;
      raw.tag = frame.windowBytes;
      raw.lockId = frame.controllerId;
      raw.count = frame.windowEntries;
      raw.code = frame.policy;
      raw.payloadLength = helloPayloadBytes(frame);
      break;
    case FrameType.Lock:
      setCommon(raw, FrameType.Lock, frame.flags, frame.lun, frame.seq);
      raw.lockId = frame.lockId;
      raw.lba = frame.lba;
      raw.count = frame.count;
      raw.code = frame.mode;
      break;
    case FrameType.Write:
      setCommon(raw, FrameType.Write, frame.flags, frame.lun, frame.seq);
      // The message is built only on failure: this runs for every WRITE.
      if (!(frame.data instanceof Uint8Array)) assert(false, `WRITE seq ${frame.seq}: data must be a Uint8Array`);
      raw.lockId = frame.lockId;
      raw.lba = frame.lba;
      raw.tag = frame.tag;
      // Feature `tags`: the tokens returned, as a distance back from this entry (0: none).
      raw.count = frame.tokensBack === undefined || frame.tokensBack === 0 ? 0 : frame.seq - frame.tokensBack;
      raw.payloadLength = frame.data.length;
      break;
    case FrameType.Unlock:
    case FrameType.LockGranted:
      setCommon(raw, frame.type, frame.flags, frame.lun, frame.seq);
      raw.lockId = frame.lockId;
      break;
    case FrameType.LockRejected:
      setCommon(raw, FrameType.LockRejected, frame.flags, frame.lun, frame.seq);
      raw.lockId = frame.lockId;
      raw.code = frame.reason;
      raw.count = frame.action;
      break;
    case FrameType.Nak:
      setCommon(raw, FrameType.Nak, frame.flags, frame.lun, frame.seq);
      raw.code = frame.reason;
      break;
    case FrameType.Ack:
      setCommon(raw, FrameType.Ack, frame.flags, frame.lun, frame.seq);
      raw.tag = frame.tokens ?? 0;
      break;
    case FrameType.Heartbeat:
      setCommon(raw, FrameType.Heartbeat, frame.flags, frame.lun, frame.seq);
      raw.lba = frame.sessionId;
      raw.tag = frame.confirmedSeq;
      raw.lockId = frame.controllerId;
      raw.payloadLength = frame.tags === undefined ? HEARTBEAT_PAYLOAD_BYTES : HEARTBEAT_TAGS_PAYLOAD_BYTES;
      break;
    case FrameType.Batch:
      setCommon(raw, FrameType.Batch, frame.flags, frame.lun, frame.seq);
      raw.tag = frame.tokensBack ?? 0;
      if (!Array.isArray(frame.entries)) assert(false, `BATCH seq ${frame.seq}: entries must be an array`);
      raw.count = frame.entries.length;
      raw.payloadLength = batchPayloadBytes(frame.entries);
      break;
    case FrameType.ResyncRequest:
      setCommon(raw, FrameType.ResyncRequest, frame.flags, frame.lun, frame.seq);
      raw.lba = frame.first;
      raw.count = frame.entriesMax;
      break;
    case FrameType.ResyncData:
      setCommon(raw, FrameType.ResyncData, frame.flags, frame.lun, frame.seq);
      if (!Array.isArray(frame.entries)) assert(false, `RESYNC_DATA exchange ${frame.seq}: entries must be an array`);
      raw.lba = frame.first;
      raw.tag = frame.total;
      raw.count = frame.entries.length;
      raw.code = frame.state;
      raw.payloadLength = frame.entries.length * RESYNC_ENTRY_BYTES;
      break;
    case FrameType.ResyncDone:
    case FrameType.ResyncAck:
      setCommon(raw, frame.type, frame.flags, frame.lun, frame.seq);
      break;
    default:
      assert(false, `cannot encode a frame of unknown type ${frameTypeName((frame as { type: number }).type)}`);
  }
  return raw;
}

/** HELLO's payload length: the fields of the features it carries (frame.ts). */
export function helloPayloadBytes(frame: HelloFrame): number {
  if (frame.stream !== undefined || frame.peerStream !== undefined) return HELLO_TAGS_PAYLOAD_BYTES;
  return frame.batchBytesMax === undefined ? HELLO_PAYLOAD_BYTES : HELLO_BATCH_PAYLOAD_BYTES;
}

function setCommon(raw: RawFields, type: FrameType, flags: number, lun: number, seq: number): void {
  raw.type = type;
  raw.flags = flags;
  raw.lun = lun;
  raw.seq = seq;
}

/**
 * Builds the frame a validated header describes. `data` is the payload: a WRITE's data (already a
 * view or a copy, as the caller decided), HELLO's and HEARTBEAT's fields (read here, not kept);
 * other types ignore it. Object literals keep one shape per type.
 */
export function frameOf(raw: RawFields, data: Uint8Array): Frame {
  const { lun, seq, flags } = raw;
  switch (raw.type as FrameType) {
    case FrameType.Hello: {
      const hello: HelloFrame = {
        type: FrameType.Hello, lun, seq, flags, controllerId: raw.lockId, sessionId: raw.lba,
        windowBytes: raw.tag, windowEntries: raw.count, policy: raw.code, locksWindow: readU32(data, HELLO_OFF_LOCKS_WINDOW),
        features: readU32(data, HELLO_OFF_FEATURES), requiredFeatures: readU32(data, HELLO_OFF_REQUIRED),
        connection: readU16(data, HELLO_OFF_CONNECTION), connections: readU16(data, HELLO_OFF_CONNECTIONS),
        peerSession: readU64(data, HELLO_OFF_PEER_SESSION),
      };
      if (data.length >= HELLO_BATCH_PAYLOAD_BYTES) hello.batchBytesMax = readU32(data, HELLO_OFF_BATCH_BYTES_MAX);
      if (data.length >= HELLO_TAGS_PAYLOAD_BYTES) {
        hello.stream = readU32(data, HELLO_OFF_STREAM);
        hello.peerStream = readU32(data, HELLO_OFF_PEER_STREAM);
      }
      return hello;
    }
    case FrameType.Heartbeat: {
      const hb: HeartbeatFrame = {
        type: FrameType.Heartbeat, lun, seq, flags, controllerId: raw.lockId, sessionId: raw.lba, confirmedSeq: raw.tag,
        peerSession: readU64(data, HEARTBEAT_OFF_PEER_SESSION),
      };
      if (data.length >= HEARTBEAT_TAGS_PAYLOAD_BYTES) {
        hb.tags = {
          tokens: readU64(data, HEARTBEAT_OFF_TOKENS), tokensBack: readU64(data, HEARTBEAT_OFF_TOKENS_BACK),
          stream: readU32(data, HEARTBEAT_OFF_STREAM), peerStream: readU32(data, HEARTBEAT_OFF_PEER_STREAM),
        };
      }
      return hb;
    }
    case FrameType.Lock:
      return { type: FrameType.Lock, lun, seq, flags, lockId: raw.lockId, lba: raw.lba, count: raw.count, mode: raw.code };
    case FrameType.Write:
      // Tokens back (feature `tags`) only when there are some: a peer without the feature sends 0.
      if (raw.count !== 0) return { type: FrameType.Write, lun, seq, flags, lockId: raw.lockId, lba: raw.lba, tag: raw.tag, data, tokensBack: seq - raw.count };
      return { type: FrameType.Write, lun, seq, flags, lockId: raw.lockId, lba: raw.lba, tag: raw.tag, data };
    case FrameType.Unlock:
      return { type: FrameType.Unlock, lun, seq, flags, lockId: raw.lockId };
    case FrameType.Ack:
      if (raw.tag !== 0) return { type: FrameType.Ack, lun, seq, flags, tokens: raw.tag };
      return { type: FrameType.Ack, lun, seq, flags };
    case FrameType.LockGranted:
      return { type: FrameType.LockGranted, lun, seq, flags, lockId: raw.lockId };
    case FrameType.LockRejected:
      return { type: FrameType.LockRejected, lun, seq, flags, lockId: raw.lockId, reason: raw.code, action: raw.count };
    case FrameType.Nak:
      return { type: FrameType.Nak, lun, seq, flags, reason: raw.code };
    case FrameType.ResyncRequest:
      return { type: FrameType.ResyncRequest, lun, seq, flags, first: raw.lba, entriesMax: raw.count };
    case FrameType.ResyncDone:
    case FrameType.ResyncAck:
      return { type: raw.type, lun, seq, flags };
    default:
      throw new AssertionError(`frameOf: type ${raw.type} was not validated`);
  }
}
