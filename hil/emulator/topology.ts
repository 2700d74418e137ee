import { StorageController } from '../../firmware/controller/storage-controller.ts';
import type { ControllerLimits, LunConfig } from '../../firmware/controller/config.ts';
import type { LockRejectPolicyName, LockStyle, MirrorMode } from '../../firmware/mirror/types.ts';
import type { BlockDevice } from '../../firmware/ports/block-device.ts';
import { silentTelemetry, type Telemetry } from '../../firmware/ports/telemetry.ts';
import { VirtualClock } from '../../host/clock/virtual.ts';
import { MemoryDisk } from '../../host/disks/memory.ts';
import { powerCutIfAble } from '../../host/disks/power.ts';
import type { ServiceTimeConfig } from '../../host/disks/service-time.ts';
import { SeededRandom } from '../../host/random.ts';
import { SimLink } from '../../host/transports/sim.ts';
import type { LinkEndpoint } from '../../firmware/ports/link.ts';

export interface TopologyOptions {
  seed: number;
  mode: MirrorMode;
  onLockReject: LockRejectPolicyName;
  /** Both controllers mirror a LUN of their own to the other at once. */
  bidirectional: boolean;
  /** Round-trip time of the link (twice the one-way latency). */
  rttMs: number;
  bandwidthMbps: number;
  sectorSize: number;
  /** Sectors per volume. */
  volumeSectors: number;
  diskService: ServiceTimeConfig;
  lockRegionSectors?: number;
  /** How mirrored writes' locks travel (default explicit) and whether entries may batch (default no): docs/implied-locks.md. */
  locks?: LockStyle;
  batch?: boolean;
  limits?: Partial<ControllerLimits>;
  telemetry: Telemetry;
  /** Build a volume (default: a sparse memory disk of `volumeSectors`), by name: `A/lun0`, `B/lun0`, ... */
  makeVolume?: (name: string, clock: VirtualClock, random: SeededRandom) => BlockDevice;
  /** Run on this clock (default: a new one); volumes built beforehand must use the same clock. */
  clock?: VirtualClock;
  /** Data connections of the link (default 2; 1 for a serial-like link). */
  connections?: number;
  /** How the link carries heartbeats: their own datagram channel (default), or inline on connection 0 (a serial line). */
  heartbeats?: 'datagram' | 'inline';
}

export const DEFAULT_TOPOLOGY: Readonly<TopologyOptions> = {
  seed: 1,
  mode: 'speculative',
  onLockReject: 'halt-resume',
  bidirectional: false,
  rttMs: 1,
  bandwidthMbps: 1000,
  sectorSize: 512,
  volumeSectors: (64 * 1024 * 1024) / 512,
  diskService: { fixedMs: 0.02, perByteMs: 0.000_001 },
  telemetry: silentTelemetry,
};

/** One mirrored volume: the LUN number, the controller that writes it and the one that holds the copy. */
export interface MirrorPair {
  lun: number;
  primary: StorageController;
  secondary: StorageController;
  primaryVolume: BlockDevice;
  secondaryVolume: BlockDevice;
}

export interface Topology {
  readonly options: TopologyOptions;
  readonly clock: VirtualClock;
  readonly random: SeededRandom;
  readonly link: SimLink;
  /** Controller A: the source of LUN 0 (and, bidirectional, the target of LUN 1). */
  readonly source: StorageController;
  /** Controller B: the target of LUN 0 (and, bidirectional, the source of LUN 1). */
  readonly target: StorageController;
  readonly pairs: readonly MirrorPair[];
  start(): void;
  stop(): void;
  /**
   * Controller `name` crashes now: everything it held in memory is gone (its logs, locks and
   * sessions; its volumes keep what reached them), and after `downForMs` it starts again on the
   * same volumes and link, with a new session. `source`/`target` and `pairs` name the new start
   * from then on; the crashed one's host writes never complete (its hosts are the caller's
   * business), and nothing it still does reaches the telemetry (a dead controller reports
   * nothing). With `power`, every device of the controller loses its volatile write cache at
   * the same instant (docs/tag-tables.md, "Crash and power cut in the simulator"). Emits
   * `controller.crash`. `restarted` runs once it is started again.
   */
  crash(name: 'A' | 'B', downForMs: number, restarted?: (c: StorageController) => void, how?: { power?: boolean }): void;
}

/** `telemetry` as one controller start speaks through it, until `sever()`: a crashed start says nothing more. */
function severable(telemetry: Telemetry): Telemetry & { sever(): void } {
  const voice = {
    enabled: telemetry.enabled,
    // Bound, not wrapped: telemetry is on the per-write path.
    emit: telemetry.emit.bind(telemetry),
    sever: () => {
      voice.enabled = false;
      voice.emit = () => undefined;
    },
  };
  return voice;
}

