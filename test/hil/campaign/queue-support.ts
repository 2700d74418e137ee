import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import pino from 'pino';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** A `mirrorlab` child process, its output gathered (bounded) for assertions and failure messages. */
export interface Child {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
}

const OUTPUT_BYTES_MAX = 1 << 20;

export function mirrorlabChild(args: string[], env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, ['bin/mirrorlab.mjs', ...args], { cwd: ROOT, env: { ...process.env, MIRRORLAB_LOG: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (c: Buffer) => {
    if (out.length < OUTPUT_BYTES_MAX) out += String(c);
  });
  proc.stderr!.on('data', (c: Buffer) => {
    if (err.length < OUTPUT_BYTES_MAX) err += String(c);
  });
  // A test that dies halfway must not leave a worker retrying a vanished Redis for ever.
  const kill = (): void => {
    proc.kill('SIGKILL');
  };
  process.once('exit', kill);
  const exited = once(proc, 'exit').then(([code, signal]) => {
    process.removeListener('exit', kill);
    return (code ?? signal) as number | string;
  });
  return { proc, stdout: () => out, stderr: () => err, exited };
}

/** Polls `check` every 20 ms until it is truthy, or fails after `ms` saying what it waited for. */
export async function until<T>(what: string, check: () => T | Promise<T>, ms = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A pino logger into an array of parsed JSON lines. */
export function memoryLogger(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { log: pino({ level, base: undefined }, stream), lines };
}
