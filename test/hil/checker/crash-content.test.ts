import { describe, expect, it } from 'vitest';
import { checkLatest, checkPrefix } from '../../../hil/checker/content-checks.ts';
import { ConsistencyChecker } from '../../../hil/checker/consistency-checker.ts';
import { WriteHistory } from '../../../hil/checker/history.ts';
import { writeData } from '../../../hil/workload/data.ts';

/**
 * The content checks across a crash (docs/tag-tables.md, "What the checker checks"): a write in
 * flight when its controller crashed never completes and may or may not have landed ("either old
 * or new"); an acknowledged one must survive (acked-durable), and in async mode the target is a
 * prefix of the source's history with the interrupted writes optional.
 */
const SECTOR = 512;
const SECTORS = 32;
const ctx = { node: 'A', lun: 0, writer: 1, tMs: 9 };

/** An image holding, per write index given, that write's data (later indices over earlier ones). */
function image(writes: readonly [number, number, number][], landed: readonly number[]): { bytes: Uint8Array; sectorSize: number } {
  const img = new Uint8Array(SECTORS * SECTOR);
  for (const i of [...landed].sort((a, b) => a - b)) {
    const [tag, lba, count] = writes[i]!;
    img.set(writeData(1, 0, tag, lba, count, SECTOR), lba * SECTOR);
  }
  return { bytes: img, sectorSize: SECTOR };
}

/**
 * Tags 1-2 acknowledged (sync: after the target applied), then 3 and 4 in flight when the
 * controller crashes; after the restart, 5 is acknowledged. Sector ranges: 1 [0,4), 2 [4,8),
 * 3 [0,4) again, 4 [8,12), 5 [12,16).
 */
const WRITES: [number, number, number][] = [[1, 0, 4], [2, 4, 4], [3, 0, 4], [4, 8, 4], [5, 12, 4]];

function crashedHistory(): WriteHistory {
  const h = new WriteHistory();
  for (const [tag, lba, count] of WRITES.slice(0, 4)) h.add(tag, lba, count);
  h.completed(1, { applied: true });
  h.completed(2, { applied: true });
  expect(h.crashed()).toBe(2);
  h.add(5, 12, 4);
  h.completed(5, { applied: true });
  return h;
}

