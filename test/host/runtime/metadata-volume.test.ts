import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MetadataStore } from '../../../firmware/metadata/metadata-store.ts';
import { RealClock } from '../../../host/clock/real.ts';
import { FileDisk } from '../../../host/disks/file.ts';
import { parseControllerConfig } from '../../../host/runtime/config.ts';
import { ControllerRuntime } from '../../../host/runtime/controller-process.ts';
import { scratchDir } from '../../support/scratch-dir.ts';

const scratch = scratchDir('metadata-volume');
const log = pino({ level: 'silent' });

function configFor(dir: string, metadata: string | undefined) {
  return parseControllerConfig(JSON.stringify({
    name: 'A', id: 1, luns: [{ lun: 0, volume: 'mem:1MiB' }], control: { path: join(dir, 'a.sock') }, ...(metadata ? { metadata } : {}),
  }));
}

describe('the controller process\'s metadata volume (docs/controller-process.md 2)', () => {
  it('is opened and locked with the LUNs, recovered by the controller (docs/tag-tables.md, "Metadata"), and flushed, closed and unlocked at a stop', async () => {
    const dir = scratch.dir();
    const image = join(dir, 'a.meta');
    const first = await ControllerRuntime.start({ config: configFor(dir, `file:${image}:1MiB`), log });
    const session = first.controller.session;
    try {
      expect(existsSync(`${image}.lock`)).toBe(true);
      expect(first.metadata).toMatchObject({ text: `file:${image}:1MiB`, device: { sectorSize: 512, sectorCount: 2048 } });
      // A new image: nothing to recover, a first start.
      expect(first.controller.metadataRecovered).toMatchObject({ blank: true, entries: 0 });
      // A second controller on the same metadata image is refused, and the first keeps its lock.
      const second = await ControllerRuntime.start({ config: configFor(join(dir, 'x'), `file:${image}:1MiB`), log, controlPath: join(dir, 'b.sock') }).catch((e: unknown) => e);
      expect(second).toMatchObject({ code: 'ML_ERR_DISK_IN_USE' });
      expect(existsSync(`${image}.lock`)).toBe(true);
    } finally {
      expect((await first.shutdown('test', 0)).exitCode).toBe(0);
    }
    expect(existsSync(`${image}.lock`)).toBe(false);
    expect((await stat(image)).size).toBe(1 << 20);
    // What the first start committed over real file I/O: its session (committed at its start).
    const disk = await FileDisk.open({ path: image, sectorCount: 2048, clock: new RealClock(), create: false });
    try {
      const { recovered } = await MetadataStore.open(disk);
      expect(recovered).toMatchObject({ blank: false, session });
    } finally {
      await disk.close();
    }
    // The next start of the controller recovers it: a restart, which it knows without its peers.
    const again = await ControllerRuntime.start({ config: configFor(dir, `file:${image}:1MiB`), log });
    try {
      expect(again.controller.metadataRecovered).toMatchObject({ blank: false, session });
      expect(again.controller.session).not.toBe(session);
    } finally {
      expect((await again.shutdown('test', 0)).exitCode).toBe(0);
    }
  });

  it('is absent unless the config names one', async () => {
    const dir = scratch.dir();
    const runtime = await ControllerRuntime.start({ config: configFor(dir, undefined), log, controlPath: join(dir, 'c.sock') });
    expect(runtime.metadata).toBeNull();
    expect((await runtime.shutdown('test', 0)).exitCode).toBe(0);
  });
});
