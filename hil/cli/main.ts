import { Command, CommanderError } from 'commander';
import { MirrorlabError } from '../../firmware/errors.ts';
import { createLogger } from '../log.ts';
import { UsageError } from '../plan-error.ts';
import { benchCommand } from './bench-command.ts';
import { campaignCommand } from './campaign-command.ts';
import { conformanceCommand } from './conformance-command.ts';
import { controllerCommand } from './controller-command.ts';
import { demoCommand } from './demo-command.ts';
import { devicesCommand } from './devices-command.ts';
import { emulateCommand } from './emulate-command.ts';
import { historyCommand } from './history-command.ts';
import { proxyCommand } from './proxy-command.ts';
import { rackCommand } from './rack-command.ts';
import { loadCommand } from './load-command.ts';
import { serialDiskCommand } from './serial-disk-command.ts';
import { statechartsCommand } from './statecharts-command.ts';
import { statusCommand } from './status-command.ts';
import { workerCommand } from './worker-command.ts';
import { vizCommand } from './viz-command.ts';

/**
 * The `mirrorlab` command. Exit status:
 * - 0: every run was consistent;
 * - 1: a run was carried out and found inconsistent (the checker's verdict);
 * - 2: the run could not be carried out: bad usage (a flag, a plan, `MIRRORLAB_LOG`), or an
 *   operating error (a typed {@link MirrorlabError}: a disk image in use or of the wrong size, a
 *   trace file that cannot be written; or a system error such as ENOENT from opening a file the
 *   user named). One line, `error: ...`, never a stack trace;
 * - 70: an internal error (a bug: then the stack is printed, since someone must fix it).
 */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const exit = (c: number): void => {
    code = c;
  };
  try {
    const log = createLogger();
    const program = new Command('mirrorlab')
      .description('storage-controller firmware emulator and HIL testbed for speculative remote mirroring')
      .exitOverride()
      .configureOutput({ writeErr: (s) => process.stderr.write(s) })
      .showHelpAfterError('(run with --help for usage)');
    program.addCommand(emulateCommand(log.child({ module: 'emulate' }), exit));
    program.addCommand(campaignCommand(log.child({ module: 'campaign' }), exit));
    program.addCommand(statechartsCommand());
    program.addCommand(demoCommand(log.child({ module: 'demo' }), exit));
    program.addCommand(benchCommand(log.child({ module: 'bench' }), exit));
    program.addCommand(workerCommand(log.child({ module: 'worker' }), exit));
    program.addCommand(historyCommand(exit));
    program.addCommand(vizCommand(log.child({ module: 'viz' }), exit));
    program.addCommand(devicesCommand(exit));
    program.addCommand(serialDiskCommand(log.child({ module: 'serial-disk' }), exit));
    program.addCommand(proxyCommand(log.child({ module: 'proxy' }), exit));
    program.addCommand(controllerCommand(log.child({ module: 'controller' }), exit));
    program.addCommand(statusCommand(exit));
    program.addCommand(loadCommand(exit));
    program.addCommand(rackCommand(log.child({ module: 'rack' }), exit));
    program.addCommand(conformanceCommand(log.child({ module: 'conformance' }), exit));
    for (const cmd of program.commands) cmd.exitOverride();
    for (const cmd of program.commands.flatMap((c) => c.commands)) cmd.exitOverride();
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    return failure(err);
  }
}

/**
 * System error codes that mean "the file or directory the user named cannot be used as asked":
 * operating errors at the boundary, reported in one line with exit 2.
 */
const USER_FILE_ERRORS: ReadonlySet<string> = new Set([
  'ENOENT', 'EACCES', 'EPERM', 'EISDIR', 'ENOTDIR', 'EEXIST', 'EROFS', 'ENOSPC', 'EDQUOT', 'ENAMETOOLONG', 'ELOOP', 'EBUSY', 'ETXTBSY', 'EMFILE', 'ENFILE', 'EFBIG',
]);

/** Turn what a command threw into an exit status and at most one line (or, for a bug, a stack) on stderr. */
export function failure(err: unknown): number {
  if (err instanceof CommanderError) {
    // commander has already printed its message (or the help).
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof UsageError) {
    process.stderr.write(`error: ${err.message}\n`);
    return 2;
  }
  if (err instanceof MirrorlabError) {
    process.stderr.write(`error: ${err.code}: ${err.message}\n`);
    return 2;
  }
  const sys = err as NodeJS.ErrnoException;
  if (err instanceof Error && typeof sys.code === 'string' && USER_FILE_ERRORS.has(sys.code) && typeof sys.syscall === 'string') {
    process.stderr.write(`error: ${sys.message}\n`);
    return 2;
  }
  process.stderr.write(`internal error (a bug in mirrorlab; please report it with the command that caused it):\n${err instanceof Error ? err.stack : String(err)}\n`);
  return 70;
}
