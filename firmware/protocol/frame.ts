/**
 * Wire protocol frames (docs/design.md 2.3, docs/protocol.md). One codec serves every transport.
 *
 * Layout, big-endian (network order), 48-byte fixed header. The header's layout is the same in
 * every protocol version, so a receiver can always check a frame's header CRC and tell a frame
 * of another version (reported as ML_ERR_FRAME_VERSION, naming the version) from noise.
 *
 *   off size field
 *     0   2  magic        0x4D4C ("ML")
 *     2   1  version      PROTOCOL_VERSION
 *     3   1  type         FrameType
 *     4   1  flags        FrameFlag bits; unknown bits must be zero
 *     5   1  code         lock mode / NAK reason / reject reason / HELLO policy, per type
 *     6   2  lun
 *     8   8  seq          u64, at most 2^53-1 (see below for its meaning per type)
 *    16   8  lba          u64, at most 2^53-1   (HELLO, HEARTBEAT: sessionId)
 *    24   8  tag          u64, at most 2^53-1   (HELLO: windowBytes; HEARTBEAT: confirmedSeq)
 *    32   4  lockId       u32                   (HELLO, HEARTBEAT: controllerId)
 *    36   4  count        u32, sectors          (HELLO: windowEntries; LOCK_REJECTED: action)
 *    40   4  payloadLength u32, at most the decoder's payloadBytesMax
 *    44   4  headerCrc    CRC32C of bytes 0..43
 *    48   n  payload      WRITE: the data. HELLO, HEARTBEAT, BATCH: see below. Empty for every other type.
 *  48+n   4  frameCrc     CRC32C of bytes 0..48+n-1 (header and payload)
 *
 * HELLO's payload (HELLO_PAYLOAD_BYTES, and up to HELLO_PAYLOAD_BYTES_MAX):
 *     0   4  locksWindow       u32 >= 1: how many locks the receiver's stream may hold at the sender
 *     4   4  features          FeatureBit set: what the sender implements
 *     8   4  requiredFeatures  what the sender requires the receiver to implement (a subset of `features`)
 *    12   2  connection        the data connection this HELLO opens (0-based)
 *    14   2  connections       how many data connections the sender's link has
 *    16   8  peerSession       the receiver's session that the header's `seq` refers to (0: none known)
 *    24   4  batchBytesMax     u32, feature `batch` only: the largest BATCH payload the sender accepts
 *                              (its decoder's payloadBytesMax); a HELLO advertising `batch` carries it
 *                              (0 in a HELLO that carries later fields without offering `batch`)
 *    28   4  stream            u32, feature `tags`: the number of the sender's source stream to the
 *                              receiver within the sender's session (from 1; 0: it sends none). A new
 *                              number means the sender abandoned its old stream (a suspension)
 *    32   4  peerStream        u32, feature `tags`: the receiver's stream that the header's `seq` refers to
 *    36   …  reserved for later features: bytes a receiver that lacks the feature ignores
 *
 * BATCH (feature `batch`) carries `count` consecutive entries of the sender's stream, numbered
 * seq, seq + 1, ..., all of LUN `lun`, each as a compact sub-entry (layout in batch.ts): kind (the
 * stream frame type it stands for), flags, lockId, then per kind LOCK's mode, lba and count, or
 * WRITE's lba, tag, data length and data, or nothing more for UNLOCK. A receiver takes each entry
 * exactly as if it had arrived as a frame of its own; Retransmit is the BATCH's flag, never an
 * entry's.
 *
 * HEARTBEAT's payload (HEARTBEAT_PAYLOAD_BYTES): u64 peerSession, the receiver's session that
 * `confirmedSeq` refers to (0: none known). With feature `tags` (HEARTBEAT_TAGS_PAYLOAD_BYTES, sent
 * only to a peer whose HELLO offered it), four more fields (docs/tag-tables.md, "Tokens"):
 *     8   8  tokens       u64: every WRITE of the receiver's stream through this seq is durable here
 *                         (at most confirmedSeq)
 *    16   8  tokensBack   u64: tokens of the sender's own stream through this seq are back with the sender
 *    24   4  stream       u32: the sender's stream that tokensBack refers to
 *    28   4  peerStream   u32: the receiver's stream that confirmedSeq and tokens refer to
 *
 * Tokens (feature `tags`, docs/tag-tables.md, "Tokens") ride in fields these frames leave unused:
 * ACK's `tag` is the target's token watermark (every WRITE of the stream through it is durable on
 * its volume and in its table; at most the ACK's `seq`), WRITE's `count` returns tokens as a
 * distance back from its own seq (tokens through seq - count are back with the source; 0: none;
 * less than seq), BATCH's `tag` returns them as a sequence number (less than the BATCH's seq).
 *
 * The table exchange of a resync (feature `resync`, docs/tag-tables.md, "Resync"): the source of
 * the mirror of LUN `lun` numbers one exchange `seq` and asks for the target's table of it,
 * RESYNC_ENTRIES_MAX entries at most per frame:
 *   RESYNC_REQUEST  source -> target  lba: first (index of the first entry wanted), count: entriesMax
 *   RESYNC_DATA     target -> source  lba: first, tag: total (entries in the table the exchange
 *                                     reads), count: entries in this frame, code: TableState;
 *                                     payload: `count` entries of RESYNC_ENTRY_BYTES (layout in
 *                                     resync-entries.ts), first + count <= total
 *   RESYNC_DONE     source -> target  the resync finished: make its copies durable, delete every
 *                                     entry the exchange read, forget an overflow older than it
 *   RESYNC_ACK      target -> source  done (answers every RESYNC_DONE, even a repeated one)
 * None carries flags; all name the exchange in `seq` (at least 1).
 *
 * HELLO's locksWindow: the sender's lock table is shared, and a source that held more locks than
 * the table can give would fill it with its own locks, whose UNLOCKs sit behind the LOCK that waits
 * for room.
 *
 * Extending the protocol: a change a peer of this version could misread bumps PROTOCOL_VERSION;
 * anything else is a feature bit. A frame type, flag or field that only some peers understand is
 * sent only once both HELLOs advertise its feature; a sender that cannot work without it puts it
 * in requiredFeatures, and a receiver that lacks a required feature refuses the link and says
 * which one (never guessing at bytes it does not understand).
 *
 * The header carries its own CRC (like iSCSI's header digest) so that a receiver can trust the
 * length before it waits for the payload: a corrupted length never makes the decoder swallow the
 * frames behind it, and a frame whose payload is corrupt is skipped whole and reported with its
 * sequence number. The trailing CRC covers header and payload together.
 *
 * Sequence numbers: each direction of a link carries one source stream (LOCK, WRITE, UNLOCK),
 * numbered 1, 2, 3, ... by the sender; a stream belongs to one pair of sessions (source and target
 * controller starts), and a restart of either side begins a new stream at 1. Responses travel the
 * other way unnumbered and name a sequence number of the stream they answer: ACK = every entry up to
 * and including `seq` is confirmed (cumulative, as in TCP); NAK = the receiver expected `seq` next;
 * LOCK_GRANTED and LOCK_REJECTED = the LOCK that was sent with `seq`. HELLO's `seq` is the highest
 * sequence number of the peer's stream that the sender has confirmed, valid for the peer session
 * its payload names, so a reconnecting source knows where to resume. HEARTBEAT's `seq` is the
 * sender's heartbeat counter (from 1), and its `confirmedSeq` has HELLO's `seq` meaning.
 *
 * Field rules, the same for the encoder (a violation is an assert) and the decoder (a violation is
 * ML_ERR_FRAME_FIELD); the table is in rules.ts:
 * - Fields a type does not use are 0 (tokens aside, above), and so are flag bits it does not define: GrantWanted only on
 *   LOCK; Retransmit only on stream frames (LOCK, WRITE, UNLOCK), BATCH and HELLO; Ordered and
 *   ImpliedLock only on WRITE; PeerRestarted only on HELLO; Probe only on HEARTBEAT; responses
 *   carry none.
 * - `seq` >= 1 on every frame that names one entry of a stream: LOCK, WRITE, UNLOCK (the stream
 *   starts at 1), BATCH (its first entry), NAK (the entry expected next), LOCK_GRANTED and
 *   LOCK_REJECTED (the LOCK's seq, or the seq of the WRITE that carried an implied lock), and on
 *   HEARTBEAT (its counter). `seq` may be 0 on ACK and HELLO, where it means "nothing
 *   confirmed yet".
 * - `lockId` >= 1 on LOCK, WRITE, UNLOCK, LOCK_GRANTED and LOCK_REJECTED: 0 is "no lock", so a
 *   zeroed field can never name a live lock. HELLO's and HEARTBEAT's controllerId (same slot) may
 *   be any u32.
 * - HELLO's and HEARTBEAT's sessionId is at least 1: every controller start draws one.
 * - LOCK: count >= 1 and lba + count <= 2^53-1; `code` is a LockMode.
 * - WRITE: at least 1 byte of data; `count` and `code` are 0 (the sector count follows from the
 *   data length and the LUN's sector size, which the codec does not know).
 * - HELLO carries HELLO_PAYLOAD_BYTES to HELLO_PAYLOAD_BYTES_MAX of payload: locksWindow >= 1,
 *   requiredFeatures a subset of features, connection < connections, connections >= 1; with the
 *   `batch` feature at least HELLO_BATCH_PAYLOAD_BYTES, batchBytesMax >= BATCH_BYTES_MAX_MIN.
 * - BATCH: count 1 to BATCH_ENTRIES_MAX entries filling the payload exactly, each allowed by its
 *   own type's rules (as the frame it stands for would be), with seq + count - 1 <= 2^53-1; lba,
 *   tag, lockId and code 0. Its payload is bounded by the decoder's payloadBytesMax, as WRITE data.
 *   HEARTBEAT carries HEARTBEAT_PAYLOAD_BYTES (HEARTBEAT_TAGS_PAYLOAD_BYTES with `tags`). Both are accepted whatever the decoder's
 *   payloadBytesMax (which bounds WRITE data).
 * - RESYNC_REQUEST: count (entriesMax) 1 to RESYNC_ENTRIES_MAX. RESYNC_DATA: `code` a TableState,
 *   count 0 to RESYNC_ENTRIES_MAX entries filling the payload exactly, each with tag >= 1,
 *   count >= 1 and lba + count <= 2^53-1, and first + count <= total; its payload is bounded by
 *   the decoder's payloadBytesMax, as WRITE data. RESYNC_DONE and RESYNC_ACK carry only `seq`.
 *   Every resync frame's `seq` (the exchange) is at least 1, its flags 0.
 * - Every other type carries no payload (payloadLength 0).
 * - NAK's `code` is a NakReason; LOCK_REJECTED's `code` is a RejectReason and its `count` a
 *   RejectAction; HELLO's `code` is a LockRejectPolicy.
 */
