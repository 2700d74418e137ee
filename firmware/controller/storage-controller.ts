import { assert, MirrorlabError } from '../errors.ts';
import { PeerLink, type LinkCounters, type LinkSupervisionStats } from '../link/peer-link.ts';
import { drawSessionId } from '../link/peer-sessions.ts';
import { RegionLockTable, type LockModeName } from '../locks/region-lock-table.ts';
import { SourceChannel, type SourceCounters } from '../mirror/source-channel.ts';
import { TargetChannel, type TargetCounters } from '../mirror/target-channel.ts';
import { checkRange, sectorsOf, submitWrite, type BlockDevice } from '../ports/block-device.ts';
import type { Clock } from '../ports/clock.ts';
import type { LinkEndpoint } from '../ports/link.ts';
import type { Random } from '../ports/random.ts';
import type { Telemetry } from '../ports/telemetry.ts';
import { FRAME_OVERHEAD_BYTES, FrameType, RESYNC_ENTRIES_MAX, RESYNC_ENTRY_BYTES, type ResyncFrame } from '../protocol/frame.ts';
import type { MirrorSyncState } from '../telemetry/events.ts';
import type { MirrorTables, TableCounters } from '../tags/mirror-tables.ts';
import type { MirrorRole } from '../tags/tag-table.ts';
import { checkConfig, ConfigError, lockRegionSectorsOf, type ControllerConfig, type ControllerLimits, type LunConfig } from './config.ts';
import { ControllerTables, type TableStatus } from './controller-tables.ts';
import { GroupFlush } from './group-flush.ts';
import { MetadataStore } from '../metadata/metadata-store.ts';
import { sessionTagBase, TAG_RESERVATION, type ControllerMetadata, type OpenedMetadata } from './metadata.ts';
import { LocalLock, RegionLockedError, type LocalLockHandle } from './local-lock.ts';
import { asMirrorlabError, HostWrite, MirroredHostWrite, type HostWriteContext, type WriteDone } from './host-write.ts';
import { MirrorResync, type ResyncCounters } from './mirror-resync.ts';
import { TableResponder, type ResponderCounters } from './table-responder.ts';
import { WriteFence } from './write-fence.ts';

export type { WriteDone } from './host-write.ts';
export { RegionLockedError, type LocalLockHandle } from './local-lock.ts';

export interface PeerStatus {
  peer: string;
  source: { state: string; rollbackLog: { entries: number; bytes: number; waiting: number }; openSessions: number; counters: SourceCounters } | null;
  target: { state: string; commitLog: { entries: number; bytes: number }; heldEarly: number; counters: TargetCounters };
  link: {
    state: string;
    peerSession: number;
    connections: { conn: number; state: string; lastHeardMs: number }[];
    counters: LinkCounters;
    supervision: LinkSupervisionStats;
  };
  /**
   * The LUNs this controller mirrors to the peer, with their resynchronisation state, their resyncs'
   * counters, why the peer's table was last refused and why a resync last stopped (docs/tag-tables.md, "Resync").
   */
  mirrors: {
    lun: number; state: MirrorSyncState; doneSectors: number; totalSectors: number; resync: ResyncCounters; lastRefusal: string | null; lastAbort: string | null;
  }[];
  /** This controller's answers to the peer's resyncs (its tables of the peer's mirrors). */
  resyncTarget: ResponderCounters;
  /** The tag tables of the mirrors with this peer (docs/tag-tables.md), and their counters. */
  tables: { entries: TableStatus[]; counters: TableCounters; tokensAwaited: number; tokensOutstanding: number };
}

interface Peer {
  name: string;
  link: PeerLink;
  source: SourceChannel | null;
  target: TargetChannel;
  /** Resynchronisation of each LUN mirrored to this peer. */
  resyncs: Map<number, MirrorResync>;
  /** The target's side of the peer's resyncs: its table exchanges. */
  responder: TableResponder;
  /** We restarted and the peer said so: our mirrors to it were marked for resync (once per session). */
  restartSeen: boolean;
  /** The link has been down since this timer was set; it suspends the mirrors when it fires (docs/tag-tables.md, "Suspension"). */
  suspendTimer: unknown;
}

/** What a controller runs on: its clock, its telemetry, and a random source (its session id comes from it). */
export interface ControllerPorts {
  clock: Clock;
  telemetry: Telemetry;
  random: Random;
}

export class HostRequestError extends MirrorlabError {}

const NO_WIRE_FEATURES = Object.freeze({ implied: false, batch: false });

