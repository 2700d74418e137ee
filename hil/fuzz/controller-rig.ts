import type { ControllerLimits, LunConfig } from '../../firmware/controller/config.ts';
import { StorageController } from '../../firmware/controller/storage-controller.ts';
import type { LockRejectPolicyName, MirrorMode } from '../../firmware/mirror/types.ts';
import type { LinkEndpoint } from '../../firmware/ports/link.ts';
import { silentTelemetry } from '../../firmware/ports/telemetry.ts';
import { VirtualClock } from '../../host/clock/virtual.ts';
import { MemoryDisk } from '../../host/disks/memory.ts';
import type { SeededRandom } from '../../host/random.ts';
import { SimLink } from '../../host/transports/sim.ts';
import { randomBytes } from './bytes.ts';
import { TapEndpoint } from './tap-endpoint.ts';
import { TrafficTap } from './traffic-tap.ts';
import { between } from './values.ts';

/** The link and controllers of one controller case, as drawn from its seed (docs/fuzzing.md 3). */
export interface RigShape {
  connections: number;
  heartbeats: 'datagram' | 'inline';
  mode: MirrorMode;
  policy: LockRejectPolicyName;
  /** The same for both controllers (the peer must be able to send what the one under test accepts). */
  limits: Partial<ControllerLimits> & { payloadBytesMax: number };
}

export const RIG_SECTOR_BYTES = 512;
/** Small volumes: a full resynchronisation after the peer restarts copies all of one in moments. */
export const RIG_VOLUME_SECTORS = 2048;
export const RIG_LOCK_REGION_SECTORS = 64;

/**
 * Two controllers on a simulated link, on one virtual clock: A, the good peer, and B, the
 * controller under fuzz, whose end of the link is a {@link TapEndpoint}. A mirrors LUN 0 to B and
 * B mirrors LUN 1 to A, so B is a target and a source at once, and fuzzed frames reach both its
 * sides. A can be crashed and restarted (a fresh session), which is how a case ends its burst
 * (docs/fuzzing.md 3 says why).
 */
export class ControllerRig {
  readonly clock = new VirtualClock();
  readonly link: SimLink;
  readonly tap: TrafficTap;
  readonly endpoint: TapEndpoint;
  readonly volumes: { a0: MemoryDisk; a1: MemoryDisk; b0: MemoryDisk; b1: MemoryDisk };
  readonly b: StorageController;
  a: StorageController;
  /** The first exception that escaped B's frame handling (or A's: it is B's peer), if any. */
  crash: { where: string; error: unknown } | null = null;
  private aStarts = 0;

  constructor(private readonly random: SeededRandom, readonly shape: RigShape) {
    const clock = this.clock;
    this.link = new SimLink({ clock, names: ['A', 'B'], latencyMs: 0.1, bandwidthMbps: 1000, connections: shape.connections, heartbeats: shape.heartbeats });
    const disk = (name: string): MemoryDisk => new MemoryDisk({ name, sectorSize: RIG_SECTOR_BYTES, sectorCount: RIG_VOLUME_SECTORS, clock, service: { fixedMs: 0.01, perByteMs: 0 } });
    this.volumes = { a0: disk('A/lun0'), a1: disk('A/lun1'), b0: disk('B/lun0'), b1: disk('B/lun1') };
    this.a = this.buildA(this.link.a);
    this.b = new StorageController(
      { name: 'B', id: 2, onLockReject: shape.policy, limits: shape.limits, luns: [this.lun(0, this.volumes.b0), this.lun(1, this.volumes.b1, 'A')] },
      { clock, telemetry: silentTelemetry, random: random.fork('controller-B') },
    );
    this.tap = new TrafficTap(shape.connections, shape.limits.payloadBytesMax, this.b.session);
    this.endpoint = new TapEndpoint(this.link.b, this.tap, (where, error) => (this.crash ??= { where, error }));
    this.b.connect('A', this.endpoint);
  }

  start(): void {
    this.a.start();
    this.b.start();
  }

  /** Both ends see the link up. */
  linkUp(): boolean {
    return this.a.status()[0]!.link.state === 'up' && this.b.status()[0]!.link.state === 'up';
  }

