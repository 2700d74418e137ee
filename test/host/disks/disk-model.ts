import { expect } from 'vitest';

/**
 * The model of a disk for the RAID property tests (docs/conventions.md 10): a plain Map from LBA to what
 * the sector may hold.
 *
 * - `durable`: what a power cut leaves it at: one value normally; after a cut, every value it
 *   may hold (`'any'` where the RAID-5 write hole allows garbage) until a read pins it.
 * - `since`: values written since the last flush, oldest first; the newest is what a read returns.
 *
 * A power cut turns each sector into the set {durable, ...since}: a flushed write survives, an
 * unflushed one may or may not, per sector, and nothing else appears.
 */
interface SectorModel {
  durable: Uint8Array[] | 'any';
  since: Uint8Array[];
}

export class DiskModel {
  readonly sectorSize: number;
  readonly sectorCount: number;
  private readonly sectors = new Map<number, SectorModel>();
  private readonly zero: Uint8Array;

  constructor(sectorSize: number, sectorCount: number) {
    this.sectorSize = sectorSize;
    this.sectorCount = sectorCount;
    this.zero = new Uint8Array(sectorSize);
  }

  write(lba: number, data: Uint8Array): void {
    for (let i = 0; i * this.sectorSize < data.length; i++) {
      this.sector(lba + i).since.push(data.subarray(i * this.sectorSize, (i + 1) * this.sectorSize));
    }
  }

  flush(): void {
    for (const s of this.sectors.values()) {
      if (s.since.length > 0) s.durable = [s.since[s.since.length - 1]!];
      s.since = [];
    }
  }

  /** LBAs written since the last flush. */
  unflushed(): number[] {
    return [...this.sectors].filter(([, s]) => s.since.length > 0).map(([lba]) => lba);
  }

  powerCut(garbageAllowed: Iterable<number>): void {
    for (const s of this.sectors.values()) {
      if (s.since.length === 0) continue;
      s.durable = s.durable === 'any' ? 'any' : [...s.durable, ...s.since];
      s.since = [];
    }
    for (const lba of garbageAllowed) this.sector(lba).durable = 'any';
  }

  /** Checks a read against the model; a sector that was uncertain is pinned to what was read. */
  observe(lba: number, data: Uint8Array, context: string): void {
    for (let i = 0; i * this.sectorSize < data.length; i++) {
      const s = this.sector(lba + i);
      const got = data.subarray(i * this.sectorSize, (i + 1) * this.sectorSize);
      const newest = s.since[s.since.length - 1];
      if (newest !== undefined) {
        if (!same(got, newest)) expect.fail(`${context}: LBA ${lba + i} reads other than the last write`);
        continue;
      }
      if (s.durable !== 'any' && !s.durable.some((v) => same(v, got))) {
        expect.fail(`${context}: LBA ${lba + i} reads a value it never held (${s.durable.length} candidates)`);
      }
      s.durable = [got.slice()];
    }
  }

  private sector(lba: number): SectorModel {
    let s = this.sectors.get(lba);
    if (s === undefined) {
      s = { durable: [this.zero], since: [] };
      this.sectors.set(lba, s);
    }
    return s;
  }
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}
