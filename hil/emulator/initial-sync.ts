import { Buffer } from 'node:buffer';
import type { BlockDevice } from '../../firmware/ports/block-device.ts';
import type { VirtualClock } from '../../host/clock/virtual.ts';
import { sectorFingerprint, type Baseline } from '../checker/content-checks.ts';
import { chunkSectors, drive, readBoth } from './chunks.ts';

/**
 * Most memory the fingerprints of pre-existing data may take (bytes): 64 MiB, a CRC32C per sector
 * of every chunk that held data before the run (8 GiB of data at 512-byte sectors, 64 GiB at
 * 4096). Chunks beyond it are still synchronised; only their untouched sectors go unchecked
 * (the run's notes say so).
 */
export const BASELINE_FINGERPRINT_BYTES_MAX = 64 * 1024 * 1024;

export interface InitialSyncReport {
  /** Bytes copied from a source to its target (chunks that differed). */
  bytesCopied: number;
  /** Bytes compared (read on both sides); 0 when every volume was blank memory. */
  bytesCompared: number;
  /** Virtual time the synchronisation took on its own clock, before the run's time 0. */
  virtualMs: number;
}

/** One mirror to establish: the source volume (its contents win) and the target's copy. */
export interface SyncPair {
  name: string;
  source: BlockDevice;
  target: BlockDevice;
}

/**
 * The source's contents before the run, as a {@link Baseline}: per content chunk that held any
 * data, a CRC32C per sector; chunks without one held zeros, unless they were past the memory
 * budget (then unknown).
 */
export class SyncBaseline implements Baseline {
  private readonly chunks = new Map<number, Uint32Array>();
  private readonly unknown = new Set<number>();
  private bytes = 0;

  constructor(private readonly chunkSectorCount: number) {}

  /** Chunks whose untouched sectors cannot be checked (over the budget). */
  get chunksUnknown(): number {
    return this.unknown.size;
  }

  record(chunk: number, data: Uint8Array, sectorSize: number): void {
    const sectors = data.length / sectorSize;
    if (this.bytes + sectors * 4 > BASELINE_FINGERPRINT_BYTES_MAX) {
      this.unknown.add(chunk);
      return;
    }
    const crcs = new Uint32Array(sectors);
    for (let s = 0; s < sectors; s++) crcs[s] = sectorFingerprint(data, s * sectorSize, sectorSize);
    this.chunks.set(chunk, crcs);
    this.bytes += crcs.byteLength;
  }

  expected(lba: number): number | null | undefined {
    const chunk = Math.floor(lba / this.chunkSectorCount);
    const crcs = this.chunks.get(chunk);
    if (crcs !== undefined) return crcs[lba - chunk * this.chunkSectorCount];
    return this.unknown.has(chunk) ? undefined : null;
  }
}

/**
 * Establish the mirrors before the run, as a storage engineer does when pairing volumes that may
 * already hold data (an image file reused from an earlier run): every chunk of the source that
 * differs from the target's is copied over, so both copies start equal and the run's checks can
 * hold them to it. Chunks equal on both sides (blank ones in particular) are read, not written.
 *
 * It runs out of band: on `clock`, a virtual clock of its own, through the real device stack
 * (arrays compute parity, files are written and flushed, service times are paid), before the
 * controllers start. Doing it in the run's virtual time instead would move every timed fault of
 * the plan relative to the workload, and a blank volume pair (memory) would pay for nothing; the
 * caller skips pairs of blank memory volumes altogether. The time it took is reported apart.
 *
 * Returns the report and, per pair, the source's pre-existing contents as a baseline.
 */
export async function initialSync(pairs: readonly SyncPair[], clock: VirtualClock): Promise<{ report: InitialSyncReport; baselines: Map<string, SyncBaseline> }> {
  const report: InitialSyncReport = { bytesCopied: 0, bytesCompared: 0, virtualMs: 0 };
  const baselines = new Map<string, SyncBaseline>();
  const start = clock.now();
  for (const pair of pairs) baselines.set(pair.name, await syncPair(pair, clock, report));
  report.virtualMs = Math.round((clock.now() - start) * 1e6) / 1e6;
  return { report, baselines };
}

async function syncPair(pair: SyncPair, clock: VirtualClock, report: InitialSyncReport): Promise<SyncBaseline> {
  const { source, target } = pair;
  const sectorSize = source.sectorSize;
  const step = chunkSectors(sectorSize);
  const baseline = new SyncBaseline(step);
  const sectors = Math.min(source.sectorCount, target.sectorCount);
  let copied = false;
  for (let lba = 0; lba < sectors; lba += step) {
    const n = Math.min(step, sectors - lba);
    const [s, t] = await readBoth(clock, [source, target], lba, n);
    if (s instanceof Error) throw new Error(`initial synchronisation of ${pair.name}: ${s.message}`);
    if (!allZero(s)) baseline.record(lba / step, s, sectorSize);
    report.bytesCompared += s.length;
    if (t instanceof Uint8Array && Buffer.from(s.buffer, s.byteOffset, s.length).equals(Buffer.from(t.buffer, t.byteOffset, t.length))) continue;
    await drive(clock, target.write(lba, s));
    report.bytesCopied += s.length;
    copied = true;
  }
  if (copied) await drive(clock, target.flush());
  return baseline;
}

function allZero(b: Uint8Array): boolean {
  const words = b.byteOffset % 4 === 0 ? new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2) : new Uint32Array(0);
  for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
  for (let i = words.length * 4; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
