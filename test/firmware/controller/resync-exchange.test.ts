import { describe, expect, it } from 'vitest';
import {
  FEATURE_BITS, FrameType, TableState, type Frame, type ResyncDataFrame, type ResyncEntry, type ResyncRequestFrame,
} from '../../../firmware/protocol/frame.ts';
import type { HelloFrame } from '../../../firmware/protocol/frame.ts';
import { RawPeer } from '../mirror/raw-peer.ts';

/**
 * The table exchange of a resync, with the test as the peer (docs/tag-tables.md, "Resync";
 * docs/protocol.md). The controller under test, B, mirrors its LUN 0 to the peer A (so B asks for
 * A's table of it) and holds the copy of A's LUN 1 (so B answers A's requests about it). Its
 * volumes have 1024 sectors of 512 bytes. The peer offers tokens (feature `tags`), so B keeps its
 * tables; the test fills them itself.
 */

const BOTH = FEATURE_BITS.tags | FEATURE_BITS.resync;

/** The peer's HELLO fields for the features it offers (`tags` brings its stream numbers). */
function helloFields(features: number): Partial<HelloFrame> {
  return (features & FEATURE_BITS.tags) !== 0 ? { batchBytesMax: 0, stream: 1, peerStream: 0 } : {};
}

/** B's resync of LUN 0 is needed now (what a suspension's end or a restart says; reaching past `private`: test code only). */
function needResync(p: RawPeer): void {
  const peers = (p.controller as unknown as { peers: Map<string, { resyncs: Map<number, { markNeeded(reason: string): void }> }> }).peers;
  peers.get('A')!.resyncs.get(0)!.markNeeded('the test says so');
}

/** B's own table of its LUN 0 (tags 1-6), and the peer's (A's) table of it: 2, 3, 4 held by both, 9 only by A. */
const MINE = [
  { tag: 1, lba: 0, count: 8 }, { tag: 2, lba: 8, count: 8 }, { tag: 3, lba: 100, count: 4 },
  { tag: 4, lba: 200, count: 8 }, { tag: 5, lba: 300, count: 16 }, { tag: 6, lba: 310, count: 16 },
];
const THEIRS: ResyncEntry[] = [{ tag: 2, lba: 8, count: 8 }, { tag: 3, lba: 100, count: 4 }, { tag: 4, lba: 200, count: 8 }, { tag: 9, lba: 512, count: 8 }];
/** Unmatched: 1 [0, 8), 5 and 6 [300, 326), 9 [512, 520). */
const EXACT_RANGES = [[0, 8], [300, 26], [512, 8]];

/** A controller B, its link up, its table of LUN 0 holding MINE, resyncing LUN 0. */
async function restartedB(opts: { limits?: Record<string, number>; features?: number } = {}) {
  const features = opts.features ?? BOTH;
  const p = new RawPeer({ mirrorLun0: true, lun1: true, features, helloLater: true, limits: { resyncRetryMs: 10, ...opts.limits } });
  p.hello(helloFields(features));
  await p.clock.advance(1);
  // Written in this start (entries held at the start would be ones recovered, whose local copies are unknown).
  const mine = p.controller.tablesOf('A', 0, 'source')!;
  for (const e of MINE) mine.add({ ...e, lun: 0 });
  needResync(p);
  await p.clock.advance(1);
  return { p, mine };
}

function requests(p: RawPeer): ResyncRequestFrame[] {
  return p.sent(FrameType.ResyncRequest);
}

function data(req: ResyncRequestFrame, entries: ResyncEntry[], total: number, first = req.first, state = TableState.Trusted): ResyncDataFrame {
  return { type: FrameType.ResyncData, lun: req.lun, seq: req.seq, flags: 0, first, total, state, entries };
}

/** Confirm everything B's stream sent (its resync's copies), until the resync asks to settle; then answer that. */
async function confirmCopies(p: RawPeer): Promise<void> {
  for (let i = 0; i < 20 && p.sent(FrameType.ResyncDone).length === 0; i++) {
    const seqs = p.received.filter((f) => f.type === FrameType.Lock || f.type === FrameType.Write || f.type === FrameType.Unlock).map((f) => f.seq);
    if (seqs.length > 0) p.send({ type: FrameType.Ack, lun: 0, seq: Math.max(...seqs), flags: 0 });
    await p.clock.advance(3);
  }
  const done = p.sent(FrameType.ResyncDone).at(-1)!;
  p.send({ type: FrameType.ResyncAck, lun: done.lun, seq: done.seq, flags: 0 });
  await p.clock.advance(1);
}

