import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { SideReply, SideRequest, SideStart } from './live-side.ts';

/** A side that does not answer a request within this long has hung (the longest run at scale 10 takes far less). */
const REPLY_MS_MAX = 600_000;
/** How long a side may take to stop before it is killed. */
const STOP_MS_MAX = 5_000;
/** Bytes of a side's stderr kept, for the message when it fails. */
const STDERR_BYTES_MAX = 8192;

/**
 * A live-bench side in a process of its own (live-side.ts), forked from this one and driven over
 * its IPC channel, one request at a time (docs/live-links.md 10). Its stdout is dropped and the
 * tail of its stderr kept for the message should it fail.
 */
export class SideProcess {
  private stderr = '';
  private exited: string | null = null;
  private waiting: { resolve: (r: SideReply) => void; reject: (e: Error) => void } | null = null;

  private constructor(private readonly child: ChildProcess, readonly role: SideStart['role']) {
    child.stderr?.on('data', (c: Buffer) => {
      this.stderr = (this.stderr + String(c)).slice(-STDERR_BYTES_MAX);
    });
    child.on('message', (r: SideReply) => {
      const w = this.waiting;
      this.waiting = null;
      if (r.op === 'error') w?.reject(new Error(`the live bench's ${role} process: ${r.message}`));
      else w?.resolve(r);
    });
    child.on('exit', (code, signal) => {
      this.exited = signal ?? String(code);
      const w = this.waiting;
      this.waiting = null;
      w?.reject(new Error(`the live bench's ${role} process exited (${this.exited}): ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`));
    });
  }

  /** Forks a side and starts it in `start`'s role; resolves with the side and the port it reports. */
  static async start(start: SideStart): Promise<{ side: SideProcess; port: number }> {
    const child = fork(new URL('./live-side-entry.mjs', import.meta.url), [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const side = new SideProcess(child, start.role);
    try {
      const r = await side.request({ op: 'start', ...start });
      return { side, port: r.op === 'ready' ? r.port : 0 };
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
  }

  request(m: SideRequest): Promise<SideReply> {
    if (this.exited !== null) return Promise.reject(new Error(`the live bench's ${this.role} process has exited (${this.exited})`));
    if (this.waiting !== null) return Promise.reject(new Error(`the live bench's ${this.role} process is still busy with a request`));
    return new Promise<SideReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        reject(new Error(`the live bench's ${this.role} process did not answer ${m.op} within ${REPLY_MS_MAX / 1000} s`));
      }, REPLY_MS_MAX);
      const done = <T>(f: (x: T) => void) => (x: T): void => {
        clearTimeout(timer);
        f(x);
      };
      this.waiting = { resolve: done(resolve), reject: done(reject) };
      this.child.send(m);
    });
  }

  /** CPU time the process has used so far (every thread), in microseconds. */
  async cpuUs(): Promise<number> {
    const r = await this.request({ op: 'cpu' });
    return r.op === 'cpu' ? r.us : 0;
  }

  /** Stops the side cleanly, or kills it if it takes too long or fails. */
  async stop(): Promise<void> {
    if (this.exited !== null) return;
    const exit = once(this.child, 'exit');
    const kill = setTimeout(() => this.child.kill('SIGKILL'), STOP_MS_MAX);
    try {
      await this.request({ op: 'stop' });
      this.child.disconnect();
    } catch {
      this.child.kill('SIGKILL');
    }
    await exit;
    clearTimeout(kill);
  }
}