export const FRAME_MAGIC = 0x4d4c;
/** Version 2: HELLO's extensible payload (features, connections, sessions) and HEARTBEAT. */
export const PROTOCOL_VERSION = 2;
export const HEADER_BYTES = 48;
export const CRC_BYTES = 4;
/** Bytes a frame adds around its payload. */
export const FRAME_OVERHEAD_BYTES = HEADER_BYTES + CRC_BYTES;
/** HELLO's payload as version 2 first defined it (see the layout above): the least a HELLO carries. */
export const HELLO_PAYLOAD_BYTES = 24;
/** HELLO's payload with the `batch` feature's field (batchBytesMax). */
export const HELLO_BATCH_PAYLOAD_BYTES = 28;
/** HELLO's payload with the `tags` feature's fields (stream, peerStream). */
export const HELLO_TAGS_PAYLOAD_BYTES = 36;
/** Most HELLO payload a decoder accepts: room for fields of features not defined yet. */
export const HELLO_PAYLOAD_BYTES_MAX = 256;
/** HEARTBEAT's payload: the u64 peerSession. */
export const HEARTBEAT_PAYLOAD_BYTES = 8;
/** HEARTBEAT's payload with the `tags` feature's fields (tokens, tokensBack, stream, peerStream). */
export const HEARTBEAT_TAGS_PAYLOAD_BYTES = 32;
/** Default largest WRITE payload a decoder accepts (1 MiB); configurable per decoder. */
export const DEFAULT_PAYLOAD_BYTES_MAX = 1024 * 1024;
/** Largest value a u64 field may hold: every number stays exact in JavaScript. */
export const U64_FIELD_MAX = Number.MAX_SAFE_INTEGER;

