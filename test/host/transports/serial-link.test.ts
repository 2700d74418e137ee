import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { RealClock } from '../../../host/clock/real.ts';
import { ptyPair } from '../../../host/disks/serial-disk/socat-pty.ts';
import { SeededRandom } from '../../../host/random.ts';
import { silentLinkLogger } from '../../../host/transports/link-logger.ts';
import { SerialLink, openSerialPort } from '../../../host/transports/serial-link.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { EndRecorder, heartbeat, marker } from './link-contract.ts';
import { ptyLinkPair, type SerialPair } from './live-pairs.ts';

const scratch = scratchDir('serial-link');
let n = 0;
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function until(cond: () => boolean, what: string, budgetMs = 5_000): Promise<void> {
  for (let waited = 0; !cond(); waited += 10) {
    if (waited > budgetMs) throw new Error(`${what}: not within ${budgetMs} ms`);
    await sleep(10);
  }
}

/** A PTY link pair with recorders attached and connection 0 open at both ends. */
async function openPair(): Promise<{ pair: SerialPair; a: EndRecorder; b: EndRecorder; name: string }> {
  const name = `pty${n++}`;
  const pair = await ptyLinkPair(scratch.dir(), name);
  cleanup.push(() => pair.close!());
  const a = new EndRecorder('a', pair.a);
  const b = new EndRecorder('b', pair.b);
  pair.a.open(0);
  pair.b.open(0);
  await until(() => a.isOpen(0) && b.isOpen(0), 'opened at both ends');
  return { pair, a, b, name };
}

describe('a serial link on a PTY', () => {
  it('passes every frame up in order through noise injected between them: the firmware decoder resynchronises', async () => {
    const pty = await ptyPair(scratch.dir(), `noise${n++}`);
    cleanup.push(() => pty.stop());
    const link = await SerialLink.open({ path: pty.a, baudRate: 115_200, clock: new RealClock(), logger: silentLinkLogger, localName: 'A', peerName: 'B' });
    cleanup.push(() => link.shutdown());
    const rec = new EndRecorder('a', link);
    const far = await openSerialPort(pty.b, 115_200);
    cleanup.push(() => new Promise<void>((r) => far.close(() => r())));
    const random = new SeededRandom(7);
    const frames = 200;
    let noiseBytes = 0;
    for (let i = 0; i < frames; i++) {
      far.write(i % 10 === 9 ? heartbeat(5000 + i) : marker(0, i));
      const noise = Uint8Array.from({ length: 1 + random.int(40) }, () => random.int(256));
      noiseBytes += noise.length;
      far.write(noise);
      if (i % 20 === 19) await sleep(1);
    }
    await until(() => rec.frames[0]!.length === frames, `${frames} frames through the noise`);
    const expected = Array.from({ length: frames }, (_, i) => (i % 10 === 9 ? 5000 + i : i));
    expect(rec.frames[0]).toEqual(expected);
    expect(rec.decodeErrors.length, 'the noise was seen, and skipped').toBeGreaterThan(0);
    expect(rec.decodeErrors.every((e) => e.code === 'ML_ERR_FRAME_MAGIC' || e.code === 'ML_ERR_FRAME_HEADER_CRC')).toBe(true);
    expect(link.stats().connections[0]!.bytesReceived).toBe(frames * 52 + noiseBytes + (frames / 10) * 8);
  });

  it('hears closed when the port disappears (socat killed), and opens the path again once it is back', async () => {
    const { pair, a, b, name } = await openPair();
    await pair.pty!.stop();
    await until(() => a.count('closed', 0) === 1 && b.count('closed', 0) === 1, 'both ends hear closed(0)');
    expect(a.closedReasons(0)[0]).toMatch(/^serial port .*-a (disappeared|failed)/);
    expect(pair.a.send(0, marker(0, 1))).toBe(false);
    pair.a.sendDatagram(heartbeat(1));
    expect(pair.a.stats().datagrams.dropped).toBe(1);
    const again = await ptyPair(scratch.dir(), name);
    cleanup.push(() => again.stop());
    pair.a.open(0);
    pair.b.open(0);
    await until(() => a.isOpen(0) && b.isOpen(0), 'opened again at both ends');
    pair.a.send(0, marker(0, 7));
    pair.b.send(0, marker(0, 8));
    await until(() => a.frames[0]!.includes(8) && b.frames[0]!.includes(7), 'frames cross the new line');
    expect([pair.a.stats().reopens, pair.b.stats().reopens]).toEqual([1, 1]);
  });

  it('a heartbeat sent while the port is gone tries to open it again, so heartbeats can bring a link back', async () => {
    const { pair, a, b, name } = await openPair();
    await pair.pty!.stop();
    await until(() => a.count('closed', 0) === 1 && b.count('closed', 0) === 1, 'both ends hear closed(0)');
    const again = await ptyPair(scratch.dir(), name);
    cleanup.push(() => again.stop());
    for (let i = 0; pair.a.stats().reopens === 0 || pair.b.stats().reopens === 0; i++) {
      if (i > 200) throw new Error('heartbeats never reopened the port');
      pair.a.sendDatagram(heartbeat(100 + i));
      pair.b.sendDatagram(heartbeat(100 + i));
      await sleep(20);
    }
    pair.a.sendDatagram(heartbeat(1000));
    await until(() => b.frames[0]!.includes(1000), 'a heartbeat crosses the reopened line');
    expect([a.count('opened', 0), b.count('opened', 0)], 'the firmware was not told opened: it did not ask').toEqual([1, 1]);
  });

  it('an open(0) while the port stays gone is answered by closed, after a few attempts', async () => {
    const { pair, a } = await openPair();
    await pair.pty!.stop();
    await until(() => a.count('closed', 0) === 1, 'a hears closed(0)');
    pair.a.open(0);
    await until(() => a.count('closed', 0) === 2, 'a hears closed(0) again');
    expect(a.closedReasons(0)[1]).toMatch(/^serial port .* is gone and did not open again \(3 attempts\): .*no serial port at/);
    expect(a.isOpen(0)).toBe(false);
  });

  it('shutdown is idempotent and nothing reaches the handler after it', async () => {
    const { pair, a } = await openPair();
    const before = a.events.length;
    await Promise.all([pair.a.shutdown(), pair.a.shutdown()]);
    pair.b.send(0, marker(0, 1));
    pair.b.sendDatagram(heartbeat(2));
    await sleep(100);
    expect(a.events.length).toBe(before);
    expect(pair.a.send(0, marker(0, 2))).toBe(false);
  });
});
