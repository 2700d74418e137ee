import { spawn, type ChildProcess } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A PTY pair made by socat: bytes written to one path come out of the other. */
export interface PtyPair {
  a: string;
  b: string;
  stop(): Promise<void>;
}

/** Waits this long at most for socat to create the two links. */
const PTY_READY_MS_MAX = 5000;

/**
 * Starts `socat pty,raw,echo=0,link=DIR/NAME-a pty,raw,echo=0,link=DIR/NAME-b` and waits for both
 * links; `stop()` ends it (by its pid) and waits for it to exit. Raw mode: no line discipline
 * eats or translates bytes (a PTY in cooked mode would turn CR into LF and swallow ^C). The
 * tests and the serial-disk benchmark use it: a PTY pair is a serial line without hardware, but
 * one that ignores the baud rate (docs/usb-serial-targets.md).
 */
export async function ptyPair(dir: string, name: string): Promise<PtyPair> {
  const a = join(dir, `${name}-a`);
  const b = join(dir, `${name}-b`);
  const child: ChildProcess = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let failed: Error | null = null;
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  // Without socat, spawn reports ENOENT as an 'error' event: turn it into this function's error.
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (error) => {
      failed = error;
      resolve();
    });
  });
  const stop = async (): Promise<void> => {
    if (failed === null && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  for (let waited = 0; ; waited += 20) {
    if (failed !== null) throw new Error(`socat could not be started (${(failed as Error).message}); it makes the PTY pairs (Debian package socat)`);
    const ready = await Promise.all([access(a), access(b)]).then(() => true, () => false);
    if (ready) return { a, b, stop };
    if (child.exitCode !== null || waited > PTY_READY_MS_MAX) {
      await stop();
      throw new Error(`socat did not make a PTY pair within ${PTY_READY_MS_MAX} ms: ${stderr.trim()}`);
    }
    await sleep(20);
  }
}