export enum FrameType {
  Hello = 1,
  Lock = 2,
  Write = 3,
  Unlock = 4,
  Ack = 5,
  LockGranted = 6,
  LockRejected = 7,
  Nak = 8,
  /** Link supervision: sent every heartbeat interval on the heartbeat channel (docs/link-supervision.md). */
  Heartbeat = 9,
  // Reserved; the decoder rejects it as unknown until it is defined: 10 TOKEN.
  /** Feature `resync`: the source asks for a part of the target's tag table of a mirror (docs/tag-tables.md, "Resync"). */
  ResyncRequest = 11,
  /** Feature `resync`: a part of the target's tag table of a mirror, and whether the table can be trusted. */
  ResyncData = 12,
  /** Feature `resync`: the resync of an exchange finished; the target deletes what the exchange read. */
  ResyncDone = 13,
  /** Feature `batch`: consecutive stream entries (LOCK, WRITE, UNLOCK) in one frame, as compact sub-entries. */
  Batch = 14,
  /** Feature `resync`: the target did what a RESYNC_DONE asked. */
  ResyncAck = 15,
}

export const FRAME_TYPE_NAMES: Readonly<Record<FrameType, string>> = {
  [FrameType.Hello]: 'HELLO',
  [FrameType.Lock]: 'LOCK',
  [FrameType.Write]: 'WRITE',
  [FrameType.Unlock]: 'UNLOCK',
  [FrameType.Ack]: 'ACK',
  [FrameType.LockGranted]: 'LOCK_GRANTED',
  [FrameType.LockRejected]: 'LOCK_REJECTED',
  [FrameType.Nak]: 'NAK',
  [FrameType.Heartbeat]: 'HEARTBEAT',
  [FrameType.Batch]: 'BATCH',
  [FrameType.ResyncRequest]: 'RESYNC_REQUEST',
  [FrameType.ResyncData]: 'RESYNC_DATA',
  [FrameType.ResyncDone]: 'RESYNC_DONE',
  [FrameType.ResyncAck]: 'RESYNC_ACK',
};

