import { describe, expect, it } from 'vitest';
import { ConsistencyChecker } from '../../../hil/checker/consistency-checker.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { withPlantedBugs, type PlantedBug } from '../../support/planted-bugs.ts';

/**
 * `lock-held` and `lock-exclusive` with implied locks (docs/implied-locks.md): each planted target
 * bug below breaks the invariant named, end to end, while the same run with correct firmware is
 * consistent. Every write is in a lock region of its own and the server locks regions of the
 * target's copy often, so implied locks are refused and retried all through the run.
 */
const base: EmulateOptions = {
  ...DEFAULT_EMULATE, writes: 400, queueDepth: 8, locks: 'implied', lockRegionSectors: 8, lockContentionPerMillion: 200_000,
  sourceVolume: { kind: 'mem', bytes: 8 << 20, sectorSize: 512 }, targetVolume: { kind: 'mem', bytes: 8 << 20, sectorSize: 512 },
};

const cases: { bug: PlantedBug; invariant: string; message: RegExp; options: Partial<EmulateOptions> }[] = [
  { bug: 'target-skips-implied-lock', invariant: 'lock-held', message: /applied without its mirror lock: lock \d+ is not held/, options: {} },
  { bug: 'target-releases-implied-lock-early', invariant: 'lock-held', message: /applied without its mirror lock: lock \d+ is not held/, options: { batch: true } },
  { bug: 'target-forces-implied-lock', invariant: 'lock-exclusive', message: /applied under its implied lock \d+ while local lock B\|\d+ holds/, options: { mode: 'async', onLockReject: 'retransmit' } },
];

describe('the checker catches targets that mishandle implied locks', () => {
  it.each(cases)('$bug breaks $invariant', async ({ bug, invariant, message, options }) => {
    const healthy = await runEmulation({ ...base, ...options });
    expect(healthy.violations, `correct firmware under the same setting: ${healthy.reproduce}`).toEqual([]);
    expect(healthy.counters.impliedLocks).toBeGreaterThan(300);
    expect(healthy.counters.locksRejected).toBeGreaterThan(0);
    const broken = await withPlantedBugs([bug], () => runEmulation({ ...base, ...options }));
    expect(broken.verdict).toBe('inconsistent');
    const v = broken.violations.find((x) => x.invariant === invariant);
    expect(v, `violations: ${JSON.stringify(broken.violations.slice(0, 3))}`).toBeDefined();
    expect(v!.message).toMatch(message);
  });
});

describe('lock-held: an implied lock belongs to the WRITE that carried it', () => {
  const at = { t: 1, node: 'B', peer: 'A', sourceSession: 7 };
  const grant = (seq: number, lockId: number, lba: number, count: number) =>
    ({ ...at, kind: 'target.lock', result: 'granted', seq, lockId, lun: 0, lba, count, mode: 'write', implied: true }) as const;
  const apply = (seq: number, lockId: number, lba: number, count: number) => ({ ...at, kind: 'target.apply', seq, lockId, tag: seq, lun: 0, lba, count }) as const;

  it('passes a write applied under its own implied lock, and names a write applied under another write\'s', () => {
    const c = new ConsistencyChecker();
    c.emit(grant(5, 3, 64, 8));
    c.emit(apply(5, 3, 64, 8));
    expect(c.violations).toEqual([]);
    c.emit(apply(6, 3, 64, 8));
    expect(c.violations.map((v) => [v.invariant, v.seq])).toEqual([['lock-held', 6]]);
    expect(c.violations[0]!.message).toMatch(/applied under implied lock 3, which WRITE seq 5 carried for \[64, \+8\): an implied lock belongs to its own write/);
  });

  it('names an implied lock that covers fewer sectors than its write', () => {
    const c = new ConsistencyChecker();
    c.emit(grant(9, 4, 64, 8));
    c.emit(apply(9, 4, 64, 16));
    expect(c.violations.map((v) => v.invariant)).toEqual(['lock-held']);
    expect(c.violations[0]!.message).toMatch(/implied lock 4 covers LUN 0 \[64, \+8\)/);
  });
});
