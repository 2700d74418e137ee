import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ptyPair } from '../../../host/disks/serial-disk/socat-pty.ts';
import { ControlClient, ControlRequestError, type HostClient } from '../../../host/runtime/control-client.ts';
import { readLun, readLunToFile } from '../../../host/runtime/lun-reader.ts';
import { startSerialDiskProcess } from '../../../host/runtime/spawn.ts';
import { sectorOrigin } from '../../../host/workload/data.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { mirrorlab } from '../../support/run-cli.ts';
import { freshDir, startController, writeConfig } from './processes.ts';

const scratch = scratchDir('controller-attached');

afterEach(() => vi.restoreAllMocks());

describe('a controller process on attached-target volumes', () => {
  it('serves an emulated USB device and a board on a PTY as LUNs; both read back whole, in chunks, through the control socket', async () => {
    const dir = await freshDir(scratch);
    const pair = await ptyPair(dir, 'board');
    const board = await startSerialDiskProcess({ port: pair.b, volume: 'mem:1MiB', baud: 4_000_000 });
    try {
      expect(board.ready).toMatchObject({ ready: true, port: pair.b, volume: 'mem:1MiB', sectors: 2048, sectorSize: 512, baud: 4_000_000, pid: board.pid });
      const control = join(dir, 'a.sock');
      const config = await writeConfig(dir, 'a', {
        name: 'A', id: 1, control: { path: control },
        luns: [{ lun: 0, volume: 'usb-emu:1MiB:faults=stall-in@0.05,csw-tag@0.02' }, { lun: 1, volume: `serial-disk:${pair.a}:4000000` }],
      });
      const p = await startController({ configPath: config });
      const client = await ControlClient.connect(control);
      expect(await client.luns()).toEqual([
        { lun: 0, sectorSize: 512, sectorCount: 2048, role: 'local' },
        { lun: 1, sectorSize: 512, sectorCount: 2048, role: 'local' },
      ]);
      expect((await client.status()).luns.map((l) => l.volume)).toEqual(['usb-emu:1MiB:faults=stall-in@0.05,csw-tag@0.02', `serial-disk:${pair.a}:4000000`]);
      await Promise.all(Array.from({ length: 16 }, (_, i) => client.writeDescribed(i % 2, 2040 - i * 100, 8, { writer: 1, tag: i + 1 })));
      for (const lun of [0, 1]) {
        const path = join(dir, `lun${lun}.img`);
        // Chunks smaller than the LUN and not dividing it: the last one is short.
        expect(await readLunToFile(client, lun, path, { chunkBytes: 96 * 1024, inFlightMax: 3 })).toEqual({ sectors: 2048, sectorSize: 512, bytes: 1024 * 1024 });
        const image = await readFile(path);
        expect(image.length).toBe(1024 * 1024);
        for (let i = lun; i < 16; i += 2) {
          const lba = 2040 - i * 100;
          expect(sectorOrigin(image, lba * 512, 512, lba)).toEqual({ writer: 1, lun, tag: i + 1, lba });
        }
        expect(sectorOrigin(image, 0, 512, 0)).toBeNull();
      }
      await client.close();
      expect(await p.stop()).toEqual({ code: 0, signal: null });
    } finally {
      await board.stop();
      await pair.stop();
    }
  });

  it('refuses a USB device that is not there, or a serial port that does not exist, in one line, exit 2', async () => {
    const dir = await freshDir(scratch);
    for (const [volume, line] of [
      ['usb:1234:5678', 'error: ML_ERR_USB_NOT_FOUND: USB device 1234:5678 is not connected (no USB devices are present here); see mirrorlab devices\n'],
      ['serial-disk:/nonexistent/ttyX', 'error: ML_ERR_SERIAL_DISK_PORT: no serial port at /nonexistent/ttyX; expected a tty such as /dev/ttyUSB0 (see mirrorlab devices)\n'],
    ]) {
      const config = await writeConfig(dir, 'x', { name: 'X', id: 1, luns: [{ lun: 0, volume }], control: { path: join(dir, 'x.sock') } });
      const r = await mirrorlab(['controller', '--config', config]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toBe(line);
    }
  });
});

/** A host client over an in-memory LUN that refuses reads over `maxSectors`, counting what is in flight. */
function fakeClient(sectors: number, maxSectors: number, opts: { shortAt?: number } = {}) {
  const lun = new Uint8Array(sectors * 512).map((_, i) => (i * 7) & 0xff);
  const stats = { inFlight: 0, inFlightMax: 0, reads: [] as number[] };
  const client: HostClient = {
    luns: async () => [{ lun: 3, sectorSize: 512, sectorCount: sectors, role: 'replica' }],
    read: async (_lun, lba, count) => {
      stats.inFlight++;
      stats.inFlightMax = Math.max(stats.inFlightMax, stats.inFlight);
      await new Promise((r) => setTimeout(r, 1));
      stats.inFlight--;
      stats.reads.push(count);
      if (count > maxSectors) throw new ControlRequestError('ML_ERR_READ_TOO_LARGE', `a read returns at most ${maxSectors * 512} bytes`);
      const bytes = lun.slice(lba * 512, (lba + count) * 512);
      return lba === opts.shortAt ? bytes.subarray(1) : bytes;
    },
    write: async () => undefined, flush: async () => undefined, close: async () => undefined,
  };
  return { lun, stats, client };
}

describe('reading a whole LUN through a host client', () => {
  it('reads every byte once, in chunks that shrink to what the controller allows, with a bounded number in flight', async () => {
    const { lun, stats, client } = fakeClient(1000, 24);
    const out = new Uint8Array(lun.length);
    const seen = new Set<number>();
    const r = await readLun(client, 3, (offset, data) => {
      for (let s = 0; s < data.length / 512; s++) {
        expect(seen.has(offset / 512 + s)).toBe(false);
        seen.add(offset / 512 + s);
      }
      out.set(data, offset);
    }, { chunkBytes: 64 * 512, inFlightMax: 3 });
    expect(r).toEqual({ sectors: 1000, sectorSize: 512, bytes: 1000 * 512 });
    expect(out).toEqual(lun);
    expect(seen.size).toBe(1000);
    expect(stats.inFlightMax).toBeLessThanOrEqual(3);
    // 64 was refused, then 32, then the chunks are 16 sectors: the limit is learnt once, not per chunk.
    expect(stats.reads.filter((n) => n > 24).length).toBeLessThanOrEqual(3 * 2);
    expect(Math.max(...stats.reads.slice(-10))).toBe(16);
  });

  it('fails on a LUN the controller does not have, and on a reply of the wrong length, naming it', async () => {
    await expect(readLun(fakeClient(10, 10).client, 4, () => undefined)).rejects.toMatchObject({ code: 'ML_ERR_NO_LUN' });
    await expect(readLun(fakeClient(100, 100, { shortAt: 32 }).client, 3, () => undefined, { chunkBytes: 32 * 512, inFlightMax: 1 }))
      .rejects.toThrow(/^a read of 32 sectors at LBA 32 of LUN 3 returned 16383 bytes, not 16384$/);
  });
});
