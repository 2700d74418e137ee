import type { Telemetry } from '../../firmware/ports/telemetry.ts';
import type { MirrorSyncState, TelemetryEvent } from '../../firmware/telemetry/events.ts';
import type { TraceEvent, TraceSink } from '../trace/events.ts';
import { WriteHistory } from './history.ts';
import type { InvariantName, Violation } from './violation.ts';

/** Applied writes remembered outside any history (the history knew no such write in flight). */
const APPLIED_UNKNOWN_MAX = 1 << 16;

/** Frames sent that a liveness violation quotes. */
export const RECENT_FRAMES_MAX = 8;

interface Range {
  lun: number;
  lba: number;
  count: number;
}

/** A mirror lock as its grant said: its range, and for an implied lock the stream entry (WRITE) that carried it. */
interface MirrorLock extends Range {
  seq: number;
  implied?: true;
}

type FrameSent = Extract<TelemetryEvent, { kind: 'frame.sent' }>;

const lockName = (l: MirrorLock, lockId: number): string => (l.implied === true ? `implied lock ${lockId}` : `lock ${lockId}`);

const overlaps = (a: Range, lun: number, lba: number, count: number): boolean =>
  a.lun === lun && a.lba < lba + count && lba < a.lba + a.count;

/**
 * Where the entries of one rollback log are (seq -> LUN, LBA), in seq order, kept from
 * `rollback.append` until `rollback.confirm` removes them, so that a violation about an entry can
 * name its place. Parallel number arrays with a moving head: no object per entry, amortised
 * constant time. Bounded by `placesMax` (16 times the firmware's default rollback log): beyond
 * it the oldest are forgotten, and a violation about one of them names LBA 0.
 */
class PlaceLog {
  static readonly placesMax = 1 << 20;
  private seqs: number[] = [];
  private luns: number[] = [];
  private lbas: number[] = [];
  /** Sectors of a WRITE entry; 0 for LOCK and UNLOCK (they change no sector). */
  private counts: number[] = [];
  private head = 0;

  get size(): number {
    return this.seqs.length - this.head;
  }

  add(seq: number, lun: number, lba: number, writeSectors: number): void {
    // A stream restarted from a lower number (a new stream after a restart) starts a fresh log.
    if (this.size > 0 && seq <= this.seqs[this.seqs.length - 1]!) this.dropThrough(Number.MAX_SAFE_INTEGER);
    this.seqs.push(seq);
    this.luns.push(lun);
    this.lbas.push(lba);
    this.counts.push(writeSectors);
    if (this.size > PlaceLog.placesMax) this.head++;
    this.compact();
  }

  /** The sectors of `lun` the WRITE entries held change, as `[lba, count]`, in log order. */
  writesOf(lun: number): [number, number][] {
    const out: [number, number][] = [];
    for (let i = this.head; i < this.seqs.length; i++) if (this.luns[i] === lun && this.counts[i]! > 0) out.push([this.lbas[i]!, this.counts[i]!]);
    return out;
  }

  /** The oldest entry still held, if any. */
  oldest(): { seq: number; lun: number; lba: number } | null {
    return this.size === 0 ? null : this.at(this.head);
  }

  /** The entry numbered `seq`, if it is held. */
  find(seq: number): { seq: number; lun: number; lba: number } | null {
    let lo = this.head;
    let hi = this.seqs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = this.seqs[mid]!;
      if (s === seq) return this.at(mid);
      if (s < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return null;
  }

  dropThrough(seq: number): void {
    while (this.head < this.seqs.length && this.seqs[this.head]! <= seq) this.head++;
    this.compact();
  }

  private at(i: number): { seq: number; lun: number; lba: number } {
    return { seq: this.seqs[i]!, lun: this.luns[i]!, lba: this.lbas[i]! };
  }

  private compact(): void {
    if (this.head < 4096 || this.head * 2 < this.seqs.length) return;
    this.seqs = this.seqs.slice(this.head);
    this.luns = this.luns.slice(this.head);
    this.lbas = this.lbas.slice(this.head);
    this.counts = this.counts.slice(this.head);
    this.head = 0;
  }
}

/**
 * Mirror locks granted and not yet released, by target node, source peer, source session (lock
 * ids are per stream) and lock id: nested maps, so the look-up per applied write builds no key.
 */
class MirrorLockTable {
  private readonly byNode = new Map<string, Map<string, Map<number, Map<number, MirrorLock>>>>();

