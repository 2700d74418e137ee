import { StorageController } from '../../firmware/controller/storage-controller.ts';
import type { ControllerConfig, ControllerLimits, LunConfig } from '../../firmware/controller/config.ts';
import { MetadataStore } from '../../firmware/metadata/metadata-store.ts';
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
  /**
   * Each controller's metadata device (docs/tag-tables.md, "Metadata"), built once: it survives
   * the controller's crashes (a restart recovers from it) and loses its volatile cache, if it has
   * one, in a power cut like the controller's volumes. Default: a 4 MiB memory disk, write-through.
   * Null: no metadata device (tables in memory only; a restart means a full resync).
   */
  metadataVolume?: ((name: 'A' | 'B', clock: VirtualClock, random: SeededRandom) => BlockDevice) | null;
}

/** Sectors of the default metadata device (4 MiB of 512-byte sectors: room for the default tables, docs/tag-tables.md, "Bounds"). */
export const METADATA_VOLUME_SECTORS = 8192;

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
  /** Each controller's metadata device (null: none), the same across its restarts. */
  readonly metadata: Readonly<Record<'A' | 'B', BlockDevice | null>>;
  /**
   * Controller `name` crashes now: everything it held in memory is gone (its logs, locks and
   * sessions; its volumes and metadata device keep what reached them), and after `downForMs` it
   * starts again on the same volumes, metadata device and link, with a new session, once it has
   * recovered its metadata (a read of that device, in virtual time). `source`/`target` and
   * `pairs` name the new start from then on; the crashed one's host writes never complete (its
   * hosts are the caller's business), and nothing it still does reaches the telemetry (a dead
   * controller reports nothing). With `power`, every device of the controller (volumes and
   * metadata) loses its volatile write cache at the same instant (docs/tag-tables.md, "Crash and
   * power cut in the simulator"). Emits `controller.crash`. `restarted` runs once it is started
   * again.
   */
  crash(name: 'A' | 'B', downForMs: number, restarted?: (c: StorageController) => void, how?: { power?: boolean }): void;
}

/** `telemetry` as one controller start speaks through it, until `sever()`: a crashed start says nothing more. */
function severable(telemetry: Telemetry): Telemetry & { sever(): void } {
  let severed = false;
  return {
    get enabled() {
      return !severed && telemetry.enabled;
    },
    // Looked up at each call, not bound once: a test may wrap the telemetry's emit after the build.
    emit: (e) => {
      if (!severed) telemetry.emit(e);
    },
    sever: () => {
      severed = true;
    },
  };
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
  const makeMetadata = options.metadataVolume === undefined
    ? (name: 'A' | 'B') => new MemoryDisk({ name: `${name}/metadata`, sectorCount: METADATA_VOLUME_SECTORS, clock, service: options.diskService })
    : options.metadataVolume;
  const metadata = { A: makeMetadata?.('A', clock, random) ?? null, B: makeMetadata?.('B', clock, random) ?? null };
  const config = (name: 'A' | 'B'): ControllerConfig => {
    const luns = name === 'A'
      ? [lun(0, volumes.a0, 'B'), ...(volumes.a1 ? [lun(1, volumes.a1)] : [])]
      : [lun(0, volumes.b0), ...(volumes.b1 ? [lun(1, volumes.b1, 'A')] : [])];
    return { name, id: name === 'A' ? 1 : 2, ...common, luns, ...(metadata[name] !== null ? { metadata: metadata[name] } : {}) };
  };
  const connect = (c: StorageController, endpoint: LinkEndpoint): StorageController => {
    c.connect(c.name === 'A' ? 'B' : 'A', endpoint);
    return c;
  };
  // The first start is on new metadata devices, blank: nothing to read, so it is built at once.
  const first = (name: 'A' | 'B'): StorageController => {
    const dev = metadata[name];
    return new StorageController(config(name), ports(name), dev === null ? undefined : MetadataStore.fresh(dev));
  };
  const live = { A: connect(first('A'), link.a), B: connect(first('B'), link.b) };
  // Each crash of a controller, and the topology's stop, makes a restart still reading its metadata moot.
  const lives = { A: 0, B: 0 };
  let stopped = false;
  const pairs: MirrorPair[] = [];
  const pairUp = (): void => {
    pairs.length = 0;
    pairs.push({ lun: 0, primary: live.A, secondary: live.B, primaryVolume: volumes.a0, secondaryVolume: volumes.b0 });
    if (volumes.a1 && volumes.b1) pairs.push({ lun: 1, primary: live.B, secondary: live.A, primaryVolume: volumes.b1, secondaryVolume: volumes.a1 });
  };
  pairUp();
  return {
    options, clock, random, link, pairs, metadata,
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
      stopped = true;
      live.A.stop();
      live.B.stop();
    },
    crash: (name, downForMs, restarted, how) => {
      const power = how?.power === true;
      const t = options.telemetry;
      if (t.enabled) t.emit({ kind: 'controller.crash', t: clock.now(), node: name, power, downForMs });
      voices[name].sever();
      live[name].stop();
      const life = ++lives[name];
      if (power) {
        for (const p of pairs) for (const [c, v] of [[p.primary, p.primaryVolume], [p.secondary, p.secondaryVolume]] as const) if (c.name === name) powerCutIfAble(v);
        if (metadata[name] !== null) powerCutIfAble(metadata[name]);
      }
      const endpoint = link.restartEnd(name === 'A' ? 'a' : 'b');
      clock.setTimeout(() => {
        // The restart reads its metadata first (docs/tag-tables.md, "Metadata"), then starts.
        StorageController.recover(config(name), ports(name)).then((c) => {
          if (stopped || lives[name] !== life) return; // stopped, or crashed again while it recovered
          live[name] = connect(c, endpoint);
          pairUp();
          c.start();
          restarted?.(c);
        }, (error: unknown) => {
          // A crash or power cut while it recovered fails the recovery's reads: that start is moot.
          if (stopped || lives[name] !== life) return;
          // A firmware that cannot come back is a failure the checker must see, not a hung run.
          if (t.enabled) t.emit({ kind: 'firmware.error', t: clock.now(), node: name, message: `restart: ${error instanceof Error ? error.message : String(error)}` });
        });
      }, downForMs);
    },
  };
}
