import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameType } from '../../../../firmware/protocol/index.ts';
import { VirtualClock } from '../../../../host/clock/virtual.ts';
import { encodeAcceptance } from '../../../../host/transports/tcp-preamble.ts';
import { parseLinkFaults } from '../../../../hil/faults/link-fault-plan.ts';
import { FrameDecider } from '../../../../hil/faults/proxy/frame-decisions.ts';
import { ProxyError, parseListenAddress, parseTargetAddress, startTcpFaultProxy } from '../../../../hil/faults/proxy/index.ts';
import { sealedHeader } from '../../../firmware/protocol/helpers.ts';
import { ackFrame, streamFrame } from './fixtures.ts';
import { connectClient, proxied, waitFor } from './net-fixtures.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(plan: string, opts: Parameters<typeof proxied>[1] = {}) {
  const p = await proxied(plan, opts);
  cleanups.push(p.stop);
  return p;
}

const total = (p: Awaited<ReturnType<typeof setup>>, dir: 'A->B' | 'B->A') => p.proxy.stats().directions[dir]!.total;
const writes = (n: number, from = 1): Uint8Array[] => Array.from({ length: n }, (_, i) => streamFrame('WRITE', from + i));

describe('the TCP fault proxy without faults', () => {
  it('relays the handshake untouched, then frames and noise both ways, byte for byte, and counts them', async () => {
    const p = await setup('none');
    const client = await connectClient(p.port, 2, 3);
    const noise = Uint8Array.of(1, 2, 3, 0x4d, 9);
    client.send(streamFrame('LOCK', 1), noise, streamFrame('WRITE', 2), streamFrame('UNLOCK', 3));
    await waitFor(() => p.listener.peers[0]?.frames.length === 3, 'three frames at the listener');
    const server = p.listener.peers[0]!;
    expect([...server.bytes.subarray(0, 8)]).toEqual([0x4d, 0x4c, 0x4c, 0x4b, 1, 2, 3, 0]);
    expect(server.payload).toEqual(Buffer.concat([streamFrame('LOCK', 1), noise, streamFrame('WRITE', 2), streamFrame('UNLOCK', 3)]));
    // The listener's acceptance goes back untouched, like the preamble: handshake, not noise.
    server.send(encodeAcceptance(2, 3), ackFrame(3), noise);
    await waitFor(() => client.bytes.length === 8 + ackFrame(3).length + noise.length, 'the acceptance, the ACK and noise at the client');
    expect(client.bytes).toEqual(Buffer.concat([encodeAcceptance(2, 3), ackFrame(3), noise]));
    const ab = p.proxy.stats().directions['A->B']!;
    expect(ab.total).toMatchObject({ framesSeen: 3, framesForwarded: 3, noiseBytes: 5, framesDropped: 0 });
    expect(Object.keys(ab.channels).sort()).toEqual(['conn2#0', 'datagram']);
    expect(total(p, 'B->A')).toMatchObject({ framesSeen: 1, framesForwarded: 1, noiseBytes: 5 });
  });

  it('refuses to listen anywhere but loopback, and says so in one line', async () => {
    expect(() => parseListenAddress('0.0.0.0:7400')).toThrow(/^--listen: 0.0.0.0 is not a loopback address; the fault proxy listens on loopback only/);
    expect(() => parseListenAddress('10.1.2.3:7400')).toThrow(ProxyError);
    expect(() => parseListenAddress('127.0.0.1')).toThrow(/is not HOST:PORT/);
    expect(() => parseListenAddress('127.0.0.1:70000')).toThrow(/port 70000 is out of range; allowed 0 to 65535/);
    expect(parseListenAddress('localhost:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(() => parseTargetAddress('127.0.0.1:0')).toThrow(/allowed 1 to 65535/);
    await expect(startTcpFaultProxy({ plan: parseLinkFaults('none'), seed: 1, listen: { host: '0.0.0.0', port: 0 }, to: { host: '127.0.0.1', port: 9 } }))
      .rejects.toMatchObject({ code: 'ML_ERR_PROXY_ADDRESS' });
  });

  it('refuses a port in use', async () => {
    const p = await setup('none');
    await expect(startTcpFaultProxy({ plan: parseLinkFaults('none'), seed: 1, listen: { host: '127.0.0.1', port: p.port }, to: { host: '127.0.0.1', port: 9 } }))
      .rejects.toMatchObject({ code: 'ML_ERR_PROXY_LISTEN', message: expect.stringMatching(/port \d+ on 127.0.0.1 is in use/) });
  });
});

describe('per-frame faults on a TCP connection', () => {
  /** Send 300 WRITEs through `plan`; what the listener got, what the proxy said. */
  async function run(plan: string, seed: number) {
    const p = await setup(plan, { seed });
    const client = await connectClient(p.port);
    const sent = writes(300);
    client.send(...sent);
    await waitFor(() => total(p, 'A->B').framesSeen === 300, 'the proxy to see 300 frames');
    const t = total(p, 'A->B');
    const expectedFrames = t.framesForwarded - t.framesCorrupted * (1 + 0) - countDupCorrupt(p.events);
    await waitFor(() => p.listener.peers[0]?.frames.length === expectedFrames, `${expectedFrames} frames at the listener`);
    const seqsOf = (fault: string) => p.events.filter((e) => e.fault === fault).map((e) => (e as { seq: number }).seq);
    return { p, t, got: p.listener.peers[0]!.frames.map((f) => f.seq), dropped: seqsOf('drop'), corrupted: seqsOf('corrupt'), duplicated: seqsOf('duplicate') };
  }
  /** A corrupted frame that is also duplicated goes out as two corrupted copies. */
  const countDupCorrupt = (events: { fault: string; seq?: number }[]): number => {
    const corrupt = new Set(events.filter((e) => e.fault === 'corrupt').map((e) => e.seq));
    return events.filter((e) => e.fault === 'duplicate' && corrupt.has(e.seq)).length;
  };

  it('drops, corrupts and duplicates exactly the frames its seed picks, counts them, and the far end sees just that', async () => {
    const plan = 'drop=0.1,corrupt=0.1,duplicate=0.1';
    const a = await run(plan, 11);
    expect(a.t.framesDropped).toBe(a.dropped.length);
    expect(a.t.framesCorrupted).toBe(a.corrupted.length);
    expect(a.t.framesDuplicated).toBe(a.duplicated.length);
    for (const n of [a.dropped.length, a.corrupted.length, a.duplicated.length]) expect(n).toBeGreaterThan(10);
    const expected = Array.from({ length: 300 }, (_, i) => i + 1).flatMap((s) => {
      if (a.dropped.includes(s) || a.corrupted.includes(s)) return [];
      return a.duplicated.includes(s) ? [s, s] : [s];
    });
    expect(a.got).toEqual(expected);
    expect(a.p.listener.peers[0]!.decodeErrors).toBeGreaterThanOrEqual(a.corrupted.length);
    // The decisions are the decider's for (seed, A->B, conn0#0, frame index), whatever the timing.
    const d = new FrameDecider(parseLinkFaults(plan), 11);
    const decided = Array.from({ length: 300 }, (_, i) => d.decide({ dir: 'ab', channel: 'conn0#0', kind: 'tcp' }, { index: i, type: FrameType.Write, length: streamFrame('WRITE', i + 1).length }));
    expect(decided.flatMap((x, i) => (x.drop ? [i + 1] : []))).toEqual(a.dropped);
    expect(decided.flatMap((x, i) => (x.flips.length > 0 ? [i + 1] : []))).toEqual(a.corrupted);
    const again = await run(plan, 11);
    expect([again.dropped, again.corrupted, again.duplicated]).toEqual([a.dropped, a.corrupted, a.duplicated]);
    const other = await run(plan, 12);
    expect(other.dropped).not.toEqual(a.dropped);
  });

  it('strikes only the targeted kinds: drop=1:LOCK loses every LOCK and nothing else', async () => {
    const p = await setup('drop=1:LOCK');
    const client = await connectClient(p.port);
    for (let i = 0; i < 20; i++) client.send(streamFrame('LOCK', 3 * i + 1), streamFrame('WRITE', 3 * i + 2), streamFrame('UNLOCK', 3 * i + 3));
    await waitFor(() => p.listener.peers[0]?.frames.length === 40, '40 frames at the listener');
    expect(p.listener.peers[0]!.frames.every((f) => f.type !== FrameType.Lock)).toBe(true);
    expect(total(p, 'A->B')).toMatchObject({ framesSeen: 60, framesDropped: 20, framesForwarded: 40 });
    expect(p.events.every((e) => e.fault === 'drop' && (e as { type: string }).type === 'LOCK')).toBe(true);
  });

  it('reorders: every frame arrives, some after frames sent later', async () => {
    const p = await setup('reorder=0.2', { seed: 5 });
    const client = await connectClient(p.port);
    client.send(...writes(200));
    await waitFor(() => p.listener.peers[0]?.frames.length === 200, '200 frames at the listener');
    const got = p.listener.peers[0]!.frames.map((f) => f.seq);
    expect([...got].sort((x, y) => x - y)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(got).not.toEqual([...got].sort((x, y) => x - y));
    const reordered = p.events.filter((e) => e.fault === 'reorder').map((e) => (e as { seq: number }).seq);
    expect(total(p, 'A->B').framesReordered).toBe(reordered.length);
    // Each held frame was overtaken by a later one (released by its overtakers, or at the hold limit at the end).
    for (const s of reordered.filter((s) => s <= 190)) expect(got.slice(0, got.indexOf(s)).some((x) => x > s)).toBe(true);
  });

  it('a drawn reset reaches both ends as ECONNRESET, with the frame lost with it', async () => {
    const p = await setup('reset=1');
    const client = await connectClient(p.port, 1, 2);
    // Once the listener has read the preamble: a RST that finds unread bytes at a Linux receiver may read as an end of stream.
    await waitFor(() => p.listener.peers[0]?.bytes.length === 8, 'the preamble at the listener');
    client.send(streamFrame('WRITE', 1));
    await waitFor(() => client.closed && p.listener.peers[0]!.closed, 'both ends closed');
    expect(client.error).toBe('ECONNRESET');
    expect(p.listener.peers[0]!.error).toBe('ECONNRESET');
    expect(p.listener.peers[0]!.payload.length).toBe(0);
    expect(p.proxy.stats().connections).toMatchObject({ resets: 1, open: 0 });
    expect(p.events).toEqual([{ kind: 'link.fault', t: expect.any(Number), node: 'A', fault: 'reset', peer: 'B', conn: 1, type: 'WRITE', seq: 1, lun: 0, channel: 'conn1#0' }]);
  });
});

describe('silent failures on a TCP connection', () => {
  it('a silent cut swallows both ways and closes nothing; a close sent into it is lost; afterwards traffic flows again', async () => {
    const clock = new VirtualClock();
    const p = await setup('silent=10ms+1000ms', { clock });
    const client = await connectClient(p.port);
    client.send(streamFrame('WRITE', 1));
    await waitFor(() => p.listener.peers[0]?.frames.length === 1, 'the first frame before the cut');
    const server = p.listener.peers[0]!;
    await clock.run({ untilMs: 20 });
    client.send(...writes(5, 2));
    server.send(ackFrame(1), ackFrame(2));
    await waitFor(() => total(p, 'A->B').framesSeen === 6 && total(p, 'B->A').framesSeen === 2, 'the proxy to take the frames sent into the cut');
    expect(total(p, 'A->B')).toMatchObject({ framesSwallowed: 5, framesForwarded: 1 });
    expect(total(p, 'B->A')).toMatchObject({ framesSwallowed: 2, framesForwarded: 0 });
    // A second connection made during the cut waits for it to end before the proxy dials.
    const late = await connectClient(p.port, 0, 1);
    late.send(streamFrame('WRITE', 100));
    // The client goes away inside the cut: the listener is not told.
    client.socket.destroy();
    await waitFor(() => p.proxy.stats().connections.closesSwallowed === 1, 'the close to be swallowed');
    expect(server.closed || server.ended).toBe(false);
    expect(p.listener.peers).toHaveLength(1);
    expect(client.frames).toHaveLength(0);
    await clock.run({ untilMs: 1100 });
    // After the cut, the listener's next bytes on the orphaned connection meet a reset, as from a host that forgot it.
    server.send(ackFrame(3));
    await waitFor(() => server.closed, 'the orphan to be reset');
    expect(server.error).toBe('ECONNRESET');
    await waitFor(() => p.listener.peers[1]?.frames.length === 1, 'the late connection to get through');
    expect(p.listener.peers[1]!.frames[0]!.seq).toBe(100);
    expect(p.proxy.stats().connections).toMatchObject({ heldDuringHole: 1, orphansReset: 1 });
    expect(p.events.map((e) => e.fault)).toEqual(['silent.start', 'silent.end']);
  });

  it('when both ends close inside a cut, neither hears of the other, and the proxy keeps no half-open socket', async () => {
    const clock = new VirtualClock();
    const p = await setup('silent=10ms+1000ms', { clock });
    const client = await connectClient(p.port);
    await waitFor(() => p.listener.peers[0]?.bytes.length === 8, 'the preamble at the listener');
    const server = p.listener.peers[0]!;
    await clock.run({ untilMs: 20 });
    client.socket.end();
    await waitFor(() => p.proxy.stats().connections.closesSwallowed === 1, 'the client\'s FIN swallowed');
    expect(server.ended).toBe(false);
    server.socket.end();
    await waitFor(() => p.proxy.stats().connections.open === 0, 'the proxy to drop both sockets');
  });

  it('a one-way cut swallows one direction only', async () => {
    const clock = new VirtualClock();
    const p = await setup('oneway=B>A@5ms+100ms', { clock });
    const client = await connectClient(p.port);
    await waitFor(() => p.listener.peers.length === 1, 'the proxy to dial');
    await clock.run({ untilMs: 10 });
    client.send(streamFrame('WRITE', 1));
    p.listener.peers[0]!.send(ackFrame(1));
    await waitFor(() => p.listener.peers[0]!.frames.length === 1 && total(p, 'B->A').framesSeen === 1, 'both frames through the proxy');
    expect(total(p, 'B->A').framesSwallowed).toBe(1);
    expect(client.frames).toHaveLength(0);
  });

  it('paces to the bandwidth in virtual time: bytes out follow the rate, in order, and all arrive', async () => {
    const clock = new VirtualClock();
    const p = await setup('bandwidth=1@0', { clock });
    const client = await connectClient(p.port);
    await waitFor(() => p.listener.peers.length === 1, 'the proxy to dial');
    await clock.run({ untilMs: 0 });
    const sent = Array.from({ length: 20 }, (_, i) => streamFrame('WRITE', i + 1, 1000));
    client.send(...sent);
    await waitFor(() => total(p, 'A->B').framesSeen === 20, 'the proxy to take 20 frames');
    const frameBytes = sent[0]!.length;
    await clock.run({ untilMs: 50 });
    const out = total(p, 'A->B').bytesOut;
    // 1 Mbit/s is 125 bytes per ms: 50 ms lets about 6 frames of 1,052 bytes through.
    expect(out).toBeGreaterThanOrEqual(125 * 50 - frameBytes);
    expect(out).toBeLessThanOrEqual(125 * 52 + frameBytes);
    await waitFor(() => p.listener.peers[0]!.payload.length === out, 'the paced bytes at the listener');
    await clock.run({ untilMs: 1000 });
    await waitFor(() => p.listener.peers[0]!.frames.length === 20, 'all 20 frames');
    expect(p.listener.peers[0]!.frames.map((f) => f.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});

describe('hostile input and limits', () => {
  it('relays garbage, a bad preamble and frames declaring 4 GiB as noise, both ways, without crashing', async () => {
    const p = await setup('drop=0.5:WRITE,corrupt=0.5:WRITE,reorder=0.5:WRITE');
    const client = await connectClient(p.port);
    // Each burst ends with an ACK (no rule strikes it): noise whose tail could start a frame is
    // relayed once the bytes after it show it is none, as the far decoder would judge it.
    const garbage = [randomBytes(5000), sealedHeader({ type: FrameType.Write, lockId: 1, seq: 1, payloadLength: 0xffffffff }), randomBytes(70_000)];
    client.send(...garbage);
    client.socket.end();
    await waitFor(() => p.listener.peers[0]?.ended === true, 'the garbage and the end at the listener');
    expect(p.listener.peers[0]!.payload).toEqual(Buffer.concat(garbage));
    const back = [randomBytes(3000), ackFrame(1)];
    p.listener.peers[0]!.send(...back);
    await waitFor(() => client.frames.length === 1, 'garbage and an ACK back at the client');
    expect(client.bytes).toEqual(Buffer.concat(back));
    // A connection that starts with no preamble at all is still relayed (the listener judges it).
    const raw = net.connect({ host: '127.0.0.1', port: p.port });
    raw.on('error', () => {});
    const junk = randomBytes(100);
    raw.write(Buffer.concat([junk, ackFrame(2)]));
    await waitFor(() => p.listener.peers[1]?.bytes.length === 152, 'the second connection relayed');
    expect(p.listener.peers[1]!.bytes).toEqual(Buffer.concat([junk, ackFrame(2)]));
    raw.destroy();
    expect(p.proxy.stats().connections.badPreambles).toBe(1);
    expect(total(p, 'A->B').noiseBytes).toBe(75_048 + 92);
  });

  it('resets connections beyond connectionsMax, and counts them', async () => {
    const p = await setup('none', { limits: { connectionsMax: 2 } });
    await connectClient(p.port, 0, 3);
    await connectClient(p.port, 1, 3);
    await waitFor(() => p.proxy.stats().connections.open === 2, 'two connections relayed');
    const third = net.connect({ host: '127.0.0.1', port: p.port });
    let error = '';
    third.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? ''));
    await waitFor(() => third.closed, 'the third connection to be reset');
    expect(error).toBe('ECONNRESET');
    expect(p.proxy.stats().connections).toMatchObject({ accepted: 3, refused: 1, open: 2 });
  });

  it('bounds what it holds for a slow receiver: the sender is paused, and everything still arrives in order', async () => {
    const p = await setup('none', { limits: { pipeQueueBytesMax: 64 * 1024 } });
    const client = await connectClient(p.port);
    await waitFor(() => p.listener.peers.length === 1, 'the proxy to dial');
    const server = p.listener.peers[0]!;
    server.socket.pause();
    const sent = Array.from({ length: 2000 }, (_, i) => streamFrame('WRITE', i + 1, 4000));
    client.send(...sent);
    await waitFor(() => total(p, 'A->B').queuePauses >= 1, 'the proxy to pause the sender');
    server.socket.resume();
    await waitFor(() => server.frames.length === 2000, 'all frames at the listener', 30_000);
    expect(server.frames.map((f) => f.seq)).toEqual(sent.map((_, i) => i + 1));
  });

  it('resets the connect side when the real listener cannot be reached', async () => {
    const p = await setup('none');
    await p.listener.stop();
    const client = await connectClient(p.port);
    await waitFor(() => client.closed, 'the client to be reset');
    expect(client.error).toBe('ECONNRESET');
    expect(p.proxy.stats().connections.upstreamFailures).toBe(1);
  });

  it('stop() closes every socket, is idempotent, and nothing is emitted after it', async () => {
    const p = await setup('drop=0.5');
    const client = await connectClient(p.port);
    await waitFor(() => p.listener.peers.length === 1, 'the proxy to dial');
    await Promise.all([p.proxy.stop(), p.proxy.stop()]);
    await waitFor(() => client.closed && (p.listener.peers[0]!.ended || p.listener.peers[0]!.closed), 'both ends told');
    expect(p.proxy.stats().connections.open).toBe(0);
    await expect(connectClient(p.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
