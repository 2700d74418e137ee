import { assert, MirrorlabError } from '../errors.ts';
import { RegionLockTable, type LockModeName } from '../locks/region-lock-table.ts';
import { PeerConnection, type LinkCounters } from '../mirror/peer-connection.ts';
import { SourceChannel, type SourceCounters } from '../mirror/source-channel.ts';
import { TargetChannel, type TargetCounters } from '../mirror/target-channel.ts';
import { checkRange, sectorsOf, submitWrite } from '../ports/block-device.ts';
import type { Clock } from '../ports/clock.ts';
import type { LinkEndpoint } from '../ports/link.ts';
import type { Telemetry } from '../ports/telemetry.ts';
import { FRAME_OVERHEAD_BYTES } from '../protocol/frame.ts';
import { checkConfig, ConfigError, lockRegionSectorsOf, type ControllerConfig, type ControllerLimits, type LunConfig } from './config.ts';
import { LocalLock, RegionLockedError, type LocalLockHandle } from './local-lock.ts';
import { asMirrorlabError, HostWrite, MirroredHostWrite, type HostWriteContext, type WriteDone } from './host-write.ts';

export type { WriteDone } from './host-write.ts';
export { RegionLockedError, type LocalLockHandle } from './local-lock.ts';

export interface PeerStatus {
  peer: string;
  source: { state: string; rollbackLog: { entries: number; bytes: number; waiting: number }; openSessions: number; counters: SourceCounters } | null;
  target: { state: string; commitLog: { entries: number; bytes: number }; counters: TargetCounters };
  link: LinkCounters;
}

interface Peer {
  name: string;
  connection: PeerConnection;
  source: SourceChannel | null;
  target: TargetChannel;
}

export class HostRequestError extends MirrorlabError {}

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
 */
export class StorageController {
  readonly name: string;
  readonly limits: ControllerLimits;
  private readonly luns = new Map<number, LunConfig>();
  private readonly peers = new Map<string, Peer>();
  private readonly locks: RegionLockTable;
  private readonly writeContext: HostWriteContext;
  private tags = 0;
  private localLocks = 0;
  private writesInFlight = 0;
  private started = false;
  private failed: unknown = null;

  constructor(private readonly cfg: ControllerConfig, private readonly ports: { clock: Clock; telemetry: Telemetry }) {
    this.limits = checkConfig(cfg);
    this.name = cfg.name;
    for (const l of cfg.luns) this.luns.set(l.lun, l);
    this.locks = new RegionLockTable({ locksMax: this.limits.locksMax, localWaitersMax: this.limits.localLockWaitersMax });
    this.writeContext = { node: this.name, clock: ports.clock, telemetry: ports.telemetry, finished: () => this.writesInFlight-- };
  }

  /** Connect to a peer over `endpoint`. Every peer a LUN mirrors to must be connected before `start`. */
  connect(peer: string, endpoint: LinkEndpoint): void {
    assert(!this.started && !this.peers.has(peer), `connect ${peer}: already connected, or the controller already started`);
    const { clock, telemetry } = this.ports;
    const L = this.limits;
    const onError = (err: unknown): void => this.fail(err);
    // The channels send through the connection, which is built last because it routes to them.
    const late: { connection?: PeerConnection } = {};
    const base = { node: this.name, peer, clock, telemetry, onError, mutations: new Set(this.cfg.mutations ?? []) };
    const mirrors = this.cfg.luns.some((l) => l.mirror?.peer === peer);
    const source = mirrors
      ? new SourceChannel(
          {
            rollbackLogEntriesMax: L.rollbackLogEntriesMax, rollbackLogBytesMax: L.rollbackLogBytesMax, sendWindowBytesMax: L.sendWindowBytesMax,
            lockSessionsMax: L.lockSessionsMax, lockSessionIdleMs: L.lockSessionIdleMs,
            ackTimeout: { initialMs: L.ackTimeoutInitialMs, minMs: L.ackTimeoutMinMs, maxMs: L.ackTimeoutMaxMs },
            haltProbeMs: L.haltProbeMs, lockRetryDelayMs: L.lockRetryDelayMs,
            regionSectors: (lun) => this.regionSectors(lun),
          },
          { ...base, send: (bytes, retransmit) => late.connection!.sendStream(bytes, retransmit) },
        )
      : null;
    const locksWindow = (): number => this.locksWindow();
    const target = new TargetChannel(
      { commitLogEntriesMax: L.commitLogEntriesMax, commitLogBytesMax: L.commitLogBytesMax, ackDelayMs: L.ackDelayMs, nakRetryMs: L.nakRetryMs, policy: this.cfg.onLockReject, locksWindow },
      { ...base, send: (bytes) => late.connection!.sendControl(bytes), locks: this.locks, device: (lun) => this.luns.get(lun)?.device },
    );
    const connection = new PeerConnection(
      { controllerId: this.cfg.id, sessionId: 1, payloadBytesMax: L.payloadBytesMax, controlQueueMax: L.controlQueueMax, helloRetryMs: L.helloRetryMs, policy: this.cfg.onLockReject },
      { node: this.name, peer, clock, telemetry, endpoint },
      source,
      target,
    );
    late.connection = connection;
    this.peers.set(peer, { name: peer, connection, source, target });
  }

