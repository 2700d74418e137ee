import { describe, expect, it } from 'vitest';
import type { LinkEndpoint } from '../../../firmware/ports/link.ts';
import { RealClock } from '../../../host/clock/real.ts';
import { LivePair } from '../../../hil/bench/live-pair.ts';
import { driveWrites as drive, ptyLinkPair, tcpPair } from './live-pairs.ts';
import { scratchDir } from '../../support/scratch-dir.ts';

/**
 * The transports carry the real protocol: two StorageControllers in this process, on the real
 * clock, mirror a few hundred writes over loopback TCP (2 connections + UDP heartbeats) and over
 * a PTY pair (heartbeats inline), and end with identical volumes. Then a TCP connection is reset
 * in the middle of a run: the firmware's supervisor asks for it again and nothing is lost.
 *
 * Bounded by generous wall-clock budgets, never asserting a duration.
 */
const WRITES = 300;
const WRITE_BYTES = 4096;
const VOLUME_BYTES = 4 * 1024 * 1024;
const BUDGET_MS = 20_000;

async function mirrorAndCompare(a: LinkEndpoint, b: LinkEndpoint, o: { seed: number; midway?: (pair: LivePair) => void }): Promise<LivePair> {
  const pair = new LivePair(a, b, { clock: new RealClock(), seed: o.seed, mode: 'speculative', volumeBytes: VOLUME_BYTES });
  pair.start();
  try {
    await pair.waitUp(BUDGET_MS);
    await drive(pair, { seed: o.seed, count: WRITES, depth: 16, midway: () => o.midway?.(pair) });
    await pair.waitSettled(BUDGET_MS);
    expect(pair.failure).toBeNull();
    expect(await pair.firstDifference(), 'first byte where the copy differs from the source').toBe(-1);
    return pair;
  } finally {
    pair.stop();
  }
}

const scratch = scratchDir('live-pair');

describe('a controller pair over live links', () => {
  it(`mirrors ${WRITES} writes over loopback TCP (2 connections, UDP heartbeats) and the copy is identical`, async () => {
    const link = await tcpPair({ connections: 2, listener: 'b' });
    try {
      const pair = await mirrorAndCompare(link.a, link.b, { seed: 11 });
      const [ab] = pair.source.status();
      expect(ab!.link.counters.heartbeatsReceived).toBeGreaterThan(0);
      const stats = link.connect.stats();
      // Both connections carried stream frames: the source spreads its stream over every ready one.
      expect(stats.connections.map((c) => c.bytesSent > WRITES * WRITE_BYTES / 8)).toEqual([true, true]);
      expect(stats.datagrams.rejected + link.listen.stats().datagrams.rejected).toBe(0);
    } finally {
      await link.close!();
    }
  });

  it(`mirrors ${WRITES} writes over a socat PTY pair (heartbeats inline) and the copy is identical`, async () => {
    const link = await ptyLinkPair(scratch.dir(), 'pair');
    try {
      const pair = await mirrorAndCompare(link.a, link.b, { seed: 12 });
      expect(pair.source.status()[0]!.link.counters.heartbeatsReceived).toBeGreaterThan(0);
      expect(link.a.stats().datagrams.sent).toBeGreaterThan(0);
    } finally {
      await link.close!();
    }
  });

  it('recovers from a TCP connection reset in the middle of a run: reconnected, nothing lost', async () => {
    const link = await tcpPair({ connections: 2, listener: 'b' });
    let reset = false;
    try {
      const pair = await mirrorAndCompare(link.a, link.b, { seed: 13, midway: () => (reset = link.connect.resetConnection(0)) });
      expect(reset, 'connection 0 was open when it was reset').toBe(true);
      const a = pair.source.status()[0]!.link.counters;
      const b = pair.target.status()[0]!.link.counters;
      expect([a.connectionsLost, b.connectionsLost]).toEqual([1, 1]);
      // Opened twice: at the start and again after the reset (plus connection 1 once).
      expect([a.connectionsOpened, b.connectionsOpened]).toEqual([3, 3]);
      expect(link.connect.stats().reconnects).toBe(1);
    } finally {
      await link.close!();
    }
  });
});
