import { writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { Baseline } from '../../../hil/checker/content-checks.ts';
import { SyncBaseline } from '../../../hil/emulator/initial-sync.ts';
import { judgeRack, type JudgeInput } from '../../../hil/rack/judge.ts';
import { linearize } from '../../../hil/rack/linearize.ts';
import { mergeTelemetry } from '../../../hil/trace/merge.ts';
import { writeData } from '../../../host/workload/data.ts';
import { scratchDir } from '../../support/scratch-dir.ts';

const scratch = scratchDir('rack-judge');
const SECTORS = 64;
const SESSION = 77;

/** Stamped telemetry lines of one process, numbered in order, with wall stamps as given. */
function lines(proc: string, node: string, events: { wall: number; [k: string]: unknown }[]): string {
  return events.map((e, i) => JSON.stringify({ n: i + 1, proc, node, t: e.wall, ...e })).join('\n') + '\n';
}

const write = { tag: 1, lun: 0, lba: 8, count: 8 };
const ackFrame = { type: 'ACK', seq: 2, lun: 0, bytes: 60, conn: 0, crc: 1234 };

/**
 * A's host writes tag 1 (sync); B takes its lock, applies it, and sends the ACK that A receives.
 * `ackBeforeReceive`: A acknowledges its host before the ACK arrives (the bug), yet every wall stamp
 * says B applied first: only causality can tell.
 */
function telemetry(o: { ackBeforeReceive: boolean }): { a: string; b: string } {
  const a = [
    { wall: 1, kind: 'host.write', ...write },
    ...(o.ackBeforeReceive
      ? [{ wall: 30, kind: 'host.ack', ...write, mode: 'sync' }, { wall: 31, kind: 'frame.received', peer: 'B', ...ackFrame }]
      : [{ wall: 30, kind: 'frame.received', peer: 'B', ...ackFrame }, { wall: 31, kind: 'host.ack', ...write, mode: 'sync' }]),
  ];
  const b = [
    { wall: 5, kind: 'target.lock', peer: 'A', result: 'granted', seq: 1, lockId: 1, lun: 0, lba: 0, count: 64, mode: 'write', sourceSession: SESSION },
    { wall: 10, kind: 'target.apply', peer: 'A', seq: 2, lockId: 1, sourceSession: SESSION, ...write },
    { wall: 20, kind: 'frame.sent', peer: 'A', retransmit: false, ...ackFrame },
  ];
  return { a: lines(`A/${SESSION}`, 'A', a), b: lines('B/5', 'B', b) };
}

/** An image of SECTORS sectors holding `tag`'s data at write's place (or zeros with tag 0). */
function image(tag: number): Buffer {
  const bytes = Buffer.alloc(SECTORS * 512);
  if (tag > 0) Buffer.from(writeData(1, 0, tag, write.lba, write.count, 512)).copy(bytes, write.lba * 512);
  return bytes;
}

async function judge(o: {
  ackBeforeReceive?: boolean; imageA?: Buffer; imageB?: Buffer | null; extraA?: string; killed?: string | null; recentAcked?: JudgeInput['recentAcked'];
  baseline?: Baseline;
}) {
  const t = telemetry({ ackBeforeReceive: o.ackBeforeReceive ?? false });
  const files = { a: scratch.path('a', '.jsonl'), b: scratch.path('b', '.jsonl'), ia: scratch.path('a'), ib: scratch.path('b') };
  await writeFile(files.a, t.a + (o.extraA ?? ''));
  await writeFile(files.b, t.b);
  await writeFile(files.ia, o.imageA ?? image(1));
  if (o.imageB !== null) await writeFile(files.ib, o.imageB ?? image(1));
  // B's copy as the rack has it from a board or an in-process disk: read through its control socket (or not at all).
  const secondary = o.imageB === null
    ? { node: 'B', image: null, unreadable: 'no controller at b.sock', volume: 'serial-disk', read: 'control socket' as const }
    : { node: 'B', image: files.ib, volume: 'usb-emu:32KiB', read: 'control socket' as const };
  const input: JudgeInput = {
    telemetry: [{ node: 'A', path: files.a }, { node: 'B', path: files.b }],
    mirrors: [{ lun: 0, primary: { node: 'A', id: 1, image: files.ia }, secondary, ...(o.baseline ? { baseline: o.baseline } : {}) }],
    sectorSize: 512, killed: o.killed ?? null, uncertain: {}, ...(o.recentAcked ? { recentAcked: o.recentAcked } : {}),
  };
  return judgeRack(input);
}

describe('the rack judge', () => {
  it('finds a correct run consistent: the apply happened before the ack, the images are equal and hold the write', async () => {
    const j = await judge({});
    expect(j.violations).toEqual([]);
    expect(j.telemetry).toEqual({ events: 6, edges: 1, lostAtKill: 0, ackedUnrecorded: 0 });
    expect(j.images.map((i) => i.sha256)).toEqual([j.images[0]!.sha256, j.images[0]!.sha256]);
  });

  it('catches a host ack that did not wait for the target, even when every wall stamp puts the apply first', async () => {
    const j = await judge({ ackBeforeReceive: true });
    expect(j.violations.map((v) => v.invariant)).toEqual(['ack-after-apply']);
    expect(j.violations[0]).toMatchObject({ node: 'A', lun: 0, seq: 1 });
  });

  it('catches images that differ, and a lost write on the copy', async () => {
    const j = await judge({ imageB: image(0) });
    expect(j.violations.map((v) => v.invariant).sort()).toEqual(['data-intact', 'mirror-identical']);
    expect(j.violations.find((v) => v.invariant === 'data-intact')).toMatchObject({ node: 'B', lba: write.lba });
  });

  it('names how it had each copy: an image file, or a read through the control socket', async () => {
    const j = await judge({});
    expect(j.images.map((i) => [i.node, i.volume, i.read, i.bytes])).toEqual([['A', 'file', 'image file', SECTORS * 512], ['B', 'usb-emu:32KiB', 'control socket', SECTORS * 512]]);
  });

  it('takes a copy it could not read as a violation saying why, and still checks the other copy', async () => {
    const j = await judge({ imageB: null, imageA: image(0) });
    expect(j.violations.map((v) => `${v.invariant}@${v.node}`).sort()).toEqual(['data-intact@A', 'mirror-identical@B']);
    expect(j.violations.find((v) => v.invariant === 'mirror-identical')!.message).toBe("B's copy of LUN 0 could not be compared: no controller at b.sock");
    expect(j.images.map((i) => i.node)).toEqual(['A']);
  });

  it('holds untouched sectors to the baseline of copies that were not blank before the run', async () => {
    const before = image(1);
    before.fill(3, 40 * 512, 41 * 512);
    const baseline = new SyncBaseline(SECTORS);
    baseline.record(0, before, 512);
    expect((await judge({ imageA: before, imageB: before, baseline })).violations).toEqual([]);
    // The same copies against a blank start: sector 40 holds what no write put there.
    expect((await judge({ imageA: before, imageB: before })).violations.map((v) => `${v.invariant}@${v.lba}`)).toEqual(['data-intact@40', 'data-intact@40']);
  });

  it('catches a sector that holds data no write put there', async () => {
    const both = image(1);
    Buffer.from(writeData(1, 0, 9, 40, 1, 512)).copy(both, 40 * 512);
    const j = await judge({ imageA: both, imageB: both });
    expect(j.violations.map((v) => v.invariant)).toEqual(['data-intact', 'data-intact']);
    expect(j.violations[0]!.message).toMatch(/no write of this run covered this sector.*write tag 9/);
  });

  it('forgives a write the killed source acknowledged in the turn its telemetry lost, and only that one', async () => {
    const both = image(1);
    Buffer.from(writeData(1, 0, 5, 40, 1, 512)).copy(both, 40 * 512);
    const unrecorded = await judge({ imageA: both, imageB: both, killed: 'A' });
    expect(unrecorded.violations.map((v) => v.invariant)).toEqual(['data-intact', 'data-intact']);
    const forgiven = await judge({ imageA: both, imageB: both, killed: 'A', recentAcked: { A: [{ tag: 5, lun: 0, lba: 40, count: 1 }, { ...write }] } });
    expect(forgiven.violations).toEqual([]);
    expect(forgiven.telemetry.ackedUnrecorded).toBe(1);
    // Without a kill nothing is forgiven: telemetry is complete, so the history knows every write.
    const notKilled = await judge({ imageA: both, imageB: both, recentAcked: { A: [{ tag: 5, lun: 0, lba: 40, count: 1 }] } });
    expect(notKilled.violations.map((v) => v.invariant)).toEqual(['data-intact', 'data-intact']);
  });

  it('reports telemetry that cannot be ordered (a receive with no send), unless the peer was killed', async () => {
    const stray = `${JSON.stringify({ n: 4, proc: `A/${SESSION}`, node: 'A', t: 40, wall: 40, kind: 'frame.received', peer: 'B', ...ackFrame, seq: 9, crc: 9 })}\n`;
    const clean = await judge({ extraA: stray });
    expect(clean.violations.map((v) => v.invariant)).toEqual(['causal-order']);
    expect(clean.violations[0]!.message).toMatch(/unmatched-receive/);
    const killed = await judge({ extraA: stray, killed: 'B' });
    expect(killed.violations).toEqual([]);
    expect(killed.telemetry.lostAtKill).toBe(1);
  });

  it('turns telemetry the checker cannot take into a violation, not a crash (tags that go backwards)', async () => {
    const back = `${JSON.stringify({ n: 4, proc: `A/${SESSION}`, node: 'A', t: 40, wall: 40, kind: 'host.write', tag: 1, lun: 0, lba: 0, count: 8 })}\n`;
    const j = await judge({ extraA: back });
    expect(j.violations.some((v) => v.invariant === 'causal-order' && /could not take host.write/.test(v.message))).toBe(true);
  });
});

describe('linearize', () => {
  it('places the preferred source as early as causality allows, and the other only when it must', () => {
    const t = telemetry({ ackBeforeReceive: false });
    const merged = mergeTelemetry([{ name: 'a', text: t.a }, { name: 'b', text: t.b }]);
    expect(merged.problems).toEqual([]);
    const kinds = (order: ReturnType<typeof linearize>) => order.map((m) => `${m.event.node}:${m.event.kind}`);
    expect(kinds(linearize(merged, 0))).toEqual(['A:host.write', 'B:target.lock', 'B:target.apply', 'B:frame.sent', 'A:frame.received', 'A:host.ack']);
    // Preferring B: B's events first, though A's host.write has the earliest wall stamp.
    expect(kinds(linearize(merged, 1))).toEqual(['B:target.lock', 'B:target.apply', 'B:frame.sent', 'A:host.write', 'A:frame.received', 'A:host.ack']);
  });
});

describe('ties across a restart', () => {
  /**
   * B's first incarnation sent an ACK of seq 2 and died; its second applies A's tag 1 and sends an
   * ACK of seq 2 too, byte for byte the same frame. A hears of the new session, receives the ACK and
   * acknowledges its host (or, with `early`, acknowledges first).
   */
  async function restartRun(o: { early: boolean }) {
    const ack = { wall: 0, kind: 'host.ack', ...write, mode: 'sync' };
    const a = [
      { wall: 1, kind: 'link.supervision', peer: 'B', event: 'up', peerSession: 5 },
      { wall: 2, kind: 'host.write', ...write },
      { wall: 3, kind: 'link.supervision', peer: 'B', event: 'peer.restarted', peerSession: 6 },
      ...(o.early ? [{ ...ack, wall: 4 }, { wall: 30, kind: 'frame.received', peer: 'B', ...ackFrame }]
        : [{ wall: 30, kind: 'frame.received', peer: 'B', ...ackFrame }, { ...ack, wall: 31 }]),
    ];
    const b1 = [
      { wall: 1, kind: 'link.supervision', peer: 'A', event: 'up', peerSession: SESSION },
      { wall: 1, kind: 'frame.sent', peer: 'A', retransmit: false, ...ackFrame },
    ];
    const b2 = [
      { wall: 5, kind: 'link.supervision', peer: 'A', event: 'up', peerSession: SESSION },
      { wall: 6, kind: 'target.lock', peer: 'A', result: 'granted', seq: 1, lockId: 1, lun: 0, lba: 0, count: 64, mode: 'write', sourceSession: SESSION },
      { wall: 10, kind: 'target.apply', peer: 'A', seq: 2, lockId: 1, sourceSession: SESSION, ...write },
      { wall: 20, kind: 'frame.sent', peer: 'A', retransmit: false, ...ackFrame },
    ];
    const files = { a: scratch.path('a', '.jsonl'), b: scratch.path('b', '.jsonl'), ia: scratch.path('a'), ib: scratch.path('b') };
    await writeFile(files.a, lines(`A/${SESSION}`, 'A', a));
    await writeFile(files.b, lines('B/5', 'B', b1) + lines('B/6', 'B', b2));
    await writeFile(files.ia, image(1));
    await writeFile(files.ib, image(1));
    return judgeRack({
      telemetry: [{ node: 'A', path: files.a }, { node: 'B', path: files.b }],
      mirrors: [{ lun: 0, primary: { node: 'A', id: 1, image: files.ia }, secondary: { node: 'B', image: files.ib } }],
      sectorSize: 512, killed: 'B', uncertain: {},
    });
  }

  it('tie a receive to the send of the incarnation the receiver knew, so a correct ack after a restart is proven', async () => {
    const j = await restartRun({ early: false });
    expect(j.violations).toEqual([]);
  });

  it('still catch an ack that did not wait for the new incarnation', async () => {
    const j = await restartRun({ early: true });
    expect(j.violations.map((v) => v.invariant)).toEqual(['ack-after-apply']);
  });
});
