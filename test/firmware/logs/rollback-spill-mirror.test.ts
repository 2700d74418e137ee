import { describe, expect, it } from 'vitest';
import { StorageController } from '../../../firmware/controller/storage-controller.ts';
import type { ControllerConfig } from '../../../firmware/controller/config.ts';
import { RollbackSpill } from '../../../firmware/logs/rollback-spill.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { SeededRandom } from '../../../host/random.ts';
import { SimLink } from '../../../host/transports/sim.ts';
import { RecordingTelemetry, firstDifference, pattern } from '../../support/harness.ts';
import { withPlantedBugs } from '../../support/planted-bugs.ts';

/**
 * The spill in a mirror (docs/tag-tables.md, "Rollback-log spill"): controller A mirrors LUN 0 to B
 * in async mode with a rollback log of 64 KiB; the link goes silent for 3 s while A's hosts write
 * 4 KiB at a time. Without a spill, hosts stall once the log is full; with one, they go on until
 * the spill ring is full; after the heal the copy equals the source, and B applied the writes in
 * exactly the order A's hosts issued them (the async prefix rule).
 */
async function outage(spillSectors: number | null, spillDeviceMs = 0.05) {
  const clock = new VirtualClock();
  const tel = new RecordingTelemetry();
  const link = new SimLink({ clock, names: ['A', 'B'], latencyMs: 0.5, bandwidthMbps: 1000 });
  const disk = (name: string) => new MemoryDisk({ name, sectorCount: 8192, clock, service: { fixedMs: 0.02, perByteMs: 0.000_001 } });
  const a0 = disk('A/lun0');
  const b0 = disk('B/lun0');
  const meta = new MemoryDisk({ name: 'A/meta', sectorCount: 4096, clock, service: { fixedMs: spillDeviceMs, perByteMs: 0.000_002 } });
  const spills: RollbackSpill[] = [];
  const limits = { rollbackLogBytesMax: 64 * 1024, rollbackLogEntriesMax: 1024, payloadBytesMax: 16 * 1024 };
  const cfgA: ControllerConfig = {
    name: 'A', id: 1, onLockReject: 'halt-resume', limits,
    luns: [{ lun: 0, device: a0, lockRegionSectors: 64, mirror: { peer: 'B', mode: 'async' } }],
    ...(spillSectors === null ? {} : {
      rollbackSpill: () => {
        const s = new RollbackSpill(meta, { firstLba: 0, sectors: spillSectors, entriesMax: 4096 });
        spills.push(s);
        return s;
      },
    }),
  };
  const a = new StorageController(cfgA, { clock, telemetry: tel, random: new SeededRandom(1) });
  const b = new StorageController({ name: 'B', id: 2, onLockReject: 'halt-resume', limits, luns: [{ lun: 0, device: b0, lockRegionSectors: 64 }] }, { clock, telemetry: tel, random: new SeededRandom(2) });
  a.connect('B', link.a);
  b.connect('A', link.b);
  a.start();
  b.start();
  await clock.run({ untilMs: 100 });

  const writes = 600;
  let issued = 0;
  let acked = 0;
  let ackedDuringOutage = 0;
  let outageOn = false;
  const issue = (): void => {
    if (issued >= writes) return;
    const n = issued++;
    a.submitWrite(0, (n * 8) % 8192, pattern(n, 4096), (error) => {
      expect(error).toBeUndefined();
      acked++;
      if (outageOn) ackedDuringOutage++;
      issue();
    });
  };
  link.blackhole('both', true);
  outageOn = true;
  for (let i = 0; i < 8; i++) issue();
  await clock.run({ untilMs: clock.now() + 3000 });
  outageOn = false;
  link.blackhole('both', false);
  await clock.run({ until: () => acked === writes && a.settled() && b.settled(), untilMs: clock.now() + 60_000 });
  expect(a.failure).toBeNull();
  expect(b.failure).toBeNull();
  expect(acked).toBe(writes);
  expect(a.settled() && b.settled()).toBe(true);
  // Heartbeats bring the last tokens: the spilled writes' entries go like any others (docs/tag-tables.md, "Tokens").
  await clock.run({ untilMs: clock.now() + 500 });
  const tableAfter = a.tablesOf('B', 0, 'source')!.table.size;
  const difference = await firstDifference(clock, a0, b0);
  const hostOrder = tel.of('host.write').filter((e) => e.node === 'A').map((e) => e.tag);
  const applyOrder = tel.of('target.apply').filter((e) => e.node === 'B').map((e) => e.tag);
  a.stop();
  b.stop();
  return { ackedDuringOutage, spill: spills[0]?.stats() ?? null, difference, inOrder: JSON.stringify(applyOrder) === JSON.stringify(hostOrder), tableAfter };
}

describe('the rollback log spilling in async mode (docs/tag-tables.md, "Rollback-log spill")', () => {
  it('without a spill, hosts stall once the 64 KiB log is full; with a 1 MiB spill they go on until it is full; afterwards the copy is exact and in order', async () => {
    const none = await outage(null);
    const spilled = await outage(2048);
    for (const r of [none, spilled]) expect(r).toMatchObject({ difference: -1, inOrder: true, tableAfter: 0 });
    // The log holds 15 writes of 4 KiB (with three frame headers each); the 1 MiB ring 227 more (9 sectors each with its header).
    expect(none.ackedDuringOutage).toBe(15);
    expect(spilled.ackedDuringOutage).toBe(15 + 227);
    // Until the spill has drained, every later write goes through it too (the stream keeps the hosts' order):
    // all but the first 15 were spilled, and every one read back intact; the 358 not acknowledged during the outage waited.
    expect(spilled.spill).toEqual({ entries: 0, bytes: 0, waiting: 0, spilled: 585, bytesSpilled: 585 * 4608, readBack: 585, hostWaits: 358, lost: 0 });
  });

  it('with new writes let past what the spill holds (planted bug), the target applies them out of the hosts\' order', async () => {
    // A slow spill device: the log empties while the spill reads, and a new write finds room there.
    expect((await outage(2048, 2)).inOrder).toBe(true);
    const r = await withPlantedBugs(['spill-lets-writes-overtake'], () => outage(2048, 2));
    expect(r.inOrder).toBe(false);
  });
});