  get(node: string, peer: string, session: number, lockId: number): MirrorLock | undefined {
    return this.byNode.get(node)?.get(peer)?.get(session)?.get(lockId);
  }

  set(node: string, peer: string, session: number, lockId: number, lock: MirrorLock): void {
    let peers = this.byNode.get(node);
    if (!peers) this.byNode.set(node, (peers = new Map()));
    let sessions = peers.get(peer);
    if (!sessions) peers.set(peer, (sessions = new Map()));
    let locks = sessions.get(session);
    if (!locks) sessions.set(session, (locks = new Map()));
    locks.set(lockId, lock);
  }

  delete(node: string, peer: string, session: number, lockId: number): void {
    this.byNode.get(node)?.get(peer)?.get(session)?.delete(lockId);
  }

  /** Forgets every lock held on `node`. */
  dropNode(node: string): void {
    this.byNode.delete(node);
  }
}

/** What a host has outstanding on one LUN: writes issued and not yet acknowledged or failed. */
interface HostLoad {
  issued: number;
  done: number;
  /**
   * Its mirror's suspensions (docs/tag-tables.md, "Suspension"): how many began, whether one is
   * under way, and for each write in flight (by tag) that count when it was issued, times two,
   * plus one if the mirror was suspended then. A write may be acknowledged as of a suspended
   * mirror only if the mirror was suspended at some instant of its life.
   */
  suspensions: number;
  suspended: boolean;
  inFlight: Map<number, number>;
}

/**
 * The consistency checker's telemetry half (docs/design.md 2.7, docs/conventions.md 8). It subscribes to the
 * firmware's telemetry and never looks inside the firmware. On every event it checks:
 *
 * - `lock-held`: a write is applied at a target only while the mirror lock it names is granted
 *   and not yet released there, and that lock covers the write; an implied lock (one a WRITE
 *   carried, docs/implied-locks.md) belongs to that WRITE alone: it must have been granted for the
 *   same stream entry and cover exactly its sectors;
 * - `lock-exclusive`: no local lock of the target's own server overlaps it at that moment (for an
 *   implied lock as for any other);
 * - `ack-after-apply`: in `sync` and `speculative` mode a host write is acknowledged only after the
 *   target applied it (so it is on the target's disk at the moment of the ack); a write may be
 *   acknowledged on the local copy alone (mode `suspended`) only while its mirror is suspended
 *   (docs/tag-tables.md, "Suspension");
 * - `rollback-after-confirm`: a source removes rollback-log entries only up to what its target
 *   has confirmed;
 * - `firmware-error`: no chart stopped on an exception.
 *
 * It also keeps every host's write history per LUN, which the disk checks in content-checks.ts
 * use at checkpoints and at the end, and what is still outstanding (rollback-log entries with
 * their places, commit-log entries, host writes), so that a run that does not drain can be named
 * by {@link liveness}. Harness events (`link.fault`) pass through unremarked.
 */
export class ConsistencyChecker implements Telemetry, TraceSink {
  readonly enabled = true;
  readonly violations: Violation[] = [];
  private readonly mirrorLocks = new MirrorLockTable();
  private readonly localLocks = new Map<string, Range>();
  private readonly applied = new Map<string, Set<number>>();
  private readonly targetConfirmed = new Map<string, number>();
  private readonly histories = new Map<string, WriteHistory>();
  /** The same histories by node, then LUN: the per-event look-up, without building a key string. */
  private readonly historiesByNode = new Map<string, Map<number, WriteHistory>>();
  /** Rollback-log places by source node, then peer. */
  private readonly places = new Map<string, Map<string, PlaceLog>>();
  /** Commit-log entries by target node, then peer, with the LUN of the last one appended. */
  private readonly commits = new Map<string, Map<string, { entries: number; lun: number }>>();
  /** Host writes by node, then LUN. */
  private readonly hosts = new Map<string, Map<number, HostLoad>>();
  private dropped = 0;
  /** Host writes completed and stream entries newly confirmed: the watchdog's progress count. */
  private progressCount = 0;
  /** Each mirror's resync state, by source node and LUN (`mirror.state`); a mirror never reported is in sync. */
  private readonly mirrorStates = new Map<string, MirrorSyncState>();
  /** Each source's current stream to each peer (by `node|peer`): its source and target sessions and its number. */
  private readonly streams = new Map<string, { source: number; target: number; stream: number }>();
  /**
   * The last frames sent, oldest first once full (a ring of {@link RECENT_FRAMES_MAX}): the events
   * themselves (each a fresh object), put into words only when a liveness violation asks.
   */
  private readonly recentFrames: FrameSent[] = [];
  private recentFramesNext = 0;

