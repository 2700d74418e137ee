import { describe, expect, it } from 'vitest';
import type { TelemetryEvent } from '../../../firmware/telemetry/events.ts';
import { ConsistencyChecker } from '../../../hil/checker/consistency-checker.ts';

/**
 * The checker fed hand-written telemetry: a correct history passes, and each broken invariant is
 * reported with its name, place and time. (Broken firmware, end to end, is in mutations.test.ts.)
 */
const base = { node: 'B', peer: 'A' };
const stream = { sourceSession: 1 };
const granted = (t: number, lockId: number, lba: number, count: number): TelemetryEvent => ({ kind: 'target.lock', t, ...base, result: 'granted', seq: lockId * 10, lockId, lun: 0, lba, count, mode: 'write', ...stream });
const released = (t: number, lockId: number, lba: number, count: number): TelemetryEvent => ({ kind: 'target.lock', t, ...base, result: 'released', seq: lockId * 10 + 9, lockId, lun: 0, lba, count, mode: 'write', ...stream });
const apply = (t: number, lockId: number, tag: number, lba: number, count = 8): TelemetryEvent => ({ kind: 'target.apply', t, ...base, seq: tag + 100, lockId, tag, lun: 0, lba, count, ...stream });
const ack = (t: number, tag: number, mode = 'speculative'): TelemetryEvent => ({ kind: 'host.ack', t, node: 'A', tag, lun: 0, lba: 0, count: 8, mode });

