import { describe, expect, it } from 'vitest';
import type { TelemetryEvent } from '../../../firmware/telemetry/events.ts';
import { ConsistencyChecker } from '../../../hil/checker/consistency-checker.ts';

/**
 * The checker fed hand-written telemetry: a correct history passes, and each broken invariant is
 * reported with its name, place and time. (Broken firmware, end to end, is in mutations.test.ts.)
 */
const base = { node: 'B', peer: 'A' };
const granted = (t: number, lockId: number, lba: number, count: number): TelemetryEvent => ({ kind: 'target.lock', t, ...base, result: 'granted', seq: lockId * 10, lockId, lun: 0, lba, count, mode: 'write' });
const released = (t: number, lockId: number, lba: number, count: number): TelemetryEvent => ({ kind: 'target.lock', t, ...base, result: 'released', seq: lockId * 10 + 9, lockId, lun: 0, lba, count, mode: 'write' });
const apply = (t: number, lockId: number, tag: number, lba: number, count = 8): TelemetryEvent => ({ kind: 'target.apply', t, ...base, seq: tag + 100, lockId, tag, lun: 0, lba, count });
const ack = (t: number, tag: number, mode = 'speculative'): TelemetryEvent => ({ kind: 'host.ack', t, node: 'A', tag, lun: 0, lba: 0, count: 8, mode });

function feed(events: TelemetryEvent[]): ConsistencyChecker {
  const c = new ConsistencyChecker();
  for (const e of events) c.emit(e);
  return c;
}

describe('ConsistencyChecker (telemetry invariants)', () => {
  it('accepts a correct history', () => {
    const c = feed([
      granted(1, 1, 0, 64), apply(2, 1, 1, 0), ack(3, 1), apply(4, 1, 2, 8), ack(5, 2), released(6, 1, 0, 64),
      { kind: 'commit.confirm', t: 6, ...base, upTo: 5, entries: 0, bytes: 0 },
      { kind: 'rollback.confirm', t: 7, node: 'A', peer: 'B', upTo: 5, removed: 5, entries: 0, bytes: 0 },
    ]);
    expect(c.violations).toEqual([]);
  });

  it('reports a write applied without its lock, or outside it, or after its release', () => {
    const c = feed([apply(1, 7, 1, 0), granted(2, 1, 0, 16), apply(3, 1, 2, 12), released(4, 1, 0, 16), apply(5, 1, 3, 0)]);
    expect(c.violations.map((v) => [v.invariant, v.lba, v.tMs])).toEqual([['lock-held', 0, 1], ['lock-held', 12, 3], ['lock-held', 0, 5]]);
    expect(c.violations[0]!.message).toMatch(/lock 7 is not held/);
  });

  it('reports a mirrored write applied under a local lock of the target', () => {
    const c = feed([
      { kind: 'local.lock', t: 1, node: 'B', result: 'granted', id: 3, lun: 0, lba: 0, count: 64, mode: 'write' },
      granted(2, 1, 0, 64), apply(3, 1, 1, 8),
      { kind: 'local.lock', t: 4, node: 'B', result: 'released', id: 3, lun: 0, lba: 0, count: 64, mode: 'write' },
      apply(5, 1, 2, 8),
    ]);
    expect(c.violations.map((v) => [v.invariant, v.tMs])).toEqual([['lock-exclusive', 3]]);
  });

  it('reports a sync/speculative ack that came before the target applied the write, but not an async one', () => {
    const c = feed([granted(1, 1, 0, 64), ack(2, 1), ack(2, 2, 'async'), apply(3, 1, 1, 0), apply(3, 1, 2, 8)]);
    expect(c.violations.map((v) => [v.invariant, v.seq, v.node])).toEqual([['ack-after-apply', 1, 'A']]);
  });

  it('reports rollback entries dropped before the target confirmed them', () => {
    const c = feed([
      { kind: 'commit.confirm', t: 1, ...base, upTo: 3, entries: 0, bytes: 0 },
      { kind: 'rollback.confirm', t: 2, node: 'A', peer: 'B', upTo: 3, removed: 3, entries: 1, bytes: 52 },
      { kind: 'rollback.confirm', t: 3, node: 'A', peer: 'B', upTo: 4, removed: 1, entries: 0, bytes: 0 },
    ]);
    expect(c.violations.map((v) => [v.invariant, v.seq, v.tMs])).toEqual([['rollback-after-confirm', 4, 3]]);
  });

  it('reports a statechart that stopped on an exception', () => {
    const c = feed([{ kind: 'firmware.error', t: 4, node: 'A', message: 'TypeError: boom' }]);
    expect(c.violations.map((v) => [v.invariant, v.node, v.tMs])).toEqual([['firmware-error', 'A', 4]]);
  });

  it('keeps at most violationsMax and counts the rest', () => {
    const c = new ConsistencyChecker(2);
    for (let i = 0; i < 5; i++) c.emit(apply(i, 9, i, 0));
    expect(c.violations.length).toBe(2);
    expect(c.violationsDropped).toBe(3);
  });
});
