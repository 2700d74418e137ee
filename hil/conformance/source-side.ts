import { randomInt } from 'node:crypto';
import { DEFAULT_LIMITS } from '../../firmware/controller/config.ts';
import { StorageController } from '../../firmware/controller/storage-controller.ts';
import { silentTelemetry } from '../../firmware/ports/telemetry.ts';
import { RealClock } from '../../host/clock/real.ts';
import { MemoryDisk } from '../../host/disks/memory.ts';
import { SeededRandom } from '../../host/random.ts';
import type { LinkLogger } from '../../host/transports/link-logger.ts';
import { LIVE_LINK_LIMITS, openLiveLink, type LiveLink, type LiveLinkSpec } from '../../host/transports/live-link.ts';
import { FaultStage } from './fault-stage.ts';

/** What every case's source runs with (docs/conformance.md 2). */
export interface SourceSettings {
  link: LiveLinkSpec;
  /** The LUN mirrored: the same number on the target. */
  lun: number;
  /** The source's volume: a memory disk of this many 512-byte sectors. */
  sectorCount: number;
  /** This controller's numeric id, sent in HELLO. */
  id: number;
  /** Sectors of one lock region: small, so each case's writes take locks of their own. */
  lockRegionSectors: number;
  logger: LinkLogger;
}

export const SECTOR_BYTES = 512;
/**
 * A new session makes the target say we restarted, and our firmware then copies its whole (blank)
 * volume across: in chunks no larger than this, which any board's payload limit should take.
 */
export const RESYNC_CHUNK_BYTES = 64 * 1024;
/**
 * Our ack timeout never fires before a second has passed: a target has that long to NAK a gap or a
 * corrupt frame before our own timer re-sends it (the gap case insists on the NAK), however busy
 * the machines are. Recovery by timeout, where a case needs it, costs that second.
 */
export const SOURCE_TIMEOUTS = { ackTimeoutInitialMs: 1_000, ackTimeoutMinMs: 1_000 } as const;

/**
 * One start of the source: our firmware (a StorageController whose one LUN, on a memory disk, is
 * mirrored in speculative mode) on the real clock, over a live link to the target with the fault
 * stage in between. Every case starts one (a new session id each time: a new stream at 1) and
 * stops it, so one case's leftovers never reach the next.
 */
export class SourceSide {
  private constructor(
    readonly clock: RealClock,
    readonly controller: StorageController,
    readonly stage: FaultStage,
    private readonly link: LiveLink,
    readonly settings: SourceSettings,
  ) {}

  static async start(settings: SourceSettings): Promise<SourceSide> {
    const clock = new RealClock();
    const link = await openLiveLink(settings.link, { clock, logger: settings.logger, localName: 'conformance', peerName: 'target' });
    const payloadBytesMax = DEFAULT_LIMITS.payloadBytesMax;
    const stage = new FaultStage({ inner: link, clock, payloadBytesMax });
    const device = new MemoryDisk({ name: 'conformance-lun', sectorCount: settings.sectorCount, clock });
    const controller = new StorageController(
      {
        name: 'conformance', id: settings.id, onLockReject: 'halt-resume',
        limits: { ...LIVE_LINK_LIMITS, ...SOURCE_TIMEOUTS, resyncChunkBytes: RESYNC_CHUNK_BYTES },
        luns: [{ lun: settings.lun, device, mirror: { peer: 'target', mode: 'speculative' }, lockRegionSectors: settings.lockRegionSectors }],
      },
      { clock, telemetry: silentTelemetry, random: new SeededRandom(randomInt(1, 2 ** 47)) },
    );
    controller.connect('target', stage);
    const side = new SourceSide(clock, controller, stage, link, settings);
    controller.start();
    return side;
  }

  get session(): number {
    return this.controller.session;
  }

  /** The link supervisor's state (`up` once HELLOs crossed on every connection and the heartbeats are clean). */
  get linkState(): string {
    return this.controller.status()[0]?.link.state ?? 'stopped';
  }

  /** Waits until the link is up; false after `timeoutMs`. */
  waitUp(timeoutMs: number): Promise<boolean> {
    return this.stage.until(() => this.linkState === 'up', timeoutMs);
  }

  /**
   * Waits until the link is up and the resynchronisation a new session starts has finished, or `givingUp`
   * holds; false after `timeoutMs`.
   */
  waitReady(timeoutMs: number, givingUp: () => boolean = () => false): Promise<boolean> {
    return this.stage.until(() => (this.linkState === 'up' && this.controller.quiescent()) || givingUp(), timeoutMs);
  }

  /** A host write of `data` at `lba` named `tag`: resolves once the target confirmed it (speculative mode). */
  write(lba: number, data: Uint8Array, tag: number): Promise<void> {
    return new Promise((resolve, reject) => this.controller.submitWrite(this.settings.lun, lba, data, (err) => (err ? reject(err) : resolve()), tag));
  }

  async stop(): Promise<void> {
    this.controller.stop();
    await this.link.shutdown();
  }
}
