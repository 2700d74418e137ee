import { setTimeout as sleep } from 'node:timers/promises';
import type { ControllerLimits } from '../../firmware/controller/config.ts';
import { StorageController } from '../../firmware/controller/storage-controller.ts';
import type { MirrorMode } from '../../firmware/mirror/types.ts';
import type { LinkEndpoint } from '../../firmware/ports/link.ts';
import { silentTelemetry } from '../../firmware/ports/telemetry.ts';
import type { HostClock } from '../../host/clock/clock.ts';
import { MemoryDisk } from '../../host/disks/memory.ts';
import { SeededRandom } from '../../host/random.ts';
import { LIVE_LINK_LIMITS } from '../../host/transports/live-link.ts';

export interface LivePairOptions {
  clock: HostClock;
  seed: number;
  mode: MirrorMode;
  /** Each controller's volume, in bytes (memory disks, 512-byte sectors). */
  volumeBytes: number;
  /** On top of {@link LIVE_LINK_LIMITS}. */
  limits?: Partial<ControllerLimits>;
}

/**
 * Two controllers in this process on live links (docs/live-links.md 9): A mirrors LUN 0 to B over
 * `a`, B holds the copy and hears A over `b`. Both run on the given clock (the real one, for live
 * links), on memory volumes, with their sessions drawn from `seed`, with the limits a live link
 * needs. What the transport tests and the live benchmark drive.
 */
export class LivePair {
  readonly source: StorageController;
  readonly target: StorageController;
  readonly sourceVolume: MemoryDisk;
  readonly targetVolume: MemoryDisk;

  constructor(a: LinkEndpoint, b: LinkEndpoint, private readonly o: LivePairOptions) {
    const random = new SeededRandom(o.seed);
    const volume = (name: string): MemoryDisk => new MemoryDisk({ name, sectorSize: 512, sectorCount: o.volumeBytes / 512, clock: o.clock });
    this.sourceVolume = volume('A/lun0');
    this.targetVolume = volume('B/lun0');
    const ports = (name: string) => ({ clock: o.clock, telemetry: silentTelemetry, random: random.fork(`controller-${name}`) });
    const limits = { ...LIVE_LINK_LIMITS, ...o.limits };
    this.source = new StorageController({
      name: 'A', id: 1, onLockReject: 'halt-resume', limits,
      luns: [{ lun: 0, device: this.sourceVolume, mirror: { peer: 'B', mode: o.mode } }],
    }, ports('A'));
    this.target = new StorageController({
      name: 'B', id: 2, onLockReject: 'halt-resume', limits, luns: [{ lun: 0, device: this.targetVolume }],
    }, ports('B'));
    this.source.connect('B', a);
    this.target.connect('A', b);
  }

  start(): void {
    this.source.start();
    this.target.start();
  }

  stop(): void {
    this.source.stop();
    this.target.stop();
  }

  /** Both supervisors say `up`; throws after `budgetMs` naming the states they were in. */
  async waitUp(budgetMs: number): Promise<void> {
    await this.waitFor(() => this.linkState(this.source) === 'up' && this.linkState(this.target) === 'up', 'the link up at both ends', budgetMs);
  }

  /** Both controllers settled: nothing in flight, nothing logged, no locks, the link up. */
  async waitSettled(budgetMs: number): Promise<void> {
    await this.waitFor(() => this.source.settled() && this.target.settled(), 'both controllers settled', budgetMs);
  }

  /** The first byte offset where the two volumes differ, or -1 if they are identical. */
  async firstDifference(): Promise<number> {
    const chunkSectors = 2048;
    const sectors = this.o.volumeBytes / 512;
    for (let lba = 0; lba < sectors; lba += chunkSectors) {
      const count = Math.min(chunkSectors, sectors - lba);
      const [x, y] = await Promise.all([this.sourceVolume.read(lba, count), this.targetVolume.read(lba, count)]);
      const i = x.findIndex((byte, k) => byte !== y[k]);
      if (i >= 0) return lba * 512 + i;
    }
    return -1;
  }

  /** A firmware failure on either side (an action that threw), or null. */
  get failure(): unknown {
    return this.source.failure ?? this.target.failure;
  }

  linkState(c: StorageController): string {
    return c.status()[0]?.link.state ?? 'none';
  }

  private async waitFor(cond: () => boolean, what: string, budgetMs: number): Promise<void> {
    const start = this.o.clock.now();
    while (!cond()) {
      if (this.failure !== null) throw new Error(`${what}: the firmware failed: ${String(this.failure)}`);
      if (this.o.clock.now() - start > budgetMs) {
        throw new Error(`${what}: not within ${budgetMs} ms (links: A ${this.linkState(this.source)}, B ${this.linkState(this.target)}; ` +
          `A quiescent ${this.source.quiescent()}, B quiescent ${this.target.quiescent()})`);
      }
      await sleep(5);
    }
  }
}