function copiedRanges(p: RawPeer): number[][] {
  return p.sent(FrameType.Write).map((w) => [w.lba, w.data.length / 512]);
}

function resyncOf(p: RawPeer) {
  const m = p.controller.status()[0]!.mirrors[0]!;
  return { ...m.resync, lastRefusal: m.lastRefusal, state: m.state };
}

describe('the source side of the exchange: the target sends its table in chunks', () => {
  it('takes the table in the chunks the target sends (short ones too), copies exactly the unmatched blocks, settles both tables', async () => {
    const { p, mine } = await restartedB();
    const [first] = requests(p);
    expect(first).toMatchObject({ lun: 0, seq: 1, first: 0, entriesMax: 4096 });
    p.send(data(first!, THEIRS.slice(0, 2), 4));
    await p.clock.advance(1);
    const second = requests(p)[1]!;
    expect(second).toMatchObject({ seq: 1, first: 2 });
    p.send(data(second, THEIRS.slice(2, 3), 4)); // shorter than asked: B asks on from where it ended
    await p.clock.advance(1);
    p.send(data(requests(p)[2]!, THEIRS.slice(3), 4));
    await p.clock.advance(1);
    const [start] = p.tel.of('resync.start');
    expect(start).toMatchObject({ node: 'B', peer: 'A', lun: 0, resync: 1, full: false, entriesCompared: 10, entriesMatched: 3, ranges: EXACT_RANGES, sectors: 42 });
    await confirmCopies(p);
    expect(copiedRanges(p)).toEqual(EXACT_RANGES);
    expect(p.tel.of('resync.done')).toEqual([expect.objectContaining({ resync: 1, sectorsCopied: 42 })]);
    expect(mine.table.size, 'matched entries and copied ones are settled').toBe(0);
    expect(resyncOf(p)).toMatchObject({ state: 'in-sync', runs: 1, fullRuns: 0, entriesCompared: 10, entriesMatched: 3, sectorsCopied: 42, tableRequests: 3 });
    expect(p.controller.failure).toBeNull();
  });

  it('a chunk that comes twice is taken once', async () => {
    const { p } = await restartedB();
    const [req] = requests(p);
    p.send(data(req!, THEIRS.slice(0, 2), 4));
    p.send(data(req!, THEIRS.slice(0, 2), 4));
    await p.clock.advance(1);
    p.send(data(requests(p)[1]!, THEIRS.slice(2), 4));
    await p.clock.advance(1);
    expect(p.tel.of('resync.start')[0]).toMatchObject({ full: false, ranges: EXACT_RANGES });
    expect(resyncOf(p).framesIgnored).toBe(1);
  });

  it('a request nobody answers is asked again every resyncRetryMs, and the answer to either is taken', async () => {
    const { p } = await restartedB();
    await p.clock.advance(25);
    const asked = requests(p);
    expect(asked.map((r) => [r.seq, r.first])).toEqual([[1, 0], [1, 0], [1, 0]]);
    p.send(data(asked[0]!, THEIRS, 4));
    await p.clock.advance(1);
    expect(p.tel.of('resync.start')[0]).toMatchObject({ full: false, ranges: EXACT_RANGES });
  });

  it.each<[string, (req: ResyncRequestFrame, p: RawPeer) => Promise<void>, RegExp]>([
    ['says its table holds one size, then another', async (req, p) => {
      p.send(data(req, THEIRS.slice(0, 2), 4));
      await p.clock.advance(1);
      p.send(data(requests(p)[1]!, THEIRS.slice(2), 5));
    }, /the target said its table holds 4 entries, then 5/],
    ['counts more entries than it ever sends', async (req, p) => p.send(data(req, [], 4)), /the target sent no entries from 0 of the 4 it counts/],
    ['holds more than resyncEntriesMax', async (req, p) => p.send(data(req, THEIRS.slice(0, 2), 2_000_000)), /holds 2000000 entries, more than resyncEntriesMax \(1048576\)/],
    ['names a tag twice', async (req, p) => p.send(data(req, [THEIRS[0]!, THEIRS[0]!], 2)), /names tag 2 twice/],
    ['names sectors past the LUN', async (req, p) => p.send(data(req, [{ tag: 7, lba: 1020, count: 8 }], 1)), /names sectors \[1020, \+8\), past the LUN's 1024/],
  ])('a target that %s is not believed: a full copy', async (_name, lie, reason) => {
    const { p, mine } = await restartedB();
    await lie(requests(p)[0]!, p);
    await p.clock.advance(1);
    expect(p.tel.of('resync.start')).toEqual([expect.objectContaining({ full: true, ranges: [[0, 1024]], sectors: 1024, entriesCompared: 0 })]);
    expect(resyncOf(p)).toMatchObject({ tablesRefused: 1, fullRuns: 1 });
    expect(resyncOf(p).lastRefusal).toMatch(reason);
    await confirmCopies(p);
    expect(copiedRanges(p).reduce((n, [, c]) => n + c!, 0)).toBe(1024);
    expect(mine.table.size, 'a full copy settles what the table held when it began').toBe(0);
    expect(p.controller.failure).toBeNull();
  });

  it('an untrusted table, or a table here that overflowed, means a full copy', async () => {
    const a = await restartedB();
    a.p.send(data(requests(a.p)[0]!, [], 0, 0, TableState.Untrusted));
    await a.p.clock.advance(1);
    expect(a.p.tel.of('resync.start')[0]).toMatchObject({ full: true, sectors: 1024 });
    expect(resyncOf(a.p).tablesUntrusted).toBe(1);

    const b = await restartedB();
    b.mine.table.markOverflowed();
    b.p.send(data(requests(b.p)[0]!, THEIRS, 4));
    await b.p.clock.advance(1);
    expect(b.p.tel.of('resync.start')[0]).toMatchObject({ full: true, sectors: 1024 });
    await confirmCopies(b.p);
    expect(b.mine.table.overflowed, 'the full copy settled the overflow').toBe(false);
  });

  it('a peer without the feature gets a full copy, without an exchange', async () => {
    const { p } = await restartedB({ features: FEATURE_BITS.tags });
    expect(requests(p)).toEqual([]);
    expect(p.tel.of('resync.start')[0]).toMatchObject({ full: true, sectors: 1024 });
  });

  it('stray resync frames (another exchange, an ACK nobody asked for, a LUN not mirrored) are ignored and counted', async () => {
    const { p } = await restartedB();
    const [req] = requests(p);
    p.send(data({ ...req!, seq: 99 }, THEIRS, 4));
    p.send({ type: FrameType.ResyncAck, lun: 0, seq: 1, flags: 0 });
    p.send({ type: FrameType.ResyncAck, lun: 7, seq: 1, flags: 0 });
    p.send(data({ ...req!, lun: 3 }, [], 0));
    await p.clock.advance(1);
    expect(resyncOf(p).framesIgnored).toBe(2);
    expect(p.controller.status()[0]!.resyncTarget.framesIgnored).toBe(2);
    expect(p.tel.of('resync.start')).toEqual([]);
    expect(p.controller.failure).toBeNull();
  });

  it('the link going down mid-exchange ends it quietly (nothing had started), and the mirror waits for the link', async () => {
    const { p } = await restartedB();
    await p.silence();
    expect(resyncOf(p).state).toBe('needs-resync');
    expect(p.tel.of('resync.abort'), 'nothing had started').toEqual([]);
  });
});

describe('the target side of the exchange: this controller answers for the copies it holds', () => {
  function peerAsks(p: RawPeer, fields: Partial<ResyncRequestFrame>): void {
    p.send({ type: FrameType.ResyncRequest, lun: 1, seq: 1, flags: 0, first: 0, entriesMax: 2, ...fields });
  }
  const answers = (p: RawPeer): ResyncDataFrame[] => p.sent(FrameType.ResyncData);

  function peerB(limits: Record<string, number> = {}, features = BOTH): RawPeer {
    const p = new RawPeer({ mirrorLun0: true, lun1: true, features, helloLater: true, limits });
    p.hello(helloFields(features));
    return p;
  }

  it('sends its table of the mirror in the chunks asked for, then settles what the exchange read', async () => {
    const p = peerB({ tagEntriesMax: 4 });
    await p.clock.advance(1);
    const theirs = p.controller.tablesOf('A', 1, 'target')!;
    for (const e of THEIRS.slice(0, 3)) theirs.add({ ...e, lun: 1 });
    peerAsks(p, {});
    await p.clock.advance(1);
    peerAsks(p, { first: 2 });
    peerAsks(p, { first: 2 }); // a repeat: answered again, from the same snapshot
    await p.clock.advance(1);
    expect(answers(p).map((d) => [d.seq, d.first, d.total, d.state, d.entries.map((e) => e.tag)])).toEqual([
      [1, 0, 3, TableState.Trusted, [2, 3]], [1, 2, 3, TableState.Trusted, [4]], [1, 2, 3, TableState.Trusted, [4]],
    ]);
    theirs.add({ tag: 20, lun: 1, lba: 0, count: 1 }); // after the snapshot: not the exchange's to settle
    expect(theirs.add({ tag: 21, lun: 1, lba: 0, count: 1 })).toBe(false);
    const overflows = theirs.table.overflows;
    p.send({ type: FrameType.ResyncDone, lun: 1, seq: 1, flags: 0 });
    await p.clock.advance(1);
    expect(p.sent(FrameType.ResyncAck)).toEqual([{ type: FrameType.ResyncAck, lun: 1, seq: 1, flags: 0 }]);
    expect([...theirs.table.entries()].map((e) => e.tag)).toEqual([20]);
    expect(theirs.table.overflowed, 'an overflow after the snapshot is not the exchange\'s to forget').toBe(true);
    expect(theirs.table.overflows).toBe(overflows);
    p.send({ type: FrameType.ResyncDone, lun: 1, seq: 1, flags: 0 }); // the ACK was lost: acknowledged again, nothing more deleted
    await p.clock.advance(1);
    expect(p.sent(FrameType.ResyncAck)).toHaveLength(2);
    expect(p.controller.status()[0]!.resyncTarget).toMatchObject({ tableRequests: 3, tableChunksSent: 3, resyncsSettled: 1, entriesDeleted: 3 });
  });

  it('an untrusted table, a LUN it holds no copy of, or a later part of an exchange it never began: an untrusted, empty answer', async () => {
    const p = peerB();
    await p.clock.advance(1);
    const theirs = p.controller.tablesOf('A', 1, 'target')!;
    theirs.add({ tag: 1, lun: 1, lba: 0, count: 8 });
    theirs.markLost(); // as after a restart without metadata
    peerAsks(p, { seq: 1 });
    peerAsks(p, { seq: 2, lun: 0 }); // B mirrors LUN 0 to A: the copy is A's, not B's
    peerAsks(p, { seq: 3, lun: 7 });
    peerAsks(p, { seq: 4, first: 5 });
    await p.clock.advance(1);
    expect(answers(p).map((d) => [d.seq, d.state, d.total, d.entries.length])).toEqual([
      [2, TableState.Untrusted, 0, 0], [3, TableState.Untrusted, 0, 0], [4, TableState.Untrusted, 0, 0], [1, TableState.Untrusted, 0, 0],
    ]);
    p.send({ type: FrameType.ResyncDone, lun: 1, seq: 1, flags: 0 });
    await p.clock.advance(1);
    expect(theirs.table.size, 'a full copy that ends settles the entries it read').toBe(0);
    expect(theirs.trusted, 'and ends the loss').toBe(true);
  });

  it('with a peer that offers no tokens no table is kept: every request is answered untrusted, and the resync is a full copy', async () => {
    const p = peerB({}, FEATURE_BITS.resync);
    await p.clock.advance(1);
    peerAsks(p, {});
    await p.clock.advance(1);
    expect(answers(p)).toEqual([expect.objectContaining({ state: TableState.Untrusted, total: 0, entries: [] }) as Frame]);
  });
});
