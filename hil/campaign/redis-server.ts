import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { QueueError } from './queue-url.ts';

/** How long a fresh `redis-server` may take to accept connections (real time, ms). */
export const REDIS_START_MS_MAX = 10_000;
/** How long a stopped `redis-server` may take to exit before it is killed (real time, ms). */
export const REDIS_STOP_MS_MAX = 5_000;

/** A private `redis-server` on a free loopback port, for tests and the queue benchmark. */
export interface LocalRedis {
  url: string;
  port: number;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts `redis-server` (the Debian package) on 127.0.0.1 and a free port, in a temporary
 * directory, with no persistence and `maxmemory-policy noeviction` (BullMQ must never lose a
 * key to eviction: a job evicted is a seed silently not run). Besides `stop()`, the server is
 * killed when this process exits, so a test that dies halfway leaves no server behind.
 */
export async function startLocalRedis(): Promise<LocalRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'mirrorlab-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'];
  let child: ChildProcess;
  try {
    child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  let output = '';
  const keep = (chunk: Buffer): void => {
    if (output.length < 8192) output += String(chunk);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = sleep(REDIS_STOP_MS_MAX).then(() => child.kill('SIGKILL'));
      await Promise.race([exited, timer]);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const ready = await Promise.race([waitReady(port, () => output), spawnError]);
  if (ready instanceof Error) {
    await stop();
    const missing = (ready as NodeJS.ErrnoException).code === 'ENOENT';
    throw new QueueError('ML_ERR_QUEUE_REDIS', missing
      ? 'redis-server is not installed (Debian package redis-server; `npm test` installs it through scripts/test-tools.sh)'
      : `redis-server could not be started: ${ready.message}`);
  }
  if (!ready) {
    await stop();
    const said = output.trim().split('\n').slice(-3).join(' | ');
    throw new QueueError('ML_ERR_QUEUE_REDIS', `redis-server did not accept connections within ${REDIS_START_MS_MAX} ms: ${said}`);
  }
  return { url: `redis://127.0.0.1:${port}`, port, stop };
}

/** A port nobody listens on right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True once redis-server says it is ready (its log line), false after {@link REDIS_START_MS_MAX}. */
async function waitReady(port: number, output: () => string): Promise<boolean> {
  const deadline = Date.now() + REDIS_START_MS_MAX;
  while (Date.now() < deadline) {
    if (/Ready to accept connections/.test(output())) return true;
    if (output().includes(`${port}`) && /Address already in use|Could not create server/i.test(output())) return false;
    await sleep(20);
  }
  return false;
}
