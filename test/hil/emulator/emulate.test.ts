import { describe, expect, it } from 'vitest';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';

const small: EmulateOptions = { ...DEFAULT_EMULATE, writes: 600, volumeSectors: 16384 };
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