  constructor(private readonly violationsMax = 100) {}

  /**
   * Grows whenever the run makes progress: a host write completes (acknowledged or failed), or a
   * source or target confirms entries beyond what it had confirmed. Re-confirming the same entry,
   * re-sending, rolling back or discarding does not count: a livelock does all of those.
   */
  get progress(): number {
    return this.progressCount;
  }

  /** The last frames sent (at most {@link RECENT_FRAMES_MAX}), oldest first, as `t node->peer TYPE seq`. */
  lastFramesSent(): string[] {
    const n = this.recentFrames.length;
    const ordered = n < RECENT_FRAMES_MAX ? this.recentFrames : [...this.recentFrames.slice(this.recentFramesNext), ...this.recentFrames.slice(0, this.recentFramesNext)];
    return ordered.map((e) => `t=${e.t} ${e.node}->${e.peer} ${e.type} seq ${e.seq}${e.retransmit ? ' (retransmit)' : ''}`);
  }

  /** Violations beyond `violationsMax` are counted, not kept. */
  get violationsDropped(): number {
    return this.dropped;
  }

  /** Rollback-log places held (entries appended and not yet confirmed), over every channel. */
  get rollbackPlacesHeld(): number {
    let n = 0;
    for (const peers of this.places.values()) for (const log of peers.values()) n += log.size;
    return n;
  }

  /** The write history of `node`'s host on `lun` (empty if it wrote nothing). */
  history(node: string, lun: number): WriteHistory {
    let luns = this.historiesByNode.get(node);
    if (!luns) this.historiesByNode.set(node, (luns = new Map()));
    let h = luns.get(lun);
    if (!h) {
      h = new WriteHistory();
      luns.set(lun, h);
      this.histories.set(`${node}|${lun}`, h);
    }
    return h;
  }

  report(v: Violation): void {
    if (this.violations.length < this.violationsMax) this.violations.push(v);
    else this.dropped++;
  }

  emit(e: TraceEvent): void {
    switch (e.kind) {
      case 'host.write': {
        this.history(e.node, e.lun).add(e.tag, e.lba, e.count);
        const h = this.hostLoad(e.node, e.lun);
        h.issued++;
        h.inFlight.set(e.tag, h.suspensions * 2 + (h.suspended ? 1 : 0));
        return;
      }
      case 'host.error':
        this.history(e.node, e.lun).markFailed(e.tag, e.lba, e.count);
        this.hostLoad(e.node, e.lun).done++;
        this.hostLoad(e.node, e.lun).inFlight.delete(e.tag);
        this.progressCount++;
        return;
      case 'host.ack': {
        const h = this.hostLoad(e.node, e.lun);
        h.done++;
        this.progressCount++;
        if (e.mode === 'sync' || e.mode === 'speculative') this.checkAckAfterApply(e);
        else if (e.mode === 'suspended') this.checkSuspendedAck(e, h);
        h.inFlight.delete(e.tag);
        // Only an async acknowledgement, or one of a suspended mirror, may come before the target applied the write.
        this.history(e.node, e.lun).completed(e.tag, { applied: e.mode !== 'async' && e.mode !== 'suspended' });
        return;
      }
      case 'stream.start':
        if (e.role === 'source') this.sourceStream(e);
        return;
      case 'mirror.state': {
        const h = this.hostLoad(e.node, e.lun);
        if (e.state === 'suspended' && !h.suspended) h.suspensions++;
        h.suspended = e.state === 'suspended';
        this.mirrorStates.set(`${e.node}|${e.lun}`, e.state);
        return;
      }
      case 'rollback.append':
        this.placeLog(e.node, e.peer).add(e.seq, e.lun, e.lba, e.entry === 'write' ? e.count : 0);
        return;
      case 'controller.crash':
        this.crashed(e.node, e.power);
        return;
      case 'local.applied':
        if (e.durable === false) this.history(e.node, e.lun).localApplied(e.tag, false);
        return;
      case 'local.durable':
        this.history(e.node, e.lun).localDurable(e.tag);
        return;
      case 'commit.append':
      case 'commit.confirm':
      case 'commit.discard':
        this.trackCommitLog(e);
        if (e.kind === 'commit.confirm') this.trackConfirmed(e);
        return;
      case 'target.lock':
        this.trackMirrorLock(e);
        return;
      case 'local.lock':
        if (e.result === 'granted') this.localLocks.set(`${e.node}|${e.id}`, e);
        else if (e.result === 'released') this.localLocks.delete(`${e.node}|${e.id}`);
        return;
      case 'target.apply':
        this.checkApply(e);
        return;
      case 'rollback.confirm':
        this.checkRollbackConfirm(e);
        return;
      case 'frame.sent':
        this.noteFrame(e);
        return;
      case 'firmware.error':
        this.flag('firmware-error', e.node, 0, 0, 0, e.t, `a statechart stopped on an exception: ${e.message}`);
        return;
      default:
        return;
    }
  }

