import { MirrorlabError } from '../errors.ts';
import type { LockModeName, LockOwner, RegionLockTable } from '../locks/region-lock-table.ts';
import type { BlockDevice } from '../ports/block-device.ts';

/** Local I/O the lock table does not allow: outside the caller's lock, or under someone else's. */
export class RegionLockedError extends MirrorlabError {
  constructor(message: string) {
    super('ML_ERR_REGION_LOCKED', message);
  }
}

/** What a local lock's holder gets: I/O inside the locked region, and the release. */
export interface LocalLockHandle {
  readonly lun: number;
  readonly lba: number;
  readonly count: number;
  readonly mode: LockModeName;
  /** Read sectors inside the locked region (either mode). */
  read(lba: number, count: number): Promise<Uint8Array>;
  /**
   * Write sectors inside the locked region: write locks only, and only on a LUN that is not
   * mirrored from here (a mirrored LUN is written through the controller, which mirrors it).
   */
  write(lba: number, data: Uint8Array): Promise<void>;
  /** Let the region go; I/O through this handle fails from then on. Releasing twice does nothing. */
  release(): void;
}

/**
 * A held local lock and the I/O its holder may do (see StorageController's class doc). The lock
 * table is asked on every call, so a released handle, a range outside the lock or a write under a
 * read lock fails with a {@link RegionLockedError} naming what was asked and what the lock covers.
 */
export class LocalLock implements LocalLockHandle {
  constructor(
    private readonly locks: RegionLockTable,
    private readonly owner: LockOwner,
    private readonly device: BlockDevice,
    private readonly mirrored: boolean,
    readonly lun: number,
    readonly lba: number,
    readonly count: number,
    readonly mode: LockModeName,
    private readonly onRelease: () => void,
  ) {}

  read(lba: number, count: number): Promise<Uint8Array> {
    const problem = this.problem('read', lba, count);
    return problem ? Promise.reject(problem) : this.device.read(lba, count);
  }

  write(lba: number, data: Uint8Array): Promise<void> {
    const count = Math.floor(data.length / this.device.sectorSize);
    const problem = this.mirrored
      ? new RegionLockedError(`LUN ${this.lun} is mirrored from here: write it through the controller (submitWrite), which mirrors it`)
      : this.problem('write', lba, count);
    return problem ? Promise.reject(problem) : this.device.write(lba, data);
  }

  release(): void {
    if (this.locks.release(this.owner)) this.onRelease();
  }

  private problem(op: 'read' | 'write', lba: number, count: number): RegionLockedError | null {
    const range = `LUN ${this.lun} [${lba}, +${count})`;
    if (!this.locks.held(this.owner)) return new RegionLockedError(`${op} of ${range}: this local lock was released`);
    if (!this.locks.covers(this.owner, this.lun, lba, count)) {
      return new RegionLockedError(`${op} of ${range}: outside the local lock [${this.lba}, +${this.count}); lock the range first`);
    }
    const allowed = op === 'read' ? this.locks.mayRead(this.lun, lba, count, this.owner) : this.locks.mayWrite(this.lun, lba, count, this.owner);
    return allowed ? null : new RegionLockedError(`${op} of ${range}: a ${this.mode} lock allows only reads`);
  }
}
