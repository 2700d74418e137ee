import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { ControlFrameReader, type ControlFrame } from '../../../host/runtime/control-protocol.ts';
import { startControllerProcess, type ControllerProcess, type StartControllerOptions } from '../../../host/runtime/spawn.ts';

/** Controller processes a test started; whatever is still running after it is killed. */
const running = new Set<ControllerProcess>();

afterEach(async () => {
  const left = [...running];
  running.clear();
  for (const p of left) p.kill('SIGKILL');
  await Promise.all(left.map((p) => p.exited));
});

/** Starts a controller process that the test's end will kill if the test did not stop it. */
export async function startController(opts: StartControllerOptions): Promise<ControllerProcess> {
  const p = await startControllerProcess({ env: { MIRRORLAB_LOG: 'info' }, ...opts });
  running.add(p);
  void p.exited.then(() => running.delete(p));
  return p;
}

/** A directory of its own for one test, inside the file's scratch directory. */
export function freshDir(scratch: { dir: () => string }): Promise<string> {
  return mkdtemp(join(scratch.dir(), 't-'));
}

/** Writes a config file into `dir` and returns its path. */
export async function writeConfig(dir: string, name: string, config: object): Promise<string> {
  const path = join(dir, `${name}.json`);
  await writeFile(path, JSON.stringify(config, null, 2));
  return path;
}

/** A port on 127.0.0.1 free for both TCP and UDP right now (a live link listens on both). */
export { freePort } from '../../../hil/rack/ports.ts';

/**
 * Telemetry lines of a file, parsed. A SIGKILL may cut the line being written short (the next
 * incarnation starts on a fresh line): `kills` says how many such torn lines the file may hold;
 * any other line that does not parse fails the test.
 */
export async function telemetryOf(path: string, opts: { kills?: number } = {}): Promise<Record<string, any>[]> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const parsed: Record<string, any>[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  const torn: string[] = [];
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    if (line === '') continue;
    try {
      parsed.push(JSON.parse(line));
    } catch {
      torn.push(line);
    }
  }
  if (torn.length > (opts.kills ?? 0)) throw new Error(`${path}: ${torn.length} lines that are not JSON (at most ${opts.kills ?? 0} torn by kills): ${torn[0]!.slice(0, 120)}`);
  return parsed;
}

/** Polls `check` until it is true (every 50 ms), or fails after `timeoutMs` saying `what`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A raw client: connects to a control socket, sends `bytes` (in pieces, as given), and collects
 * the reply frames until the controller closes the connection or `waitMs` passes.
 */
export async function rawExchange(path: string, pieces: Uint8Array[], waitMs = 1_000): Promise<{ replies: ControlFrame[]; closed: boolean }> {
  const socket = createConnection({ path });
  const reader = new ControlFrameReader();
  const replies: ControlFrame[] = [];
  let closed = false;
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    try {
      replies.push(...reader.push(chunk));
    } catch {
      replies.push({ header: { unreadable: true }, data: new Uint8Array(0) });
    }
  });
  const ended = new Promise<void>((resolve) => socket.once('close', () => {
    closed = true;
    resolve();
  }));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  for (const p of pieces) socket.write(p);
  await Promise.race([ended, new Promise((r) => setTimeout(r, waitMs))]);
  socket.destroy();
  return { replies, closed };
}