describe('content checks across a crash', () => {
  it('allow an interrupted write to be there or not, and the write it overwrote', () => {
    const h = crashedHistory();
    expect(h.isInterrupted(3) && h.isInterrupted(4) && !h.isInterrupted(2)).toBe(true);
    // Tag 3 landed or not (sector 0-3 holds 3 or 1), tag 4 landed or not (8-11 holds 4 or zeros).
    for (const landed of [[0, 1, 2, 3, 4], [0, 1, 4], [0, 1, 2, 4], [0, 1, 3, 4]]) expect(checkLatest(h, image(WRITES, landed), ctx)).toBeNull();
  });

  it('report an acknowledged write lost through the crash as acked-durable, naming it', () => {
    const h = crashedHistory();
    expect(h.durabilityOwed).toBe(true);
    // Tag 1 lost under interrupted tag 3: zeros are older than tag 1, which was acknowledged.
    expect(checkLatest(h, image(WRITES, [1, 4]), ctx)).toMatchObject({ invariant: 'acked-durable', lba: 0, seq: 1 });
    // Tag 5, acknowledged after the restart, missing.
    const v = checkLatest(h, image(WRITES, [0, 1, 2, 3]), ctx);
    expect(v).toMatchObject({ invariant: 'acked-durable', lba: 12, seq: 5 });
    expect(v!.message).toMatch(/holds zeros, but write tag 5 was acknowledged to the host after it .* lost through a crash or power cut \(1 in this run\)/);
  });

  it('without a crash, a missing write is data-intact as before, and interrupted-looking gaps are not excused', () => {
    const h = new WriteHistory();
    for (const [tag, lba, count] of WRITES) h.add(tag, lba, count);
    for (const [tag] of WRITES) h.completed(tag, { applied: true });
    expect(h.durabilityOwed).toBe(false);
    expect(checkLatest(h, image(WRITES, [0, 1, 3, 4]), ctx)).toMatchObject({ invariant: 'data-intact', lba: 0, seq: 3 });
  });

  it('async: a power cut may take a write on the disk and not yet flushed, never a flushed one; a plain crash takes neither', () => {
    // Async writes 1 and 3 to [0,4) on the local disk and acknowledged; 1 flushed, 3 not.
    const async = (power: boolean, flushed3: boolean): WriteHistory => {
      const h = new WriteHistory();
      for (const [tag, lba, count] of WRITES.slice(0, 3)) {
        h.add(tag, lba, count);
        h.localApplied(tag, false);
        h.completed(tag, { applied: false });
      }
      for (const tag of [1, 2, ...(flushed3 ? [3] : [])]) h.localDurable(tag);
      h.crashed(power);
      return h;
    };
    const older = image(WRITES, [0, 1]); // sectors 0-3 hold tag 1: tag 3 lost
    expect(checkLatest(async(true, false), older, ctx)).toBeNull();
    expect(checkLatest(async(true, false), image(WRITES, [0, 1, 2]), ctx)).toBeNull();
    expect(checkLatest(async(true, true), older, ctx)).toMatchObject({ invariant: 'data-intact', lba: 0, seq: 3 });
    expect(checkLatest(async(false, false), older, ctx)).toMatchObject({ invariant: 'data-intact', lba: 0, seq: 3 });
    // Tag 1 flushed: a cut never takes the sector back to zeros.
    expect(checkLatest(async(true, false), image(WRITES, [1]), ctx)).toMatchObject({ invariant: 'data-intact', lba: 0 });
  });

  it('async acknowledgements owe no acked-durable: a write lost there is data-intact', () => {
    const h = new WriteHistory();
    h.add(1, 0, 4);
    h.completed(1, { applied: false });
    h.crashed();
    expect(h.durabilityOwed).toBe(false);
    expect(checkLatest(h, image(WRITES, []), ctx)).toMatchObject({ invariant: 'data-intact', lba: 0, seq: 1 });
  });

  it('hold an interrupted write that a later completed write overwrote to the later one', () => {
    const h = new WriteHistory();
    h.add(1, 0, 4);
    h.crashed();
    h.add(2, 0, 4);
    h.completed(2, { applied: true });
    const writes: [number, number, number][] = [[1, 0, 4], [2, 0, 4]];
    expect(checkLatest(h, image(writes, [0, 1]), ctx)).toBeNull();
    expect(checkLatest(h, image(writes, [0]), ctx)).toMatchObject({ invariant: 'acked-durable', seq: 2 });
    expect(checkLatest(h, image(writes, []), ctx)).toMatchObject({ invariant: 'acked-durable', seq: 2 });
  });

  it('a write never completed that no crash interrupted is still owed (only a crash excuses it)', () => {
    const h = new WriteHistory();
    h.add(1, 0, 4);
    h.add(2, 0, 4);
    h.completed(1, { applied: true });
    h.peerCrashed();
    expect(h.interruptedWrites).toBe(0);
    expect(checkLatest(h, image([[1, 0, 4], [2, 0, 4]], [0]), ctx)).toMatchObject({ lba: 0, seq: 2 });
  });

  it('the async prefix rule takes interrupted writes as optional: landed or not, in any mix', () => {
    // 1 acked; 2 [0,4) and 3 [4,8) interrupted: 3 landed, 2 did not; then 4 [8,12) after the restart.
    const h = new WriteHistory();
    const writes: [number, number, number][] = [[1, 0, 8], [2, 0, 4], [3, 4, 4], [4, 8, 4]];
    h.add(1, 0, 8);
    h.completed(1, { applied: false });
    h.add(2, 0, 4);
    h.add(3, 4, 4);
    h.crashed();
    h.add(4, 8, 4);
    expect(checkPrefix(h, image(writes, [0, 2]), ctx)).toBeNull();
    expect(checkPrefix(h, image(writes, [0, 2, 3]), ctx)).toBeNull();
    expect(checkPrefix(h, image(writes, [0, 1]), ctx)).toBeNull();
    // But a write that was not interrupted still orders: tag 4 without tag 1 is no prefix.
    expect(checkPrefix(h, image(writes, [3]), ctx)).toMatchObject({ invariant: 'write-order' });
  });

  it('the consistency checker marks the crashed node\'s writes in flight interrupted, and its peer\'s history owes durability', () => {
    const checker = new ConsistencyChecker();
    const w = (node: string, tag: number) => ({ kind: 'host.write' as const, t: 1, node, tag, lun: node === 'A' ? 0 : 1, lba: tag * 8, count: 8 });
    checker.emit(w('A', 1));
    checker.emit(w('A', 2));
    checker.emit(w('B', 1));
    checker.emit({ kind: 'host.ack', t: 2, node: 'A', tag: 1, lun: 0, lba: 8, count: 8, mode: 'sync' });
    checker.emit({ kind: 'controller.crash', t: 3, node: 'A', power: true, downForMs: 50 });
    const a = checker.history('A', 0);
    expect([a.isInterrupted(1), a.isInterrupted(2), a.crashes]).toEqual([false, true, 1]);
    expect([checker.history('B', 1).interruptedWrites, checker.history('B', 1).crashes]).toEqual([0, 1]);
    // Its outstanding host writes are no longer waited for.
    expect(checker.liveness('why', 4).message).not.toMatch(/A LUN 0 host/);
  });
});
