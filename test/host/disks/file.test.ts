import { spawn } from 'node:child_process';
import { mkdir, readFile, stat, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DeviceFailedError } from '../../../firmware/ports/block-device.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { DiskImageError } from '../../../host/disks/errors.ts';
import { FileDisk } from '../../../host/disks/file.ts';
import { FaultyDisk } from '../../../host/disks/faulty.ts';
import { ImageLock, LOCK_UNREADABLE_STALE_MS } from '../../../host/disks/file-lock.ts';
import { parseOwner } from '../../../host/disks/lock-owner.ts';
import { blockDeviceContract } from './contract.ts';
import { syncSpy } from './file-spy.ts';
import { pattern, rejectionOf, runUntilSettled } from './helpers.ts';
import { scratchDir } from '../../support/scratch-dir.ts';

const scratch = scratchDir('filedisk');
const freshPath = () => scratch.path('disk-');

blockDeviceContract('FileDisk', async ({ sectorSize, sectorCountMin }) => {
  const clock = new VirtualClock();
  const spy = syncSpy();
  const device = await FileDisk.open({ path: freshPath(), sectorSize, sectorCount: sectorCountMin * 2, clock, service: { fixedMs: 0.2 }, openFile: spy.openFile });
  return { clock, device, barriers: spy.syncs, close: () => device.close() };
}, { can: { barriers: true } });

blockDeviceContract('FileDisk under the fault overlay', async ({ sectorSize, sectorCountMin }) => {
  const clock = new VirtualClock();
  const spy = syncSpy();
  const inner = await FileDisk.open({ path: freshPath(), sectorSize, sectorCount: sectorCountMin * 2, clock, openFile: spy.openFile });
  const device = new FaultyDisk({ inner, clock });
  return {
    clock, device, close: () => inner.close(), barriers: spy.syncs,
    injectMediaError: (lba) => device.apply({ badSectors: [lba] }),
    failDevice: () => device.fail(),
  };
}, { can: { mediaErrors: true, deviceFailure: true, barriers: true } });

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

describe('FileDisk: what goes wrong opening an image is a DiskImageError, one line, no stack', () => {
  const open = (path: string, create = true) => FileDisk.open({ path, sectorCount: 8, clock: new VirtualClock(), create });
  const failure = async (path: string, create = true): Promise<DiskImageError> => {
    const error = await open(path, create).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(DiskImageError);
    const e = error as DiskImageError;
    expect(e.message).not.toContain('\n');
    expect(e.message).toContain(path);
    return e;
  };

  it('a directory that does not exist', async () => {
    const path = join(scratch.dir(), 'no-such-dir', 'a.img');
    const e = await failure(path);
    expect(e).toMatchObject({ code: 'ML_ERR_DISK_IMAGE', errno: 'ENOENT' });
    expect(e.message).toMatch(/directory .*no-such-dir does not exist.*expected a path in an existing directory/);
  });

  it('a directory given as the path', async () => {
    const path = scratch.path('a-directory-', '');
    await mkdir(path);
    const e = await failure(path);
    expect(e).toMatchObject({ code: 'ML_ERR_DISK_IMAGE', errno: 'EISDIR' });
    expect(e.message).toMatch(/is a directory; expected the path of an image file/);
    await expect(stat(`${path}.lock`)).rejects.toMatchObject({ code: 'ENOENT' }); // nothing left behind
  });

  it('an image that does not exist when creating is off', async () => {
    const e = await failure(freshPath(), false);
    expect(e).toMatchObject({ code: 'ML_ERR_DISK_IMAGE', errno: 'ENOENT' });
    expect(e.message).toMatch(/no such image.*expected an existing image file/);
  });

  it('a path through a regular file', async () => {
    const file = freshPath();
    await writeFile(file, '');
    const e = await failure(join(file, 'a.img'));
    expect(e).toMatchObject({ code: 'ML_ERR_DISK_IMAGE', errno: 'ENOTDIR' });
  });

  it('not a regular file', async () => {
    const e = await failure('/dev/null');
    expect(e).toMatchObject({ code: 'ML_ERR_DISK_IMAGE' });
    expect(e.message).toMatch(/not a regular file/);
  });
});

