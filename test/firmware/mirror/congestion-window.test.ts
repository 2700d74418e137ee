import { describe, expect, it } from 'vitest';
import { CongestionWindow, QUEUE_SLACK_MS } from '../../../firmware/mirror/congestion-window.ts';
import { RetransmitTimer } from '../../../firmware/mirror/retransmit-timer.ts';

const cfg = { initialBytes: 64 * 1024, minBytes: 16 * 1024, maxBytes: 1024 * 1024, segmentBytes: 4096 };

describe('CongestionWindow', () => {
  it('doubles per round trip in slow start, up to its maximum', () => {
    const w = new CongestionWindow(cfg);
    w.acked(64 * 1024, 1, 1);
    expect(w.bytes).toBe(128 * 1024);
    for (let i = 0; i < 10; i++) w.acked(w.bytes, 1, 1);
    expect(w.bytes).toBe(1024 * 1024);
  });

  it('stops growing when the round trip shows a queue building up', () => {
    const w = new CongestionWindow(cfg);
    w.acked(4096, 1 + 1 + QUEUE_SLACK_MS + 0.1, 1);
    expect(w.bytes).toBe(64 * 1024);
    w.acked(4096, 1.5, 1);
    expect(w.bytes).toBe(64 * 1024 + 4096);
  });

  it('halves once per round trip of losses, grows linearly after, and restarts small after a timeout', () => {
    const w = new CongestionWindow(cfg);
    w.acked(64 * 1024, 1, 1); // 128 KiB
    w.lost(10, 40, false);
    expect(w.bytes).toBe(64 * 1024);
    w.lost(20, 45, false); // sent before the reduction: the same episode
    expect(w.bytes).toBe(64 * 1024);
    w.acked(64 * 1024, 1, 1); // congestion avoidance: about one segment per window
    expect(w.bytes).toBe(64 * 1024 + 4096);
    w.lost(50, 60, false); // a new episode
    expect(w.bytes).toBe((64 * 1024 + 4096) / 2);
    w.lost(55, 60, true); // a timeout: half again, and no more than the initial window
    expect(w.bytes).toBe((64 * 1024 + 4096) / 4);
    for (let i = 0; i < 20; i++) w.lost(1000 + i * 100, 1100 + i * 100, false);
    expect(w.bytes).toBe(cfg.minBytes);
    expect(w.reductions).toBe(23);
  });
});

describe('RetransmitTimer', () => {
  it('starts from its initial timeout, then follows SRTT with a margin, and backs off on timeouts', () => {
    const t = new RetransmitTimer({ initialMs: 100, minMs: 5, maxMs: 2000 });
    expect(t.rtoMs).toBe(100);
    for (let i = 0; i < 50; i++) t.sample(20);
    expect(t.minRttMs).toBe(20);
    // RTTVAR has decayed to ~0; the margin keeps the timeout a quarter plus 1 ms above SRTT.
    expect(t.rtoMs).toBeCloseTo(20 + 1 + 5, 3);
    t.timedOut();
    expect(t.rtoMs).toBeCloseTo(52, 3);
    for (let i = 0; i < 6; i++) t.timedOut();
    expect(t.rtoMs).toBe(2000);
    t.sample(20);
    expect(t.rtoMs).toBeLessThan(30);
  });
});