/**
 * A storage controller (docs/design.md 1.1): LUNs on block devices, a source channel to every peer its
 * LUNs mirror to, and a target side for every peer, so one controller is source and target at
 * once. Hosts write through {@link write}; the target's own server workload takes local locks
 * through {@link localLock}.
 *
 * Local I/O and region locks. One lock table per controller holds the peers' mirror locks on
 * this controller's copies and the local locks of its own server. Local I/O respects it:
 * - I/O on a locked region goes through the handle {@link localLock} returns: its `read` and
 *   `write` stay inside the lock, and a read lock only reads. This is how the target's server
 *   works on its copy of a volume.
 * - Unlocked I/O ({@link read}, {@link write}, {@link submitWrite}) is refused with
 *   `ML_ERR_REGION_LOCKED` where the table forbids it: a write anywhere a lock is held (a mirror
 *   lock means the peer is writing that region: a local write there would race the mirror's), a
 *   read under a read lock. It is checked when the request is submitted: a lock granted while an
 *   unlocked request is on the disk does not wait for it (take a local lock to be sure).
 *
 * Host acknowledgement by mode: `sync` and `speculative` acknowledge once the local write is done
 * and the target confirmed the mirrored write; `async` once the local write is done and the
 * rollback log took the write (a full log makes the host wait).
 *
 * Links and sessions (docs/link-supervision.md). Each peer has a `PeerLink`: data connections,
 * heartbeats, and the supervisor chart that decides whether the link is up. Every start of a
 * controller draws a session id; when a peer's session changes (it restarted), both streams with
 * it start afresh and the LUNs mirrored to it are resynchronised in the background (a full copy
 * for now), with host writes fenced per chunk being copied.
 */
export class StorageController {
  readonly name: string;
  readonly limits: ControllerLimits;
  /** This start's session id (docs/link-supervision.md, "Session identity"). */
  readonly session: number;
  private readonly luns = new Map<number, LunConfig>();
  private readonly wire = new Map<number, { implied: boolean; batch: boolean }>();
  private readonly peers = new Map<string, Peer>();
  private readonly fences = new Map<number, WriteFence>();
  private readonly locks: RegionLockTable;
  private readonly writeContext: HostWriteContext;
  private readonly tables: ControllerTables;
  private readonly flushes = new Map<BlockDevice, GroupFlush>();
  /** The metadata store (null: no metadata device, tables in memory only). */
  private readonly metadata: ControllerMetadata | null;
  /** Highest tag used so far, and (with a metadata device) the first tag not yet reserved. */
  private tags = 0;
  /** Per mirrored LUN, how many host writes of each tag are on their way through the mirror (kept only with tag tables). */
  private readonly inMirror = new Map<number, Map<number, number>>();
  private tagsReserved = Infinity;
  private localLocks = 0;
  private writesInFlight = 0;
  private started = false;
  private stopped = false;
  private failed: unknown = null;

  /**
   * `opened`: the controller's metadata store, opened and recovered beforehand (docs/tag-tables.md,
   * "Metadata"); see {@link StorageController.recover} for building one from a metadata device.
   * Without it the tables live in memory only and a restart means a full resync.
   */
  constructor(private readonly cfg: ControllerConfig, private readonly ports: ControllerPorts, opened?: OpenedMetadata) {
    this.limits = checkConfig(cfg);
    this.name = cfg.name;
    this.session = drawSessionId(ports.random);
    for (const l of cfg.luns) {
      this.luns.set(l.lun, l);
      if (l.mirror) this.fences.set(l.lun, new WriteFence());
      if (l.mirror) this.wire.set(l.lun, { implied: l.mirror.locks === 'implied', batch: l.mirror.batch === true });
    }
    this.locks = new RegionLockTable({ locksMax: this.limits.locksMax, localWaitersMax: this.limits.localLockWaitersMax });
    this.writeContext = {
      node: this.name, clock: ports.clock, telemetry: ports.telemetry, finished: () => this.writesInFlight--,
      mirrorDone: (lun, tag) => this.leftMirror(lun, tag),
    };
    this.metadata = opened?.store ?? null;
    this.tables = new ControllerTables(this.limits.tagEntriesMax, this.metadata, (key) => this.mirrorMeta(key.peer, key.lun, key.role));
    // Tags never used before (docs/tag-tables.md, "Tag tables"): above what the metadata reserved,
    // or, with none recovered (no device, or a blank one), from this session's own block.
    const recovered = opened !== undefined && !opened.recovered.blank;
    this.tags = (recovered ? Math.max(1, opened.recovered.tagBase) : sessionTagBase(this.session)) - 1;
    this.recovered = opened?.recovered ?? null;
    for (const l of cfg.luns) if (l.mirror) this.inMirror.set(l.lun, new Map());
  }

  /** What the metadata store recovered at start (applied to the tables as peers connect), or null. */
  private readonly recovered: OpenedMetadata['recovered'] | null;

  /**
   * What this start found on its metadata device (as its `metadata.recovered` event says): null
   * without one; `blank` on a device that held no metadata (a first start).
   */
  get metadataRecovered(): { blank: boolean; session: number; records: number; discarded: number; entries: number } | null {
    const r = this.recovered;
    if (r === null) return null;
    return { blank: r.blank, session: r.session, records: r.records, discarded: r.discarded, entries: r.mirrors.reduce((n, m) => n + m.entries.length, 0) };
  }

  /**
   * A controller with its metadata recovered (docs/tag-tables.md, "Metadata"): the metadata device
   * of `cfg` is opened and read first (a torn or unchecked tail is ignored, never trusted), then
   * the controller is built on what it held. Without a metadata device, the same as the constructor.
   * Rejects with a typed error for a device too small for the store, and with the device's errors.
   */
  static async recover(cfg: ControllerConfig, ports: ControllerPorts): Promise<StorageController> {
    if (cfg.metadata === undefined) return new StorageController(cfg, ports);
    const opened = await MetadataStore.open(cfg.metadata, cfg.metadataOptions ?? {});
    return new StorageController(cfg, ports, opened);
  }

