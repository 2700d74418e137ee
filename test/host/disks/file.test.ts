import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceFailedError } from '../../../firmware/ports/block-device.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { FileDisk } from '../../../host/disks/file.ts';
import { FaultyDisk } from '../../../host/disks/faulty.ts';
import { blockDeviceContract } from './contract.ts';
import { pattern, rejectionOf, runUntilSettled } from './helpers.ts';

let dir = '';
let serial = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mirrorlab-filedisk-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
const freshPath = () => join(dir, `disk-${serial++}.img`);

blockDeviceContract('FileDisk', async ({ sectorSize, sectorCountMin }) => {
  const clock = new VirtualClock();
  const device = await FileDisk.open({ path: freshPath(), sectorSize, sectorCount: sectorCountMin * 2, clock, service: { fixedMs: 0.2 } });
  return { clock, device, close: () => device.close() };
});

blockDeviceContract('FileDisk under the fault overlay', async ({ sectorSize, sectorCountMin }) => {
  const clock = new VirtualClock();
  const inner = await FileDisk.open({ path: freshPath(), sectorSize, sectorCount: sectorCountMin * 2, clock });
  const device = new FaultyDisk({ inner, clock });
  return {
    clock, device, close: () => inner.close(),
    injectMediaError: (lba) => device.apply({ badSectors: [lba] }),
    failDevice: () => device.fail(),
  };
});

/** A pid that cannot be running (above Linux's pid_max): a crashed owner. */
const DEAD_PID = 2 ** 31 - 1;

describe('FileDisk', () => {
  it('creates a sparse image of the exact size', async () => {
    const path = freshPath();
    const disk = await FileDisk.open({ path, sectorSize: 4096, sectorCount: 1 << 18, clock: new VirtualClock() }); // 1 GiB
    const st = await stat(path);
    expect(st.size).toBe(2 ** 30);
    expect(st.blocks * 512).toBeLessThan(1 << 20);
    await disk.close();
  });

  it('survives a restart: closed and reopened, the data is there', async () => {
    const path = freshPath();
    const clock = new VirtualClock();
    const first = await FileDisk.open({ path, sectorCount: 128, clock });
    await runUntilSettled(clock, first.write(7, pattern(9, 3 * 512)));
    await runUntilSettled(clock, first.flush());
    await first.close();
    const again = await FileDisk.open({ path, sectorCount: 128, clock, create: false });
    expect(await runUntilSettled(clock, again.read(7, 3))).toEqual(pattern(9, 3 * 512));
    await again.close();
  });

  it('survives a crash: takes over the lock of a dead owner', async () => {
    const path = freshPath();
    const clock = new VirtualClock();
    const first = await FileDisk.open({ path, sectorCount: 128, clock });
    await runUntilSettled(clock, first.write(1, pattern(3, 512)));
    await runUntilSettled(clock, first.flush());
    await writeFile(`${path}.lock`, `${DEAD_PID}\n`); // the owner "crashed" without unlocking
    const again = await FileDisk.open({ path, sectorCount: 128, clock });
    expect(await readFile(`${path}.lock`, 'utf8')).toBe(`${process.pid}\n`);
    expect(await runUntilSettled(clock, again.read(1, 1))).toEqual(pattern(3, 512));
    await again.close();
    await first.close().catch(() => undefined);
  });

  it('refuses an image already in use, naming the owner', async () => {
    const path = freshPath();
    const disk = await FileDisk.open({ path, sectorCount: 128, clock: new VirtualClock() });
    await expect(FileDisk.open({ path, sectorCount: 128, clock: new VirtualClock() })).rejects.toMatchObject({
      code: 'ML_ERR_DISK_IN_USE',
      message: expect.stringContaining(`process ${process.pid}`),
    });
    await disk.close();
    const reopened = await FileDisk.open({ path, sectorCount: 128, clock: new VirtualClock() });
    await reopened.close();
  });

  it('refuses an image of the wrong size, and releases the lock', async () => {
    const path = freshPath();
    await writeFile(path, '');
    await truncate(path, 1000 * 512);
    await expect(FileDisk.open({ path, sectorCount: 128, clock: new VirtualClock() })).rejects.toMatchObject({
      code: 'ML_ERR_DISK_IMAGE_SIZE',
      message: expect.stringContaining('512000 bytes'),
    });
    await expect(stat(`${path}.lock`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('does not create an image when told not to', async () => {
    await expect(FileDisk.open({ path: freshPath(), sectorCount: 8, clock: new VirtualClock(), create: false })).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('fails requests after close with DeviceFailedError', async () => {
    const clock = new VirtualClock();
    const disk = await FileDisk.open({ path: freshPath(), sectorCount: 8, clock });
    await disk.close();
    expect(await rejectionOf(clock, disk.read(0, 1))).toBeInstanceOf(DeviceFailedError);
  });

  it('completes in virtual time exactly after its service time, whatever the real I/O took', async () => {
    const clock = new VirtualClock();
    const disk = await FileDisk.open({ path: freshPath(), sectorCount: 1024, clock, service: { fixedMs: 2, perByteMs: 0.001 } });
    await runUntilSettled(clock, disk.write(0, new Uint8Array(1024)));
    expect(clock.now()).toBeCloseTo(2 + 1.024, 9);
    await disk.close();
  });

  it('applies overlapping writes in issue order', async () => {
    const clock = new VirtualClock();
    const disk = await FileDisk.open({ path: freshPath(), sectorCount: 1024, clock });
    const writes = Array.from({ length: 20 }, (_, i) => disk.write(0, pattern(i, 64 * 512)));
    await runUntilSettled(clock, Promise.all(writes));
    expect(await runUntilSettled(clock, disk.read(0, 64))).toEqual(pattern(19, 64 * 512));
    await disk.close();
  });
});
