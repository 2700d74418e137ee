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

/** A running controller process. `kill('SIGTERM')` is a clean stop, `kill('SIGKILL')` a crash. */
export type ControllerProcess = ChildWithReadyLine<ControllerReady>;

/**
 * Starts `mirrorlab controller` as a child process (`node --import tsx ENTRY ...`) and waits for its
 * ready line. A child that exits first, or stays silent past the timeout (then it is killed), is a
 * {@link ControllerSpawnError} carrying the end of its stderr, which says why (a bad config, an
 * image in use...).
 */
export async function startControllerProcess(opts: StartControllerOptions): Promise<ControllerProcess> {
  const args = ['controller', '--config', opts.configPath];
  if (opts.controlPath !== undefined) args.push('--control', opts.controlPath);
  if (opts.telemetry !== undefined) args.push('--telemetry', opts.telemetry);
  return startMirrorlabChild<ControllerReady>({
    what: 'the controller', args, entryModule: opts.entryModule, entryArgs: opts.entryArgs, env: opts.env, readyTimeoutMs: opts.readyTimeoutMs,
    fail: (message) => new ControllerSpawnError('ML_ERR_CONTROLLER_START', message),
  });
}

/** What `mirrorlab serial-disk` prints on stdout once it serves (hil/cli/serial-disk-command.ts): its only stdout line. */
export interface SerialDiskReady {
  ready: true;
  port: string;
  /** The volume it serves, as a spec. */
  volume: string;
  sectors: number;
  sectorSize: number;
  baud: number;
  pid: number;
}

/** A board stand-in that could not be started: exit 2 for whoever wanted it, with the end of its stderr. */
export class SerialDiskSpawnError extends MirrorlabError {}

/**
 * Starts `mirrorlab serial-disk --port PORT --volume VOLUME --baud BAUD` (the stand-in for a board,
 * docs/usb-serial-targets.md 4.2) as a child process and waits until it serves. It runs until
 * stopped (SIGTERM) or until its line closes.
 */
export function startSerialDiskProcess(opts: { port: string; volume: string; baud: number; env?: Record<string, string>; readyTimeoutMs?: number }): Promise<ChildWithReadyLine<SerialDiskReady>> {
  return startMirrorlabChild<SerialDiskReady>({
    what: `the board stand-in on ${opts.port}`, args: ['serial-disk', '--port', opts.port, '--volume', opts.volume, '--baud', String(opts.baud)],
    env: opts.env, readyTimeoutMs: opts.readyTimeoutMs, fail: (message) => new SerialDiskSpawnError('ML_ERR_SERIAL_DISK_START', message),
  });
}

/** A running `mirrorlab` child that announced itself with a ready line. */
export interface ChildWithReadyLine<R> {
  readonly pid: number;
  readonly ready: R;
  readonly child: ChildProcess;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ControllerExit>;
  /** The newest lines it wrote to stderr (its log). */
  stderr(): string;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL if it has not exited within `timeoutMs`; its exit. */
  stop(opts?: { timeoutMs?: number }): Promise<ControllerExit>;
}

interface ChildOptions {
  /** What it is, for messages ("the controller"). */
  what: string;
  /** The command and its arguments (after the entry module and `entryArgs`). */
  args: string[];
  entryModule?: string | undefined;
  entryArgs?: string[] | undefined;
  env?: Record<string, string> | undefined;
  readyTimeoutMs?: number | undefined;
  fail(message: string): Error;
}

/** Runs `node --import tsx ENTRY [...entryArgs] ...args` and waits for its JSON ready line on stdout. */
async function startMirrorlabChild<R extends { ready: true }>(opts: ChildOptions): Promise<ChildWithReadyLine<R>> {
  const entry = opts.entryModule ?? DEFAULT_CONTROLLER_ENTRY;
  const args = ['--import', 'tsx', entry, ...(opts.entryArgs ?? []), ...opts.args];
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
  const ready = await waitReady<R>(child, exited, { ...opts, timeoutMs: opts.readyTimeoutMs ?? READY_TIMEOUT_MS_DEFAULT, stderr });
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

function waitReady<R>(
  child: ChildProcess, exited: Promise<ControllerExit>, o: { what: string; timeoutMs: number; stderr: () => string; fail(message: string): Error },
): Promise<R> {
  const { what, timeoutMs, stderr } = o;
  return new Promise((resolve, reject) => {
    let text = '';
    const fail = (why: string): void => {
      cleanup();
      reject(o.fail(`${why}${stderr() === '' ? '' : `; its stderr ends:\n${stderr().split('\n').slice(-20).join('\n')}`}`));
    };
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl < 0) {
        if (text.length > READY_LINE_BYTES_MAX) fail(`${what} printed no ready line`);
        return;
      }
      let line: unknown;
      try {
        line = JSON.parse(text.slice(0, nl));
      } catch {
        return fail(`${what}'s first line is not its ready line: ${text.slice(0, Math.min(nl, 200))}`);
      }
      if ((line as { ready?: unknown } | null)?.ready !== true) return fail(`${what}'s first line is not its ready line: ${text.slice(0, Math.min(nl, 200))}`);
      cleanup();
      resolve(line as R);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(`${what} was not ready within ${timeoutMs} ms`);
    }, timeoutMs);
    let settled = false;
    void exited.then(({ code, signal }) => {
      // Give stderr's last bytes a moment to arrive before quoting it.
      if (!settled) setTimeout(() => fail(`${what} exited (${signal ?? `code ${code}`}) before it was ready`), 50);
    });
    function cleanup(): void {
      settled = true;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
    }
    child.stdout!.on('data', onData);
  });
}