  /** Connect to a peer over `endpoint`. Every peer a LUN mirrors to must be connected before `start`. */
  connect(peer: string, endpoint: LinkEndpoint): void {
    assert(!this.started && !this.peers.has(peer), `connect ${peer}: already connected, or the controller already started`);
    const { clock, telemetry } = this.ports;
    const L = this.limits;
    const onError = (err: unknown): void => this.fail(err);
    // The channels send through the link, which is built last because it routes to them.
    const late: { link?: PeerLink } = {};
    const base = { node: this.name, peer, clock, telemetry, onError };
    const mirrored = this.cfg.luns.filter((l) => l.mirror?.peer === peer);
    this.tables.addPeer(peer, this.cfg.luns);
    const source = mirrored.length > 0
      ? new SourceChannel(
          {
            rollbackLogEntriesMax: L.rollbackLogEntriesMax, rollbackLogBytesMax: L.rollbackLogBytesMax, sendWindowBytesMax: L.sendWindowBytesMax,
            lockSessionsMax: L.lockSessionsMax, lockSessionIdleMs: L.lockSessionIdleMs,
            ackTimeout: { initialMs: L.ackTimeoutInitialMs, minMs: L.ackTimeoutMinMs, maxMs: L.ackTimeoutMaxMs },
            haltProbeMs: L.haltProbeMs, lockRetryDelayMs: L.lockRetryDelayMs, grantProbeMs: L.grantProbeMs,
            regionSectors: (lun) => this.regionSectors(lun),
            wire: (lun) => this.wireOf(lun), batchBytesMax: L.payloadBytesMax, tokens: this.tables.sourceDeps(peer), spill: this.cfg.rollbackSpill?.(peer),
          },
          { ...base, session: this.session, send: (bytes, retransmit) => late.link!.sendStream(bytes, retransmit) },
        )
      : null;
    const target = new TargetChannel(
      {
        commitLogEntriesMax: L.commitLogEntriesMax, commitLogBytesMax: L.commitLogBytesMax, ackDelayMs: L.ackDelayMs, nakRetryMs: L.nakRetryMs,
        lockRetryMs: L.lockRetryMs, policy: this.cfg.onLockReject, locksWindow: () => this.locksWindow(),
        tokens: this.tables.targetDeps(peer, (luns, done) => this.makeDurable(luns, done)),
      },
      { ...base, send: (bytes) => late.link!.sendControl(bytes), locks: this.locks, device: (lun) => this.copyOf(lun, peer) },
    );
    const resyncs = new Map(mirrored.map((l) => [l.lun, this.resyncFor(l, peer, source!, (bytes) => late.link!.sendControl(bytes))] as const));
    const responder = new TableResponder({
      table: (lun) => this.tablesOf(peer, lun, 'target'), device: (lun) => this.copyOf(lun, peer), send: (bytes) => late.link!.sendControl(bytes),
    });
    const entry: Peer = { name: peer, link: null as unknown as PeerLink, source, target, resyncs, responder, restartSeen: false, suspendTimer: null };
    const link = new PeerLink(
      {
        controllerId: this.cfg.id, session: this.session, payloadBytesMax: L.payloadBytesMax, controlQueueMax: L.controlQueueMax,
        helloRetryMs: L.helloRetryMs, heartbeatMs: L.heartbeatMs, interruptionMs: L.interruptionMs, probationMs: L.probationMs,
        connectRetryMs: L.connectRetryMs, policy: this.cfg.onLockReject,
      },
      { ...base, endpoint },
      source,
      target,
      {
        peerRestarted: () => {
          responder.reset();
          this.markResync(entry, `${peer} restarted`);
        },
        weRestarted: () => {
          if (entry.restartSeen) return;
          entry.restartSeen = true;
          // Without recovered metadata our tables may lack what the previous start held.
          if (this.recovered === null || this.recovered.blank) for (const t of this.tables.ofPeer(peer)) t.markLost();
          this.markResync(entry, `${this.name} restarted`);
        },
        linkUp: (features) => this.peerUp(entry, features),
        linkDown: () => this.peerDown(entry),
        resyncFrame: (f) => this.onResyncFrame(entry, f),
      },
    );
    late.link = entry.link = link;
    this.peers.set(peer, entry);
    this.recoverTables(peer);
  }

