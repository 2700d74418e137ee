import type { ControllerStatus } from './status.ts';

/**
 * The seam between a controller process and whatever brings host I/O into it
 * (docs/controller-process.md 5). The control socket is one front end; a block-protocol server
 * (NBD) would be another, beside it, taking the same {@link HostIo} from the process. A front end
 * owns its connections and its wire format; the process owns the controller, and decides when host
 * I/O is accepted.
 */
export interface HostFrontEnd {
  /** What it is (`control-socket`, `nbd`), for status and logs. */
  readonly kind: string;
  /** Where it listens (a socket path, HOST:PORT). */
  readonly address: string;
  /** Requests taken and not yet answered. */
  readonly inFlight: number;
  /** Connections open now. */
  readonly connections: number;
  /**
   * Stop taking host I/O: new reads, writes and flushes are refused at once with
   * `ML_ERR_STOPPING`; what is in flight goes on. (Status requests are still answered.)
   */
  refuseHostIo(): void;
  /** Answer whatever is still pending with `ML_ERR_STOPPED`, close every connection and the listener. Idempotent. */
  close(): Promise<void>;
}

/** A LUN as a host sees it. */
export interface HostLun {
  lun: number;
  sectorSize: number;
  sectorCount: number;
  /** `primary`: written by hosts and mirrored; `replica`: a peer's copy, read-only to hosts; `local`: not mirrored. */
  role: 'primary' | 'replica' | 'local';
}

/**
 * Host I/O on the process's LUNs, as every front end reaches it. Each call validates its request and
 * fails with a typed `MirrorlabError` (`ML_ERR_NO_LUN`, `ML_ERR_DISK_RANGE`, `ML_ERR_LUN_REPLICA`,
 * `ML_ERR_STOPPING`...); writes go through the controller's own host write path, the same one the
 * emulator's host workloads use.
 */
export interface HostIo {
  luns(): HostLun[];
  /** Resolves when the controller acknowledges the write to its host (per the LUN's mirror mode). `tag` names the write (>= 1). */
  write(lun: number, lba: number, data: Uint8Array, tag?: number): Promise<void>;
  read(lun: number, lba: number, count: number): Promise<Uint8Array>;
  /** Makes every acknowledged write to `lun` (all LUNs if absent) durable on its volume. */
  flush(lun?: number): Promise<void>;
  /**
   * Takes a local (server) write lock on the region, as the target's own server would, and releases
   * it `holdMs` after the grant; resolves at the grant. A mirror lock asked for meanwhile is refused.
   */
  holdLock(lun: number, lba: number, count: number, holdMs: number): Promise<void>;
  /** Largest read or write, in bytes. */
  readonly transferBytesMax: number;
}

/** What the control socket offers beyond host I/O. */
export interface ControlPlane {
  status(): ControllerStatus;
  /** Begin a clean stop (as SIGTERM does); returns at once. */
  stop(reason: string): void;
}
