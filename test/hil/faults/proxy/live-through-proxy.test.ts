import { afterEach, describe, expect, it } from 'vitest';
import { RealClock } from '../../../../host/clock/real.ts';
import { ptyPair } from '../../../../host/disks/serial-disk/socat-pty.ts';
import { SeededRandom } from '../../../../host/random.ts';
import { silentLinkLogger } from '../../../../host/transports/link-logger.ts';
import { openLiveLink, type LiveLink } from '../../../../host/transports/live-link.ts';
import type { TcpLink } from '../../../../host/transports/tcp-link.ts';
import { LivePair } from '../../../../hil/bench/live-pair.ts';
import { parseLinkFaults } from '../../../../hil/faults/link-fault-plan.ts';
import { startSerialFaultProxy, startTcpFaultProxy, type FaultProxy, type ProxyEvent } from '../../../../hil/faults/proxy/index.ts';
import { scratchDir } from '../../../support/scratch-dir.ts';

/**
 * End to end: two StorageControllers on live links (host/transports) through the fault proxy, on
 * the real clock. Drops, corruption, duplicates, reordering, heartbeat loss and a silent cut longer
 * than the interruption timeout: the supervisors take the link down and bring it back through the
 * proxy, the source retransmits, and the copy ends identical. Writes go on until the cut has come
 * and gone, so it always falls inside the run. Wall-clock budgets bound every wait; no duration is
 * asserted.
 */
const VOLUME_BYTES = 4 * 1024 * 1024;
const WRITE_BYTES = 4096;
const BUDGET_MS = 30_000;
const scratch = scratchDir('live-proxy');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** Writes at queue depth 8 until `enough()` holds and at least `minimum` were acknowledged (at most 20,000). */
async function driveUntil(pair: LivePair, o: { seed: number; minimum: number; enough: () => boolean }): Promise<number> {
  const random = new SeededRandom(o.seed).fork('writes');
  const slots = VOLUME_BYTES / WRITE_BYTES;
  let issued = 0;
  let acked = 0;
  await new Promise<void>((resolve, reject) => {
    const issue = (): void => {
      if (acked >= o.minimum && o.enough()) {
        if (acked === issued) resolve();
        return;
      }
      if (issued >= 20_000) return reject(new Error('20,000 writes and the fault plan has not run its course'));
      const i = issued++;
      const data = new Uint8Array(WRITE_BYTES).fill((i % 251) + 1);
      data[0] = i & 0xff;
      pair.source.submitWrite(0, random.int(slots) * (WRITE_BYTES / 512), data, (error) => {
        if (error) return reject(error as Error);
        acked++;
        issue();
      });
    };
    for (let k = 0; k < 8; k++) issue();
  });
  return acked;
}

async function mirrorThrough(a: LiveLink, b: LiveLink, proxy: FaultProxy, events: ProxyEvent[], seed: number) {
  const clock = new RealClock();
  const pair = new LivePair(a, b, { clock, seed, mode: 'speculative', volumeBytes: VOLUME_BYTES });
  pair.start();
  try {
    await pair.waitUp(BUDGET_MS);
    const acked = await driveUntil(pair, { seed, minimum: 300, enough: () => events.some((e) => e.fault === 'silent.end') });
    await pair.waitSettled(BUDGET_MS);
    expect(pair.failure).toBeNull();
    expect(await pair.firstDifference(), 'first byte where the copy differs from the source').toBe(-1);
    return { pair, acked, stats: proxy.stats() };
  } finally {
    pair.stop();
  }
}

