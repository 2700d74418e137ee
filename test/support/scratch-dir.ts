import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

/**
 * A temporary directory for one test file: made before its tests, removed with everything in it
 * after them. `path()` names a fresh file in it; `dir()` is the directory itself.
 */
export function scratchDir(prefix: string): { dir: () => string; path: (stem: string, ext?: string) => string } {
  let dir = '';
  let serial = 0;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `mirrorlab-${prefix}-`));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return { dir: () => dir, path: (stem, ext = '.img') => join(dir, `${stem}${serial++}${ext}`) };
}