describe('FileDisk: flush', () => {
  it('fsyncs the image on every flush (spied on the file handle)', async () => {
    const spy = syncSpy();
    const clock = new VirtualClock();
    const disk = await FileDisk.open({ path: freshPath(), sectorCount: 8, clock, openFile: spy.openFile });
    await runUntilSettled(clock, disk.write(0, pattern(1, 512)));
    expect(spy.syncs()).toBe(0);
    await runUntilSettled(clock, disk.flush());
    await runUntilSettled(clock, disk.flush());
    expect(spy.syncs()).toBe(2);
    await disk.close();
  });
});

describe('FileDisk: the image lock', () => {
  it('writes a complete lock file naming this process, and removes it on close', async () => {
    const path = freshPath();
    const disk = await FileDisk.open({ path, sectorCount: 8, clock: new VirtualClock() });
    const owner = parseOwner(await readFile(`${path}.lock`, 'utf8'));
    expect(owner).toMatchObject({ pid: process.pid, host: hostname() });
    expect(owner!.token).toMatch(/^[0-9a-f]{16}$/);
    await disk.close();
    await expect(stat(`${path}.lock`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses an image already in use, naming the owner and how to clear a wrong lock', async () => {
    const path = freshPath();
    const disk = await FileDisk.open({ path, sectorCount: 128, clock: new VirtualClock() });
    const e = await FileDisk.open({ path, sectorCount: 128, clock: new VirtualClock() }).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(DiskImageError);
    if (!(e instanceof DiskImageError)) return;
    expect(e.code).toBe('ML_ERR_DISK_IN_USE');
    expect(e.message).toContain(`process ${process.pid} on ${hostname()}`);
    expect(e.message).toContain(`delete ${path}.lock`);
    await disk.close();
    const reopened = await FileDisk.open({ path, sectorCount: 128, clock: new VirtualClock() });
    await reopened.close();
  });

  it('refuses a symlink to an image in use (the lock is on the real path)', async () => {
    const path = freshPath();
    const link = `${path}.link`;
    await symlink(path, link);
    const disk = await FileDisk.open({ path, sectorCount: 8, clock: new VirtualClock() });
    await expect(FileDisk.open({ path: link, sectorCount: 8, clock: new VirtualClock() })).rejects.toMatchObject({ code: 'ML_ERR_DISK_IN_USE' });
    await disk.close();
    // And the other way round: opened through the link, the lock sits beside the real file.
    const viaLink = await FileDisk.open({ path: link, sectorCount: 8, clock: new VirtualClock() });
    await expect(stat(`${path}.lock`)).resolves.toBeDefined();
    await expect(stat(`${link}.lock`)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(FileDisk.open({ path, sectorCount: 8, clock: new VirtualClock() })).rejects.toMatchObject({ code: 'ML_ERR_DISK_IN_USE' });
    await viaLink.close();
  });

  it('takes over the lock of a dead owner', async () => {
    const path = freshPath();
    await writeFile(`${path}.lock`, `${DEAD_PID}\nhost=${hostname()}\n`);
    const disk = await FileDisk.open({ path, sectorCount: 8, clock: new VirtualClock() });
    expect(parseOwner(await readFile(`${path}.lock`, 'utf8'))?.pid).toBe(process.pid);
    await disk.close();
  });

  it('takes over a lock whose pid was reused (running, but started at another time) or is from a previous boot', async () => {
    for (const extra of ['start=1', 'boot=00000000-0000-0000-0000-000000000000']) {
      const path = freshPath();
      await writeFile(`${path}.lock`, `${process.ppid}\nhost=${hostname()}\n${extra}\n`); // the parent is running
      const disk = await FileDisk.open({ path, sectorCount: 8, clock: new VirtualClock() });
      await disk.close();
    }
  });

  it('never takes over a lock of another machine', async () => {
    const path = freshPath();
    await writeFile(`${path}.lock`, `${DEAD_PID}\nhost=some-other-host\n`);
    await expect(FileDisk.open({ path, sectorCount: 8, clock: new VirtualClock() })).rejects.toMatchObject({
      code: 'ML_ERR_DISK_IN_USE', message: expect.stringContaining('on some-other-host, another machine'),
    });
  });

  it('lets exactly one of many concurrent openers have the image, fresh or over a stale lock', async () => {
    // In one process the fs calls of 8 openers interleave in the thread pool: with a lock that is
    // empty between create and write, or a takeover that unlinks without re-checking, several win.
    for (let round = 0; round < 20; round++) {
      const path = freshPath();
      if (round % 2 === 1) await writeFile(`${path}.lock`, `${DEAD_PID}\nhost=${hostname()}\n`);
      const outcomes = await Promise.allSettled(Array.from({ length: 8 }, () => ImageLock.acquire(path)));
      const winners = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
      expect({ round, winners: winners.length }).toEqual({ round, winners: 1 });
      for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'ML_ERR_DISK_IN_USE' });
      await winners[0]!.release();
    }
  });

  it('treats a lock naming no owner as in use while young, and as stale once old', async () => {
    const path = freshPath();
    await writeFile(`${path}.lock`, '');
    await expect(FileDisk.open({ path, sectorCount: 8, clock: new VirtualClock() })).rejects.toMatchObject({ code: 'ML_ERR_DISK_IN_USE' });
    const old = (Date.now() - LOCK_UNREADABLE_STALE_MS - 1000) / 1000;
    await utimes(`${path}.lock`, old, old);
    const disk = await FileDisk.open({ path, sectorCount: 8, clock: new VirtualClock() });
    await disk.close();
  });
});

// --- Separate processes -------------------------------------------------------------------------

const CHILD = fileURLToPath(new URL('./file-disk-child.ts', import.meta.url));

interface Child {
  /** The next JSON line the child prints. */
  next(): Promise<Record<string, unknown>>;
  send(line: string): void;
  end(): void;
  exited: Promise<number | null>;
}

/** Runs file-disk-child.ts in its own Node process, loading tsx the way bin/mirrorlab.mjs does. */
function child(...args: string[]): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx/esm', CHILD, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', resolve));
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  return {
    next: async () => {
      const line = await lines.next();
      if (line.done) throw new Error(`child ${args.join(' ')} printed nothing; stderr: ${stderr}`);
      return JSON.parse(line.value) as Record<string, unknown>;
    },
    send: (line) => void proc.stdin.write(`${line}\n`),
    end: () => void proc.stdin.end(),
    exited,
  };
}

