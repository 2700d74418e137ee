import { vi } from 'vitest';
import { main } from '../../hil/cli/main.ts';

/**
 * `mirrorlab ARGS` in this process, as a user would run it, with its logging silenced: the exit
 * status it would have, and what it wrote to stdout and stderr.
 */
export async function mirrorlab(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  const previous = process.env.MIRRORLAB_LOG;
  process.env.MIRRORLAB_LOG = 'silent';
  try {
    return { code: await main(args), stdout: out.join(''), stderr: err.join('') };
  } finally {
    vi.restoreAllMocks();
    if (previous === undefined) delete process.env.MIRRORLAB_LOG;
    else process.env.MIRRORLAB_LOG = previous;
  }
}