  /**
   * Sectors of `lun` that writes in the stream from `node` to `peer` are changing right now: the
   * WRITE entries its rollback log holds (appended, not yet confirmed), as `[lba, count]` in
   * stream order. What resync-exact leaves out of the divergence it measures (docs/tag-tables.md,
   * "What the checker checks").
   */
  streamWrites(node: string, peer: string, lun: number): [number, number][] {
    return this.places.get(node)?.get(peer)?.writesOf(lun) ?? [];
  }

  /**
   * A source began a stream to `peer`. The first HELLO names the target of the stream already
   * under way (what its log holds stays in it); any other start is a new stream: the source's log
   * was emptied, and what it still carries is appended again after this event (a suspension
   * carries nothing: docs/tag-tables.md, "Suspension"), so the places kept for the old one go.
   */
  private sourceStream(e: Extract<TelemetryEvent, { kind: 'stream.start' }>): void {
    const key = `${e.node}|${e.peer}`;
    const was = this.streams.get(key);
    const now = { source: e.sourceSession, target: e.targetSession, stream: e.stream ?? 1 };
    this.streams.set(key, now);
    const adopted = was === undefined || (was.source === now.source && was.target === 0 && was.stream === now.stream);
    if (!adopted) this.places.get(e.node)?.delete(e.peer);
  }

  /**
   * The harness crashed `node` (docs/tag-tables.md, "Crash and power cut in the simulator"):
   * what it held in memory is gone, so the checker forgets it too (its rollback and commit logs,
   * the locks held on it, its local locks); the writes its hosts had in flight will never complete
   * (the histories of its LUNs mark them interrupted), and every other host's history owes
   * durability from now on (its mirror's target may be the one that crashed).
   */
  private crashed(node: string, power: boolean): void {
    for (const [key, h] of this.histories) {
      if (key.startsWith(`${node}|`)) h.crashed(power);
      else h.peerCrashed();
    }
    this.mirrorLocks.dropNode(node);
    for (const key of [...this.localLocks.keys()]) if (key.startsWith(`${node}|`)) this.localLocks.delete(key);
    this.places.delete(node);
    for (const key of [...this.streams.keys()]) if (key.startsWith(`${node}|`)) this.streams.delete(key);
    this.commits.delete(node);
    for (const h of this.hosts.get(node)?.values() ?? []) {
      h.done = h.issued;
      h.inFlight.clear();
    }
  }

