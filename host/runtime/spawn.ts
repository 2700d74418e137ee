import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MirrorlabError } from '../../firmware/errors.ts';

/** The entry module a controller process runs by default: the `mirrorlab` command itself. */
export const DEFAULT_CONTROLLER_ENTRY = fileURLToPath(new URL('../../bin/mirrorlab.mjs', import.meta.url));
/** The repository root: where `tsx` resolves from for `--import tsx`. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const READY_TIMEOUT_MS_DEFAULT = 30_000;
/** Lines of a child's stderr kept for error messages (the newest). */
const STDERR_LINES_KEPT = 200;
/** Longest line read from a child's stdout while waiting for it to be ready (bytes). */
const READY_LINE_BYTES_MAX = 64 * 1024;

export class ControllerSpawnError extends MirrorlabError {}

export interface StartControllerOptions {
  /** The controller's config file. */
  configPath: string;
  /**
   * The module the child runs (default: bin/mirrorlab.mjs). It is given `[...entryArgs, 'controller',
   * '--config', FILE, ...]` and must behave as `mirrorlab` does with them: print one ready line,
   * run until stopped. Tests pass one under `test/` that plants firmware bugs first (docs/conventions.md 15):
   * no flag or config file of mirrorlab reaches them.
   */
  entryModule?: string;
  entryArgs?: string[];
  /** Overrides the config's control path and telemetry target. */
  controlPath?: string;
  telemetry?: string;
  /** Extra environment (MIRRORLAB_LOG, ...), on top of this process's. */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
}

/** What the controller printed when it came up (hil/cli/controller-command.ts `ReadyLine`). */
export interface ControllerReady {
  ready: true;
  name: string;
  session: number;
  pid: number;
  control: string;
  telemetry: string | null;
}

export interface ControllerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running controller process. */
export interface ControllerProcess {
  readonly pid: number;
  readonly ready: ControllerReady;
  readonly child: ChildProcess;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ControllerExit>;
  /** The newest lines it wrote to stderr (its log). */
  stderr(): string;
  /** Sends a signal (SIGTERM: a clean stop; SIGKILL: a crash). */
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL if it has not exited within `timeoutMs`; its exit. */
  stop(opts?: { timeoutMs?: number }): Promise<ControllerExit>;
}

/**
 * Starts `mirrorlab controller` as a child process (`node --import tsx ENTRY ...`) and waits for its
 * ready line. A child that exits first, or stays silent past the timeout (then it is killed), is a
 * {@link ControllerSpawnError} carrying the end of its stderr, which says why (a bad config, an
 * image in use...).
 */
export async function startControllerProcess(opts: StartControllerOptions): Promise<ControllerProcess> {
  const entry = opts.entryModule ?? DEFAULT_CONTROLLER_ENTRY;
  const args = ['--import', 'tsx', entry, ...(opts.entryArgs ?? []), 'controller', '--config', opts.configPath];
  if (opts.controlPath !== undefined) args.push('--control', opts.controlPath);
  if (opts.telemetry !== undefined) args.push('--telemetry', opts.telemetry);
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    const parts = (partial + text).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    if (lines.length > STDERR_LINES_KEPT) lines.splice(0, lines.length - STDERR_LINES_KEPT);
  });
  const exited = new Promise<ControllerExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const stderr = (): string => [...lines, partial].filter((l) => l !== '').join('\n');
  const ready = await waitReady(child, exited, opts.readyTimeoutMs ?? READY_TIMEOUT_MS_DEFAULT, stderr);
  // Whatever else it prints goes nowhere, so a full pipe never blocks it.
  child.stdout!.resume();
  const kill = (signal: NodeJS.Signals): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  return {
    pid: child.pid!, ready, child, exited, stderr, kill,
    async stop({ timeoutMs = 20_000 } = {}) {
      kill('SIGTERM');
      const timer = setTimeout(() => kill('SIGKILL'), timeoutMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

function waitReady(child: ChildProcess, exited: Promise<ControllerExit>, timeoutMs: number, stderr: () => string): Promise<ControllerReady> {
  return new Promise((resolve, reject) => {
    let text = '';
    const fail = (why: string): void => {
      cleanup();
      reject(new ControllerSpawnError('ML_ERR_CONTROLLER_START', `${why}${stderr() === '' ? '' : `; its stderr ends:\n${stderr().split('\n').slice(-20).join('\n')}`}`));
    };
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl < 0) {
        if (text.length > READY_LINE_BYTES_MAX) fail('the controller printed no ready line');
        return;
      }
      let line: unknown;
      try {
        line = JSON.parse(text.slice(0, nl));
      } catch {
        return fail(`the controller's first line is not its ready line: ${text.slice(0, Math.min(nl, 200))}`);
      }
      if ((line as ControllerReady | null)?.ready !== true) return fail(`the controller's first line is not its ready line: ${text.slice(0, Math.min(nl, 200))}`);
      cleanup();
      resolve(line as ControllerReady);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(`the controller was not ready within ${timeoutMs} ms`);
    }, timeoutMs);
    let settled = false;
    void exited.then(({ code, signal }) => {
      // Give stderr's last bytes a moment to arrive before quoting it.
      if (!settled) setTimeout(() => fail(`the controller exited (${signal ?? `code ${code}`}) before it was ready`), 50);
    });
    function cleanup(): void {
      settled = true;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
    }
    child.stdout!.on('data', onData);
  });
}
