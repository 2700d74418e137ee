import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseVolumeSpec } from '../../../host/disks/volume-spec.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { UsageError } from '../../../hil/plan-error.ts';

const root = new URL('../../../', import.meta.url).pathname;
const tmp = (): string => realpathSync(mkdtempSync(join(tmpdir(), 'mirrorlab-files-')));
const file = (dir: string, name: string, size = '2MiB') => parseVolumeSpec(`file:${join(dir, name)}:${size}`);
const run = (o: Partial<EmulateOptions>) => runEmulation({ ...DEFAULT_EMULATE, writes: 300, ...o });
const locks = (dir: string): string[] => readdirSync(dir).filter((f) => f.includes('.lock'));

describe('image files reused across runs: the mirror is established first (initial synchronisation)', () => {
  it('seed 1 then seed 2 on the same images: both consistent; the second run starts from the first run\'s data', async () => {
    const dir = tmp();
    const opts = { sourceVolume: file(dir, 'a.img'), targetVolume: file(dir, 'b.img') };
    const first = await run({ ...opts, seed: 1 });
    expect(first.violations, first.reproduce).toEqual([]);
    expect(first.initialSync).toMatchObject({ bytesCopied: 0, bytesCompared: 2 * 1024 * 1024 });
    const second = await run({ ...opts, seed: 2 });
    expect(second.violations, second.reproduce).toEqual([]);
    expect(second.initialSync.bytesCopied).toBe(0); // the copies were equal already
    expect(locks(dir)).toEqual([]);
  });

  it('a used source paired with a fresh target: its data is copied over before the run, and the checks hold', async () => {
    const dir = tmp();
    await run({ sourceVolume: file(dir, 'a.img'), targetVolume: file(dir, 'b.img'), seed: 1 });
    const r = await run({ sourceVolume: file(dir, 'a.img'), targetVolume: file(dir, 'fresh.img'), seed: 2, writes: 100 });
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.initialSync.bytesCopied).toBeGreaterThan(0);
    expect(r.initialSync.virtualMs).toBeGreaterThan(0);
  });

  it('a stale target (an old copy of other data) is overwritten by the sync, not reported as a mismatch', async () => {
    const dir = tmp();
    await run({ sourceVolume: file(dir, 'x.img'), targetVolume: file(dir, 'stale.img'), seed: 5 });
    // The target now holds x's data; pair it with a different, blank source.
    const r = await run({ sourceVolume: file(dir, 'blank.img'), targetVolume: file(dir, 'stale.img'), seed: 6, writes: 50 });
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.initialSync.bytesCopied).toBeGreaterThan(0);
  });

  it('bidirectional runs use PATH.lun1 for LUN 1, and reuse works both ways', async () => {
    const dir = tmp();
    const opts = { bidirectional: true, sourceVolume: file(dir, 'a.img'), targetVolume: file(dir, 'b.img') };
    for (const seed of [1, 2]) {
      const r = await run({ ...opts, seed });
      expect(r.violations, r.reproduce).toEqual([]);
    }
    expect(readdirSync(dir).sort()).toEqual(['a.img', 'a.img.lun1', 'b.img', 'b.img.lun1']);
  });

  it('a memory target paired with a used image source gets its data too', async () => {
    const dir = tmp();
    await run({ sourceVolume: file(dir, 'a.img'), targetVolume: file(dir, 'b.img'), seed: 1 });
    const r = await run({ sourceVolume: file(dir, 'a.img'), targetVolume: parseVolumeSpec('raid5:3x1MiB:chunk=16KiB'), seed: 2, writes: 100 });
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.initialSync.bytesCopied).toBe(2 * 1024 * 1024);
  });
});

describe('nothing leaks when a run cannot start', () => {
  it('the same image on both sides: a usage error before anything is opened, no lock file', async () => {
    const dir = tmp();
    const same = file(dir, 'same.img');
    const err = await run({ sourceVolume: same, targetVolume: same }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/volumes A\/lun0 and B\/lun0 would both use the image .*same\.img; a mirror needs two copies/);
    expect(locks(dir)).toEqual([]);
  });

  it('the second volume cannot be opened (wrong size): the first one is closed again and its lock file removed', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'b.img'), new Uint8Array(1024 * 1024));
    const err = await run({ sourceVolume: file(dir, 'a.img'), targetVolume: file(dir, 'b.img') }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/b\.img is 1048576 bytes, but the disk needs exactly 2097152/);
    expect(existsSync(join(dir, 'a.img'))).toBe(true);
    expect(locks(dir)).toEqual([]);
  });

  it('a trace file that cannot be written fails the run at once and leaves no image lock behind', async () => {
    const dir = tmp();
    const err = await runEmulation({ ...DEFAULT_EMULATE, writes: 10, sourceVolume: file(dir, 'a.img'), targetVolume: file(dir, 'b.img') }, { tracePath: join(dir, 'no-such-dir', 't.jsonl') })
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(locks(dir)).toEqual([]);
  });

  it('the CLI exits 2 with a one-line message, no stack trace, no lock file', () => {
    const dir = tmp();
    const spec = `file:${join(dir, 'same.img')}:2MiB`;
    const r = spawnSync(process.execPath, ['bin/mirrorlab.mjs', 'emulate', '--source-volume', spec, '--target-volume', spec], { cwd: root, encoding: 'utf8', env: { ...process.env, MIRRORLAB_LOG: 'warn' } });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/error: volumes A\/lun0 and B\/lun0 would both use the image/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(locks(dir)).toEqual([]);
  });
});