  /**
   * A `liveness` violation for a run that did not drain, naming what the telemetry shows still
   * outstanding: first a rollback log's oldest unconfirmed entry (its source node, LUN, LBA and
   * seq), else a commit log (its target node and LUN), else a host's unacknowledged writes (its
   * node and LUN). When telemetry shows nothing outstanding (a rebuild that never ended, say), it
   * names `fallbackNode`. `why` says what was seen; the message adds every outstanding item.
   */
  liveness(why: string, tMs: number, fallbackNode = 'A'): Violation {
    const items: string[] = [];
    let where: { node: string; lun: number; lba: number; seq: number } | null = null;
    for (const [node, peers] of this.places) {
      for (const [peer, log] of peers) {
        const first = log.oldest();
        if (!first) continue;
        where ??= { node, ...first };
        items.push(`${node}->${peer} rollback log ${log.size} entries from seq ${first.seq} (LUN ${first.lun} LBA ${first.lba})`);
      }
    }
    for (const [node, peers] of this.commits) {
      for (const [peer, c] of peers) {
        if (c.entries <= 0) continue;
        where ??= { node, lun: c.lun, lba: 0, seq: 0 };
        items.push(`${node}<-${peer} commit log ${c.entries} entries`);
      }
    }
    for (const [node, luns] of this.hosts) {
      for (const [lun, h] of luns) {
        if (h.issued <= h.done) continue;
        where ??= { node, lun, lba: 0, seq: 0 };
        items.push(`${node} LUN ${lun} host ${h.issued - h.done} writes unacknowledged`);
      }
    }
    const place = where ?? { node: fallbackNode, lun: 0, lba: 0, seq: 0 };
    const outstanding = items.length > 0 ? `outstanding: ${items.join('; ')}` : 'no log entry or host write outstanding in telemetry';
    return { invariant: 'liveness', ...place, tMs, message: `${why}; ${outstanding}` };
  }

  private noteFrame(e: FrameSent): void {
    if (this.recentFrames.length < RECENT_FRAMES_MAX) this.recentFrames.push(e);
    else this.recentFrames[this.recentFramesNext] = e;
    this.recentFramesNext = (this.recentFramesNext + 1) % RECENT_FRAMES_MAX;
  }

  private placeLog(node: string, peer: string): PlaceLog {
    let peers = this.places.get(node);
    if (!peers) this.places.set(node, (peers = new Map()));
    let log = peers.get(peer);
    if (!log) peers.set(peer, (log = new PlaceLog()));
    return log;
  }

  private hostLoad(node: string, lun: number): HostLoad {
    let luns = this.hosts.get(node);
    if (!luns) this.hosts.set(node, (luns = new Map()));
    let h = luns.get(lun);
    if (!h) luns.set(lun, (h = { issued: 0, done: 0, suspensions: 0, suspended: false, inFlight: new Map() }));
    return h;
  }

  private trackCommitLog(e: Extract<TelemetryEvent, { kind: 'commit.append' | 'commit.confirm' | 'commit.discard' }>): void {
    let peers = this.commits.get(e.node);
    if (!peers) this.commits.set(e.node, (peers = new Map()));
    let c = peers.get(e.peer);
    if (!c) peers.set(e.peer, (c = { entries: 0, lun: 0 }));
    if (e.kind === 'commit.discard') c.entries = Math.max(0, c.entries - e.removed);
    else c.entries = e.entries;
    if (e.kind === 'commit.append') c.lun = e.lun;
  }

  private trackConfirmed(e: Extract<TelemetryEvent, { kind: 'commit.confirm' }>): void {
    const key = `${e.node}|${e.peer}`;
    const before = this.targetConfirmed.get(key) ?? 0;
    if (e.upTo > before) {
      this.targetConfirmed.set(key, e.upTo);
      this.progressCount++;
    }
  }

  /** Mirror locks by target, source, source session (lock ids are per stream) and lock id; an implied one keeps its WRITE's seq. */
  private trackMirrorLock(e: Extract<TelemetryEvent, { kind: 'target.lock' }>): void {
    if (e.result === 'granted') this.mirrorLocks.set(e.node, e.peer, e.sourceSession, e.lockId, e);
    else if (e.result === 'released') this.mirrorLocks.delete(e.node, e.peer, e.sourceSession, e.lockId);
  }