export enum FrameFlag {
  /** LOCK: the source waits for LOCK_GRANTED before sending data (sync mode, read locks). */
  GrantWanted = 0x01,
  /**
   * Stream frames: this is a retransmission (informational; receivers treat it the same).
   * HELLO: the sender has not heard the receiver's HELLO yet, so the receiver answers with its own.
   */
  Retransmit = 0x02,
  /** HEARTBEAT: the sender has not heard the receiver for a while; answer with a heartbeat at once. */
  Probe = 0x04,
  /**
   * HELLO: the sender knew an earlier session of the receiver, so the receiver restarted since;
   * its mirrors to the sender must be resynchronised (what it wrote before may never have arrived).
   */
  PeerRestarted = 0x08,
  /**
   * WRITE: apply only once every earlier write of the stream is on the disk (async mirrors, whose
   * copy must be a prefix of the source's writes at every instant, even on a disk that completes
   * concurrent writes in its own order).
   */
  Ordered = 0x10,
  /**
   * WRITE, feature `impliedLocks`: the write carries its own lock. The target takes lock `lockId`
   * (write mode) on exactly the sectors the write covers before applying it, as if a LOCK of those
   * sectors stood just before it in the stream (same lock table, rejection record, retry or
   * discard, LOCK_GRANTED and LOCK_REJECTED naming the WRITE's seq), and releases it once the
   * write is on the disk, as if an UNLOCK followed it. docs/implied-locks.md.
   */
  ImpliedLock = 0x20,
}
export const KNOWN_FLAGS =
  FrameFlag.GrantWanted | FrameFlag.Retransmit | FrameFlag.Probe | FrameFlag.PeerRestarted | FrameFlag.Ordered | FrameFlag.ImpliedLock;

