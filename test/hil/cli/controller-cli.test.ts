import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../../hil/cli/main.ts';
import { parseControllerConfig } from '../../../host/runtime/config.ts';
import { scratchDir } from '../../support/scratch-dir.ts';

const scratch = scratchDir('controller-cli');

/** Runs `mirrorlab ARGS` in this process; what it wrote to stdout and stderr, and its exit status. */
async function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  try {
    const code = await main(args);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('mirrorlab controller and status, at the command line', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('prints a complete example config that it accepts', async () => {
    const r = await run(['controller', '--print-example-config']);
    expect(r.code).toBe(0);
    expect(parseControllerConfig(r.stdout).name).toBe('A');
  });

  it.each([
    ['no --config', [], /^error: controller needs --config FILE \(mirrorlab controller --print-example-config shows one\)\n$/],
    ['a missing file', ['--config', '/nonexistent/c.json'], /^error: ML_ERR_CONTROLLER_CONFIG: config file \/nonexistent\/c\.json could not be read: ENOENT/],
  ])('exits 2 in one line for %s', async (_what, args, message) => {
    const r = await run(['controller', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
  });

  it('exits 2 in one line, opening nothing, for a config with a mistake', async () => {
    const path = join(scratch.dir(), 'bad.json');
    await writeFile(path, JSON.stringify({ name: 'A', id: 1, luns: [{ lun: 0, volume: `file:${scratch.dir()}/x.img:1MiB`, mirror: { peer: 'B', mode: 'quick' } }] }));
    const r = await run(['controller', '--config', path]);
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
      const r = await run(['controller', '--config', path]);
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
    let r = await run(['status', '--control', join(scratch.dir(), 'none.sock')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: ML_ERR_CONTROL_UNREACHABLE: no controller at .*none\.sock: no such socket/);
    const runDir = join(scratch.dir(), 'run');
    await mkdir(runDir);
    vi.stubEnv('XDG_RUNTIME_DIR', runDir);
    r = await run(['status']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error: no controller socket (mirrorlab-*.sock) in ${runDir}; give --control PATH\n`);
    // Where a socket was: found, but nobody answers.
    await writeFile(join(runDir, 'mirrorlab-A.sock'), '');
    r = await run(['status']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: ML_ERR_CONTROL_UNREACHABLE: no controller at .*mirrorlab-A\.sock/);
    await writeFile(join(runDir, 'mirrorlab-B.sock'), '');
    r = await run(['status']);
    expect(r.stderr).toMatch(/several controller sockets in .* say which with --control PATH/);
  });
});
