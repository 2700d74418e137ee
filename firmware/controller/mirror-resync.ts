import { MirrorlabError } from '../errors.ts';
import type { ChannelWrite, MirrorMode } from '../mirror/types.ts';
import type { BlockDevice } from '../ports/block-device.ts';
import type { Clock } from '../ports/clock.ts';
import type { Telemetry } from '../ports/telemetry.ts';
import type { MirrorSyncState } from '../telemetry/events.ts';
import type { WriteFence } from './write-fence.ts';

export interface MirrorResyncConfig {
  node: string;
  peer: string;
  lun: number;
  mode: MirrorMode;
  /** Sectors copied per chunk (one WRITE each). */
  chunkSectors: number;
  /** Chunks being copied at once. */
  chunksInFlightMax: number;
}

export interface MirrorResyncDeps {
  clock: Clock;
  telemetry: Telemetry;
  device: BlockDevice;
  fence: WriteFence;
  /** Mirror one chunk through the LUN's source channel. */
  submit(w: ChannelWrite): void;
  /** Reading the source volume failed: the resync cannot go on (it is retried at the next reconnect). */
  failed(error: unknown): void;
}

/**
 * A full-content resynchronisation of one mirrored LUN (docs/link-supervision.md,
 * "Resynchronisation"): after a restart of either side, what the target holds is no longer known,
 * so every chunk of the source's volume is copied through the mirror stream, in the background,
 * with hosts online. Each chunk is fenced against host writes while it is read and queued (see
 * {@link WriteFence}), so a host write to a block being copied is never overwritten by the copy's
 * older data. Copies go through the stream like host writes (under mirror locks, in order, with the
 * same retransmission), so a link that fails in the middle only delays them.
 *
 * States: `in-sync`, `needs-resync` (a restart was seen; the copy starts when the link is up) and
 * `resyncing` (how far in `doneSectors`). A restart seen during a resync starts it again.
 */
export class MirrorResync {
  private syncState: MirrorSyncState = 'in-sync';
  private nextLba = 0;
  private done = 0;
  private inFlight = 0;
  private epoch = 0;
  private readonly totalSectors: number;

  constructor(private readonly cfg: MirrorResyncConfig, private readonly deps: MirrorResyncDeps) {
    this.totalSectors = deps.device.sectorCount;
  }

  get state(): MirrorSyncState {
    return this.syncState;
  }

  get progress(): { doneSectors: number; totalSectors: number } {
    return { doneSectors: this.done, totalSectors: this.totalSectors };
  }

  /**
   * The link stayed down past `suspendAfterMs` (docs/tag-tables.md, "Suspension"): the mirror is
   * suspended, a copy under way stops (its chunks in the stream are dropped with the backlog), and
   * a resync is needed once the link is back ({@link markNeeded}, then {@link linkUp}).
   */
  suspend(): void {
    this.epoch++;
    this.nextLba = 0;
    this.done = 0;
    this.syncState = 'suspended';
    this.publish();
  }

  /** The mirror's copies may differ: copy everything again (from the start, even if a copy was under way). */
  markNeeded(): void {
    this.epoch++;
    this.nextLba = 0;
    this.done = 0;
    this.syncState = 'needs-resync';
    this.publish();
  }

  /** The link is up: start copying if a resync is needed, or go on with one under way. */
  linkUp(): void {
    if (this.syncState === 'needs-resync') {
      this.syncState = 'resyncing';
      this.publish();
    }
    this.pump();
  }

  private pump(): void {
    while (this.syncState === 'resyncing' && this.inFlight < this.cfg.chunksInFlightMax && this.nextLba < this.totalSectors) {
      const lba = this.nextLba;
      const count = Math.min(this.cfg.chunkSectors, this.totalSectors - lba);
      this.nextLba += count;
      this.inFlight++;
      this.copy(lba, count, this.epoch);
    }
    if (this.syncState === 'resyncing' && this.inFlight === 0 && this.nextLba >= this.totalSectors) {
      this.syncState = 'in-sync';
      this.publish();
    }
  }

  /** Fence the chunk, wait for host writes on it to reach the disk, read it, queue its copy, lift the fence. */
  private copy(lba: number, count: number, epoch: number): void {
    const { fence, device } = this.deps;
    fence.close(lba, count, () => {
      device.read(lba, count).then(
        (data) => {
          const w = new ResyncWrite(this.cfg, lba, count, data, () => fence.open(lba, count), (error) => this.copied(count, epoch, error));
          this.deps.submit(w);
        },
        (error: unknown) => {
          fence.open(lba, count);
          this.inFlight--;
          this.deps.failed(error);
        },
      );
    });
  }

  private copied(count: number, epoch: number, error: MirrorlabError | undefined): void {
    this.inFlight--;
    if (epoch !== this.epoch) return this.pump(); // a restart started the copy again meanwhile
    if (error !== undefined) {
      // The target refused the copy (a media error there): the mirror is not whole; try again from scratch later.
      this.markNeeded();
      return;
    }
    this.done += count;
    if (this.done % (this.cfg.chunkSectors * 64) === 0) this.publish();
    this.pump();
  }

  private publish(): void {
    const t = this.deps.telemetry;
    if (!t.enabled) return;
    t.emit({
      kind: 'mirror.state', t: this.deps.clock.now(), node: this.cfg.node, peer: this.cfg.peer, lun: this.cfg.lun, state: this.syncState,
      doneSectors: this.done, totalSectors: this.totalSectors,
    });
  }
}

/** One chunk of a resync, as its source channel sees it. Tag 0: it is no host's write. */
class ResyncWrite implements ChannelWrite {
  readonly tag = 0;
  readonly lun: number;
  private wasPlaced = false;
  readonly mode: MirrorMode;
  constructor(
    cfg: MirrorResyncConfig,
    readonly lba: number,
    readonly count: number,
    readonly data: Uint8Array,
    private readonly onPlaced: () => void,
    private readonly onConfirmed: (error: MirrorlabError | undefined) => void,
  ) {
    this.lun = cfg.lun;
    this.mode = cfg.mode;
  }

  admitted(): void {}

  /** The mirror was suspended with this chunk unconfirmed: the copy is void (a resync after the suspension copies again). */
  suspended(): void {
    this.placed();
    this.onConfirmed(new MirrorlabError('ML_ERR_MIRROR_SUSPENDED', `resync chunk [${this.lba}, +${this.count}) of LUN ${this.lun} dropped: the mirror was suspended`));
  }

  placed(): void {
    if (this.wasPlaced) return;
    this.wasPlaced = true;
    this.onPlaced();
  }

  confirmed(error?: MirrorlabError): void {
    this.onConfirmed(error);
  }
}
