import { Command } from 'commander';
import { loadControllerConfig } from '../../host/runtime/config.ts';
import { ControllerRuntime, EXIT_INTERNAL, type OpenLink } from '../../host/runtime/controller-process.ts';
import { EXAMPLE_CONFIG } from '../../host/runtime/example-config.ts';
import type { ControllerReady } from '../../host/runtime/spawn.ts';
import type { Logger } from '../log.ts';
import { UsageError } from '../plan-error.ts';
import { VERSION } from '../version.ts';

interface ControllerFlags {
  config?: string;
  control?: string;
  telemetry?: string;
  printExampleConfig: boolean;
}


/**
 * `mirrorlab controller --config FILE`: one storage controller as a process (docs/controller-process.md),
 * running until SIGTERM, SIGINT or a `stop` on its control socket. The first signal stops it
 * cleanly (exit 0); a second stops it at once (exit 2). A bad config or an operating error at start
 * (an image in use, a port taken, a live controller on the socket) is one line and exit 2; a
 * firmware error stops it cleanly with exit 70.
 */
export function controllerCommand(log: Logger, exit: (code: number) => void, deps: { openLink?: OpenLink } = {}): Command {
  return new Command('controller')
    .description('run one storage controller as a process: its volumes, its peers over live links, host I/O through a control socket, telemetry as JSON lines')
    .option('--config <file>', 'the controller\'s config file (JSON; --print-example-config shows every field)')
    .option('--control <path>', 'the control socket (a unix socket, made mode 0600); overrides the config\'s control.path')
    .option('--telemetry <target>', 'write telemetry as JSON lines to this file (appended to), or to unix:PATH where a collector listens; overrides the config\'s telemetry')
    .option('--print-example-config', 'print a complete example config and exit', false)
    .action(async (flags: ControllerFlags) => {
      if (flags.printExampleConfig) {
        process.stdout.write(`${JSON.stringify(EXAMPLE_CONFIG, null, 2)}\n`);
        return exit(0);
      }
      if (flags.config === undefined) throw new UsageError('controller needs --config FILE (mirrorlab controller --print-example-config shows one)');
      const config = await loadControllerConfig(flags.config);
      exit(await runController({ config, log, controlPath: flags.control, telemetry: flags.telemetry, openLink: deps.openLink }));
    });
}

async function runController(opts: Parameters<typeof ControllerRuntime.start>[0]): Promise<number> {
  const { log } = opts;
  const runtime = await ControllerRuntime.start({ ...opts, version: VERSION });
  // From here on this process is the controller: a bug anywhere is exit 70, with its stack.
  const internal = (error: unknown): void => {
    process.stderr.write(`internal error (a bug in mirrorlab; please report it with the command that caused it):\n${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(EXIT_INTERNAL);
  };
  process.on('uncaughtException', internal);
  process.on('unhandledRejection', internal);
  // One JSON line on stdout once it is up, for whoever started it (startControllerProcess, the rack, a script).
  const ready: ControllerReady = { ready: true, name: runtime.name, session: runtime.session, pid: process.pid, control: runtime.controlPath, telemetry: opts.telemetry ?? opts.config.telemetry };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      log.info({ signal }, 'stopping cleanly (signal again to stop at once)');
      void runtime.shutdown(signal, 0);
      return;
    }
    const report = runtime.forceStop(`second ${signal}`);
    process.exit(report.exitCode);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const report = await runtime.stopped();
  for (const [event, handler] of [['SIGINT', onSignal], ['SIGTERM', onSignal], ['uncaughtException', internal], ['unhandledRejection', internal]] as const) {
    process.off(event, handler);
  }
  // Everything is closed; should a stray handle keep the event loop alive, the exit still comes.
  setTimeout(() => process.exit(report.exitCode), 2_000).unref();
  return report.exitCode;
}