  private checkApply(e: Extract<TelemetryEvent, { kind: 'target.apply' }>): void {
    const lock = this.mirrorLocks.get(e.node, e.peer, e.sourceSession, e.lockId);
    if (!lock || lock.lun !== e.lun || e.lba < lock.lba || e.lba + e.count > lock.lba + lock.count) {
      const held = lock ? `${lockName(lock, e.lockId)} covers LUN ${lock.lun} [${lock.lba}, +${lock.count})` : `lock ${e.lockId} is not held`;
      this.flag('lock-held', e.node, e.lun, e.lba, e.seq, e.t, `write of ${e.count} sectors (tag ${e.tag} from ${e.peer}) applied without its mirror lock: ${held}`);
    } else if (lock.implied === true && (lock.seq !== e.seq || lock.lba !== e.lba || lock.count !== e.count)) {
      this.flag('lock-held', e.node, e.lun, e.lba, e.seq, e.t,
        `write seq ${e.seq} of ${e.count} sectors (tag ${e.tag} from ${e.peer}) applied under ${lockName(lock, e.lockId)}, which WRITE seq ${lock.seq} carried for [${lock.lba}, +${lock.count}): an implied lock belongs to its own write`);
    }
    for (const [key, local] of this.localLocks) {
      if (key.startsWith(`${e.node}|`) && overlaps(local, e.lun, e.lba, e.count)) {
        const under = lock?.implied === true ? ` under its implied lock ${e.lockId}` : '';
        this.flag('lock-exclusive', e.node, e.lun, e.lba, e.seq, e.t, `mirrored write (tag ${e.tag} from ${e.peer}) applied${under} while local lock ${key} holds [${local.lba}, +${local.count})`);
        break;
      }
    }
    // A write the source's history holds in flight is marked there; any other is remembered
    // apart, boundedly, for an acknowledgement that may still come (a history fed no host.write).
    if (this.history(e.peer, e.lun).applied(e.tag)) return;
    let set = this.applied.get(e.peer);
    if (!set) this.applied.set(e.peer, (set = new Set()));
    set.add(e.tag);
    if (set.size > APPLIED_UNKNOWN_MAX) set.delete(set.values().next().value!);
  }

  private checkAckAfterApply(e: Extract<TelemetryEvent, { kind: 'host.ack' }>): void {
    const inFlight = this.history(e.node, e.lun).appliedInFlight(e.tag);
    if (inFlight === true) return;
    if (inFlight === null && this.applied.get(e.node)?.delete(e.tag)) return;
    this.flag('ack-after-apply', e.node, e.lun, e.lba, e.tag, e.t, `host write tag ${e.tag} acknowledged in ${e.mode} mode before the target applied it`);
  }

  /**
   * A host write acknowledged on the local copy alone: only if its mirror was suspended at some
   * instant between the write's issue and now (a write taken while suspended may finish on the
   * disk after the link is back; docs/tag-tables.md, "Suspension").
   */
  private checkSuspendedAck(e: Extract<TelemetryEvent, { kind: 'host.ack' }>, h: HostLoad): void {
    if (h.suspended) return;
    const state = this.mirrorStates.get(`${e.node}|${e.lun}`) ?? 'in-sync';
    const atIssue = h.inFlight.get(e.tag);
    if (atIssue !== undefined && (atIssue % 2 === 1 || atIssue >> 1 < h.suspensions)) return;
    this.flag('ack-after-apply', e.node, e.lun, e.lba, e.tag, e.t, `host write tag ${e.tag} acknowledged as of a suspended mirror while the mirror is ${state}: only a suspended mirror acknowledges before the target applied a write`);
  }

  /**
   * Entries may leave a rollback log only up to what the target confirmed. A violation names the
   * entry at `upTo` (the one the source claimed confirmed) by its LUN and LBA, from the places
   * kept since its `rollback.append`; the places of everything up to `upTo` are then forgotten.
   */
  private checkRollbackConfirm(e: Extract<TelemetryEvent, { kind: 'rollback.confirm' }>): void {
    const confirmed = this.targetConfirmed.get(`${e.peer}|${e.node}`) ?? 0;
    const log = this.placeLog(e.node, e.peer);
    if (e.upTo > confirmed) {
      const place = log.find(e.upTo);
      const where = place ? `LUN ${place.lun} LBA ${place.lba}` : 'an entry whose place is unknown';
      this.flag('rollback-after-confirm', e.node, place?.lun ?? 0, place?.lba ?? 0, e.upTo, e.t,
        `rollback log to ${e.peer} dropped entries up to seq ${e.upTo} (${where}), but ${e.peer} has confirmed only up to ${confirmed}`);
    }
    if (e.removed > 0) this.progressCount++;
    log.dropThrough(e.upTo);
  }

  private flag(invariant: InvariantName, node: string, lun: number, lba: number, seq: number, tMs: number, message: string): void {
    this.report({ invariant, node, lun, lba, seq, tMs, message });
  }
}