describe('two controllers through the fault proxy', () => {
  it('over TCP with UDP heartbeats: drops, corruption, duplicates, reordering, heartbeat loss and a 1.5 s silent cut; the copy ends identical', async () => {
    const clock = new RealClock();
    const common = { clock, logger: silentLinkLogger };
    const listen = await openLiveLink({ kind: 'tcp', role: 'listen', host: '127.0.0.1', port: 0, connections: 2 }, { ...common, localName: 'B', peerName: 'A' });
    cleanups.push(() => listen.shutdown());
    const events: ProxyEvent[] = [];
    const proxy = await startTcpFaultProxy({
      plan: parseLinkFaults('drop=0.01,corrupt=0.01,duplicate=0.01,reorder=0.01,hbloss=0.05,reset=0.002,silent=1s+1500ms'), seed: 5,
      listen: { host: '127.0.0.1', port: 0 }, to: { host: '127.0.0.1', port: (listen as TcpLink).port }, onEvent: (e) => void events.push(e),
    });
    cleanups.push(() => proxy.stop());
    const connect = await openLiveLink({ kind: 'tcp', role: 'connect', host: '127.0.0.1', port: proxy.address!.port, connections: 2 }, { ...common, localName: 'A', peerName: 'B' });
    cleanups.push(() => connect.shutdown());
    const { pair, stats } = await mirrorThrough(connect, listen, proxy, events, 5);
    const ab = stats.directions['A->B']!.total;
    const ba = stats.directions['B->A']!.total;
    expect(ab.framesDropped + ba.framesDropped).toBeGreaterThan(0);
    expect(ab.framesCorrupted + ba.framesCorrupted).toBeGreaterThan(0);
    expect(ab.heartbeatsLost + ba.heartbeatsLost).toBeGreaterThan(0);
    expect(ab.bytesSwallowed + ba.bytesSwallowed).toBeGreaterThan(0);
    expect(stats.holes.silentCuts).toBe(1);
    // The cut outlasted the interruption timeout: both supervisors took the link down and brought it back.
    for (const c of [pair.source, pair.target]) {
      const link = c.status()[0]!.link;
      expect(link.counters.downs, `${c.name}'s supervisor took the link down`).toBeGreaterThanOrEqual(1);
      expect(link.supervision.downMs).toBeGreaterThan(0);
      expect(link.counters.connectionsOpened).toBeGreaterThan(2);
    }
  });

  it('over a serial line between two PTY pairs: drops, corruption, heartbeat loss and a 1.5 s silent cut; the copy ends identical', async () => {
    const clock = new RealClock();
    const one = await ptyPair(scratch.dir(), 'one');
    const two = await ptyPair(scratch.dir(), 'two');
    cleanups.push(async () => {
      await one.stop();
      await two.stop();
    });
    const events: ProxyEvent[] = [];
    const proxy = await startSerialFaultProxy({
      plan: parseLinkFaults('drop=0.01,corrupt=0.01,hbloss=0.05,silent=1s+1500ms'), seed: 6, pathA: one.b, pathB: two.a, baud: 115_200,
      onEvent: (e) => void events.push(e),
    });
    cleanups.push(() => proxy.stop());
    const common = { clock, logger: silentLinkLogger };
    const a = await openLiveLink({ kind: 'serial', path: one.a, baudRate: 115_200 }, { ...common, localName: 'A', peerName: 'B' });
    cleanups.push(() => a.shutdown());
    const b = await openLiveLink({ kind: 'serial', path: two.b, baudRate: 115_200 }, { ...common, localName: 'B', peerName: 'A' });
    cleanups.push(() => b.shutdown());
    const { pair, stats } = await mirrorThrough(a, b, proxy, events, 6);
    const ab = stats.directions['A->B']!.total;
    const ba = stats.directions['B->A']!.total;
    expect(ab.framesDropped + ba.framesDropped + ab.framesCorrupted + ba.framesCorrupted).toBeGreaterThan(0);
    expect(ab.heartbeatsLost + ba.heartbeatsLost).toBeGreaterThan(0);
    expect(ab.bytesSwallowed + ba.bytesSwallowed).toBeGreaterThan(0);
    expect(pair.source.status()[0]!.link.counters.downs).toBeGreaterThanOrEqual(1);
  });
});
