import { Command, CommanderError } from 'commander';
import { MirrorlabError } from '../../firmware/errors.ts';
import { createLogger } from '../log.ts';
import { UsageError } from '../plan-error.ts';
import { benchCommand } from './bench-command.ts';
import { campaignCommand } from './campaign-command.ts';
import { demoCommand } from './demo-command.ts';
import { emulateCommand } from './emulate-command.ts';
import { statechartsCommand } from './statecharts-command.ts';

/**
 * The `mirrorlab` command. Exit status: 0 when every run was consistent, 1 when one was not,
 * 2 on bad usage (with a message saying what is allowed; never a stack trace for a user mistake),
 * 70 on an internal error (a bug: then the stack is printed, since someone must fix it).
 */
export async function main(argv: string[]): Promise<number> {
  const log = createLogger();
  let code = 0;
  const exit = (c: number): void => {
    code = c;
  };
  const program = new Command('mirrorlab')
    .description('storage-controller firmware emulator and HIL testbed for speculative remote mirroring')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .showHelpAfterError('(run with --help for usage)');
  program.addCommand(emulateCommand(log, exit));
  program.addCommand(campaignCommand(log, exit));
  program.addCommand(statechartsCommand());
  program.addCommand(demoCommand(log, exit));
  program.addCommand(benchCommand(log, exit));
  for (const cmd of program.commands) cmd.exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    return failure(err);
  }
}

function failure(err: unknown): number {
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
    return 1;
  }
  process.stderr.write(`internal error (a bug in mirrorlab; please report it with the command that caused it):\n${err instanceof Error ? err.stack : String(err)}\n`);
  return 70;
}
