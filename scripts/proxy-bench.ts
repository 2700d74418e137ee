/**
 * What the fault proxy costs (docs/fault-proxy.md 8), wall clock, each ratio taken within one run:
 * - relay: 4 KiB WRITE frames streamed over loopback TCP straight to a receiver, then through
 *   `mirrorlab proxy` running as a process of its own, with no faults, then with per-frame faults
 *   that keep the byte count (every frame decoded, CRC-checked and decided);
 * - heartbeats: datagrams through the UDP relay;
 * - mirroring: two controllers on live TCP links (2 connections), 4 KiB writes at queue depth 8,
 *   direct and through the proxy.
 *
 *   npm run bench:proxy
 *
 * Prints a table and one JSON line. Its figures go in the README; it is not a test.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeFrame, FrameType } from '../firmware/protocol/index.ts';
import { encodePreamble } from '../host/transports/tcp-preamble.ts';
import { parseLinkFaults } from '../hil/faults/link-fault-plan.ts';
import { runProxiedPair } from '../hil/faults/proxy/proxied-pair.ts';
import { startTcpFaultProxy } from '../hil/faults/proxy/index.ts';

const FRAMES = 20_000;
const DATAGRAMS = 20_000;
const frame = encodeFrame({ type: FrameType.Write, lun: 0, seq: 1, flags: 0, lockId: 1, lba: 0, tag: 1, data: new Uint8Array(4096).fill(7) });

/** A receiver that counts bytes; resolves `done` once `bytes` have arrived. */
async function sink(): Promise<{ port: number; received: () => number; close: () => Promise<void> }> {
  let received = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('data', (d: Buffer) => (received += d.length));
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    received: () => received,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Streams FRAMES frames (after a preamble) to `port`; MB/s until `arrived()` says they all did. */
async function stream(port: number, arrived: () => boolean): Promise<number> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.setNoDelay(true);
  socket.write(encodePreamble(0, 1));
  const start = performance.now();
  for (let i = 0; i < FRAMES; i++) {
    if (!socket.write(frame)) await new Promise((resolve) => socket.once('drain', resolve));
  }
  while (!arrived()) await sleep(1);
  const s = (performance.now() - start) / 1000;
  socket.destroy();
  return (FRAMES * frame.length) / s / 1e6;
}

/** `mirrorlab proxy` as a process of its own (as a rack runs it) in front of `port`; its port, and a way to stop it. */
async function proxyProcess(port: number, plan: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [new URL('../bin/mirrorlab.mjs', import.meta.url).pathname, 'proxy', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${port}`, '--faults', plan],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, MIRRORLAB_LOG: 'warn' } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let waited = 0; !/^listening 127\.0\.0\.1:(\d+)/.test(out); waited += 10) {
    if (waited > 30_000 || child.exitCode !== null) throw new Error(`mirrorlab proxy did not start: ${out}`);
    await sleep(10);
  }
  return { port: Number(/^listening 127\.0\.0\.1:(\d+)/.exec(out)![1]), stop: async () => void (child.kill('SIGINT'), await exited) };
}

/** MB/s of FRAMES frames to a receiver, straight (plan null) or through a proxy process with `plan` (which must keep the byte count). */
async function relayRow(plan: string | null): Promise<number> {
  const rx = await sink();
  const proxy = plan === null ? null : await proxyProcess(rx.port, plan);
  try {
    return await stream(proxy?.port ?? rx.port, () => rx.received() >= 8 + FRAMES * frame.length);
  } finally {
    await proxy?.stop();
    await rx.close();
  }
}

async function datagramRow(): Promise<{ perS: number; delivered: number }> {
  const rx = dgram.createSocket('udp4');
  let delivered = 0;
  rx.on('message', () => delivered++);
  await new Promise<void>((resolve) => rx.bind({ address: '127.0.0.1', port: 0 }, resolve));
  const proxy = await startTcpFaultProxy({ plan: parseLinkFaults('none'), seed: 1, listen: { host: '127.0.0.1', port: 0 }, to: { host: '127.0.0.1', port: rx.address().port } });
  const tx = dgram.createSocket('udp4');
  const hb = encodeFrame({ type: FrameType.Heartbeat, lun: 0, seq: 1, flags: 0, controllerId: 1, sessionId: 1, confirmedSeq: 0, peerSession: 0 });
  // Rounds of 50, each sent once the last has arrived (or 100 ms passed): the relay's rate, not the kernel's buffers.
  const start = performance.now();
  for (let sent = 0; sent < DATAGRAMS; sent += 50) {
    for (let i = 0; i < 50; i++) tx.send(hb, proxy.address!.port, '127.0.0.1');
    for (let waited = 0; delivered < sent + 50 && waited < 100; waited++) await sleep(1);
  }
  const perS = delivered / ((performance.now() - start) / 1000);
  tx.close();
  rx.close();
  await proxy.stop();
  return { perS, delivered };
}

async function mirrorRow(via: 'direct' | 'proxy'): Promise<number> {
  const r = await runProxiedPair({ link: 'tcp', plan: parseLinkFaults('none'), seed: 1, writesMin: 5000, faultsEndMs: 0, budgetMs: 60_000, via });
  if (r.firstDifference !== -1 || r.failure !== null) throw new Error(`the ${via} mirror run ended inconsistent`);
  return r.writesAcked / (r.writingMs / 1000);
}

const direct = await relayRow(null);
const proxied = await relayRow('none');
const faulty = await relayRow('corrupt=0.01,reorder=0.01,delay=0.01@1ms');
const datagrams = await datagramRow();
const mirrorDirect = await mirrorRow('direct');
const mirrorProxied = await mirrorRow('proxy');
const rows: [string, string][] = [
  ['4 KiB frames over loopback TCP, direct', `${direct.toFixed(0)} MB/s`],
  ['the same through `mirrorlab proxy` (a process of its own), no faults', `${proxied.toFixed(0)} MB/s (${(proxied / direct).toFixed(2)} of direct)`],
  ['the same with 1% each of corrupt, reorder, delay (every frame decided)', `${faulty.toFixed(0)} MB/s (${(faulty / direct).toFixed(2)} of direct)`],
  ['heartbeat datagrams through the UDP relay', `${Math.round(datagrams.perS)} per second (${datagrams.delivered} of ${DATAGRAMS} delivered)`],
  ['mirrored 4 KiB writes, QD 8, two controllers on live TCP links, direct', `${Math.round(mirrorDirect)} per second`],
  ['the same through the proxy, no faults', `${Math.round(mirrorProxied)} per second (${(mirrorProxied / mirrorDirect).toFixed(2)} of direct)`],
];
for (const [what, figure] of rows) process.stdout.write(`${what.padEnd(72)} ${figure}\n`);
process.stdout.write(`${JSON.stringify({ directMBps: direct, proxiedMBps: proxied, faultyMBps: faulty, datagramsPerS: datagrams.perS, mirrorDirect, mirrorProxied })}\n`);
