import type { StorageController } from '../../firmware/controller/storage-controller.ts';
import type { Random } from '../../firmware/ports/random.ts';
import type { HostClock } from '../../host/clock/clock.ts';

export interface ContentionSpec {
  /** Chance, in parts per million, that a mirrored write finds its region locked at the target. */
  perMillion: number;
  /** Lock region size of the LUN, in sectors: the target server locks whole regions. */
  regionSectors: number;
  /** Sectors of the LUN (locks never reach past its end). */
  sectorCount: number;
  /** A local lock is held for a time drawn uniformly from [holdMinMs, holdMaxMs]. */
  holdMinMs: number;
  holdMaxMs: number;
}

/**
 * The target's own server workload, the reason mirror locks get refused in real systems: it takes
 * local locks on regions of its copy of the volume and holds them for a while.
 *
 * To make contention a dial rather than an accident of two random streams colliding, it is
 * driven by the host's writes: for each write the host issues, with probability `perMillion`, the
 * server locks that write's region on the target at the same instant, so the mirror LOCK arriving
 * half a round trip later finds it held. (The server does not know what the host writes; the
 * simulation merely times its locks where they matter. All draws come from the run's seed.)
 */
export class ServerWorkload {
  private locksTaken = 0;
  private waitedMs = 0;

  constructor(
    private target: StorageController,
    private readonly lun: number,
    private readonly spec: ContentionSpec,
    private readonly random: Random,
    private readonly clock: HostClock,
  ) {}

  /**
   * The target controller started again after a crash (docs/tag-tables.md, "Crash and power cut in
   * the simulator"): its locks died with it; new ones are taken on the new start.
   */
  restarted(target: StorageController): void {
    this.target = target;
  }

  /** The host is about to write [lba, lba + count): maybe lock its region at the target first. */
  onHostWrite(lba: number, count: number): void {
    if (this.spec.perMillion <= 0 || !this.random.chance(this.spec.perMillion, 1_000_000)) return;
    const r = this.spec.regionSectors;
    const first = Math.floor(lba / r) * r;
    const end = Math.min(this.spec.sectorCount, Math.ceil((lba + count) / r) * r);
    const span = this.spec.holdMaxMs - this.spec.holdMinMs;
    const holdMs = this.spec.holdMinMs + (span * this.random.int(1001)) / 1000;
    const asked = this.clock.now();
    this.locksTaken++;
    void this.target.localLock(this.lun, first, end - first, 'write').then((lock) => {
      this.waitedMs += this.clock.now() - asked;
      this.clock.setTimeout(() => lock.release(), holdMs);
    });
  }

  stats(): { localLocks: number; waitedMs: number } {
    return { localLocks: this.locksTaken, waitedMs: Math.round(this.waitedMs * 1e6) / 1e6 };
  }
}
