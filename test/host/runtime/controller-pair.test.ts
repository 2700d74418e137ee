import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { happenedBefore, mergeTelemetryFiles } from '../../../hil/trace/merge.ts';
import { runClientLoad } from '../../../hil/workload/client-load.ts';
import { ControlClient } from '../../../host/runtime/control-client.ts';
import type { ControllerStatus } from '../../../host/runtime/status.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { freePort, freshDir, startController, telemetryOf, waitFor, writeConfig } from './processes.ts';

const scratch = scratchDir('pair');
const SECTORS = 16384; // 8 MiB volumes
/** Fast supervision, so that a kill is noticed and recovered from in about a second. */
const supervision = { heartbeatMs: 50, interruptionMs: 500, probationMs: 500, connectRetryMs: 100 };

/** Controller A mirrors LUN 0 (an image) to B over loopback TCP; B holds the replica in its own image. */
async function pairConfigs(dir: string, mode: 'sync' | 'speculative' | 'async') {
  const port = await freePort();
  const files = { a: join(dir, 'a0.img'), b: join(dir, 'b0.img'), aTel: join(dir, 'a.jsonl'), bTel: join(dir, 'b.jsonl') };
  const a = await writeConfig(dir, 'a', {
    name: 'A', id: 1, luns: [{ lun: 0, volume: `file:${files.a}:8MiB`, mirror: { peer: 'B', mode } }],
    peers: [{ name: 'B', link: `tcp:127.0.0.1:${port}`, connections: 2 }], supervision,
    control: { path: join(dir, 'a.sock') }, telemetry: files.aTel,
  });
  const b = await writeConfig(dir, 'b', {
    name: 'B', id: 2, luns: [{ lun: 0, volume: `file:${files.b}:8MiB`, replicaOf: 'A' }],
    peers: [{ name: 'A', link: `tcp-listen:127.0.0.1:${port}`, connections: 2 }], supervision,
    control: { path: join(dir, 'b.sock') }, telemetry: files.bTel,
  });
  return { a, b, files, aControl: join(dir, 'a.sock'), bControl: join(dir, 'b.sock') };
}

/** `count` self-describing writes of 8 sectors to A's LUN 0, `depth` at a time, tags from `firstTag`. */
async function writeMany(client: ControlClient, count: number, firstTag: number, depth = 16): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const tag = firstTag + i;
      await client.writeDescribed(0, ((tag * 7919) % (SECTORS / 8)) * 8, 8, { writer: 1, tag });
    }
  };
  await Promise.all(Array.from({ length: depth }, worker));
}

const peerOf = (s: ControllerStatus) => s.peers[0]!;
const drained = (s: ControllerStatus): boolean => {
  const p = peerOf(s);
  return p.link.state === 'up' && s.hostWritesInFlight === 0 && p.source!.rollbackLog.entries === 0 && p.mirrors.every((m) => m.state === 'in-sync');
};

async function expectImagesEqual(a: string, b: string): Promise<void> {
  const [x, y] = await Promise.all([readFile(a), readFile(b)]);
  expect(x.length).toBe(SECTORS * 512);
  expect(x.equals(y), 'the two images differ').toBe(true);
  expect(x.some((byte) => byte !== 0)).toBe(true);
}

