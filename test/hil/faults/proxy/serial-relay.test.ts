import { afterEach, describe, expect, it } from 'vitest';
import { FrameDecoder, FrameType, type Frame } from '../../../../firmware/protocol/index.ts';
import type { HostClock } from '../../../../host/clock/clock.ts';
import { VirtualClock } from '../../../../host/clock/virtual.ts';
import { openSerialLine, type SerialPortLine } from '../../../../host/disks/serial-disk/line.ts';
import { ptyPair } from '../../../../host/disks/serial-disk/socat-pty.ts';
import { parseLinkFaults } from '../../../../hil/faults/link-fault-plan.ts';
import { startSerialFaultProxy, type FaultProxy } from '../../../../hil/faults/proxy/index.ts';
import { scratchDir } from '../../../support/scratch-dir.ts';
import { ackFrame, heartbeatFrame, streamFrame } from './fixtures.ts';
import { waitFor } from './net-fixtures.ts';

const scratch = scratchDir('fault-relay');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A controller's end of a line: what it received, decoded. */
function end(line: SerialPortLine) {
  const frames: Frame[] = [];
  const bytes: number[] = [];
  const decoder = new FrameDecoder({ onFrame: (f) => frames.push(f), onError: () => {} });
  line.onData((chunk) => {
    bytes.push(...chunk);
    decoder.push(chunk.slice());
  });
  return { line, frames, bytes };
}

let n = 0;
async function relay(plan: string, opts: { clock?: HostClock; seed?: number; paceToBaud?: boolean; baud?: number } = {}) {
  const one = await ptyPair(scratch.dir(), `one${n}`);
  const two = await ptyPair(scratch.dir(), `two${n++}`);
  cleanups.push(async () => {
    await one.stop();
    await two.stop();
  });
  const proxy: FaultProxy = await startSerialFaultProxy({
    plan: parseLinkFaults(plan), seed: opts.seed ?? 1, clock: opts.clock, pathA: one.b, pathB: two.a, baud: opts.baud ?? 115_200, paceToBaud: opts.paceToBaud,
  });
  cleanups.push(() => proxy.stop());
  const a = end(await openSerialLine(one.a, 115_200));
  const b = end(await openSerialLine(two.b, 115_200));
  cleanups.push(async () => {
    await a.line.close();
    await b.line.close();
  });
  const stats = (dir: 'A->B' | 'B->A') => proxy.stats().directions[dir]!.total;
  return { proxy, a, b, stats, paths: { one, two } };
}

describe('the serial relay between two PTY pairs', () => {
  it('relays frames and noise both ways, strikes the targeted kinds, and loses inline heartbeats to hbloss', async () => {
    const r = await relay('drop=1:LOCK,hbloss=1');
    r.a.line.write(streamFrame('LOCK', 1));
    r.a.line.write(Uint8Array.of(7, 7, 7));
    r.a.line.write(streamFrame('WRITE', 2));
    r.a.line.write(heartbeatFrame(1));
    r.a.line.write(streamFrame('UNLOCK', 3));
    await waitFor(() => r.b.frames.length === 2, 'WRITE and UNLOCK at B');
    expect(r.b.frames.map((f) => f.type)).toEqual([FrameType.Write, FrameType.Unlock]);
    expect(r.b.bytes.slice(0, 3)).toEqual([7, 7, 7]);
    r.b.line.write(ackFrame(3));
    await waitFor(() => r.a.frames.length === 1, 'the ACK at A');
    expect(r.stats('A->B')).toMatchObject({ framesSeen: 4, framesDropped: 1, heartbeatsLost: 1, framesForwarded: 2, noiseBytes: 3 });
    expect(r.proxy.stats().link).toBe('serial');
  });

  it('a silent cut swallows the line both ways; afterwards it carries again', async () => {
    const clock = new VirtualClock();
    const r = await relay('silent=5ms+50ms', { clock });
    await clock.run({ untilMs: 10 });
    r.a.line.write(streamFrame('WRITE', 1));
    r.b.line.write(ackFrame(1));
    await waitFor(() => r.stats('A->B').framesSwallowed === 1 && r.stats('B->A').framesSwallowed === 1, 'both frames swallowed');
    await clock.run({ untilMs: 100 });
    r.a.line.write(streamFrame('WRITE', 2));
    await waitFor(() => r.b.frames.length === 1, 'the frame after the cut');
    expect(r.b.frames[0]!.seq).toBe(2);
  });

  it('paces each direction to the baud rate when asked (a PTY does not)', async () => {
    const clock = new VirtualClock();
    const r = await relay('none', { clock, paceToBaud: true, baud: 9600 });
    await clock.run({ untilMs: 0 });
    for (let s = 1; s <= 10; s++) r.a.line.write(streamFrame('WRITE', s, 200));
    await waitFor(() => r.stats('A->B').framesSeen === 10, 'ten frames at the relay');
    await clock.run({ untilMs: 1000 });
    // 9600 baud on 8N1 is 960 bytes a second: four 252-byte frames in the first second.
    expect(r.stats('A->B').bytesOut).toBeLessThanOrEqual(960 + 252 + 2);
    expect(r.stats('A->B').bytesOut).toBeGreaterThanOrEqual(960 - 252);
    await clock.run({ untilMs: 5000 });
    await waitFor(() => r.b.frames.length === 10, 'all ten at B');
  });

  it('refuses what cannot apply to a line, in one line each', async () => {
    const base = { seed: 1, baud: 115_200 };
    await expect(startSerialFaultProxy({ ...base, plan: parseLinkFaults('reset=0.1'), pathA: '/dev/null', pathB: '/dev/zero' }))
      .rejects.toMatchObject({ code: 'ML_ERR_PROXY_PLAN', message: expect.stringMatching(/reset=P resets a TCP connection, and a serial line has none/) });
    await expect(startSerialFaultProxy({ ...base, plan: parseLinkFaults('none'), pathA: '/x', pathB: '/x' }))
      .rejects.toMatchObject({ code: 'ML_ERR_PROXY_SERIAL' });
    await expect(startSerialFaultProxy({ ...base, plan: parseLinkFaults('none'), pathA: `${scratch.dir()}/none-a`, pathB: `${scratch.dir()}/none-b` }))
      .rejects.toMatchObject({ code: 'ML_ERR_PROXY_SERIAL', message: expect.stringMatching(/^--serial: no serial port at/) });
  });
});
