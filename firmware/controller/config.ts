import { MirrorlabError } from '../errors.ts';
import type { RollbackSpill } from '../logs/rollback-spill.ts';
import type { MetadataStoreOptions } from '../metadata/metadata-store.ts';
import type { BlockDevice } from '../ports/block-device.ts';
import { DEFAULT_PAYLOAD_BYTES_MAX } from '../protocol/frame.ts';
import { LOCK_STYLES, LOCK_REJECT_POLICIES, MIRROR_MODES, type LockRejectPolicyName, type LockStyle, type MirrorMode } from '../mirror/types.ts';

/**
 * How a LUN is mirrored: to the same LUN number on `peer`, in `mode`. On the wire
 * (docs/implied-locks.md): `locks` `implied` lets each write carry its own lock instead of a
 * LOCK/UNLOCK session around it (speculative and async; sync always waits for a grant), and
 * `batch` lets entries that are ready together travel in one BATCH frame. Each is used only with
 * a peer whose HELLO offers it. Defaults: explicit locks, no batches.
 */
export interface MirrorConfig {
  peer: string;
  mode: MirrorMode;
  locks?: LockStyle;
  batch?: boolean;
}

/** One LUN of a controller: its volume, and whether and how it is mirrored. */
export interface LunConfig {
  lun: number;
  device: BlockDevice;
  /** Mirror this LUN to the same LUN number on `peer`. Absent: not mirrored. */
  mirror?: MirrorConfig;
  /** Lock region size in sectors (default: 1 MiB worth). A run of writes inside one region shares one LOCK. */
  lockRegionSectors?: number;
}

/** Default lock region: 1 MiB worth of sectors. */
export function defaultLockRegionSectors(sectorSize: number): number {
  return Math.max(1, Math.floor((1024 * 1024) / sectorSize));
}

/** The lock region size of a LUN, in its sectors. */
export function lockRegionSectorsOf(lun: LunConfig): number {
  return lun.lockRegionSectors ?? defaultLockRegionSectors(lun.device.sectorSize);
}

/**
 * Every limit a controller has (docs/conventions.md 6), with units last. Defaults suit the emulator's
 * default link (1 Gbit/s, sub-millisecond to tens of milliseconds of RTT).
 */
export interface ControllerLimits {
  rollbackLogEntriesMax: number;
  rollbackLogBytesMax: number;
  sendWindowBytesMax: number;
  commitLogEntriesMax: number;
  commitLogBytesMax: number;
  payloadBytesMax: number;
  lockSessionsMax: number;
  lockSessionIdleMs: number;
  ackTimeoutInitialMs: number;
  ackTimeoutMinMs: number;
  ackTimeoutMaxMs: number;
  ackDelayMs: number;
  nakRetryMs: number;
  haltProbeMs: number;
  lockRetryDelayMs: number;
  helloRetryMs: number;
  controlQueueMax: number;
  locksMax: number;
  localLockWaitersMax: number;
  /** A heartbeat goes to every peer this often (docs/link-supervision.md). */
  heartbeatMs: number;
  /** Silence from a peer longer than this closes its data connections: the link is down. */
  interruptionMs: number;
  /** Heartbeats that come back must stay clean this long before the connections are re-established. */
  probationMs: number;
  /** While connecting, connections that could not be made are asked for again this often. */
  connectRetryMs: number;
  /** A LOCK whose data waits for its grant (sync mode, read locks) is asked about again after this long. */
  grantProbeMs: number;
  /** A target retries a held refused lock at least this often (and whenever a lock is released). */
  lockRetryMs: number;
  /** A resynchronisation copies chunks of this many bytes (or payloadBytesMax, if less: a chunk travels in one WRITE)... */
  resyncChunkBytes: number;
  /** ...this many at once. */
  resyncChunksInFlightMax: number;
  /**
   * Most entries in one tag table (per mirror and role, docs/tag-tables.md, "Tag tables"). A table
   * holds the writes the other side may not hold yet: in steady state those between a write's
   * acceptance and its token's return (a few round trips' worth); while a mirror is suspended,
   * every write since. A write that does not fit overflows the table: the next resync of its
   * mirror copies everything.
   */
  tagEntriesMax: number;
  /**
   * A mirror whose link has been down this long is suspended (docs/tag-tables.md, "Suspension"):
   * its hosts are acknowledged locally, its backlog is dropped, and its tag table names what
   * differs until a resync after the link comes back.
   */
  suspendAfterMs: number;
  /** A resync's table request, or its RESYNC_DONE, unanswered this long is sent again (docs/tag-tables.md, "Resync"). */
  resyncRetryMs: number;
  /** Most entries of a peer's tag table a resync takes; a peer whose table holds more gets a full copy. */
  resyncEntriesMax: number;
}