describe('two controller processes over loopback TCP', () => {
  it('mirror host writes sent through the control socket, and end with byte-identical images after a clean stop', async () => {
    const dir = await freshDir(scratch);
    const cfg = await pairConfigs(dir, 'speculative');
    const b = await startController({ configPath: cfg.b });
    const a = await startController({ configPath: cfg.a });
    const client = await ControlClient.connect(cfg.aControl);
    await waitFor('the link up', async () => peerOf(await client.status()).link.state === 'up');
    const load = await runClientLoad(client, { lun: 0, writes: 300, writeBytes: 4096, queueDepth: 16, pattern: 'random', seed: 5, writer: 1, firstTag: 1 });
    expect(load).toMatchObject({ writes: 300, acknowledged: 300, errors: 0, firstError: null });
    expect(load.latency.count).toBe(300);
    const status = await client.status();
    expect(status.charts).toEqual({ 'source:A->B': expect.any(String), 'target:B->A': expect.any(String), 'link:A->B': 'up' });
    expect(peerOf(status).link.peerSession).toBe(b.ready.session);
    expect(peerOf(status).source!.counters.writesConfirmed).toBeGreaterThanOrEqual(300);
    expect(peerOf(status).transport).toMatchObject({ kind: 'tcp', role: 'connect' });
    // B's copy is the replica: hosts write it at A.
    const bClient = await ControlClient.connect(cfg.bControl);
    await expect(bClient.writeDescribed(0, 0, 8, { writer: 2, tag: 1 })).rejects.toMatchObject({ code: 'ML_ERR_LUN_REPLICA' });
    await waitFor('A to drain', async () => drained(await client.status()));
    // Compared as buffers: a deep equality of a million elements would take seconds.
    const [copy, original] = [Buffer.from(await bClient.read(0, 0, 2048)), Buffer.from(await client.read(0, 0, 2048))];
    expect(copy.equals(original)).toBe(true);
    await bClient.close();
    await waitFor('A to drain', async () => drained(await client.status()));
    await client.close();

    a.kill('SIGTERM');
    expect(await a.exited).toEqual({ code: 0, signal: null });
    b.kill('SIGTERM');
    expect(await b.exited).toEqual({ code: 0, signal: null });
    await expectImagesEqual(cfg.files.a, cfg.files.b);

    // The two telemetry files merge into one causal order: every receive tied to its send, every apply before its host ack.
    const merged = await mergeTelemetryFiles([cfg.files.aTel, cfg.files.bTel]);
    expect(merged.problems).toEqual([]);
    expect(merged.edges).toBe(merged.events.filter((m) => m.event.kind === 'frame.received' || m.event.kind === 'heartbeat.received').length);
    const acks = new Map(merged.events.filter((m) => m.event.kind === 'host.ack').map((m) => [m.event.tag, m] as const));
    const applies = merged.events.filter((m) => m.event.kind === 'target.apply');
    expect(applies.length).toBe(300);
    for (const apply of applies) expect(happenedBefore(apply, acks.get(apply.event.tag)!), `tag ${String(apply.event.tag)}`).toBe(true);
  });

  it('survive the target\'s SIGKILL and restart: the source sees a new session, resynchronises, and the pair ends identical', async () => {
    const dir = await freshDir(scratch);
    const cfg = await pairConfigs(dir, 'speculative');
    const b1 = await startController({ configPath: cfg.b });
    const a = await startController({ configPath: cfg.a });
    const client = await ControlClient.connect(cfg.aControl);
    await waitFor('the link up', async () => peerOf(await client.status()).link.state === 'up');
    await writeMany(client, 100, 1);

    b1.kill('SIGKILL');
    expect((await b1.exited).signal).toBe('SIGKILL');
    await waitFor('A to declare the link down', async () => peerOf(await client.status()).link.state !== 'up');
    // Writes while B is gone wait (speculative: acknowledged on B's confirmation) and complete after it is back.
    const during = writeMany(client, 50, 1001, 8);
    const b2 = await startController({ configPath: cfg.b });
    expect(b2.ready.session).not.toBe(b1.ready.session);
    expect(b2.stderr()).toMatch(/removing a stale control socket/);
    await during;
    await waitFor('A to resynchronise and drain', async () => drained(await client.status()), 30_000);
    const status = await client.status();
    expect(peerOf(status).link.peerSession).toBe(b2.ready.session);
    expect(peerOf(status).link.counters.peerRestarts).toBe(1);
    await client.close();

    a.kill('SIGTERM');
    expect(await a.exited).toEqual({ code: 0, signal: null });
    b2.kill('SIGTERM');
    expect(await b2.exited).toEqual({ code: 0, signal: null });
    await expectImagesEqual(cfg.files.a, cfg.files.b);

    // A's telemetry shows the restart: B's new session, and the resync it started.
    const aLines = await telemetryOf(cfg.files.aTel);
    const restarted = aLines.find((l) => l.kind === 'link.supervision' && l.event === 'peer.restarted')!;
    expect(restarted.peerSession).toBe(b2.ready.session);
    expect(aLines.filter((l) => l.kind === 'mirror.state').map((l) => l.state)).toEqual(expect.arrayContaining(['needs-resync', 'resyncing', 'in-sync']));
    expect(aLines.some((l) => l.kind === 'process.link' && l.state === 'down')).toBe(true);
    // B's file holds both incarnations; the first ends where the kill cut it.
    const bLines = await telemetryOf(cfg.files.bTel, { kills: 1 });
    expect([...new Set(bLines.map((l) => l.proc))]).toEqual([`B/${b1.ready.session}`, `B/${b2.ready.session}`]);
  });
});

describe('a controller process with a planted bug', () => {
  it('takes its firmware from the entry module a test gives, and merged telemetry catches the bug: host acks before the target applied', async () => {
    const dir = await freshDir(scratch);
    const cfg = await pairConfigs(dir, 'speculative');
    const entryModule = new URL('../../support/controller-entry.ts', import.meta.url).pathname;
    const b = await startController({ configPath: cfg.b, entryModule, entryArgs: ['--plant', 'target-acks-before-write'] });
    const a = await startController({ configPath: cfg.a });
    const client = await ControlClient.connect(cfg.aControl);
    await waitFor('the link up', async () => peerOf(await client.status()).link.state === 'up');
    await writeMany(client, 60, 1, 8);
    await waitFor('A to drain', async () => drained(await client.status()));
    await client.close();
    a.kill('SIGTERM');
    b.kill('SIGTERM');
    expect([(await a.exited).code, (await b.exited).code]).toEqual([0, 0]);
    const merged = await mergeTelemetryFiles([cfg.files.aTel, cfg.files.bTel]);
    expect(merged.problems).toEqual([]);
    const acks = new Map(merged.events.filter((m) => m.event.kind === 'host.ack').map((m) => [m.event.tag, m] as const));
    const early = merged.events.filter((m) => m.event.kind === 'target.apply' && !happenedBefore(m, acks.get(m.event.tag)!));
    expect(early.length).toBeGreaterThan(0);
  });
});
