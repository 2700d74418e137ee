/** Samples in one epoch of the windowed maximum: the estimate covers the last 64 to 128 samples. */
const EPOCH_SAMPLES = 64;

/**
 * The bottleneck bandwidth as the source sees it (after BBR, Cardwell et al. 2016): each confirmed
 * entry sent once gives a sample, the bytes confirmed while it was in flight over its round trip,
 * and the estimate is the largest recent sample. Where the link is the bottleneck the samples are
 * the link's rate; where latency dominates they are what the source offers. A maximum, because a
 * sample can only understate what the path delivers (a pause of the sender's own), never overstate
 * it by much. Recent: the maximum of the current epoch and the one before, so that a slower link
 * (a bandwidth drop) is believed within two epochs. O(1) per sample, no allocation.
 */
export class DeliveryRate {
  private epochMax = 0;
  private previousMax = 0;
  private samples = 0;

  /** Bytes per ms the path is believed to deliver (0 before any sample). */
  get bytesPerMs(): number {
    return Math.max(this.epochMax, this.previousMax);
  }

  sample(bytesPerMs: number): void {
    if (!(bytesPerMs > 0) || !Number.isFinite(bytesPerMs)) return;
    if (bytesPerMs > this.epochMax) this.epochMax = bytesPerMs;
    if (++this.samples < EPOCH_SAMPLES) return;
    this.previousMax = this.epochMax;
    this.epochMax = 0;
    this.samples = 0;
  }
}
