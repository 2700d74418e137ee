import { describe, expect, it } from 'vitest';
import { parseLinkFaults } from '../../../../hil/faults/link-fault-plan.ts';
import { FrameDecider } from '../../../../hil/faults/proxy/frame-decisions.ts';
import { PACER_BURST_MS } from '../../../../hil/faults/proxy/limits.ts';
import { framePiece, recordingPipe, seqOf, streamFrame, virtualCore } from './fixtures.ts';

const seqs = (written: { bytes: Uint8Array }[]): number[] => written.map((w) => seqOf(w.bytes));

describe('FaultPipe on a byte stream', () => {
  it('a delayed frame holds back everything behind it, as a stalled TCP segment does', async () => {
    const { clock, core, events } = virtualCore('delay=1@20ms:LOCK', { seed: 4 });
    const { pipe, written } = recordingPipe(core);
    pipe.accept(framePiece(streamFrame('LOCK', 1)));
    pipe.accept(framePiece(streamFrame('WRITE', 2)));
    expect(written).toEqual([]);
    const delayMs = events.find((e) => e.fault === 'delay')! as { delayMs: number };
    await clock.run({ untilMs: delayMs.delayMs + 0.001 });
    expect(seqs(written)).toEqual([1, 2]);
    expect(written.every((w) => w.atMs >= delayMs.delayMs)).toBe(true);
  });

  it('a reordered frame waits for its drawn number of overtakers, then goes; alone, it goes at the hold limit', async () => {
    const seed = 9;
    const { clock, core } = virtualCore('reorder=1:LOCK', { seed });
    const { pipe, written, counters } = recordingPipe(core);
    const k = new FrameDecider(parseLinkFaults('reorder=1:LOCK'), seed).decide({ dir: 'ab', channel: 'test', kind: 'tcp' }, { index: 0, type: 2, length: 100 }).overtakers;
    pipe.accept(framePiece(streamFrame('LOCK', 1)));
    for (let s = 2; s <= 5; s++) pipe.accept(framePiece(streamFrame('WRITE', s)));
    const expected = [2, 3, 4, 5];
    expected.splice(k, 0, 1);
    expect(seqs(written)).toEqual(expected);
    expect(counters.framesReordered).toBe(1);
    pipe.accept(framePiece(streamFrame('LOCK', 6)));
    expect(seqs(written)).toHaveLength(5);
    await clock.run({ untilMs: core.limits.reorderHoldMsMax - 1 });
    expect(seqs(written)).toHaveLength(5);
    await clock.run({ untilMs: core.limits.reorderHoldMsMax + 1 });
    expect(seqs(written).at(-1)).toBe(6);
  });

  it('a black hole swallows what completes inside it, and what was waiting to leave when it began; nothing else', async () => {
    const { clock, core, events } = virtualCore('silent=10ms+20ms,delay=1@5ms:UNLOCK');
    const { pipe, written, counters } = recordingPipe(core);
    pipe.accept(framePiece(streamFrame('WRITE', 1)));
    await clock.run({ untilMs: 8 });
    pipe.accept(framePiece(streamFrame('UNLOCK', 2)));
    await clock.run({ untilMs: 15 });
    pipe.accept(framePiece(streamFrame('WRITE', 3)));
    pipe.accept({ kind: 'noise', bytes: new Uint8Array(10) });
    await clock.run({ untilMs: 31 });
    pipe.accept(framePiece(streamFrame('WRITE', 4)));
    expect(seqs(written)).toEqual([1, 4]);
    expect(counters.framesSwallowed).toBe(2);
    expect(counters.bytesSwallowed).toBe(streamFrame('UNLOCK', 2).length + streamFrame('WRITE', 3).length + 10);
    expect(events.map((e) => e.fault)).toEqual(['delay', 'silent.start', 'silent.end']);
  });

  it('paces a direction to the bandwidth: bytes out never run ahead of the rate, in order, and all arrive', async () => {
    const { clock, core } = virtualCore('bandwidth=1@0');
    const { pipe, written } = recordingPipe(core);
    await clock.run({ untilMs: 0 });
    const frames = Array.from({ length: 20 }, (_, i) => streamFrame('WRITE', i + 1, 1000));
    for (const f of frames) pipe.accept(framePiece(f));
    const bytesPerMs = 1e6 / 8 / 1000;
    for (const t of [10, 37, 80, 120]) {
      await clock.run({ untilMs: t });
      const out = written.reduce((n, w) => n + w.bytes.length, 0);
      expect(out).toBeLessThanOrEqual(bytesPerMs * (t + PACER_BURST_MS) + frames[0]!.length);
      expect(out).toBeGreaterThanOrEqual(bytesPerMs * t - frames[0]!.length);
    }
    await clock.run({ untilMs: 1000 });
    expect(seqs(written)).toEqual(frames.map((_, i) => i + 1));
  });

  it('asks its source to pause above its bound and to resume once half drained; loses nothing', async () => {
    const { core } = virtualCore('none');
    const pressure: boolean[] = [];
    const { pipe, written, sink, counters } = recordingPipe(core, { queueBytesMax: 1000, onPressure: (over) => pressure.push(over) });
    sink.full = true;
    for (let s = 1; s <= 30; s++) pipe.accept(framePiece(streamFrame('WRITE', s, 100)));
    expect(pressure).toEqual([true]);
    expect(pipe.pendingBytes).toBeGreaterThan(1000);
    sink.full = false;
    pipe.drained();
    expect(pressure).toEqual([true, false]);
    expect(seqs(written)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(counters.queuePauses).toBe(1);
  });

  it('counts pieces as well as bytes: many tiny ones pause the source too', () => {
    const { core } = virtualCore('none');
    const pressure: boolean[] = [];
    const { pipe, sink } = recordingPipe(core, { queueItemsMax: 5, onPressure: (over) => pressure.push(over) });
    sink.full = true;
    for (let i = 0; i < 5; i++) pipe.accept({ kind: 'noise', bytes: Uint8Array.of(i) });
    expect(pressure).toEqual([]);
    pipe.accept({ kind: 'noise', bytes: Uint8Array.of(9) });
    pipe.accept({ kind: 'noise', bytes: Uint8Array.of(9) });
    expect(pressure).toEqual([true]);
  });

  it('with overflow "drop", a full pipe drops arriving frames and counts them', async () => {
    const { core } = virtualCore('delay=1@50ms');
    const { pipe, counters } = recordingPipe(core, { overflow: 'drop', queueItemsMax: 3 });
    for (let s = 1; s <= 10; s++) pipe.accept(framePiece(streamFrame('WRITE', s)));
    expect(counters.framesDroppedQueueFull).toBe(7);
    expect(pipe.pendingBytes).toBe(3 * streamFrame('WRITE', 1).length);
  });

  it('holds at most heldFramesMax frames for reordering; more reorders are not done, and are counted', () => {
    const { core } = virtualCore('reorder=1', { limits: { heldFramesMax: 2 } });
    const { pipe, counters } = recordingPipe(core);
    for (let s = 1; s <= 3; s++) pipe.accept(framePiece(streamFrame('LOCK', s)));
    expect(counters.framesReordered + counters.reorderLimitHits).toBe(3);
    expect(counters.reorderLimitHits).toBeGreaterThanOrEqual(1);
  });

  it('after close nothing is written and no timer is left', async () => {
    const { clock, core } = virtualCore('delay=1@5ms');
    const { pipe, written } = recordingPipe(core);
    pipe.accept(framePiece(streamFrame('WRITE', 1)));
    pipe.close();
    await clock.run({ untilMs: 100 });
    expect(written).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('FaultPipe for datagrams', () => {
  it('lets a delayed datagram be overtaken', async () => {
    const { clock, core } = virtualCore('delay=1@20ms:LOCK', { seed: 4 });
    const { pipe, written } = recordingPipe(core, { ordering: 'datagram', kind: 'datagram', overflow: 'drop', queueItemsMax: 10 });
    pipe.accept(framePiece(streamFrame('LOCK', 1)));
    pipe.accept(framePiece(streamFrame('WRITE', 2)));
    await clock.run({ untilMs: 21 });
    expect(seqs(written)).toEqual([2, 1]);
  });
});
