import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseControllerConfig } from '../../../host/runtime/config.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { mirrorlab } from '../../support/run-cli.ts';

const scratch = scratchDir('controller-cli');

describe('mirrorlab controller and status, at the command line', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('prints a complete example config that it accepts', async () => {
    const r = await mirrorlab(['controller', '--print-example-config']);
    expect(r.code).toBe(0);
    expect(parseControllerConfig(r.stdout).name).toBe('A');
  });

  it.each([
    ['no --config', [], /^error: controller needs --config FILE \(mirrorlab controller --print-example-config shows one\)\n$/],
    ['a missing file', ['--config', '/nonexistent/c.json'], /^error: ML_ERR_CONTROLLER_CONFIG: config file \/nonexistent\/c\.json could not be read: ENOENT/],
  ])('exits 2 in one line for %s', async (_what, args, message) => {
    const r = await mirrorlab(['controller', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
  });

  it('exits 2 in one line, opening nothing, for a config with a mistake', async () => {
    const path = join(scratch.dir(), 'bad.json');
    await writeFile(path, JSON.stringify({ name: 'A', id: 1, luns: [{ lun: 0, volume: `file:${scratch.dir()}/x.img:1MiB`, mirror: { peer: 'B', mode: 'quick' } }] }));
    const r = await mirrorlab(['controller', '--config', path]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error: ML_ERR_CONTROLLER_CONFIG: ${path}: luns[0].mirror.mode: must be one of "sync", "speculative", "async", got "quick"\n`);
  });

  it('exits 2 in one line for a port another program holds, leaving the images it opened unlocked', async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
    const port = (holder.address() as { port: number }).port;
    const image = join(scratch.dir(), 'p.img');
    const path = join(scratch.dir(), 'port.json');
    await writeFile(path, JSON.stringify({
      name: 'B', id: 2, luns: [{ lun: 0, volume: `file:${image}:1MiB`, replicaOf: 'A' }],
      peers: [{ name: 'A', link: `tcp-listen:127.0.0.1:${port}` }], control: { path: join(scratch.dir(), 'p.sock') },
    }));
    try {
      const r = await mirrorlab(['controller', '--config', path]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^error: ML_ERR_LINK_\w+: .*\n$/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      holder.close();
    }
    expect(existsSync(`${image}.lock`)).toBe(false);
    expect(existsSync(join(scratch.dir(), 'p.sock'))).toBe(false);
  });

  it('status: exits 2 in one line when nothing listens, and when no socket or several are in the run directory', async () => {
    let r = await mirrorlab(['status', '--control', join(scratch.dir(), 'none.sock')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: ML_ERR_CONTROL_UNREACHABLE: no controller at .*none\.sock: no such socket/);
    const runDir = join(scratch.dir(), 'run');
    await mkdir(runDir);
    vi.stubEnv('XDG_RUNTIME_DIR', runDir);
    r = await mirrorlab(['status']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error: no controller socket (mirrorlab-*.sock) in ${runDir}; give --control PATH\n`);
    // Where a socket was: found, but nobody answers.
    await writeFile(join(runDir, 'mirrorlab-A.sock'), '');
    r = await mirrorlab(['status']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: ML_ERR_CONTROL_UNREACHABLE: no controller at .*mirrorlab-A\.sock/);
    await writeFile(join(runDir, 'mirrorlab-B.sock'), '');
    r = await mirrorlab(['status']);
    expect(r.stderr).toMatch(/several controller sockets in .* say which with --control PATH/);
  });
});