/**
 * Optional protocol features, advertised in HELLO (`features`, `requiredFeatures`). A feature's
 * frames, flags and fields are used only when both sides advertise it; a receiver that lacks a
 * bit its peer requires refuses the link, naming it (docs/protocol.md, docs/implied-locks.md):
 * - `impliedLocks`: the ImpliedLock flag on WRITE;
 * - `batch`: the BATCH frame type, and HELLO's batchBytesMax field;
 * - `tags`: tokens (ACK's tag, WRITE's count, BATCH's tag, HEARTBEAT's longer payload) and stream
 *   numbers (HELLO's stream and peerStream), docs/tag-tables.md;
 * - `resync`: the table exchange of a resync (RESYNC_REQUEST, RESYNC_DATA, RESYNC_DONE, RESYNC_ACK).
 */
export const FEATURE_BITS = {
  impliedLocks: 0x1,
  batch: 0x2,
  tags: 0x4,
  resync: 0x8,
} as const satisfies Readonly<Record<string, number>>;
export type FeatureName = keyof typeof FEATURE_BITS;
/** Every feature this firmware implements. */
export const FEATURES_IMPLEMENTED = Object.values(FEATURE_BITS).reduce((set, bit) => set | bit, 0);

/** Names of the bits in `set` (unknown ones as `bit N`), for messages. */
export function featureNames(set: number): string[] {
  const names: string[] = [];
  for (let bit = 0; bit < 32; bit++) {
    const mask = 2 ** bit;
    if (Math.floor(set / mask) % 2 === 0) continue;
    const known = Object.entries(FEATURE_BITS).find(([, v]) => v === mask);
    names.push(known ? known[0] : `bit ${bit}`);
  }
  return names;
}

/**
 * Lock modes, with the semantics of the source text:
 * - `write`: the holder writes; others may still read the region, but not write it.
 * - `read`: the holder reads a stable region; others may neither read nor write it.
 * Two locks on overlapping ranges never coexist, whatever their modes.
 */
export enum LockMode {
  Write = 1,
  Read = 2,
}

export enum NakReason {
  /** A frame failed its CRC. */
  Corrupt = 1,
  /** A frame arrived with a sequence number beyond the one expected (something was lost). */
  Gap = 2,
  /** A field was outside what the receiver accepts (LUN, LBA range, alignment). */
  OutOfRange = 3,
  /** A WRITE arrived for a region its lock does not cover. */
  NotLocked = 4,
  /** The receiver's commit log is full (the sender overran the advertised window). */
  Overflow = 5,
  /** The receiver's disk failed the write. */
  MediaError = 6,
  /** A LOCK named a lock id the sender already holds, on another range or in another mode. */
  LockInUse = 7,
  /** A LOCK beyond the locksWindow the receiver's HELLO allows the sender to hold at once. */
  LocksExceeded = 8,
}

export enum RejectReason {
  /** The region is held by a lock local to the target. */
  LocalLock = 1,
  /** The region is held by another mirror lock. */
  MirrorLock = 2,
  /**
   * The target's lock table holds as many locks as it may (its `locksMax`): no region conflict,
   * just no room. Retried like any refusal once some lock is released.
   */
  TableFull = 3,
}

/** What the target did with a rejected LOCK, which decides what the source does next. */
export enum RejectAction {
  /** halt-resume: the target keeps the LOCK and what follows and retries; the source halts. */
  Held = 1,
  /** retransmit: the target discarded the LOCK and everything after it; the source re-sends. */
  Discarded = 2,
}