/** `n` processes open one image at the same instant (each waits for "go"); returns what each got. */
async function race(path: string, n: number): Promise<Record<string, unknown>[]> {
  const children = Array.from({ length: n }, () => child('hold', path));
  await new Promise((resolve) => setTimeout(resolve, 50)); // let them reach their "go" prompt
  for (const c of children) c.send('go');
  const results = await Promise.all(children.map((c) => c.next()));
  for (const c of children) c.end();
  await Promise.all(children.map((c) => c.exited));
  return results;
}

describe('FileDisk across processes', () => {
  it('survives a process restart: written and closed in one process, read back in another', async () => {
    const path = freshPath();
    const writer = child('write', path, '41');
    expect(await writer.next()).toMatchObject({ result: 'written' });
    expect(await writer.exited).toBe(0);
    const reader = child('read', path);
    expect(await reader.next()).toEqual({ result: 'read', hex: Buffer.from(pattern(41, 3 * 512)).toString('hex') });
    expect(await reader.exited).toBe(0);
  });

  it('survives a crash: the next process takes over the dead owner\'s lock and reads the flushed data', async () => {
    const path = freshPath();
    const writer = child('crash', path, '42');
    const { pid } = await writer.next();
    expect(await writer.exited).toBe(0);
    expect(parseOwner(await readFile(`${path}.lock`, 'utf8'))?.pid).toBe(pid); // left behind
    const reader = child('read', path);
    expect(await reader.next()).toEqual({ result: 'read', hex: Buffer.from(pattern(42, 3 * 512)).toString('hex') });
    expect(await reader.exited).toBe(0);
    await expect(stat(`${path}.lock`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('lets exactly one of several processes opening one image at once have it', async () => {
    const results = await race(freshPath(), 3);
    expect(results.filter((r) => r.result === 'won')).toHaveLength(1);
    expect(results.filter((r) => r.result === 'refused').map((r) => r.code)).toEqual(['ML_ERR_DISK_IN_USE', 'ML_ERR_DISK_IN_USE']);
  });

  it('lets exactly one of several processes take over one stale lock', async () => {
    const path = freshPath();
    await writeFile(`${path}.lock`, `${DEAD_PID}\nhost=${hostname()}\n`);
    const results = await race(path, 3);
    expect(results.filter((r) => r.result === 'won')).toHaveLength(1);
    expect(results.filter((r) => r.result === 'refused').map((r) => r.code)).toEqual(['ML_ERR_DISK_IN_USE', 'ML_ERR_DISK_IN_USE']);
  });
});
