import { RealClock } from '../../../../host/clock/real.ts';
import { VirtualClock } from '../../../../host/clock/virtual.ts';
import { FaultyDisk } from '../../../../host/disks/faulty.ts';
import { MemoryDisk } from '../../../../host/disks/memory.ts';
import { BlockServer, type BlockServerOptions } from '../../../../host/disks/serial-disk/block-server.ts';
import type { ByteLine } from '../../../../host/disks/serial-disk/line.ts';
import { SerialDisk, type SerialDiskOptions } from '../../../../host/disks/serial-disk/serial-disk.ts';
import type { ContractFactory } from '../contract.ts';

/**
 * The board's side of a test: a memory disk with a volatile cache under a fault overlay, on a
 * real clock (the board runs in wall time: its disk must never wait on the host's virtual clock,
 * which stands still while the host waits for the line).
 */
export function board(line: ByteLine, geometry: { sectorSize: number; sectorCount: number }, options: Partial<BlockServerOptions> = {}) {
  const clock = new RealClock();
  const media = new MemoryDisk({ name: 'board', ...geometry, clock, writeCacheBytesMax: 64 * geometry.sectorSize });
  const overlay = new FaultyDisk({ inner: media, clock });
  const server = new BlockServer({ line, device: overlay, ...options });
  return { media, overlay, server };
}

/** A contract factory: the serial disk on a virtual clock, a board at the other end of `lines()`'s line. */
export function serialFactory(lines: () => Promise<[ByteLine, ByteLine, () => Promise<void>]>, options: Partial<SerialDiskOptions> = {}, serverOptions: Partial<BlockServerOptions> = {}): ContractFactory {
  return async ({ sectorSize, sectorCountMin }) => {
    const [host, far, cleanup] = await lines();
    const b = board(far, { sectorSize, sectorCount: sectorCountMin }, serverOptions);
    const clock = new VirtualClock();
    // The lines here are as fast as memory (a PTY ignores the rate): say so, or the first timeouts are sized for a real 115,200-baud UART.
    const disk = await SerialDisk.open({ name: 'serial-disk', clock, line: host, baud: 4_000_000, retransmitBaseMs: 30, ...options });
    return {
      device: disk,
      clock,
      injectMediaError: (lba) => b.overlay.apply({ badSectors: [lba] }),
      failDevice: () => b.overlay.fail(),
      powerCycle: () => {
        b.media.powerCut();
        return disk;
      },
      close: async () => {
        await disk.close();
        await b.server.stop();
        await far.close();
        await cleanup();
      },
    };
  };
}