  /** A crashes now and starts again after `downMs` with a new session; `started` runs then. */
  restartA(downMs: number, started: (a: StorageController) => void): void {
    this.a.stop();
    const endpoint = this.link.restartEnd('a');
    this.clock.setTimeout(() => {
      this.a = this.buildA(endpoint);
      this.a.start();
      started(this.a);
    }, downMs);
  }

  private buildA(endpoint: LinkEndpoint): StorageController {
    const n = this.aStarts++;
    const a = new StorageController(
      { name: 'A', id: 1, onLockReject: this.shape.policy, limits: this.shape.limits, luns: [this.lun(0, this.volumes.a0, 'B'), this.lun(1, this.volumes.a1)] },
      { clock: this.clock, telemetry: silentTelemetry, random: this.random.fork(`controller-A-${n}`) },
    );
    // A is the good peer: an exception out of its handling is recorded like one out of B's.
    a.connect('B', {
      name: endpoint.name, connections: endpoint.connections, heartbeats: endpoint.heartbeats,
      attach: (h) => endpoint.attach({
        opened: (c) => this.guardA(() => h.opened(c)), closed: (c, r) => this.guardA(() => h.closed(c, r)),
        bytes: (c, b) => this.guardA(() => h.bytes(c, b)), datagram: (b) => this.guardA(() => h.datagram(b)), writable: (c) => this.guardA(() => h.writable(c)),
      }),
      open: (c) => endpoint.open(c), close: (c) => endpoint.close(c), send: (c, b) => endpoint.send(c, b), sendDatagram: (b) => endpoint.sendDatagram(b),
    });
    return a;
  }

  private guardA(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.crash ??= { where: 'the good peer A, handling what B sent', error };
    }
  }

  private lun(n: number, device: MemoryDisk, mirrorTo?: string): LunConfig {
    return { lun: n, device, lockRegionSectors: RIG_LOCK_REGION_SECTORS, mirror: mirrorTo ? { peer: mirrorTo, mode: this.shape.mode } : undefined };
  }
}

/**
 * A host writing to one LUN: up to `depth` writes at once of 1-8 sectors anywhere on the volume,
 * each started `gapMs` after the last finished, until stopped or `total` were issued. Errors are
 * counted (during a burst, a forged refusal or a forged lock may fail a write; after it, none may).
 */
export class HostWriter {
  issued = 0;
  completed = 0;
  failed = 0;
  firstError: unknown = null;
  private stopped = false;
  private inFlight = 0;

  constructor(
    private readonly clock: VirtualClock,
    private readonly controller: () => StorageController,
    private readonly lun: number,
    private readonly rng: SeededRandom,
    private readonly opts: { depth: number; gapMs: number; total?: number },
  ) {}

  start(): void {
    for (let i = 0; i < this.opts.depth; i++) this.next();
  }

  stop(): void {
    this.stopped = true;
  }

  /** The controller crashed and started again: its writes in flight are gone; carry on with the new start. */
  restarted(): void {
    this.inFlight = 0;
    if (!this.stopped) this.start();
  }

  /** Every write it will issue has been issued and has finished. */
  get finished(): boolean {
    return this.inFlight === 0 && (this.stopped || this.issued === this.opts.total);
  }

  get pending(): number {
    return this.inFlight;
  }

  private next(): void {
    if (this.stopped || (this.opts.total !== undefined && this.issued >= this.opts.total)) return;
    const sectors = between(this.rng, 1, 8);
    const lba = this.rng.int(RIG_VOLUME_SECTORS - sectors + 1);
    this.issued++;
    this.inFlight++;
    const c = this.controller();
    c.submitWrite(this.lun, lba, randomBytes(this.rng, sectors * RIG_SECTOR_BYTES), (err) => {
      if (c !== this.controller()) return; // an earlier start's write, finishing after its crash
      this.inFlight--;
      this.completed++;
      if (err) {
        this.failed++;
        this.firstError ??= err;
      }
      this.clock.setTimeout(() => this.next(), this.opts.gapMs);
    });
  }
}
