import { assert } from '../../firmware/errors.ts';

/**
 * An HDD-like positioning cost. A request that starts where the previous one ended (sequential
 * I/O) pays nothing; any other pays a seek that grows with the square root of the distance (the
 * arm accelerates, then coasts: the usual fit to measured seek curves) plus half a revolution of
 * average rotational latency.
 */
export interface SeekModel {
  /** Seek to the neighbouring track, e.g. 0.5. */
  trackToTrackMs: number;
  /** Seek across the whole disk, e.g. 15. */
  fullStrokeMs: number;
  /** Spindle speed, e.g. 7200; average rotational latency is half a revolution. */
  rpm: number;
}

/** How long a request takes: `fixedMs + perByteMs * bytes`, plus the seek model if given. */
export interface ServiceTimeConfig {
  fixedMs?: number;
  perByteMs?: number;
  seek?: SeekModel;
}

/**
 * Service times of one disk. Requests are modelled as running side by side (no queue): the
 * disk never delays one request for another, which keeps the model cheap and its figures easy
 * to reason about; the seek model only remembers where the head was left by the last request
 * issued. Times are in ms, fractional; the virtual clock keeps them exact to the nanosecond.
 */
export class ServiceModel {
  private readonly fixedMs: number;
  private readonly perByteMs: number;
  private readonly seek: SeekModel | undefined;
  private readonly sectorCount: number;
  private headLba = 0;

  constructor(config: ServiceTimeConfig, sectorCount: number) {
    this.fixedMs = config.fixedMs ?? 0;
    this.perByteMs = config.perByteMs ?? 0;
    this.seek = config.seek;
    this.sectorCount = sectorCount;
    assert(this.fixedMs >= 0 && this.perByteMs >= 0, 'service times must be >= 0');
    if (this.seek) {
      const { trackToTrackMs, fullStrokeMs, rpm } = this.seek;
      assert(trackToTrackMs >= 0 && fullStrokeMs >= trackToTrackMs && rpm > 0, 'bad seek model');
    }
  }

  /** Time for a transfer of `bytes` at `lba`; moves the head. */
  transferMs(lba: number, count: number, bytes: number): number {
    let ms = this.fixedMs + this.perByteMs * bytes;
    if (this.seek !== undefined) {
      ms += this.positionMs(lba);
      this.headLba = lba + count;
    }
    return ms;
  }

  /** Time for a cache flush command. */
  flushMs(): number {
    return this.fixedMs;
  }

  /** Forget the head position (power cycle). */
  reset(): void {
    this.headLba = 0;
  }

  private positionMs(lba: number): number {
    const seek = this.seek!;
    const distance = Math.abs(lba - this.headLba);
    if (distance === 0) return 0;
    const stroke = Math.sqrt(distance / Math.max(1, this.sectorCount));
    return seek.trackToTrackMs + (seek.fullStrokeMs - seek.trackToTrackMs) * stroke + 30_000 / seek.rpm;
  }
}
