/**
 * Telemetry events: everything the firmware shows the outside world (docs/design.md 2.1, docs/conventions.md 8).
 * The consistency checker, the trace writer and the visualizer are built only on these.
 *
 * Every event carries `t` (the clock's time in ms) and `node` (the controller's name). `peer` names
 * the controller at the other end of the channel concerned. LBAs and counts are in the LUN's
 * sectors. `tag` is the source's number for one host write (unique per source controller); it
 * travels in the WRITE frame, so source-side and target-side events about one write can be joined.
 */
export type StreamEntryKind = 'lock' | 'write' | 'unlock';
export type ChannelRole = 'source' | 'target';
/** Whose counters a `counters` event carries: a channel's, the link's, the tag tables' or the resyncs' with that peer (docs/tag-tables.md). */
export type CountersRole = ChannelRole | 'link' | 'tags' | 'resync';

/**
 * What a link supervisor reports besides its chart's state changes (docs/link-supervision.md):
 * `suspect` (nothing heard for a while), `down` (silence past the interruption timeout: data
 * connections closed), `probation.start` (heartbeats heard again), `probation.restart` (a gap
 * longer than the interruption timeout during probation), `probation.passed`, `up` (connections
 * re-established and HELLO exchanged), `peer.restarted` (the peer's session id changed),
 * `incompatible` (the peer speaks a protocol version or requires a feature this firmware lacks).
 */
export type LinkSupervisionEvent =
  | 'suspect' | 'down' | 'probation.start' | 'probation.restart' | 'probation.passed' | 'up' | 'peer.restarted' | 'incompatible';

/**
 * A mirror's resynchronisation state, per LUN (docs/link-supervision.md, "Session identity";
 * docs/tag-tables.md): `suspended` is a mirror whose link stayed down past `suspendAfterMs`, whose
 * hosts are acknowledged locally while its tag table records what differs.
 */
export type MirrorSyncState = 'in-sync' | 'needs-resync' | 'resyncing' | 'suspended';

/** A range of sectors of one LUN: [lba, count]. */
export type SectorRange = readonly [lba: number, count: number];

interface Base {
  t: number;
  node: string;
}