export enum LockRejectPolicy {
  HaltResume = 0,
  Retransmit = 1,
}

/** Whether the tag table a RESYNC_DATA carries names every block that may differ (docs/tag-tables.md, "Resync"). */
export enum TableState {
  /** Complete: comparing it with the source's finds every block that may differ. */
  Trusted = 1,
  /** Overflowed, lost in a restart, or none kept: the resync must copy everything. */
  Untrusted = 2,
}

interface FrameBase {
  lun: number;
  seq: number;
  flags: number;
}

export interface HelloFrame extends FrameBase {
  type: FrameType.Hello;
  controllerId: number;
  sessionId: number;
  /** Commit-log room the sender offers the peer's stream (bytes and entries). */
  windowBytes: number;
  windowEntries: number;
  policy: LockRejectPolicy;
  /** Most locks the receiver's stream may hold at the sender at once (u32, at least 1). */
  locksWindow: number;
  /** Features the sender implements, and those it requires of the receiver (u32 bit sets). */
  features: number;
  requiredFeatures: number;
  /** The data connection this HELLO opens, of `connections`. */
  connection: number;
  connections: number;
  /** The receiver's session that `seq` (the confirmed sequence number) refers to; 0 if none is known. */
  peerSession: number;
  /**
   * Feature `batch`: the largest BATCH payload the sender accepts (bytes). Present exactly when the
   * HELLO carries the field (HELLO_BATCH_PAYLOAD_BYTES or more of payload), which it must when
   * `features` has the batch bit.
   */
  batchBytesMax?: number;
  /**
   * Feature `tags` (present exactly when the HELLO carries HELLO_TAGS_PAYLOAD_BYTES or more): the
   * sender's source stream to the receiver (0: none), and the receiver's stream `seq` refers to.
   */
  stream?: number;
  peerStream?: number;
}

/** HEARTBEAT's `tags` fields (docs/tag-tables.md, "Tokens"). */
export interface HeartbeatTags {
  /** Every WRITE of the receiver's stream through this seq is durable at the sender (at most confirmedSeq). */
  tokens: number;
  /** Tokens of the sender's own stream through this seq are back with the sender. */
  tokensBack: number;
  /** The sender's stream `tokensBack` refers to, and the receiver's stream `confirmedSeq` and `tokens` refer to. */
  stream: number;
  peerStream: number;
}

export interface HeartbeatFrame extends FrameBase {
  type: FrameType.Heartbeat;
  controllerId: number;
  sessionId: number;
  /** Highest sequence number of the receiver's stream that the sender has confirmed, for `peerSession`. */
  confirmedSeq: number;
  /** The receiver's session that `confirmedSeq` refers to; 0 if none is known. */
  peerSession: number;
  /** Feature `tags`: present exactly when the payload carries them. */
  tags?: HeartbeatTags;
}

export interface LockFrame extends FrameBase {
  type: FrameType.Lock;
  lockId: number;
  lba: number;
  count: number;
  mode: LockMode;
}

export interface WriteFrame extends FrameBase {
  type: FrameType.Write;
  lockId: number;
  lba: number;
  tag: number;
  data: Uint8Array;
  /** Feature `tags`: tokens of this stream through this seq are back with the source (less than `seq`). Absent: none. */
  tokensBack?: number;
}

export interface UnlockFrame extends FrameBase {
  type: FrameType.Unlock;
  lockId: number;
}

export interface AckFrame extends FrameBase {
  type: FrameType.Ack;
  /** Feature `tags`: every WRITE of the stream through this seq is durable at the target (at most `seq`). Absent: none. */
  tokens?: number;
}

export interface LockGrantedFrame extends FrameBase {
  type: FrameType.LockGranted;
  lockId: number;
}

export interface LockRejectedFrame extends FrameBase {
  type: FrameType.LockRejected;
  lockId: number;
  reason: RejectReason;
  action: RejectAction;
}

export interface NakFrame extends FrameBase {
  type: FrameType.Nak;
  reason: NakReason;
}

