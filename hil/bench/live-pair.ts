import { performance } from 'node:perf_hooks';
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

/** A controller's memory volume of `o.volumeBytes` (512-byte sectors). */
export function liveVolume(name: string, o: Pick<LivePairOptions, 'clock' | 'volumeBytes'>): MemoryDisk {
  return new MemoryDisk({ name, sectorSize: 512, sectorCount: o.volumeBytes / 512, clock: o.clock });
}

const ports = (random: SeededRandom, name: string, clock: HostClock) => ({ clock, telemetry: silentTelemetry, random: random.fork(`controller-${name}`) });

/**
 * Controller A, mirroring LUN 0 (`volume`) to B over `link`, connected and not yet started: one
 * half of a {@link LivePair}, or the source process of the live bench's two-process rows.
 */
export function mirrorSource(link: LinkEndpoint, volume: MemoryDisk, random: SeededRandom, o: LivePairOptions): StorageController {
  const c = new StorageController({
    name: 'A', id: 1, onLockReject: 'halt-resume', limits: { ...LIVE_LINK_LIMITS, ...o.limits },
    luns: [{ lun: 0, device: volume, mirror: { peer: 'B', mode: o.mode } }],
  }, ports(random, 'A', o.clock));
  c.connect('B', link);
  return c;
}

/** Controller B, holding A's copy of LUN 0 on `volume` and hearing A over `link`, connected and not yet started. */
export function mirrorTarget(link: LinkEndpoint, volume: MemoryDisk, random: SeededRandom, o: LivePairOptions): StorageController {
  const c = new StorageController({
    name: 'B', id: 2, onLockReject: 'halt-resume', limits: { ...LIVE_LINK_LIMITS, ...o.limits }, luns: [{ lun: 0, device: volume }],
  }, ports(random, 'B', o.clock));
  c.connect('A', link);
  return c;
}

/** The state of a controller's first link's supervisor (`up` once the link is up), or `none`. */
export function linkState(c: StorageController): string {
  return c.status()[0]?.link.state ?? 'none';
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
    this.sourceVolume = liveVolume('A/lun0', o);
    this.targetVolume = liveVolume('B/lun0', o);
    this.source = mirrorSource(a, this.sourceVolume, random, o);
    this.target = mirrorTarget(b, this.targetVolume, random, o);
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
    return linkState(c);
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

export interface DriveWritesOptions {
  writeBytes: number;
  /** The volume the writes cycle over, in bytes. */
  volumeBytes: number;
  /** Bytes to write in all: ceil(bytes / writeBytes) writes. */
  bytes: number;
  /** Writes in flight at once. */
  depth: number;
  /** Each write's latency (ms, wall clock), by write index, if given. */
  latenciesMs?: Float64Array;
}

/**
 * Host writes of `writeBytes` to LUN 0 of `c` at queue depth `depth`, cycling over the volume
 * from its start, each write's buffer the same pattern; resolves once every write is
 * acknowledged, rejects on the first error. The live bench's host.
 */
export function driveWrites(c: StorageController, o: DriveWritesOptions): Promise<void> {
  const slots = Math.floor(o.volumeBytes / o.writeBytes);
  const data = new Uint8Array(o.writeBytes).fill(0xa5);
  const writes = Math.ceil(o.bytes / o.writeBytes);
  return new Promise<void>((resolve, reject) => {
    let issued = 0;
    let acked = 0;
    const issue = (): void => {
      const i = issued++;
      const at = performance.now();
      c.submitWrite(0, (i % slots) * (o.writeBytes / 512), data, (error) => {
        if (error) return reject(error as Error);
        if (o.latenciesMs !== undefined) o.latenciesMs[i] = performance.now() - at;
        if (++acked === writes) resolve();
        else if (issued < writes) issue();
      });
    };
    for (let k = 0; k < Math.min(o.depth, writes); k++) issue();
  });
}