/**
 * Two controllers, their volumes and the simulated link between them, on one virtual clock and
 * one seed (docs/design.md 2.5). Controller A mirrors LUN 0 to B; with `bidirectional`, B also mirrors
 * LUN 1 to A over the same link.
 */
export function buildTopology(partial: Partial<TopologyOptions> = {}): Topology {
  const options: TopologyOptions = { ...DEFAULT_TOPOLOGY, ...partial };
  const clock = options.clock ?? new VirtualClock();
  const random = new SeededRandom(options.seed);
  const makeVolume = options.makeVolume ?? ((name: string) => new MemoryDisk({ name, sectorSize: options.sectorSize, sectorCount: options.volumeSectors, clock, service: options.diskService }));
  const link = new SimLink({
    clock, names: ['A', 'B'], latencyMs: options.rttMs / 2, bandwidthMbps: options.bandwidthMbps,
    connections: options.connections, heartbeats: options.heartbeats,
  });
  const volumes = {
    a0: makeVolume('A/lun0', clock, random),
    b0: makeVolume('B/lun0', clock, random),
    a1: options.bidirectional ? makeVolume('A/lun1', clock, random) : undefined,
    b1: options.bidirectional ? makeVolume('B/lun1', clock, random) : undefined,
  };
  const lun = (n: number, device: BlockDevice, peer?: string): LunConfig => ({
    lun: n, device, lockRegionSectors: options.lockRegionSectors,
    mirror: peer ? { peer, mode: options.mode, locks: options.locks ?? 'explicit', batch: options.batch === true } : undefined,
  });
  const common = { onLockReject: options.onLockReject, limits: options.limits };
  const starts = { A: 0, B: 0 };
  // A crashed start's telemetry is cut off: callbacks it still runs (a disk write completing) must
  // not speak for the controller that replaces it under the same name.
  const voices = { A: severable(options.telemetry), B: severable(options.telemetry) };
  // Every start of a controller draws its session from a stream of its own: the first start's
  // stream is the one runs have always used, so a run without crashes is unchanged.
  const ports = (name: 'A' | 'B') => {
    const n = starts[name]++;
    voices[name] = severable(options.telemetry);
    return { clock, telemetry: voices[name], random: random.fork(n === 0 ? `controller-${name}` : `controller-${name}-start-${n}`) };
  };
  const build = (name: 'A' | 'B', endpoint: LinkEndpoint): StorageController => {
    const luns = name === 'A'
      ? [lun(0, volumes.a0, 'B'), ...(volumes.a1 ? [lun(1, volumes.a1)] : [])]
      : [lun(0, volumes.b0), ...(volumes.b1 ? [lun(1, volumes.b1, 'A')] : [])];
    const c = new StorageController({ name, id: name === 'A' ? 1 : 2, ...common, luns }, ports(name));
    c.connect(name === 'A' ? 'B' : 'A', endpoint);
    return c;
  };
  const live = { A: build('A', link.a), B: build('B', link.b) };
  const pairs: MirrorPair[] = [];
  const pairUp = (): void => {
    pairs.length = 0;
    pairs.push({ lun: 0, primary: live.A, secondary: live.B, primaryVolume: volumes.a0, secondaryVolume: volumes.b0 });
    if (volumes.a1 && volumes.b1) pairs.push({ lun: 1, primary: live.B, secondary: live.A, primaryVolume: volumes.b1, secondaryVolume: volumes.a1 });
  };
  pairUp();
  return {
    options, clock, random, link, pairs,
    get source() {
      return live.A;
    },
    get target() {
      return live.B;
    },
    start: () => {
      live.A.start();
      live.B.start();
    },
    stop: () => {
      live.A.stop();
      live.B.stop();
    },
    crash: (name, downForMs, restarted, how) => {
      const power = how?.power === true;
      const t = options.telemetry;
      if (t.enabled) t.emit({ kind: 'controller.crash', t: clock.now(), node: name, power, downForMs });
      voices[name].sever();
      live[name].stop();
      if (power) for (const p of pairs) for (const [c, v] of [[p.primary, p.primaryVolume], [p.secondary, p.secondaryVolume]] as const) if (c.name === name) powerCutIfAble(v);
      const endpoint = link.restartEnd(name === 'A' ? 'a' : 'b');
      clock.setTimeout(() => {
        live[name] = build(name, endpoint);
        pairUp();
        live[name].start();
        restarted?.(live[name]);
      }, downForMs);
    },
  };
}