/**
 * Consecutive entries of a source stream in one frame (feature `batch`): `entries[i]` has seq
 * `seq + i`, LUN `lun`, and flags of its own without Retransmit (the batch's `flags` carry that).
 * Each is taken exactly as if it had arrived as a frame of its own.
 */
export interface BatchFrame extends FrameBase {
  type: FrameType.Batch;
  entries: StreamFrame[];
  /** Feature `tags`: tokens of this stream through this seq are back with the source (less than `seq`). Absent: none. */
  tokensBack?: number;
}

/** One tag table entry on the wire: the source's tag for a write and the sectors it covers (of the frame's LUN). */
export interface ResyncEntry {
  tag: number;
  lba: number;
  count: number;
}

/** Feature `resync`: exchange `seq` of the mirror of `lun` asks for entries `first` onwards, at most `entriesMax` of them. */
export interface ResyncRequestFrame extends FrameBase {
  type: FrameType.ResyncRequest;
  first: number;
  entriesMax: number;
}

/** Feature `resync`: entries `first` to `first + entries.length - 1` of the `total` the exchange reads. */
export interface ResyncDataFrame extends FrameBase {
  type: FrameType.ResyncData;
  first: number;
  total: number;
  state: TableState;
  entries: ResyncEntry[];
}

/** Feature `resync`: exchange `seq` is over; the target settles what it read. */
export interface ResyncDoneFrame extends FrameBase {
  type: FrameType.ResyncDone;
}

/** Feature `resync`: the target did what the RESYNC_DONE of exchange `seq` asked. */
export interface ResyncAckFrame extends FrameBase {
  type: FrameType.ResyncAck;
}

export type ResyncFrame = ResyncRequestFrame | ResyncDataFrame | ResyncDoneFrame | ResyncAckFrame;

export type Frame =
  | HelloFrame
  | LockFrame
  | WriteFrame
  | UnlockFrame
  | AckFrame
  | LockGrantedFrame
  | LockRejectedFrame
  | NakFrame
  | HeartbeatFrame
  | BatchFrame
  | ResyncFrame;

/** Frames of a source stream: numbered, logged, retransmitted. */
export type StreamFrame = LockFrame | WriteFrame | UnlockFrame;
/** Frames a target sends back about a stream. */
export type ResponseFrame = AckFrame | LockGrantedFrame | LockRejectedFrame | NakFrame;

export function isStreamFrame(f: Frame): f is StreamFrame {
  return f.type === FrameType.Lock || f.type === FrameType.Write || f.type === FrameType.Unlock;
}

/** A WRITE that carries its own lock (feature `impliedLocks`). */
export function hasImpliedLock(f: StreamFrame): f is WriteFrame {
  return f.type === FrameType.Write && (f.flags & FrameFlag.ImpliedLock) !== 0;
}

export function isResyncFrame(f: Frame): f is ResyncFrame {
  return isResyncFrameType(f.type);
}

/** The frame types of feature `resync`: none of them belongs to a stream or answers one. */
export function isResyncFrameType(type: number): boolean {
  return type === FrameType.ResyncRequest || type === FrameType.ResyncData || type === FrameType.ResyncDone || type === FrameType.ResyncAck;
}

/** Most entries one RESYNC_DATA may carry (or a RESYNC_REQUEST ask for): bounds what a hostile one makes a receiver allocate. */
export const RESYNC_ENTRIES_MAX = 4096;
/** Bytes of one entry in a RESYNC_DATA payload: tag (u64), lba (u64), count (u32). */
export const RESYNC_ENTRY_BYTES = 20;

/** Most entries one BATCH may carry: bounds what a hostile BATCH makes a receiver allocate. */
export const BATCH_ENTRIES_MAX = 4096;
/** Smallest batchBytesMax a HELLO may advertise: room for a few entries at least. */
export const BATCH_BYTES_MAX_MIN = 64;

export function frameTypeName(type: number): string {
  return FRAME_TYPE_NAMES[type as FrameType] ?? `TYPE_${type}`;
}
