import { describe, expect, it } from 'vitest';
import type { LinkEndpoint } from '../../../firmware/ports/link.ts';
import { RealClock } from '../../../host/clock/real.ts';
import { LivePair } from '../../../hil/bench/live-pair.ts';
import { driveWrites as drive, ptyLinkPair, tcpPair } from './live-pairs.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { plant } from '../../support/planted-bugs.ts';
import { reassembledFrames } from '../../../firmware/protocol/frame-pool.ts';

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

interface MirrorOptions {
  seed: number;
  midway?: (pair: LivePair) => void;
  writeBytes?: number;
  writes?: number;
}

/** Mirrors the writes and settles; the first byte where the copy differs from the source, or -1. */
async function mirror(a: LinkEndpoint, b: LinkEndpoint, o: MirrorOptions): Promise<{ pair: LivePair; difference: number }> {
  const pair = new LivePair(a, b, { clock: new RealClock(), seed: o.seed, mode: 'speculative', volumeBytes: VOLUME_BYTES });
  pair.start();
  try {
    await pair.waitUp(BUDGET_MS);
    await drive(pair, { seed: o.seed, count: o.writes ?? WRITES, depth: 16, midway: () => o.midway?.(pair), writeBytes: o.writeBytes ?? WRITE_BYTES });
    await pair.waitSettled(BUDGET_MS);
    expect(pair.failure).toBeNull();
    return { pair, difference: await pair.firstDifference() };
  } finally {
    pair.stop();
  }
}

async function mirrorAndCompare(a: LinkEndpoint, b: LinkEndpoint, o: MirrorOptions): Promise<LivePair> {
  const { pair, difference } = await mirror(a, b, o);
  expect(difference, 'first byte where the copy differs from the source').toBe(-1);
  return pair;
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

  // 64 KiB WRITEs span TCP reads, so the target gathers each in a buffer from the frame pool and
  // gives it back once written (docs/live-links.md 10): buffers are reused, and no write's data is
  // overwritten by a later frame while it waits. The planted bug gives buffers back too early.
  it('mirrors 64 KiB writes whose frames are gathered in reused pool buffers, and the copy is identical', async () => {
    const link = await tcpPair({ connections: 2, listener: 'b' });
    const before = reassembledFrames.stats;
    try {
      await mirrorAndCompare(link.a, link.b, { seed: 14, writeBytes: 64 * 1024, writes: 200 });
      expect(reassembledFrames.stats.reused - before.reused).toBeGreaterThan(100);
    } finally {
      await link.close!();
    }
  });

  it('a target that gives frame buffers back before writing them ends with a copy that differs (planted bug)', async () => {
    const link = await tcpPair({ connections: 2, listener: 'b' });
    const unplant = plant('target-gives-frame-buffer-back-early');
    try {
      const { difference } = await mirror(link.a, link.b, { seed: 15, writeBytes: 64 * 1024, writes: 200 });
      expect(difference).toBeGreaterThanOrEqual(0);
    } finally {
      unplant();
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