  private resyncFor(l: LunConfig, peer: string, source: SourceChannel, send: (bytes: Uint8Array) => void): MirrorResync {
    const L = this.limits;
    const sectorSize = l.device.sectorSize;
    const inMirror = this.inMirror.get(l.lun);
    return new MirrorResync(
      {
        node: this.name, peer, lun: l.lun, mode: l.mirror!.mode,
        chunkSectors: Math.max(1, Math.floor(Math.min(L.resyncChunkBytes, L.payloadBytesMax) / sectorSize)),
        chunksInFlightMax: L.resyncChunksInFlightMax, retryMs: L.resyncRetryMs, peerEntriesMax: L.resyncEntriesMax,
        // As many entries as one RESYNC_DATA our decoder takes can carry.
        entriesPerRequest: Math.min(RESYNC_ENTRIES_MAX, Math.floor(L.payloadBytesMax / RESYNC_ENTRY_BYTES)),
      },
      {
        clock: this.ports.clock, telemetry: this.ports.telemetry, device: l.device, fence: this.fences.get(l.lun)!,
        submit: (w) => source.submit(w),
        failed: (error) => this.fail(error),
        table: () => this.tablesOf(peer, l.lun, 'source'),
        inMirror: (tag) => inMirror?.has(tag) === true,
        send,
        // The mirror's resync state persists with its table's metadata (docs/tag-tables.md, "Metadata").
        stateChanged: () => this.tablesOf(peer, l.lun, 'source')?.persistMeta(),
      },
    );
  }

  private markResync(p: Peer, reason: string): void {
    for (const r of p.resyncs.values()) r.markNeeded(reason);
  }

  /**
   * A frame of a table exchange: a request or the end of one is about the peer's mirror, whose copy
   * is here (the responder's); data and acknowledgements answer a resync of ours. One about a LUN
   * this controller does not mirror to the peer is counted and dropped.
   */
  private onResyncFrame(p: Peer, f: ResyncFrame): void {
    if (f.type === FrameType.ResyncRequest) return p.responder.onRequest(f);
    if (f.type === FrameType.ResyncDone) return p.responder.onDone(f);
    const r = p.resyncs.get(f.lun);
    if (r !== undefined) r.onFrame(f);
    else p.responder.counters.framesIgnored++;
  }

  /** A mirrored write is no longer on its way through the mirror: confirmed, refused, or left behind by a suspension. */
  private leftMirror(lun: number, tag: number): void {
    const tags = this.inMirror.get(lun);
    const n = tags?.get(tag) ?? 0;
    if (n > 1) tags!.set(tag, n - 1);
    else tags?.delete(tag);
  }

  // ---- suspension (docs/tag-tables.md, "Suspension") ----------------------------------------

  /** The link to `p` went down: its mirrors are suspended if it stays down for `suspendAfterMs`. */
  private peerDown(p: Peer): void {
    // Exchanges end with the link; a resync under way stops (docs/tag-tables.md, "Resync").
    p.responder.reset();
    for (const r of p.resyncs.values()) r.linkDown();
    if (p.suspendTimer !== null || p.source === null || p.source.isSuspended) return;
    p.suspendTimer = this.ports.clock.setTimeout(() => {
      p.suspendTimer = null;
      this.suspend(p);
    }, this.limits.suspendAfterMs);
  }

  /**
   * Suspend the mirrors to `p`: their hosts are acknowledged locally, the stream's backlog goes,
   * and the source's tag tables name what differs until the resync after the link is back. Only
   * with a peer that offers tokens (feature `tags`): with any other the tables are not kept, and
   * hosts wait for the link as they always did.
   */
  private suspend(p: Peer): void {
    if (!p.link.tagsOffered || p.link.isUp || this.stopped) return;
    for (const r of p.resyncs.values()) r.suspend();
    p.source!.suspend();
    for (const t of this.tables.ofPeer(p.name)) if (t.key.role === 'source') t.persistMeta();
  }

  /**
   * The link to `p` is up, with the features both sides implement: no suspension is due; a
   * suspended mirror resumes and needs a resync; a resync needed starts.
   */
  private peerUp(p: Peer, features: number): void {
    if (p.suspendTimer !== null) this.ports.clock.clearTimeout(p.suspendTimer);
    p.suspendTimer = null;
    // A peer without tokens: no table is kept with it (what went in before its HELLO said so is void).
    if (!p.link.tagsOffered) for (const t of this.tables.ofPeer(p.name)) if (t.trusted) t.forget();
    if (p.source?.isSuspended) {
      p.source.resume();
      for (const r of p.resyncs.values()) r.resume();
    }
    for (const r of p.resyncs.values()) r.linkUp(features);
  }

  // ---- tables and durability (docs/tag-tables.md) ---------------------------------------------

  /**
   * The tag table of the mirror of `lun` with `peer`, on this controller's side `role`, and whether
   * it can be trusted (`trusted`: never lost since it was last known complete). Undefined if no
   * such mirror can exist here (an unknown peer or LUN, or the wrong role).
   */
  tablesOf(peer: string, lun: number, role: MirrorRole): MirrorTables | undefined {
    return this.tables.get(peer, lun, role);
  }

  /** The persisted state of a mirror: its resync state on the source, in sync on the target. */
  private mirrorMeta(peer: string, lun: number, role: MirrorRole): { state: MirrorSyncState; doneSectors: number } {
    const r = role === 'source' ? this.peers.get(peer)?.resyncs.get(lun) : undefined;
    return r ? { state: r.state, doneSectors: r.progress.doneSectors } : { state: 'in-sync', doneSectors: 0 };
  }