export const DEFAULT_LIMITS: Readonly<ControllerLimits> = {
  rollbackLogEntriesMax: 65_536,
  rollbackLogBytesMax: 64 * 1024 * 1024,
  sendWindowBytesMax: 16 * 1024 * 1024,
  commitLogEntriesMax: 65_536,
  commitLogBytesMax: 32 * 1024 * 1024,
  payloadBytesMax: DEFAULT_PAYLOAD_BYTES_MAX,
  lockSessionsMax: 64,
  lockSessionIdleMs: 2,
  ackTimeoutInitialMs: 100,
  ackTimeoutMinMs: 5,
  ackTimeoutMaxMs: 2_000,
  ackDelayMs: 0.2,
  nakRetryMs: 10,
  haltProbeMs: 50,
  lockRetryDelayMs: 1,
  helloRetryMs: 50,
  controlQueueMax: 1_024,
  locksMax: 65_536,
  localLockWaitersMax: 4_096,
  heartbeatMs: 100,
  interruptionMs: 1_000,
  probationMs: 2_000,
  connectRetryMs: 200,
  grantProbeMs: 100,
  lockRetryMs: 10,
  resyncChunkBytes: 1024 * 1024,
  resyncChunksInFlightMax: 4,
  tagEntriesMax: 262_144,
  suspendAfterMs: 5_000,
  resyncRetryMs: 200,
  resyncEntriesMax: 1_048_576,
};

export interface ControllerConfig {
  /** Name used in telemetry and as the peer name on the other side of a link. */
  name: string;
  /** Numeric id sent in HELLO (u32). */
  id: number;
  luns: LunConfig[];
  /** What this controller, as a target, does when a mirror lock is refused. */
  onLockReject: LockRejectPolicyName;
  limits?: Partial<ControllerLimits>;
  /**
   * The spill of the rollback log to `peer` (docs/tag-tables.md, "Rollback-log spill"), made once
   * per peer mirrored to; absent (or undefined for a peer): hosts wait when the log is full.
   */
  rollbackSpill?(peer: string): RollbackSpill | undefined;
  /**
   * The controller's metadata device (docs/tag-tables.md, "Metadata"): its tag tables, session,
   * tag reservation and mirror states persist there, and a start recovers them
   * ({@link StorageController.recover}). Absent: tables in memory only, a restart means a full resync.
   */
  metadata?: BlockDevice;
  /** How the metadata store lays out its device (default: the whole device, bounds from its size). */
  metadataOptions?: MetadataStoreOptions;
}

export class ConfigError extends MirrorlabError {
  constructor(message: string) {
    super('ML_ERR_CONFIG', message);
  }
}

/** Validate a configuration; throws ConfigError naming what is wrong and what is allowed. */
export function checkConfig(cfg: ControllerConfig): ControllerLimits {
  if (!Number.isInteger(cfg.id) || cfg.id < 0 || cfg.id > 0xffffffff) throw new ConfigError(`controller id must be an integer in 0..2^32-1, got ${cfg.id}`);
  if (!LOCK_REJECT_POLICIES.includes(cfg.onLockReject)) throw new ConfigError(`onLockReject must be one of ${LOCK_REJECT_POLICIES.join(', ')}, got ${String(cfg.onLockReject)}`);
  const seen = new Set<number>();
  for (const l of cfg.luns) {
    if (!Number.isInteger(l.lun) || l.lun < 0 || l.lun > 0xffff) throw new ConfigError(`LUN numbers are 0..65535, got ${l.lun}`);
    if (seen.has(l.lun)) throw new ConfigError(`LUN ${l.lun} is configured twice`);
    seen.add(l.lun);
    if (l.mirror && !MIRROR_MODES.includes(l.mirror.mode)) throw new ConfigError(`LUN ${l.lun}: mirror mode must be one of ${MIRROR_MODES.join(', ')}, got ${String(l.mirror.mode)}`);
    if (l.mirror?.locks !== undefined && !LOCK_STYLES.includes(l.mirror.locks)) {
      throw new ConfigError(`LUN ${l.lun}: mirror locks must be one of ${LOCK_STYLES.join(', ')}, got ${String(l.mirror.locks)}`);
    }
    if (l.mirror?.batch !== undefined && typeof l.mirror.batch !== 'boolean') throw new ConfigError(`LUN ${l.lun}: mirror batch must be true or false, got ${String(l.mirror.batch)}`);
    if (l.lockRegionSectors !== undefined && (!Number.isInteger(l.lockRegionSectors) || l.lockRegionSectors < 1)) {
      throw new ConfigError(`LUN ${l.lun}: lockRegionSectors must be a positive integer, got ${l.lockRegionSectors}`);
    }
  }
  const limits = { ...DEFAULT_LIMITS, ...cfg.limits };
  for (const [key, value] of Object.entries(limits)) {
    if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) throw new ConfigError(`limit ${key} must be a positive number, got ${String(value)}`);
  }
  if (!Number.isSafeInteger(limits.tagEntriesMax)) throw new ConfigError(`limit tagEntriesMax must be a whole number of entries, got ${limits.tagEntriesMax}`);
  if (limits.rollbackLogBytesMax < limits.payloadBytesMax + 3 * 64) throw new ConfigError('rollbackLogBytesMax must hold at least one largest write with its LOCK and UNLOCK');
  if (limits.interruptionMs < 2 * limits.heartbeatMs) {
    throw new ConfigError(`interruptionMs (${limits.interruptionMs}) must be at least twice heartbeatMs (${limits.heartbeatMs}): one late heartbeat must not look like an interruption`);
  }
  return limits;
}