const append = (seq: number, entry: 'lock' | 'write' | 'unlock', lun: number, lba: number): TelemetryEvent => ({
  kind: 'rollback.append', t: seq, node: 'A', peer: 'B', seq, entry, lun, lba, count: 8, lockId: 1, tag: seq, entries: seq, bytes: 0,
});
const pick = (v: { node: string; lun: number; lba: number; seq: number }) => [v.node, v.lun, v.lba, v.seq];

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

  it('accepts a local acknowledgement (mode suspended) only while the mirror is suspended (docs/tag-tables.md, "Suspension")', () => {
    const state = (t: number, s: 'suspended' | 'needs-resync' | 'in-sync'): TelemetryEvent => ({ kind: 'mirror.state', t, node: 'A', peer: 'B', lun: 0, state: s, doneSectors: 0, totalSectors: 64 });
    const c = feed([ack(1, 1, 'suspended'), state(2, 'suspended'), ack(3, 2, 'suspended'), state(4, 'needs-resync'), ack(5, 3, 'suspended'), state(6, 'in-sync')]);
    expect(c.violations.map((v) => [v.invariant, v.seq, v.tMs])).toEqual([['ack-after-apply', 1, 1], ['ack-after-apply', 3, 5]]);
    expect(c.violations[0]!.message).toMatch(/acknowledged as of a suspended mirror while the mirror is in-sync/);
  });

  it('accepts a local acknowledgement after the mirror left suspension only for a write the suspension covered', () => {
    const state = (t: number, s: 'suspended' | 'needs-resync' | 'in-sync'): TelemetryEvent => ({ kind: 'mirror.state', t, node: 'A', peer: 'B', lun: 0, state: s, doneSectors: 0, totalSectors: 64 });
    const write = (t: number, tag: number): TelemetryEvent => ({ kind: 'host.write', t, node: 'A', tag, lun: 0, lba: 0, count: 8 });
    const c = feed([
      write(1, 1), // issued before the suspension, finished on the disk after it ended
      state(2, 'suspended'), write(3, 2), // issued while suspended
      state(4, 'needs-resync'), write(5, 3), // issued after: it is mirrored, never acknowledged locally
      ack(6, 1, 'suspended'), ack(6, 2, 'suspended'), ack(7, 3, 'suspended'),
      state(8, 'in-sync'), write(9, 4), ack(10, 4, 'suspended'),
    ]);
    expect(c.violations.map((v) => [v.invariant, v.seq, v.tMs])).toEqual([['ack-after-apply', 3, 7], ['ack-after-apply', 4, 10]]);
  });

  it('reports rollback entries dropped before the target confirmed them', () => {
    const c = feed([
      { kind: 'commit.confirm', t: 1, ...base, upTo: 3, entries: 0, bytes: 0 },
      { kind: 'rollback.confirm', t: 2, node: 'A', peer: 'B', upTo: 3, removed: 3, entries: 1, bytes: 52 },
      { kind: 'rollback.confirm', t: 3, node: 'A', peer: 'B', upTo: 4, removed: 1, entries: 0, bytes: 0 },
    ]);
    expect(c.violations.map((v) => [v.invariant, v.seq, v.tMs])).toEqual([['rollback-after-confirm', 4, 3]]);
    expect(c.violations[0]!.message).toMatch(/an entry whose place is unknown/);
  });

  it('names the LUN and LBA of the rollback entry dropped too early, from its rollback.append', () => {
    const c = feed([
      append(1, 'lock', 1, 4096), append(2, 'write', 1, 4096), append(3, 'write', 1, 4104), append(4, 'lock', 0, 96), append(5, 'write', 0, 100),
      { kind: 'commit.confirm', t: 6, ...base, upTo: 2, entries: 0, bytes: 0 },
      { kind: 'rollback.confirm', t: 7, node: 'A', peer: 'B', upTo: 2, removed: 2, entries: 3, bytes: 0 },
      { kind: 'rollback.confirm', t: 8, node: 'A', peer: 'B', upTo: 3, removed: 1, entries: 2, bytes: 0 },
      { kind: 'rollback.confirm', t: 9, node: 'A', peer: 'B', upTo: 5, removed: 2, entries: 0, bytes: 0 },
    ]);
    expect(c.violations.map((v) => [v.invariant, v.node, v.lun, v.lba, v.seq, v.tMs])).toEqual([
      ['rollback-after-confirm', 'A', 1, 4104, 3, 8],
      ['rollback-after-confirm', 'A', 0, 100, 5, 9],
    ]);
    expect(c.violations[0]!.message).toMatch(/up to seq 3 \(LUN 1 LBA 4104\), but B has confirmed only up to 2/);
  });

  it('forgets the places of confirmed entries, so its memory follows the rollback log, not the run', () => {
    const c = new ConsistencyChecker();
    for (let seq = 1; seq <= 100_000; seq++) {
      c.emit(append(seq, 'write', 0, seq * 8));
      c.emit({ kind: 'commit.confirm', t: seq, ...base, upTo: seq, entries: 0, bytes: 0 });
      c.emit({ kind: 'rollback.confirm', t: seq, node: 'A', peer: 'B', upTo: seq, removed: 1, entries: 0, bytes: 0 });
    }
    expect(c.violations).toEqual([]);
    expect(c.rollbackPlacesHeld).toBe(0);
    // Nothing is outstanding: a liveness violation now can only fall back to the node it is given.
    expect(c.liveness('stuck', 5, 'B').message).toMatch(/no log entry or host write outstanding/);
    for (let seq = 100_001; seq <= 100_003; seq++) c.emit(append(seq, 'write', 2, seq));
    expect(c.rollbackPlacesHeld).toBe(3);
    c.emit({ kind: 'rollback.confirm', t: 1, node: 'A', peer: 'B', upTo: 100_002, removed: 2, entries: 1, bytes: 0 });
    expect(c.violations.map((v) => [v.lun, v.lba, v.seq])).toEqual([[2, 100_002, 100_002]]);
    expect(c.rollbackPlacesHeld).toBe(1);
  });

  it('names what did not drain in a liveness violation: the oldest unconfirmed rollback entry first', () => {
    const c = feed([
      { kind: 'host.write', t: 0, node: 'A', tag: 1, lun: 0, lba: 64, count: 8 },
      append(1, 'lock', 0, 64), append(2, 'write', 0, 64),
      { kind: 'commit.append', t: 1, ...base, seq: 1, entry: 'lock', lun: 0, entries: 1, bytes: 52 },
      { kind: 'commit.confirm', t: 1, ...base, upTo: 1, entries: 0, bytes: 0 },
      { kind: 'rollback.confirm', t: 2, node: 'A', peer: 'B', upTo: 1, removed: 1, entries: 1, bytes: 0 },
    ]);
    const v = c.liveness('not quiescent 500 ms after the faults stopped', 600);
    expect([v.invariant, v.node, v.lun, v.lba, v.seq, v.tMs]).toEqual(['liveness', 'A', 0, 64, 2, 600]);
    expect(v.message).toBe('not quiescent 500 ms after the faults stopped; outstanding: A->B rollback log 1 entries from seq 2 (LUN 0 LBA 64); A LUN 0 host 1 writes unacknowledged');
  });

  it('names a commit log that did not drain, or else a host with writes unacknowledged, by node and LUN', () => {
    const commit = feed([{ kind: 'commit.append', t: 1, node: 'A', peer: 'B', seq: 4, entry: 'write', lun: 1, entries: 3, bytes: 52 }]);
    expect(pick(commit.liveness('stuck', 9))).toEqual(['A', 1, 0, 0]);
    expect(commit.liveness('stuck', 9).message).toMatch(/A<-B commit log 3 entries/);
    const host = feed([{ kind: 'host.write', t: 0, node: 'B', tag: 1, lun: 1, lba: 0, count: 8 }]);
    expect(pick(host.liveness('stuck', 9))).toEqual(['B', 1, 0, 0]);
    const discarded = feed([
      { kind: 'commit.append', t: 1, node: 'B', peer: 'A', seq: 4, entry: 'write', lun: 0, entries: 2, bytes: 52 },
      { kind: 'commit.discard', t: 2, node: 'B', peer: 'A', from: 3, removed: 2 },
    ]);
    expect(discarded.liveness('stuck', 9, 'B').message).toMatch(/no log entry or host write outstanding/);
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

describe('ConsistencyChecker: what the watchdog reads', () => {
  it('progress grows on completed host writes and newly confirmed entries, not on repeats', () => {
    const c = new ConsistencyChecker();
    const confirm = (upTo: number): TelemetryEvent => ({ kind: 'commit.confirm', t: 1, ...base, upTo, entries: 0, bytes: 0 });
    const drop = (upTo: number, removed: number): TelemetryEvent => ({ kind: 'rollback.confirm', t: 1, node: 'A', peer: 'B', upTo, removed, entries: 0, bytes: 0 });
    c.emit(confirm(3));
    c.emit(confirm(3)); // re-acknowledging the same entry is no progress
    c.emit(drop(3, 3));
    c.emit(drop(3, 0));
    c.emit(ack(2, 1));
    c.emit({ kind: 'host.error', t: 2, node: 'A', tag: 2, lun: 0, lba: 0, count: 8, code: 'X', message: 'x' });
    c.emit({ kind: 'frame.sent', t: 3, node: 'A', peer: 'B', type: 'WRITE', seq: 4, lun: 0, bytes: 100, retransmit: true, conn: 0, crc: 1 });
    expect(c.progress).toBe(4);
  });

  it('keeps the last eight frames sent, oldest first', () => {
    const c = new ConsistencyChecker();
    for (let seq = 1; seq <= 11; seq++) c.emit({ kind: 'frame.sent', t: seq, node: 'A', peer: 'B', type: 'LOCK', seq, lun: 0, bytes: 80, retransmit: seq === 11, conn: 0, crc: seq });
    const frames = c.lastFramesSent();
    expect(frames).toHaveLength(8);
    expect(frames[0]).toBe('t=4 A->B LOCK seq 4');
    expect(frames[7]).toBe('t=11 A->B LOCK seq 11 (retransmit)');
  });
});
