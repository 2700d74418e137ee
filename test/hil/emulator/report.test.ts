import { describe, expect, it } from 'vitest';
import { parseVolumeSpec } from '../../../host/disks/volume-spec.ts';
import { renderReport } from '../../../hil/cli/render.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { parseDiskFaults } from '../../../hil/faults/disk-fault-plan.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';

const mem = parseVolumeSpec('mem:8MiB');
const run = (o: Partial<EmulateOptions>) => runEmulation({ ...DEFAULT_EMULATE, writes: 600, sourceVolume: mem, targetVolume: mem, ...o });

describe('report fields', () => {
  it('bidirectional: latency covers both hosts, and each host is reported on its own', async () => {
    // A's LUN 0 volume is slow, B's host writes elsewhere: the two hosts see different latencies.
    const r = await run({ bidirectional: true, diskFaults: parseDiskFaults('slow=source:0:20') });
    expect(r.violations, r.reproduce).toEqual([]);
    const { A, B } = r.latencyMsByHost;
    expect(A!.count).toBe(600);
    expect(B!.count).toBe(600);
    expect(r.latencyMs.count).toBe(1200);
    expect(r.latencyMs.maxMs).toBe(Math.max(A!.maxMs, B!.maxMs));
    expect(r.latencyMs.minMs).toBe(Math.min(A!.minMs, B!.minMs));
    expect(A!.meanMs).not.toBe(B!.meanMs);
  });

  it('async: throughputMBps is the mirrored rate (within the link), hostThroughputMBps the acknowledged one', async () => {
    const r = await run({ mode: 'async', bandwidthMbps: 100, writes: 2000 });
    expect(r.violations, r.reproduce).toEqual([]);
    const linkMBps = 100 / 8;
    expect(r.throughputMBps).toBeGreaterThan(linkMBps * 0.5);
    expect(r.throughputMBps).toBeLessThanOrEqual(linkMBps);
    expect(r.hostThroughputMBps).toBeGreaterThan(linkMBps * 10);
  });

  it('sync and speculative: mirrored and host rates agree closely (the host waits for the target)', async () => {
    for (const mode of ['sync', 'speculative'] as const) {
      const r = await run({ mode });
      expect(r.throughputMBps / r.hostThroughputMBps).toBeGreaterThan(0.9);
      expect(r.throughputMBps / r.hostThroughputMBps).toBeLessThan(1.2);
    }
  });

  it('lock counters come from the target: refusals, and grants that came after a refusal', async () => {
    for (const onLockReject of ['halt-resume', 'retransmit'] as const) {
      const r = await run({ lockContentionPerMillion: 100_000, lockRegionSectors: 8, onLockReject });
      expect(r.violations, r.reproduce).toEqual([]);
      const c = r.counters;
      expect(c.locksRejected).toBeGreaterThan(0);
      expect(c.locksGrantedAfterRejection).toBeGreaterThan(0);
      expect(c.locksGrantedAfterRejection).toBeLessThanOrEqual(c.locksRejected);
      // Every lock is granted in the end (the run drained), once each.
      expect(c.locksGranted).toBe(c.locksSent);
    }
    const calm = await run({ lockRegionSectors: 8 });
    expect(calm.counters).toMatchObject({ locksRejected: 0, locksGrantedAfterRejection: 0 });
  });

  it('the summary shows volumes, disk faults, bandwidth changes and the initial sync', async () => {
    const r = await run({
      sourceVolume: parseVolumeSpec('raid1:2x8MiB'), diskFaults: parseDiskFaults('fail=source:1@5ms'), faults: parseLinkFaults('bandwidth=100@3ms'),
    });
    const text = renderReport(r);
    expect(text).toMatch(/disk faults +fail=source:1@5ms/);
    expect(text).toMatch(/1 bandwidth changes/);
    expect(text).toMatch(/initial sync +none needed \(blank memory volumes\)/);
    expect(text).toMatch(/volumes +A\/lun0 raid1:2x8MiB: optimal, 0 mismatches, 1 rebuilds/);
    expect(text).toMatch(/\n +B\/lun0 mem:8MiB: optimal, 0 mismatches/);
    expect(text).toMatch(/mirrored, [\d.]+ MB\/s acknowledged to the hosts/);
  });
});
