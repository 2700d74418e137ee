import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { main } from '../../../hil/cli/main.ts';
import { RealClock } from '../../../host/clock/real.ts';
import { FileDisk } from '../../../host/disks/file.ts';
import { ControlClient } from '../../../host/runtime/control-client.ts';
import { ControllerSpawnError } from '../../../host/runtime/spawn.ts';
import { sectorOrigin } from '../../../host/workload/data.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { freePort, freshDir, startController, telemetryOf, waitFor, writeConfig } from './processes.ts';

const scratch = scratchDir('controller');
const root = new URL('../../../', import.meta.url).pathname;

function mirrorlab(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/mirrorlab.mjs', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, MIRRORLAB_LOG: 'warn' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A controller with local LUNs only: an image file and a memory disk. */
async function localController(dir: string) {
  const image = join(dir, 'a0.img');
  const config = await writeConfig(dir, 'a', {
    name: 'A', id: 1, luns: [{ lun: 0, volume: `file:${image}:4MiB` }, { lun: 1, volume: 'mem:4MiB' }],
    control: { path: join(dir, 'a.sock') }, telemetry: join(dir, 'a.jsonl'),
  });
  return { image, config, control: join(dir, 'a.sock'), telemetry: join(dir, 'a.jsonl') };
}

describe('a controller process', () => {
  it('takes host writes and reads through its control socket, on an image file and a memory disk; status shows it; SIGTERM stops it cleanly', async () => {
    const dir = await freshDir(scratch);
    const a = await localController(dir);
    const p = await startController({ configPath: a.config });
    expect(p.ready).toMatchObject({ ready: true, name: 'A', control: a.control, telemetry: a.telemetry });
    expect((await stat(a.control)).mode & 0o777).toBe(0o600);
    expect(existsSync(`${a.image}.lock`)).toBe(true);

    const client = await ControlClient.connect(a.control);
    expect(await client.luns()).toEqual([
      { lun: 0, sectorSize: 512, sectorCount: 8192, role: 'local' },
      { lun: 1, sectorSize: 512, sectorCount: 8192, role: 'local' },
    ]);
    // Pipelined: 32 self-describing writes in flight at once, to both LUNs.
    await Promise.all(Array.from({ length: 32 }, (_, i) => client.writeDescribed(i % 2, i * 8, 8, { writer: 1, tag: i + 1 })));
    const back = await client.read(0, 16, 8);
    expect(sectorOrigin(back, 0, 512, 16)).toEqual({ writer: 1, lun: 0, tag: 3, lba: 16 });
    const plain = new Uint8Array(1024).fill(0x5a);
    await client.write(1, 4000, plain, { tag: 100 });
    expect(await client.read(1, 4000, 2)).toEqual(plain);
    await client.flush();
    await client.flush(0);
    // Mistakes are typed replies; the connection goes on.
    await expect(client.read(7, 0, 1)).rejects.toMatchObject({ code: 'ML_ERR_NO_LUN' });
    await expect(client.read(0, 8190, 8)).rejects.toMatchObject({ code: 'ML_ERR_DISK_RANGE' });
    await expect(client.write(0, 0, new Uint8Array(100))).rejects.toMatchObject({ code: 'ML_ERR_DISK_ALIGNMENT' });
    await expect(client.write(0, 0, new Uint8Array(512), { tag: 0 })).rejects.toMatchObject({ code: 'ML_ERR_CONTROL_REQUEST' });
    await expect(client.read(0, 0, 4096)).rejects.toMatchObject({ code: 'ML_ERR_READ_TOO_LARGE' });

    // mirrorlab load: a workload through the same socket, in this process.
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    const code = await main(['load', '--control', a.control, '--lun', '1', '--writes', '40', '--first-tag', '1000', '--pattern', 'sequential', '--json']).finally(() => spy.mockRestore());
    expect(code).toBe(0);
    expect(JSON.parse(out.join(''))).toMatchObject({ writes: 40, acknowledged: 40, errors: 0 });
    expect(sectorOrigin(await client.read(1, 39 * 8, 1), 0, 512, 39 * 8)).toEqual({ writer: 1, lun: 1, tag: 1039, lba: 312 });

    const status = await client.status();
    expect(status).toMatchObject({ name: 'A', id: 1, session: p.ready.session, pid: p.pid, state: 'running', hostWritesInFlight: 0 });
    expect(status.uptimeMs).toBeGreaterThan(0);
    expect(status.luns.map((l) => l.volume)).toEqual([`file:${a.image}:4MiB`, 'mem:4MiB']);
    await client.close();

    // The CLI: the same, as JSON and as text; and one line, exit 2, where nothing listens.
    const json = mirrorlab(['status', '--control', a.control, '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ name: 'A', session: p.ready.session, luns: [{ lun: 0 }, { lun: 1 }] });
    const text = mirrorlab(['status', '--control', a.control]);
    expect(text.stdout).toMatch(/^controller A \(id 1, pid \d+\) running, up [\d.]+ s, session \d+\n/);
    expect(text.stdout).toMatch(/LUN 0 {2}file:.*a0\.img:4MiB {2}8,192 x 512 B {2}local/);
    const none = mirrorlab(['status', '--control', join(dir, 'nobody.sock')]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^error: ML_ERR_CONTROL_UNREACHABLE: no controller at .*nobody\.sock: no such socket; is mirrorlab controller running with this control path\?\n$/);

    p.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(p.stderr()).toMatch(/nothing queued/);
    expect(existsSync(`${a.image}.lock`)).toBe(false);
    expect(existsSync(a.control)).toBe(false);
    // The image reopens (its lock is gone) and holds what the host wrote.
    const disk = await FileDisk.open({ path: a.image, sectorCount: 8192, clock: new RealClock(), create: false });
    const sector = await disk.read(30 * 8, 1);
    await disk.close();
    expect(sectorOrigin(sector, 0, 512, 240)).toEqual({ writer: 1, lun: 0, tag: 31, lba: 240 });

    // Telemetry: every line stamped, the counter without gaps, the process's own events around the firmware's.
    const lines = await telemetryOf(a.telemetry);
    expect(lines.map((l) => l.n)).toEqual(lines.map((_, i) => i + 1));
    expect(new Set(lines.map((l) => l.proc))).toEqual(new Set([`A/${p.ready.session}`]));
    const start = lines.find((l) => l.kind === 'process.start')!;
    expect(start).toMatchObject({ node: 'A', session: p.ready.session, pid: p.pid, config: { id: 1, luns: [{ lun: 0, role: 'local' }, { lun: 1, role: 'local' }] } });
    expect(lines.filter((l) => l.kind === 'host.write').map((l) => l.tag).sort((x, y) => x - y))
      .toEqual([...Array.from({ length: 32 }, (_, i) => i + 1), 100, ...Array.from({ length: 40 }, (_, i) => 1000 + i)]);
    expect(lines.at(-2)).toMatchObject({ kind: 'process.stopping', reason: 'SIGTERM' });
    expect(lines.at(-1)).toMatchObject({ kind: 'process.stop', reason: 'SIGTERM', exitCode: 0, forced: false, queued: { hostWritesInFlight: 0, peers: [] } });
  });

  it('refuses a control socket a live controller serves, takes over a stale one, reports queued work at a clean stop, and stops at once on a second signal', async () => {
    const dir = await freshDir(scratch);
    const nobody = await freePort(); // B never comes: A's mirrors queue in its rollback log
    const control = join(dir, 'q.sock');
    const telemetry = join(dir, 'q.jsonl');
    const config = await writeConfig(dir, 'q', {
      name: 'A', id: 1,
      luns: [
        { lun: 0, volume: `file:${join(dir, 'q0.img')}:4MiB`, mirror: { peer: 'B', mode: 'async' } },
        { lun: 1, volume: 'mem:4MiB', mirror: { peer: 'B', mode: 'sync' } },
      ],
      peers: [{ name: 'B', link: `tcp:127.0.0.1:${nobody}` }],
      control: { path: control }, telemetry, shutdown: { drainMs: 60_000 },
    });
    const first = await startController({ configPath: config });
    // A second controller on the same socket (another image, so only the socket clashes) is refused: exit 2, one line saying why.
    const other = await writeConfig(dir, 'other', { name: 'A2', id: 2, luns: [{ lun: 0, volume: 'mem:1MiB' }], control: { path: control } });
    const refused = await startController({ configPath: other }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ControllerSpawnError);
    expect((refused as Error).message).toMatch(/exited \(code 2\) before it was ready/);
    expect((refused as Error).message).toMatch(/error: ML_ERR_CONTROL_IN_USE: a live controller already serves the control socket .*q\.sock/);

    const client = await ControlClient.connect(control);
    // Async: acknowledged once the rollback log has them, though the link never came up.
    for (let i = 0; i < 10; i++) await client.writeDescribed(0, i * 8, 8, { writer: 1, tag: i + 1 });
    // Sync: waits for B, which never answers.
    const stuck = client.writeDescribed(1, 0, 8, { writer: 1, tag: 11 }).catch((e: Error) => e);
    await waitFor('the sync write to be in flight', async () => (await client.status()).hostWritesInFlight === 1);
    first.kill('SIGTERM');
    await waitFor('the stop to begin', async () => (await client.status()).state === 'stopping');
    await expect(client.writeDescribed(0, 100, 8, { writer: 1, tag: 12 })).rejects.toMatchObject({ code: 'ML_ERR_STOPPING' });
    expect((await client.status()).hostWritesInFlight).toBe(1); // still draining: the sync write cannot finish
    first.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 2, signal: null });
    expect(await stuck).toMatchObject({ code: 'ML_ERR_CONTROL_CLOSED' });
    expect(first.stderr()).toMatch(/stopping now, without draining/);
    let lines = await telemetryOf(telemetry);
    const forced = lines.at(-1)!;
    expect(forced).toMatchObject({ kind: 'process.stop', forced: true, exitCode: 2, queued: { hostWritesInFlight: 1 } });
    expect(forced.queued.peers[0]).toMatchObject({ peer: 'B', rollbackWaiting: 0 });
    expect(forced.queued.peers[0].rollbackEntries).toBeGreaterThanOrEqual(10);

    // What the forced stop left behind (the socket file, the image lock) is stale: a new start takes both over.
    expect(existsSync(control)).toBe(true);
    const again = await startController({ configPath: config });
    expect(again.ready.session).not.toBe(first.ready.session);
    expect(again.stderr()).toMatch(/removing a stale control socket/);
    const client2 = await ControlClient.connect(control);
    for (let i = 0; i < 5; i++) await client2.writeDescribed(0, i * 8, 8, { writer: 1, tag: 100 + i });
    await client2.close();
    again.kill('SIGTERM');
    expect(await again.exited).toEqual({ code: 0, signal: null });
    expect(again.stderr()).toMatch(/stopping with work still queued/);
    expect(again.stderr()).toMatch(/"rollbackEntries":\d+/);
    lines = await telemetryOf(telemetry);
    const clean = lines.at(-1)!;
    expect(clean).toMatchObject({ kind: 'process.stop', forced: false, exitCode: 0, proc: `A/${again.ready.session}`, queued: { hostWritesInFlight: 0 } });
    expect(clean.queued.peers[0].rollbackEntries).toBeGreaterThanOrEqual(5);
    // Both incarnations are in the one file, the second after the first.
    expect([...new Set(lines.map((l) => l.proc))]).toEqual([`A/${first.ready.session}`, `A/${again.ready.session}`]);
    expect(existsSync(join(dir, 'q0.img.lock'))).toBe(false);
  });
});
