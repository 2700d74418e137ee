import { describe, expect, it } from 'vitest';
import { LivePair } from '../../../hil/bench/live-pair.ts';
import { usbLinkPair, type UsbLinkPair } from './usb-link-pairs.ts';
import { driveWrites as drive } from './live-pairs.ts';

/**
 * The USB link carries the real protocol: two StorageControllers in this process, on the real
 * clock, mirror a few hundred writes over the host side of a USB link and the emulated device's
 * gadget end, and end with identical volumes: over a clean pipe, over one that STALLs and sends
 * short and zero-length packets, and across a disconnect and re-attach of the device in the
 * middle of the run, after which the host finds and claims it again and nothing is lost.
 *
 * Bounded by generous wall-clock budgets, never asserting a duration.
 */
const WRITES = 300;
const WRITE_BYTES = 4096;
const VOLUME_BYTES = 4 * 1024 * 1024;
const BUDGET_MS = 20_000;

/** Mirrors WRITES writes from the host side (A) to the gadget side (B) and compares the volumes. */
async function mirror(link: UsbLinkPair, o: { seed: number; midway?: () => void }): Promise<LivePair> {
  const pair = new LivePair(link.a, link.b, { clock: link.clock, seed: o.seed, mode: 'speculative', volumeBytes: VOLUME_BYTES });
  pair.start();
  try {
    await pair.waitUp(BUDGET_MS);
    await drive(pair, { seed: o.seed, count: WRITES, depth: 16, midway: o.midway });
    await pair.waitSettled(BUDGET_MS);
    expect(pair.failure).toBeNull();
    expect(await pair.firstDifference(), 'first byte where the copy differs from the source').toBe(-1);
    return pair;
  } finally {
    pair.stop();
  }
}

describe('a controller pair over a USB link (emulated device)', () => {
  it(`mirrors ${WRITES} writes over clean bulk pipes and the copy is identical`, async () => {
    const link = await usbLinkPair({ seed: 21 });
    try {
      const pair = await mirror(link, { seed: 21 });
      expect(pair.source.status()[0]!.link.counters.heartbeatsReceived).toBeGreaterThan(0);
      const stats = link.host.stats();
      expect(stats.datagrams.sent, 'heartbeats went inline').toBeGreaterThan(0);
      expect(stats.connections[0]!.bytesSent).toBeGreaterThan(WRITES * WRITE_BYTES);
      expect(link.device.stats.outTransferBytesMax, 'no OUT transfer above the chosen maximum').toBeLessThanOrEqual(16 * 1024);
      expect(link.device.stats.inPendingMax, 'one IN transfer pending at a time').toBe(1);
    } finally {
      await link.close!();
    }
  });

  it(`mirrors ${WRITES} writes over pipes that STALL and send short and zero-length packets, and the copy is identical`, async () => {
    const link = await usbLinkPair({ seed: 22, faults: { 'stall-in': 20_000, 'stall-out': 20_000, short: 50_000, zlp: 20_000 } });
    try {
      await mirror(link, { seed: 22 });
      const usb = link.host.stats().usb!;
      const hit = link.device.injected;
      expect([hit['stall-in'] > 0, hit['stall-out'] > 0, hit.short > 0, hit.zlp > 0], 'every planned fault struck').toEqual([true, true, true, true]);
      expect([usb.stallsClearedIn, usb.stallsClearedOut]).toEqual([hit['stall-in'], hit['stall-out']]);
      expect(link.host.stats().connections[0]!.closedHeard, 'no fault here loses the connection').toBe(0);
    } finally {
      await link.close!();
    }
  });

  it('survives a disconnect and re-attach of the device in the middle of a run: claimed again, nothing lost', async () => {
    const link = await usbLinkPair({ seed: 23 });
    let unplugged = false;
    try {
      const pair = await mirror(link, { seed: 23, midway: () => {
        unplugged = link.device.present;
        link.device.unplug();
      } });
      expect(unplugged, 'the device was on the bus when it was unplugged').toBe(true);
      const a = pair.source.status()[0]!.link.counters;
      const b = pair.target.status()[0]!.link.counters;
      expect([a.connectionsLost, b.connectionsLost]).toEqual([1, 1]);
      expect(link.device.stats.reattaches).toBe(1);
      expect(link.host.stats().reopens, 'the host found and claimed the re-attached device').toBe(1);
      expect(link.host.stats().reconnects).toBeGreaterThanOrEqual(1);
    } finally {
      await link.close!();
    }
  });

  it('survives seeded disconnects in the middle of transfers (bytes in flight lost), each re-attach claimed again, nothing lost', async () => {
    const link = await usbLinkPair({ seed: 24, faults: { disconnect: 5_000 } });
    try {
      const pair = await mirror(link, { seed: 24 });
      const drops = link.device.injected.disconnect;
      expect(drops, 'the plan dropped the device at least once').toBeGreaterThan(0);
      expect(link.device.stats.reattaches).toBe(drops);
      expect(pair.source.status()[0]!.link.counters.connectionsLost).toBeGreaterThanOrEqual(1);
      expect(link.host.stats().reopens).toBeGreaterThanOrEqual(1);
    } finally {
      await link.close!();
    }
  });
});
