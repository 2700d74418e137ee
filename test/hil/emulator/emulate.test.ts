import { describe, expect, it } from 'vitest';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { parseDiskFaults } from '../../../hil/faults/disk-fault-plan.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { parseVolumeSpec } from '../../../host/disks/volume-spec.ts';

const small: EmulateOptions = { ...DEFAULT_EMULATE, writes: 600, sourceVolume: { kind: 'mem', bytes: 8 << 20, sectorSize: 512 }, targetVolume: { kind: 'mem', bytes: 8 << 20, sectorSize: 512 } };
const run = (o: Partial<EmulateOptions>) => runEmulation({ ...small, ...o });

describe('emulation runs stay consistent under every fault kind, and the faults really happen', () => {
  it('no faults: consistent, every write acknowledged, no recovery needed', async () => {
    const r = await run({});
    expect(r.verdict).toBe('consistent');
    expect(r.writes).toMatchObject({ issued: 600, acknowledged: 600, errors: 0 });
    expect(r.counters.rollbacks).toBe(0);
    expect(r.throughputMBps).toBeGreaterThan(0);
  });

  it.each([
    ['drop=0.03', 'framesDropped'],
    ['corrupt=0.03', 'framesCorrupted'],
    ['duplicate=0.05', 'framesDuplicated'],
    ['reorder=0.05', 'framesReordered'],
    ['delay=0.1@2ms', 'framesDelayed'],
    ['partition=2', 'partitions'],
    ['bandwidth=50@5ms', 'bandwidthChanges'],
    ['drop=0.2:LOCK', 'framesDropped'],
    ['drop=0.3:ACK|LOCK_GRANTED', 'framesDropped'],
  ] as const)('%s', async (faults, counter) => {
    for (const mode of ['sync', 'speculative', 'async'] as const) {
      const r = await run({ mode, faults: parseLinkFaults(faults), seed: 7 });
      expect(r.violations, `${mode} ${faults}: ${r.reproduce}`).toEqual([]);
      expect(r.faultsInjected[counter], `${mode} ${faults}`).toBeGreaterThan(0);
    }
  });

  it('corruption forces rollbacks; contention forces halts (halt-resume) or retransmissions (retransmit)', async () => {
    const corrupt = await run({ faults: parseLinkFaults('corrupt=0.03') });
    expect(corrupt.counters.rollbacks).toBeGreaterThan(0);
    expect(corrupt.counters.entriesRetransmitted).toBeGreaterThan(0);
    const halt = await run({ lockContentionPerMillion: 100_000, lockRegionSectors: 8 });
    expect(halt.verdict).toBe('consistent');
    expect(halt.counters.locksRejected).toBeGreaterThan(0);
    expect(halt.counters.halts).toBeGreaterThan(0);
    expect(halt.counters.resumes).toBeGreaterThan(0);
    const retransmit = await run({ lockContentionPerMillion: 100_000, lockRegionSectors: 8, onLockReject: 'retransmit' });
    expect(retransmit.verdict).toBe('consistent');
    expect(retransmit.counters.locksRejected).toBeGreaterThan(0);
    expect(retransmit.counters.halts).toBe(0);
    expect(retransmit.counters.entriesRetransmitted).toBeGreaterThan(0);
  });

  it('everything at once, both ways', async () => {
    const r = await run({ bidirectional: true, lockContentionPerMillion: 50_000, faults: parseLinkFaults('drop=0.01,corrupt=0.01,duplicate=0.01,reorder=0.01,delay=0.02@1ms,partition=2') });
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.writes.acknowledged).toBe(1200);
  });
});

describe('emulation on RAID volumes with disk faults (issue 4)', () => {
  const raid = (text: string) => parseVolumeSpec(text);

  it('stays consistent while a member of each side fails and is rebuilt onto a hot spare, and reports the volumes', async () => {
    const r = await run({
      sourceVolume: raid('raid5:4x4MiB:chunk=16KiB'), targetVolume: raid('raid1:2x12MiB'), writes: 800,
      diskFaults: parseDiskFaults('fail=source:1@5ms,fail=target:0@8ms,slow=target:1:3'),
      faults: parseLinkFaults('drop=0.01,corrupt=0.01'),
    });
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.volumes.map((v) => [v.name, v.layout, v.state, v.mismatches, v.rebuilds])).toEqual([
      ['A/lun0', 'raid5:4x4MiB:chunk=16KiB', 'optimal', 0, 1],
      ['B/lun0', 'raid1:2x12MiB', 'optimal', 0, 1],
    ]);
  });

  it('attributes silent corruption on a mirror member to that member instead of failing the run', async () => {
    const r = await run({ targetVolume: raid('raid1:2x8MiB'), diskFaults: parseDiskFaults('corrupt=target:1:8') });
    expect(r.violations, r.reproduce).toEqual([]);
    const b = r.volumes.find((v) => v.name === 'B/lun0')!;
    expect([b.mismatches, b.mismatchesAttributed > 0, b.attributedTo.every((a) => a.member === 1)]).toEqual([0, true, true]);
  });

  it('flags a volume left with unreadable sectors (bad sectors where no redundancy can rewrite them)', async () => {
    const r = await run({ targetVolume: raid('raid0:2x4MiB:chunk=16KiB'), diskFaults: parseDiskFaults('bad=target:1:8') });
    expect(r.verdict).toBe('inconsistent');
    expect(r.violations.map((v) => v.invariant)).toContain('volume-redundancy');
    expect(r.volumes.find((v) => v.name === 'B/lun0')!.unreadableSectors).toBeGreaterThan(0);
  });

  it('reports a failed non-redundant target volume as inconsistent, with the writes that failed', async () => {
    const r = await run({ targetVolume: raid('raid0:2x4MiB:chunk=16KiB'), diskFaults: parseDiskFaults('fail=target:1@3ms') });
    expect(r.verdict).toBe('inconsistent');
    expect(r.writes.errors).toBeGreaterThan(0);
    expect(r.volumes.find((v) => v.name === 'B/lun0')!.state).toBe('failed');
  });
});