  /** Recovered entries and overflow flags of `peer`'s mirrors go into its tables. */
  private recoverTables(peer: string): void {
    for (const m of this.recovered?.mirrors ?? []) {
      if (m.key.peer !== peer) continue;
      this.tables.get(peer, m.key.lun, m.key.role)?.recover(m.entries, m.meta.overflowed);
    }
  }

  /** The group flush of `dev` (docs/tag-tables.md, "Durability"). */
  private flusher(dev: BlockDevice): GroupFlush {
    let f = this.flushes.get(dev);
    if (f === undefined) this.flushes.set(dev, (f = new GroupFlush(dev)));
    return f;
  }

  /**
   * Make what was applied to `luns` durable, then the metadata: what a target does before its
   * token watermark moves (docs/tag-tables.md, "Tokens").
   */
  private makeDurable(luns: ReadonlySet<number>, done: (error?: unknown) => void): void {
    let left = luns.size;
    let failure: unknown = undefined;
    const flushed = (error?: unknown): void => {
      failure ??= error;
      if (--left > 0) return;
      if (failure !== undefined || this.metadata === null) return done(failure);
      this.metadata.commit().then(() => done(), (error: unknown) => done(error ?? new Error('metadata commit failed')));
    };
    for (const lun of luns) {
      const dev = this.luns.get(lun)?.device;
      if (dev === undefined) flushed();
      else this.flusher(dev).after(flushed);
    }
  }

  start(): void {
    assert(!this.started, 'controller already started');
    if (this.metadata !== null) {
      // This start's session and the tags it may use are committed at once (host writes wait for
      // that commit anyway): a restart must find that a start came before it, even one that never
      // wrote. A failed commit is retried by the next one (the store then writes a checkpoint).
      this.metadata.setSession(this.session);
      this.tagsReserved = this.tags + 1 + TAG_RESERVATION;
      this.metadata.reserveTags(this.tagsReserved);
      this.metadata.commit().catch(() => undefined);
    }
    for (const l of this.cfg.luns) {
      if (l.mirror) assert(this.peers.has(l.mirror.peer), `LUN ${l.lun} mirrors to ${l.mirror.peer}, which is not connected`);
    }
    if (this.limits.locksMax < this.peers.size) {
      throw new ConfigError(`locksMax (${this.limits.locksMax}) must be at least the number of peers (${this.peers.size}): each peer's stream needs a share of the lock table`);
    }
    this.started = true;
    const t = this.ports.telemetry;
    if (t.enabled) t.emit({ kind: 'controller.start', t: this.ports.clock.now(), node: this.name, session: this.session });
    const r = this.recovered;
    if (r !== null && t.enabled) {
      const entries = r.mirrors.reduce((n, m) => n + m.entries.length, 0);
      t.emit({ kind: 'metadata.recovered', t: this.ports.clock.now(), node: this.name, records: r.records, discarded: r.discarded, entries, blank: r.blank });
    }
    for (const p of this.peers.values()) for (const r of p.resyncs.values()) r.controllerStarted();
    // Metadata from an earlier start says this is a restart (docs/tag-tables.md, "Metadata"): what
    // that start wrote may never have reached the peer, whether or not the peer notices the restart
    // (it may have restarted too, and know no session of ours).
    if (r !== null && !r.blank) {
      for (const p of this.peers.values()) {
        p.restartSeen = true;
        this.markResync(p, `${this.name} restarted (its metadata holds an earlier start)`);
      }
    }
    for (const p of this.peers.values()) {
      p.source?.start();
      p.target.start();
    }
    for (const p of this.peers.values()) p.link.start();
  }

  stop(): void {
    this.stopped = true;
    for (const p of this.peers.values()) {
      if (p.suspendTimer !== null) this.ports.clock.clearTimeout(p.suspendTimer);
      p.suspendTimer = null;
      p.link.stop();
      p.source?.stop();
      p.target.stop();
      p.responder.stop();
      for (const r of p.resyncs.values()) r.stop();
    }
  }

  /** A firmware bug that stopped a chart (an action threw), or null. */
  get failure(): unknown {
    return this.failed;
  }

  // ---- host I/O ----------------------------------------------------------------------------