export type TelemetryEvent =
  | (Base & { kind: 'state'; machine: string; from: string; to: string; event: string })
  /**
   * A frame put on data connection `conn` to `peer`, or taken off one. `crc` is the frame's own
   * CRC32C (its last four bytes): with type, seq, conn and bytes it names the frame, so a merger of
   * several processes' telemetry can match a receive to the send of the same bytes
   * (docs/controller-process.md 4).
   */
  | (Base & { kind: 'frame.sent'; peer: string; type: string; seq: number; lun: number; bytes: number; retransmit: boolean; conn: number; crc: number })
  | (Base & { kind: 'frame.received'; peer: string; type: string; seq: number; lun: number; bytes: number; conn: number; crc: number })
  | (Base & { kind: 'frame.error'; peer: string; code: string; message: string })
  | (Base & { kind: 'host.write'; tag: number; lun: number; lba: number; count: number })
  | (Base & { kind: 'host.ack'; tag: number; lun: number; lba: number; count: number; mode: string })
  | (Base & { kind: 'host.error'; tag: number; lun: number; lba: number; count: number; code: string; message: string })
  /** The local write is on the disk; `durable` false: not yet flushed (async: docs/tag-tables.md, "Durability"). */
  | (Base & { kind: 'local.applied'; tag: number; lun: number; lba: number; count: number; durable?: boolean })
  /** A local write `local.applied` called not durable is flushed now. */
  | (Base & { kind: 'local.durable'; tag: number; lun: number; lba: number; count: number })
  | (Base & { kind: 'rollback.append'; peer: string; seq: number; entry: StreamEntryKind; lun: number; lba: number; count: number; lockId: number; tag: number; entries: number; bytes: number })
  | (Base & { kind: 'rollback.confirm'; peer: string; upTo: number; removed: number; entries: number; bytes: number })
  | (Base & { kind: 'commit.append'; peer: string; seq: number; entry: StreamEntryKind; lun: number; entries: number; bytes: number })
  | (Base & { kind: 'commit.confirm'; peer: string; upTo: number; entries: number; bytes: number })
  | (Base & { kind: 'commit.discard'; peer: string; from: number; removed: number })
  /**
   * A mirror lock at a target; `sourceSession` names the stream it belongs to (lock ids are per
   * stream). `implied`: the lock a WRITE carried (docs/implied-locks.md), on exactly its sectors;
   * `seq` is then that WRITE's, and the lock is released once the write is applied.
   */
  | (Base & { kind: 'target.lock'; peer: string; result: 'granted' | 'rejected' | 'released'; seq: number; lockId: number; lun: number; lba: number; count: number; mode: 'read' | 'write'; sourceSession: number; implied?: true })
  /**
   * A mirrored write applied at a target, as entry `seq` of the stream from `sourceSession`
   * (`stream`: that stream's number within the session when above 1, after a suspension:
   * docs/tag-tables.md, "Suspension").
   */
  | (Base & { kind: 'target.apply'; peer: string; seq: number; lockId: number; tag: number; lun: number; lba: number; count: number; sourceSession: number; stream?: number })
  | (Base & { kind: 'local.lock'; result: 'granted' | 'queued' | 'released'; id: number; lun: number; lba: number; count: number; mode: 'read' | 'write' })
  | (Base & { kind: 'firmware.error'; message: string })
  | (Base & { kind: 'counters'; role: CountersRole; peer: string; counters: Readonly<Record<string, number>> })
  /** A controller started, with the session id it drew for this start. */
  | (Base & { kind: 'controller.start'; session: number })
  /** A data connection to `peer` changed state (`reason` says why it closed). */
  | (Base & { kind: 'link.connection'; peer: string; conn: number; state: 'opening' | 'open' | 'closed'; reason: string })
  /**
   * A heartbeat went to `peer`: this controller's session and the heartbeat's counter name it (its
   * receipt is a `heartbeat.received` with the same two), and it confirms `confirmedSeq` of the
   * peer's stream, as an ACK would: a merger of several processes' telemetry orders by it too.
   */
  | (Base & { kind: 'heartbeat.sent'; peer: string; session: number; counter: number; confirmedSeq: number })
  /** A heartbeat from `peer` arrived: its session, its counter, and `gapMs` since the previous one heard. */
  | (Base & { kind: 'heartbeat.received'; peer: string; session: number; counter: number; confirmedSeq: number; gapMs: number })
  /** The link supervisor's view of `peer` (see LinkSupervisionEvent); `lastHeardMs` is when `peer` was last heard. */
  | (Base & { kind: 'link.supervision'; peer: string; event: LinkSupervisionEvent; lastHeardMs: number; peerSession: number; detail: string })
  /**
   * A mirror stream began: `role` says which end `node` is. A stream is named by the two
   * sessions, so a restart of either side begins a new one; its sequence numbers start at `firstSeq`.
   * A suspension (docs/tag-tables.md, "Suspension") also begins a new one between the same
   * sessions: `stream` numbers it within the source's session when above 1.
   */
  | (Base & { kind: 'stream.start'; peer: string; role: ChannelRole; sourceSession: number; targetSession: number; firstSeq: number; stream?: number })
  /** A mirrored LUN's resynchronisation state on its source, and how far a resync has come. */
  | (Base & { kind: 'mirror.state'; peer: string; lun: number; state: MirrorSyncState; doneSectors: number; totalSectors: number })
  /**
   * A resync of LUN `lun` begins on its source `node` (docs/tag-tables.md, "Resync"): `resync`
   * numbers this node's resyncs of the LUN from 1. The tag tables were compared: `entriesCompared`
   * entries in both tables together, `entriesMatched` of them held by both sides (deleted, not
   * copied). `ranges` are the sectors the resync will copy, merged and sorted: the union of the
   * blocks named by unmatched entries, or the whole volume when `full` (no trustworthy table:
   * it overflowed, or a side lost its metadata). `sectors` is their total.
   */
  | (Base & { kind: 'resync.start'; peer: string; lun: number; resync: number; full: boolean; entriesCompared: number; entriesMatched: number; ranges: readonly SectorRange[]; sectors: number })
  /** One chunk of resync `resync` reached the target and was confirmed there. */
  | (Base & { kind: 'resync.chunk'; peer: string; lun: number; resync: number; lba: number; count: number })
  /** Resync `resync` copied every range it named: the mirror is in sync. `virtualMs` since its `resync.start`. */
  | (Base & { kind: 'resync.done'; peer: string; lun: number; resync: number; sectorsCopied: number; virtualMs: number })
  /** Resync `resync` stopped before it finished (another fault): a later one starts from the tables again. */
  | (Base & { kind: 'resync.abort'; peer: string; lun: number; resync: number; reason: string })
  /**
   * A controller read its metadata at start (docs/tag-tables.md, "Metadata format"): `records`
   * valid records replayed, `discarded` bytes of a torn or unchecked tail ignored, `entries` tag
   * table entries recovered (all mirrors, both roles), `blank` when the area held no metadata.
   */
  | (Base & { kind: 'metadata.recovered'; records: number; discarded: number; entries: number; blank: boolean })
  /**
   * The harness crashed `node` (a `crash=` or `power=` fault, docs/simulator.md): everything in its
   * memory is gone; with `power`, every volatile write cache of its devices too. It starts again
   * after `downForMs`. Emitted by the simulator, never by firmware.
   */
  | (Base & { kind: 'controller.crash'; power: boolean; downForMs: number });

export type TelemetryKind = TelemetryEvent['kind'];