  start(): void {
    assert(!this.started, 'controller already started');
    for (const l of this.cfg.luns) {
      if (l.mirror) assert(this.peers.has(l.mirror.peer), `LUN ${l.lun} mirrors to ${l.mirror.peer}, which is not connected`);
    }
    if (this.limits.locksMax < this.peers.size) {
      throw new ConfigError(`locksMax (${this.limits.locksMax}) must be at least the number of peers (${this.peers.size}): each peer's stream needs a share of the lock table`);
    }
    this.started = true;
    for (const p of this.peers.values()) {
      p.source?.start();
      p.target.start();
    }
    for (const p of this.peers.values()) p.connection.start();
  }

  stop(): void {
    for (const p of this.peers.values()) {
      p.source?.stop();
      p.target.stop();
      p.connection.stop();
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
      const write = new MirroredHostWrite(this.writeContext, tag, lun, lba, count, data, done, mirror.mode);
      submitWrite(dev, lba, data, (err) => write.localWritten(err));
      this.peers.get(mirror.peer)!.source!.submit(write);
    } else {
      const write = new HostWrite(this.writeContext, tag, lun, lba, count, data, done);
      submitWrite(dev, lba, data, (err) => write.localWritten(err));
    }
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
    return new Promise((resolve) => source.requestReadLock(lun, lba, count, (release) => resolve({ release })));
  }

  // ---- observation -------------------------------------------------------------------------

  /** Nothing in flight: no host write pending, every rollback and commit log empty. */
  quiescent(): boolean {
    if (this.writesInFlight > 0) return false;
    for (const p of this.peers.values()) {
      if (p.source && (p.source.rollbackLog.entries > 0 || p.source.rollbackLog.waiting > 0)) return false;
      if (p.target.commitLog.entries > 0) return false;
    }
    return true;
  }

  /**
   * Quiescent, every lock session closed, and no rejection record left: the mirrors hold no locks
   * on each other and nothing holds back local locks. A rejection record that outlives its retry
   * would block local locks on its region for ever, so the emulator's liveness check sees it here.
   */
  settled(): boolean {
    if (!this.quiescent()) return false;
    for (const p of this.peers.values()) if (p.source && p.source.openSessions > 0) return false;
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
      target: { state: p.target.state, commitLog: p.target.commitLog, counters: { ...p.target.counters } },
      link: { ...p.connection.counters },
    }));
  }

  /** Chart events processed by this controller's charts (docs/design.md 2.2's budget). */
  chartEvents(): number {
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
    }
  }

  // ---- internals ---------------------------------------------------------------------------

  private checkWrite(cfg: LunConfig | undefined, lun: number, lba: number, data: Uint8Array): MirrorlabError | undefined {
    if (!this.started) return new HostRequestError('ML_ERR_NOT_STARTED', `${this.name} is not started`);
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

  private regionSectors(lun: number): number {
    return lockRegionSectorsOf(this.luns.get(lun)!);
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