  /** Write `data` at `lba` of `lun`; resolves when the host may consider it done (see class doc). */
  write(lun: number, lba: number, data: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.submitWrite(lun, lba, data, (err) => (err ? reject(err) : resolve())));
  }

  /**
   * The same as {@link write} with a callback: what a workload generator on the hot path uses, since
   * it costs no promise and its continuation runs at the exact virtual instant of the ack.
   * Bad requests fail with a typed error through `done`, never by throwing.
   *
   * `hostTag` lets the host name the write, as an NVMe host names its commands; it travels with
   * the write to the target and through telemetry. Without it the controller numbers writes
   * itself, after the largest tag seen.
   */
  submitWrite(lun: number, lba: number, data: Uint8Array, done: WriteDone, hostTag?: number): void {
    const cfg = this.luns.get(lun);
    const problem = this.checkWrite(cfg, lun, lba, data) ?? this.checkTag(hostTag);
    if (problem) {
      // Never call back before returning: a host that issues its next write from the callback
      // would otherwise recurse once per rejected write.
      this.ports.clock.setTimeout(() => done(problem), 0);
      return;
    }
    const dev = cfg!.device;
    const count = data.length / dev.sectorSize;
    const tag = hostTag ?? this.tags + 1;
    this.tags = Math.max(this.tags, tag);
    const mirror = cfg!.mirror;
    this.writesInFlight++;
    if (mirror) {
      const inMirror = this.inMirror.get(lun);
      if (inMirror !== undefined) inMirror.set(tag, (inMirror.get(tag) ?? 0) + 1);
      const write = new MirroredHostWrite(this.writeContext, tag, lun, lba, count, data, done, mirror.mode);
      const peer = this.peers.get(mirror.peer)!;
      this.enter(peer, write);
      // With a metadata store the entry is durable before the data goes anywhere (docs/tag-tables.md, "Tag tables").
      if (this.metadata === null) this.fenced(dev, peer.source!, write);
      else {
        this.metadata.commit().then(() => this.fenced(dev, peer.source!, write), (error: unknown) => {
          if (this.stopped) return;
          this.leftMirror(lun, tag); // it never reaches the mirror
          write.failWhole(error ?? new Error('metadata commit failed'));
        });
      }
    } else {
      const write = new HostWrite(this.writeContext, tag, lun, lba, count, data, done);
      write.issued();
      submitWrite(dev, lba, data, (err) => write.localWritten(err));
    }
  }

  /**
   * A mirrored write enters the source's tag table when it is accepted (unless the peer keeps no
   * tokens with us: then no table is kept); with a metadata store, its tag is reserved there too.
   */
  private enter(p: Peer, w: MirroredHostWrite): void {
    const table = this.tables.get(p.name, w.lun, 'source');
    if (table === undefined || p.link.tagsRefused) return;
    table.add({ tag: w.tag, lun: w.lun, lba: w.lba, count: w.count });
    if (this.metadata !== null && w.tag >= this.tagsReserved) {
      this.tagsReserved = w.tag + TAG_RESERVATION;
      this.metadata.reserveTags(this.tagsReserved);
    }
  }

  /** An overlapping write still on the disk, or a resync copying this range, holds it back. */
  private fenced(dev: BlockDevice, source: SourceChannel, write: MirroredHostWrite): void {
    if (this.stopped) return;
    const fence = this.fences.get(write.lun)!;
    if (fence.blocks(write.lba, write.count)) fence.hold(write.lba, write.count, () => this.startMirrored(dev, fence, source, write));
    else this.startMirrored(dev, fence, source, write);
  }

  /**
   * The local write and the mirrored one start together. The local half is done once the write is
   * durable (sync, speculative) or on the disk (async); either way a group flush follows, after
   * which the write's tag-table entry may go once its token is in (docs/tag-tables.md, "Durability").
   */
  private startMirrored(dev: BlockDevice, fence: WriteFence, source: SourceChannel, write: MirroredHostWrite): void {
    // A fence released after a crash: the crashed controller issues nothing more (its memory is gone).
    if (this.stopped) return;
    write.issued();
    const token = fence.started(write.lba, write.count);
    submitWrite(dev, write.lba, write.data, (err) => {
      fence.finished(token);
      if (err !== undefined) return write.localWritten(err);
      if (!write.waitsForFlush) write.localWritten(undefined);
      this.flusher(dev).after((error) => {
        write.durable = error === undefined;
        if (write.waitsForFlush) write.localWritten(error);
        if (write.durable) source.localDurable();
      });
    });
    source.submit(write);
  }

  /** Read without a lock: refused under someone's read lock (see the class doc). */
  read(lun: number, lba: number, count: number): Promise<Uint8Array> {
    const cfg = this.luns.get(lun);
    if (!cfg) return Promise.reject(new HostRequestError('ML_ERR_NO_LUN', `${this.name} has no LUN ${lun} (LUNs: ${[...this.luns.keys()].join(', ')})`));
    if (!this.locks.mayRead(lun, lba, count)) {
      return Promise.reject(new RegionLockedError(`${this.name}: read of LUN ${lun} [${lba}, +${count}) is under a read lock; read through a local lock's handle, or after the lock is released`));
    }
    return cfg.device.read(lba, count);
  }

  /**
   * A lock taken by the target's own server workload on its copy of a LUN. Waits (FIFO) while
   * the region is locked, while a refused mirror lock on it is being retried, or while the lock
   * table is full. The handle's `read`/`write` are the I/O its holder may do on the region.
   */
  localLock(lun: number, lba: number, count: number, mode: LockModeName): Promise<LocalLockHandle> {
    const cfg = this.luns.get(lun);
    if (!cfg) return Promise.reject(new HostRequestError('ML_ERR_NO_LUN', `${this.name} has no LUN ${lun}`));
    try {
      checkRange(cfg.device, lba, count);
    } catch (err) {
      return Promise.reject(err);
    }
    const id = ++this.localLocks;
    const owner = { kind: 'local' as const, id };
    return new Promise((resolve) => {
      const result = this.locks.acquireLocal({ lun, lba, count, mode, owner }, () => {
        this.emitLocalLock('granted', id, lun, lba, count, mode);
        const released = (): void => this.emitLocalLock('released', id, lun, lba, count, mode);
        resolve(new LocalLock(this.locks, owner, cfg.device, cfg.mirror !== undefined, lun, lba, count, mode, released));
      });
      if (result === 'queued') this.emitLocalLock('queued', id, lun, lba, count, mode);
    });
  }

  /** A read lock on the peer's copy of a region of a mirrored LUN; granted only once the peer holds it. */
  readLock(lun: number, lba: number, count: number): Promise<{ release(): void }> {
    const cfg = this.luns.get(lun);
    const source = cfg?.mirror ? this.peers.get(cfg.mirror.peer)?.source : undefined;
    if (!cfg || !source) return Promise.reject(new HostRequestError('ML_ERR_NO_LUN', `${this.name} has no mirrored LUN ${lun}`));
    // Behind the host's earlier writes, which may still wait for their tag-table entries' commit.
    const metadata = this.metadata;
    return new Promise((resolve) => {
      const ask = (): void => source.requestReadLock(lun, lba, count, (release) => resolve({ release }));
      if (metadata === null) ask();
      else metadata.commit().then(ask, ask);
    });
  }

  // ---- observation -------------------------------------------------------------------------

  /**
   * Nothing in flight: no host write pending, every rollback and commit log empty, and every
   * mirror in sync (a resync needed or under way is work outstanding). A stopped controller (a
   * crashed one, until its restart replaces it) never is: what it held is lost, not done.
   */
  quiescent(): boolean {
    if (this.writesInFlight > 0 || this.stopped) return false;
    for (const p of this.peers.values()) {
      if (p.source && (p.source.rollbackLog.entries > 0 || p.source.rollbackLog.waiting > 0)) return false;
      if (p.target.commitLog.entries > 0 || p.target.heldEarly > 0) return false;
      for (const r of p.resyncs.values()) if (r.state !== 'in-sync') return false;
    }
    return true;
  }

  /**
   * Quiescent, every lock session closed, every link up, and no rejection record left: the mirrors
   * hold no locks on each other and nothing holds back local locks. A rejection record that
   * outlives its retry would block local locks on its region for ever, so the emulator's liveness
   * check sees it here.
   */
  settled(): boolean {
    if (!this.quiescent()) return false;
    for (const p of this.peers.values()) {
      if (p.source && p.source.openSessions > 0) return false;
      if (!p.link.isUp || !p.target.settled) return false;
    }
    return this.locks.size === 0 && this.locks.rejectionCount === 0;
  }

  /** The target-side lock table: locks held, rejection records, local lock requests waiting. */
  get lockTable(): { locks: number; rejections: number; localWaiting: number } {
    return { locks: this.locks.size, rejections: this.locks.rejectionCount, localWaiting: this.locks.waitingLocal };
  }

  /** The controller's numeric id (sent in HELLO). */
  get id(): number {
    return this.cfg.id;
  }

  get hostWritesInFlight(): number {
    return this.writesInFlight;
  }

  status(): PeerStatus[] {
    return [...this.peers.values()].map((p) => ({
      peer: p.name,
      source: p.source ? { state: p.source.state, rollbackLog: p.source.rollbackLog, openSessions: p.source.openSessions, counters: { ...p.source.counters } } : null,
      target: { state: p.target.state, commitLog: p.target.commitLog, heldEarly: p.target.heldEarly, counters: { ...p.target.counters } },
      link: { state: p.link.state, peerSession: p.link.peerSession, connections: p.link.connections, counters: { ...p.link.counters }, supervision: p.link.supervision },
      mirrors: [...p.resyncs].map(([lun, r]) => ({
        lun, state: r.state, ...r.progress, resync: { ...r.counters }, lastRefusal: r.lastRefusal, lastAbort: r.lastAbort,
      })),
      resyncTarget: { ...p.responder.counters },
      tables: {
        entries: this.tables.statusOf(p.name), counters: { ...this.tables.countersOf(p.name), flushes: this.flushCount() },
        tokensAwaited: p.source?.tokensAwaited ?? 0, tokensOutstanding: p.target.tokensOutstanding,
      },
    }));
  }

  /** Flushes this controller issued to its volumes (group flushes: each served every write completed before it). */
  private flushCount(): number {
    let n = 0;
    for (const f of this.flushes.values()) n += f.count;
    return n;
  }

  /** Chart events processed by this controller's charts (docs/design.md 2.2's budget). */
  chartEvents(): number {
    let n = 0;
    for (const p of this.peers.values()) n += (p.source?.chartEvents ?? 0) + p.target.chartEvents + p.link.chartEvents;
    return n;
  }

  /**
   * Chart events of the mirror channels alone (source and target charts): what the data path
   * costs per write. The link supervisors' come with time (heartbeats), not with writes.
   */
  mirrorChartEvents(): number {
    let n = 0;
    for (const p of this.peers.values()) n += (p.source?.chartEvents ?? 0) + p.target.chartEvents;
    return n;
  }

  /** Publish every channel's counters as telemetry. */
  publishCounters(): void {
    const t = this.ports.telemetry;
    if (!t.enabled) return;
    const now = this.ports.clock.now();
    for (const s of this.status()) {
      if (s.source) t.emit({ kind: 'counters', t: now, node: this.name, role: 'source', peer: s.peer, counters: s.source.counters });
      t.emit({ kind: 'counters', t: now, node: this.name, role: 'target', peer: s.peer, counters: s.target.counters });
      t.emit({ kind: 'counters', t: now, node: this.name, role: 'link', peer: s.peer, counters: s.link.counters });
      t.emit({ kind: 'counters', t: now, node: this.name, role: 'tags', peer: s.peer, counters: s.tables.counters });
      t.emit({ kind: 'counters', t: now, node: this.name, role: 'resync', peer: s.peer, counters: resyncCounters(s) });
    }
  }

  // ---- internals ---------------------------------------------------------------------------

  private checkWrite(cfg: LunConfig | undefined, lun: number, lba: number, data: Uint8Array): MirrorlabError | undefined {
    if (!this.started) return new HostRequestError('ML_ERR_NOT_STARTED', `${this.name} is not started`);
    if (this.stopped) return new HostRequestError('ML_ERR_STOPPED', `${this.name} is stopped`);
    if (this.failed) return new HostRequestError('ML_ERR_FIRMWARE', `${this.name} stopped after a firmware error: ${String(this.failed)}`);
    if (!cfg) return new HostRequestError('ML_ERR_NO_LUN', `${this.name} has no such LUN (LUNs: ${[...this.luns.keys()].join(', ')})`);
    const maxBytes = this.limits.payloadBytesMax;
    if (data.length > maxBytes) return new HostRequestError('ML_ERR_WRITE_TOO_LARGE', `a write may carry at most ${maxBytes} bytes, got ${data.length}`);
    if (data.length + 3 * FRAME_OVERHEAD_BYTES > this.limits.rollbackLogBytesMax) return new HostRequestError('ML_ERR_WRITE_TOO_LARGE', 'write larger than the rollback log');
    let count: number;
    try {
      count = sectorsOf(cfg.device, data);
      checkRange(cfg.device, lba, count);
    } catch (err) {
      return asMirrorlabError(err);
    }
    if (!this.locks.mayWrite(lun, lba, count)) {
      return new RegionLockedError(`${this.name}: write to LUN ${lun} [${lba}, +${count}) is under a lock; write through a local lock's handle, or after the lock is released`);
    }
    return undefined;
  }

  private checkTag(tag: number | undefined): MirrorlabError | undefined {
    if (tag === undefined || (Number.isSafeInteger(tag) && tag >= 1)) return undefined;
    return new HostRequestError('ML_ERR_HOST_TAG', `a host tag must be an integer from 1 to 2^53-1, got ${tag}`);
  }

  /**
   * Each peer's share of the lock table: how many locks its stream may hold here at once (sent in
   * HELLO). The shares never add up to more than `locksMax`, so one peer's locks can never hold
   * the room another needs to make progress; local locks take whatever is free and are released
   * on their own, so waiting for them always ends. Asked once the controller has started, when
   * every peer is connected.
   */
  private locksWindow(): number {
    return Math.floor(this.limits.locksMax / this.peers.size);
  }

  /**
   * The device a peer's mirror stream may lock and write for `lun`: any LUN but one this controller
   * mirrors to that same peer, whose primary copy is here (the peer writing it would change it
   * behind its own mirror, and its locks would refuse this controller's hosts). Frames for it are
   * refused like those for a LUN that does not exist.
   */
  private copyOf(lun: number, peer: string): BlockDevice | undefined {
    const l = this.luns.get(lun);
    return l === undefined || l.mirror?.peer === peer ? undefined : l.device;
  }

  private regionSectors(lun: number): number {
    return lockRegionSectorsOf(this.luns.get(lun)!);
  }

  /** How a LUN's mirror uses the wire, fixed when the controller is built (asked per append, so precomputed). */
  private wireOf(lun: number): { implied: boolean; batch: boolean } {
    return this.wire.get(lun) ?? NO_WIRE_FEATURES;
  }

  private fail(err: unknown): void {
    if (this.failed === null) this.failed = err;
    const t = this.ports.telemetry;
    if (t.enabled) t.emit({ kind: 'firmware.error', t: this.ports.clock.now(), node: this.name, message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  }

  private emitLocalLock(result: 'granted' | 'queued' | 'released', id: number, lun: number, lba: number, count: number, mode: LockModeName): void {
    const t = this.ports.telemetry;
    if (t.enabled) t.emit({ kind: 'local.lock', t: this.ports.clock.now(), node: this.name, result, id, lun, lba, count, mode });
  }
}

/**
 * The resync counters of one peer in one flat record (docs/tag-tables.md, "Resync"): this
 * controller's resyncs of the LUNs it mirrors there, summed, and its answers to the peer's.
 */
function resyncCounters(s: PeerStatus): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const m of s.mirrors) for (const [k, v] of Object.entries(m.resync)) sum[k] = (sum[k] ?? 0) + v;
  for (const [k, v] of Object.entries(s.resyncTarget)) sum[`target.${k}`] = v;
  return sum;
}
