import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { ControlClient } from '../../host/runtime/control-client.ts';
import { renderStatus } from '../../host/runtime/status.ts';
import { UsageError } from '../plan-error.ts';

/**
 * `mirrorlab status [--control PATH] [--json]`: what a running controller process is doing
 * (docs/controller-process.md 6), asked over its control socket. Without --control, the one
 * controller socket in the run directory is used. Nothing listening is one line and exit 2.
 */
export function statusCommand(exit: (code: number) => void): Command {
  return new Command('status')
    .description('show a running controller: every chart\'s state, log depths, links and their connections, counters, session, uptime and volumes')
    .option('--control <path>', 'the controller\'s control socket (default: the only mirrorlab-*.sock in $XDG_RUNTIME_DIR or the temp directory)')
    .option('--json', 'print exactly one JSON document on stdout', false)
    .action(async (flags: { control?: string; json: boolean }) => {
      const path = flags.control ?? (await onlyControlSocket());
      const client = await ControlClient.connect(path);
      try {
        const status = await client.status();
        process.stdout.write(flags.json ? `${JSON.stringify(status, null, 2)}\n` : `${renderStatus(status)}\n`);
      } finally {
        await client.close();
      }
      exit(0);
    });
}

async function onlyControlSocket(): Promise<string> {
  const dir = process.env.XDG_RUNTIME_DIR || tmpdir();
  const found = (await readdir(dir).catch(() => [] as string[])).filter((f) => /^mirrorlab-.+\.sock$/.test(f)).map((f) => join(dir, f));
  if (found.length === 1) return found[0]!;
  if (found.length === 0) throw new UsageError(`no controller socket (mirrorlab-*.sock) in ${dir}; give --control PATH`);
  throw new UsageError(`several controller sockets in ${dir} (${found.join(', ')}); say which with --control PATH`);
}
