import { describe, expect, it } from 'vitest';
import { MediaError, type BlockDevice } from '../../../firmware/ports/block-device.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { FileDisk } from '../../../host/disks/file.ts';
import { FaultyDisk } from '../../../host/disks/faulty.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { contractCase, runContractCase, type ContractFactory } from './contract.ts';
import { syncSpy } from './file-spy.ts';
import { scratchDir } from '../../support/scratch-dir.ts';

/**
 * The contract suite must be able to fail (docs/conventions.md 10): each case below runs on a device
 * broken in the one way the case is about, and must throw, and on the same device unbroken,
 * and must pass.
 */

/** A device that passes everything through; a broken one overrides what it breaks. */
class Passthrough implements BlockDevice {
  constructor(readonly inner: BlockDevice, protected readonly clock: VirtualClock) {}
  get name(): string { return `broken ${this.inner.name}`; }
  get sectorSize(): number { return this.inner.sectorSize; }
  get sectorCount(): number { return this.inner.sectorCount; }
  read(lba: number, count: number): Promise<Uint8Array> { return this.inner.read(lba, count); }
  write(lba: number, data: Uint8Array): Promise<void> { return this.inner.write(lba, data); }
  flush(): Promise<void> { return this.inner.flush(); }
}

/** Acknowledges a flush without passing it down. */
class NoopFlush extends Passthrough {
  override flush(): Promise<void> { return this.clock.sleep(0.1); }
}

/** Serves every sector it has read once from its own copy ever after. */
class StaleReads extends Passthrough {
  private readonly seen = new Map<string, Uint8Array>();
  override async read(lba: number, count: number): Promise<Uint8Array> {
    const key = `${lba}+${count}`;
    const old = this.seen.get(key);
    const fresh = await this.inner.read(lba, count);
    if (old) return old.slice();
    this.seen.set(key, fresh.slice());
    return fresh;
  }
}

/** Resolves writes as soon as they are issued, not through the clock. */
class EagerWrites extends Passthrough {
  override write(lba: number, data: Uint8Array): Promise<void> {
    this.inner.write(lba, data).catch(() => undefined);
    return Promise.resolve();
  }
}

/** Reports a media error at the start of the request instead of the bad sector. */
class VagueMediaErrors extends Passthrough {
  override read(lba: number, count: number): Promise<Uint8Array> {
    return this.inner.read(lba, count).catch((error: unknown) => {
      throw error instanceof MediaError ? new MediaError(this.name, lba) : error;
    });
  }
}

type Breaker = (inner: BlockDevice, clock: VirtualClock) => BlockDevice;
const asIs: Breaker = (inner) => inner;

/** A memory disk whose volatile cache loses everything unflushed at a power cut, under a fault overlay. */
function memory(breaker: Breaker): ContractFactory {
  return async ({ sectorSize, sectorCountMin }) => {
    const clock = new VirtualClock();
    const disk = new MemoryDisk({ name: 'mem', sectorSize, sectorCount: sectorCountMin, clock, service: { fixedMs: 0.1 }, writeCacheBytesMax: 64 * sectorSize });
    const faulty = new FaultyDisk({ inner: disk, clock });
    const device = breaker(faulty, clock);
    return {
      clock, device,
      injectMediaError: (lba) => faulty.apply({ badSectors: [lba] }),
      powerCycle: () => (disk.powerCut(), device),
    };
  };
}

const scratch = scratchDir('contract');

function file(breaker: Breaker): ContractFactory {
  return async ({ sectorSize, sectorCountMin }) => {
    const clock = new VirtualClock();
    const spy = syncSpy();
    const disk = await FileDisk.open({ path: scratch.path('d'), sectorSize, sectorCount: sectorCountMin, clock, openFile: spy.openFile });
    return { clock, device: breaker(disk, clock), barriers: spy.syncs, close: () => disk.close() };
  };
}

const CAUGHT: { breakage: string; breaker: Breaker; factory: (b: Breaker) => ContractFactory; caughtBy: string }[] = [
  { breakage: 'a flush that does nothing (volatile cache)', breaker: (d, c) => new NoopFlush(d, c), factory: memory, caughtBy: 'makes flushed writes durable: they survive a power cut' },
  { breakage: 'a flush that never fsyncs the image file', breaker: (d, c) => new NoopFlush(d, c), factory: file, caughtBy: 'flush reaches the storage underneath: at least one durability barrier (fsync) per flush' },
  { breakage: 'reads served stale from a copy', breaker: (d, c) => new StaleReads(d, c), factory: memory, caughtBy: 'returns what was written (read-after-write), at the ends and across the middle' },
  { breakage: 'writes acknowledged on the spot', breaker: (d, c) => new EagerWrites(d, c), factory: memory, caughtBy: 'settles every request through the clock, never on the spot' },
  { breakage: 'a media error naming the wrong LBA', breaker: (d, c) => new VagueMediaErrors(d, c), factory: memory, caughtBy: 'reports a media error with its LBA, and only for requests that touch it' },
];

describe('the BlockDevice contract catches broken devices', () => {
  for (const { breakage, breaker, factory, caughtBy } of CAUGHT) {
    it(`${breakage}: '${caughtBy}' fails on it, and passes without the breakage`, async () => {
      const c = contractCase(caughtBy);
      await expect(runContractCase(c, factory(breaker), 512)).rejects.toThrow();
      await expect(runContractCase(c, factory(asIs), 512)).resolves.toBeUndefined();
    });
  }
});
