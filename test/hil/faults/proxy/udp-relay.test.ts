import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeFrame, FrameType } from '../../../../firmware/protocol/index.ts';
import { VirtualClock } from '../../../../host/clock/virtual.ts';
import { parseLinkFaults } from '../../../../hil/faults/link-fault-plan.ts';
import { FrameDecider } from '../../../../hil/faults/proxy/frame-decisions.ts';
import { heartbeatFrame, streamFrame } from './fixtures.ts';
import { proxied, waitFor } from './net-fixtures.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(plan: string, opts: Parameters<typeof proxied>[1] = {}) {
  const p = await proxied(plan, opts);
  cleanups.push(p.stop);
  const client = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  client.on('message', (m) => got.push(m));
  await new Promise<void>((resolve) => client.bind({ address: '127.0.0.1', port: 0 }, resolve));
  cleanups.push(() => void client.close());
  const send = (bytes: Uint8Array): void => client.send(bytes, p.port, '127.0.0.1');
  const dg = (dir: 'A->B' | 'B->A') => p.proxy.stats().directions[dir]!.channels.datagram!;
  return { ...p, client, got, send, dg };
}

describe('the heartbeat relay (UDP, on the proxy\'s TCP port number)', () => {
  it('relays heartbeats to the listener from a socket of its own, and the listener\'s answers back to the connect side', async () => {
    const p = await setup('none');
    p.send(heartbeatFrame(1));
    await waitFor(() => p.listener.datagrams.length === 1, 'the heartbeat at the listener');
    const at = p.listener.datagrams[0]!;
    expect(at.bytes).toEqual(Buffer.from(heartbeatFrame(1)));
    expect(at.from.port).not.toBe(p.client.address().port);
    p.listener.reply(heartbeatFrame(7));
    await waitFor(() => p.got.length === 1, 'the answer at the connect side');
    expect(decodeFrame(new Uint8Array(p.got[0]!)).seq).toBe(7);
    expect(p.dg('A->B')).toMatchObject({ framesSeen: 1, framesForwarded: 1 });
    expect(p.dg('B->A')).toMatchObject({ framesSeen: 1, framesForwarded: 1 });
  });

  it('loses exactly the heartbeats hbloss picks for (seed, direction, datagram, index)', async () => {
    const p = await setup('hbloss=0.3', { seed: 21 });
    for (let s = 1; s <= 100; s++) p.send(heartbeatFrame(s));
    await waitFor(() => p.dg('A->B').framesSeen === 100, 'the proxy to take 100 heartbeats');
    const d = new FrameDecider(parseLinkFaults('hbloss=0.3'), 21);
    const lost = Array.from({ length: 100 }, (_, i) => i + 1).filter((s) => d.decide({ dir: 'ab', channel: 'datagram', kind: 'datagram' }, { index: s - 1, type: FrameType.Heartbeat, length: 60 }).heartbeatLost);
    expect(lost.length).toBeGreaterThan(15);
    expect(p.dg('A->B').heartbeatsLost).toBe(lost.length);
    await waitFor(() => p.listener.datagrams.length === 100 - lost.length, 'the survivors at the listener');
    const arrived = new Set(p.listener.datagrams.map((x) => decodeFrame(new Uint8Array(x.bytes)).seq));
    expect(lost.filter((s) => arrived.has(s))).toEqual([]);
    expect(p.events.filter((e) => e.fault === 'hbloss')).toHaveLength(lost.length);
  });

  it('drop=1:HEARTBEAT loses every heartbeat and nothing else; a datagram that is no frame is relayed and cannot steal the return path', async () => {
    const p = await setup('drop=1:HEARTBEAT');
    for (let s = 1; s <= 5; s++) p.send(heartbeatFrame(s));
    p.send(streamFrame('UNLOCK', 1));
    await waitFor(() => p.listener.datagrams.length === 1, 'the UNLOCK datagram');
    expect(p.dg('A->B')).toMatchObject({ framesSeen: 6, framesDropped: 5 });
    const stranger = dgram.createSocket('udp4');
    cleanups.push(() => void stranger.close());
    await new Promise<void>((resolve) => stranger.bind({ address: '127.0.0.1', port: 0 }, resolve));
    stranger.send(Buffer.from('not a frame'), p.port, '127.0.0.1');
    await waitFor(() => p.listener.datagrams.length === 2, 'the noise datagram');
    p.listener.reply(streamFrame('UNLOCK', 2));
    await waitFor(() => p.got.length === 1, 'the answer at the real connect side');
    expect(p.dg('A->B').noiseBytes).toBe('not a frame'.length);
  });

  it('a silent cut swallows datagrams both ways', async () => {
    const clock = new VirtualClock();
    const p = await setup('silent=5ms+100ms', { clock });
    await clock.run({ untilMs: 10 });
    for (let s = 1; s <= 3; s++) p.send(heartbeatFrame(s));
    await waitFor(() => p.dg('A->B').framesSwallowed === 3, 'three heartbeats swallowed');
    await clock.run({ untilMs: 200 });
    p.send(heartbeatFrame(4));
    await waitFor(() => p.listener.datagrams.length === 1, 'the heartbeat after the cut');
    expect(decodeFrame(new Uint8Array(p.listener.datagrams[0]!.bytes)).seq).toBe(4);
  });
});
