import { Command, CommanderError } from 'commander';
import { MirrorlabError } from '../../firmware/errors.ts';
import { createLogger } from '../log.ts';
import { UsageError } from '../plan-error.ts';
import type { Logger } from '../log.ts';

type Exit = (code: number) => void;

/** Every subcommand, in the order help lists them, each loaded only when it is needed. */
const COMMANDS: readonly { name: string; load(log: Logger, exit: Exit): Promise<Command> }[] = [
  { name: 'emulate', load: async (log, exit) => (await import('./emulate-command.ts')).emulateCommand(log.child({ module: 'emulate' }), exit) },
  { name: 'campaign', load: async (log, exit) => (await import('./campaign-command.ts')).campaignCommand(log.child({ module: 'campaign' }), exit) },
  { name: 'statecharts', load: async () => (await import('./statecharts-command.ts')).statechartsCommand() },
  { name: 'demo', load: async (log, exit) => (await import('./demo-command.ts')).demoCommand(log.child({ module: 'demo' }), exit) },
  { name: 'bench', load: async (log, exit) => (await import('./bench-command.ts')).benchCommand(log.child({ module: 'bench' }), exit) },
  { name: 'worker', load: async (log, exit) => (await import('./worker-command.ts')).workerCommand(log.child({ module: 'worker' }), exit) },
  { name: 'history', load: async (_log, exit) => (await import('./history-command.ts')).historyCommand(exit) },
  { name: 'viz', load: async (log, exit) => (await import('./viz-command.ts')).vizCommand(log.child({ module: 'viz' }), exit) },
  { name: 'devices', load: async (_log, exit) => (await import('./devices-command.ts')).devicesCommand(exit) },
  { name: 'serial-disk', load: async (log, exit) => (await import('./serial-disk-command.ts')).serialDiskCommand(log.child({ module: 'serial-disk' }), exit) },
  { name: 'proxy', load: async (log, exit) => (await import('./proxy-command.ts')).proxyCommand(log.child({ module: 'proxy' }), exit) },
  { name: 'controller', load: async (log, exit) => (await import('./controller-command.ts')).controllerCommand(log.child({ module: 'controller' }), exit) },
  { name: 'status', load: async (_log, exit) => (await import('./status-command.ts')).statusCommand(exit) },
  { name: 'load', load: async (_log, exit) => (await import('./load-command.ts')).loadCommand(exit) },
  { name: 'rack', load: async (log, exit) => (await import('./rack-command.ts')).rackCommand(log.child({ module: 'rack' }), exit) },
  { name: 'conformance', load: async (log, exit) => (await import('./conformance-command.ts')).conformanceCommand(log.child({ module: 'conformance' }), exit) },
];

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
    // Only the command asked for is loaded (each pulls in its own part of mirrorlab): a controller
    // process or a one-shot command starts in a fraction of the time. Help and unknown commands load them all.
    const asked = COMMANDS.filter((c) => c.name === argv[0]);
    for (const c of asked.length === 1 ? asked : COMMANDS) program.addCommand(await c.load(log, exit));
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
