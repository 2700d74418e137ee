import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { DeviceFailedError, type BlockDevice } from '../../../../firmware/ports/block-device.ts';
import { RealClock } from '../../../../host/clock/real.ts';
import { VirtualClock } from '../../../../host/clock/virtual.ts';
import { MemoryDisk } from '../../../../host/disks/memory.ts';
import { BlockFrameDecoder, BlockFrameType, BlockStatus, encodeBlockFrame, type BlockFrame } from '../../../../host/disks/serial-disk/block-frames.ts';
import { BlockServer } from '../../../../host/disks/serial-disk/block-server.ts';
import { SerialDisk } from '../../../../host/disks/serial-disk/serial-disk.ts';
import { SeededRandom } from '../../../../host/random.ts';
import { pattern, rejectionOf, runUntilSettled } from '../helpers.ts';
import { memoryLine, type MemoryLineEnd } from './memory-line.ts';

/** A board's disk that counts the writes it is asked to do. */
function countingDisk(sectorCount = 256): { disk: BlockDevice; writes: () => number } {
  const disk = new MemoryDisk({ name: 'board', sectorCount, clock: new RealClock() });
  let writes = 0;
  const counted: BlockDevice = Object.assign(Object.create(disk) as BlockDevice, {
    write: (lba: number, data: Uint8Array) => {
      writes++;
      return disk.write(lba, data);
    },
  });
  return { disk: counted, writes: () => writes };
}

/** A host that writes raw frames and collects the board's, for tests of the board's rules. */
class RawHost {
  readonly got: BlockFrame[] = [];
  constructor(readonly line: MemoryLineEnd) {
    const decoder = new BlockFrameDecoder({ onFrame: (f) => this.got.push(f), onError: () => {} });
    line.onData((c) => decoder.push(c));
  }
  send(f: Partial<BlockFrame>): void {
    this.line.write(encodeBlockFrame({ type: BlockFrameType.Read, seq: 1, session: 5, lba: 0, count: 0, code: 0, payload: new Uint8Array(0), ...f }));
  }
  async settle(): Promise<void> {
    await sleep(30);
  }
}

describe('the board (BlockServer)', () => {
  it('answers a request of an unknown session with SESSION, and a new IDENTIFY resets the numbering', async () => {
    const [host, far] = memoryLine();
    const raw = new RawHost(host);
    new BlockServer({ line: far, device: countingDisk().disk });
    raw.send({ type: BlockFrameType.Read, seq: 1, count: 1 });
    await raw.settle();
    expect(raw.got.map((f) => [f.type, f.seq, f.code])).toEqual([[BlockFrameType.Reply, 1, BlockStatus.Session]]);
    raw.send({ type: BlockFrameType.Identify, seq: 0 });
    raw.send({ type: BlockFrameType.Read, seq: 1, count: 1 });
    await raw.settle();
    expect(raw.got.slice(1).map((f) => [f.type, f.seq, f.code, f.payload.length])).toEqual([[BlockFrameType.Reply, 0, BlockStatus.Ok, 28 + 'board'.length], [BlockFrameType.Reply, 1, BlockStatus.Ok, 512]]);
  });

  it('does a repeated WRITE once and answers the repeat from its reply cache', async () => {
    const [host, far] = memoryLine();
    const raw = new RawHost(host);
    const { disk, writes } = countingDisk();
    new BlockServer({ line: far, device: disk });
    raw.send({ type: BlockFrameType.Identify, seq: 0 });
    const write = { type: BlockFrameType.Write, seq: 1, lba: 9, count: 1, payload: pattern(1, 512) } as const;
    raw.send(write);
    raw.send({ type: BlockFrameType.Write, seq: 2, lba: 9, count: 1, payload: pattern(2, 512) });
    await raw.settle();
    raw.send(write); // a repeat of seq 1, after seq 2 overwrote the sector: it must not land again
    await raw.settle();
    expect(writes()).toBe(2);
    expect(raw.got.filter((f) => f.seq === 1).length).toBe(2);
    expect(Buffer.compare(await disk.read(9, 1), pattern(2, 512))).toBe(0);
  });

  it('NAKs the first gap once, drops what comes after it, and takes the resend', async () => {
    const [host, far] = memoryLine();
    const raw = new RawHost(host);
    const server = new BlockServer({ line: far, device: countingDisk().disk });
    raw.send({ type: BlockFrameType.Identify, seq: 0 });
    for (const seq of [2, 3, 4]) raw.send({ type: BlockFrameType.Read, seq, count: 1 });
    await raw.settle();
    expect(raw.got.filter((f) => f.type === BlockFrameType.Nak).map((f) => f.seq)).toEqual([1]);
    for (const seq of [1, 2, 3, 4]) raw.send({ type: BlockFrameType.Read, seq, count: 1 });
    await raw.settle();
    expect(raw.got.filter((f) => f.type === BlockFrameType.Reply && f.seq > 0).map((f) => f.seq)).toEqual([1, 2, 3, 4]);
    expect(server.counters).toMatchObject({ requests: 4, naks: 1 });
  });

  it('NAKs a request whose payload was spoiled when its header still names the session', async () => {
    const [host, far] = memoryLine();
    const raw = new RawHost(host);
    new BlockServer({ line: far, device: countingDisk().disk });
    raw.send({ type: BlockFrameType.Identify, seq: 0 });
    const bytes = encodeBlockFrame({ type: BlockFrameType.Write, seq: 1, session: 5, lba: 0, count: 1, code: 0, payload: new Uint8Array(512) });
    bytes[300]! ^= 1;
    host.write(bytes);
    await raw.settle();
    expect(raw.got.filter((f) => f.type === BlockFrameType.Nak).map((f) => [f.seq, f.code])).toEqual([[1, 1]]);
  });

  it('refuses what it cannot do: outside the device, over its transfer limit, data of the wrong size', async () => {
    const [host, far] = memoryLine();
    const raw = new RawHost(host);
    new BlockServer({ line: far, device: countingDisk(64).disk, transferBytesMax: 4096 });
    raw.send({ type: BlockFrameType.Identify, seq: 0 });
    raw.send({ type: BlockFrameType.Read, seq: 1, lba: 60, count: 8 });
    raw.send({ type: BlockFrameType.Read, seq: 2, lba: 0, count: 9 });
    raw.send({ type: BlockFrameType.Write, seq: 3, lba: 0, count: 2, payload: new Uint8Array(512) });
    await raw.settle();
    expect(raw.got.filter((f) => f.seq > 0).map((f) => f.code)).toEqual([BlockStatus.Range, BlockStatus.BadRequest, BlockStatus.BadRequest]);
  });
});

describe('the host (SerialDisk)', () => {
  it('says so when nothing answers IDENTIFY', async () => {
    const [host] = memoryLine();
    await expect(SerialDisk.open({ name: 'silent', clock: new VirtualClock(), line: host, baud: 115_200, retransmitBaseMs: 10, identifyTimeoutMs: 100 }))
      .rejects.toMatchObject({ code: 'ML_ERR_SERIAL_DISK_SILENT' });
  });

  it('IDENTIFYs again when the board restarted and forgot it, and the request goes through', async () => {
    const [host, far] = memoryLine();
    const { disk } = countingDisk();
    let server = new BlockServer({ line: far, device: disk });
    const clock = new VirtualClock();
    const client = await SerialDisk.open({ name: 'sd', clock, line: host, baud: 115_200, retransmitBaseMs: 20 });
    await runUntilSettled(clock, client.write(3, pattern(4, 512)));
    await server.stop();
    server = new BlockServer({ line: far, device: disk }); // the board rebooted: a new session table
    expect(Buffer.compare(await runUntilSettled(clock, client.read(3, 1)), pattern(4, 512))).toBe(0);
    expect(client.counters.identifies).toBe(2);
    void server;
  });

  it('fails requests with DeviceFailedError when the board stays silent, and recovers once it is back', async () => {
    const [host, far] = memoryLine();
    const { disk } = countingDisk();
    const server = new BlockServer({ line: far, device: disk });
    const clock = new VirtualClock();
    const client = await SerialDisk.open({ name: 'sd', clock, line: host, baud: 1_000_000, retransmitBaseMs: 5, attemptsMax: 3 });
    await server.stop();
    const error = await rejectionOf(clock, client.read(0, 1));
    expect(error).toBeInstanceOf(DeviceFailedError);
    expect((error as Error).message).toMatch(/no reply from the board after 3 retransmissions|did not answer IDENTIFY/);
    new BlockServer({ line: far, device: disk });
    await sleep(20);
    expect((await runUntilSettled(clock, client.read(0, 1))).length).toBe(512);
  });

  it('keeps every byte right over a line that flips and loses bytes both ways, by resending', async () => {
    const [host, far] = memoryLine({ flipPerMillion: 40, dropPerMillion: 40, seed: 11 });
    const { disk } = countingDisk(4096);
    new BlockServer({ line: far, device: disk });
    const clock = new VirtualClock();
    const client = await SerialDisk.open({ name: 'sd', clock, line: host, baud: 4_000_000, retransmitBaseMs: 60 });
    const model = new Uint8Array(4096 * 512);
    const random = new SeededRandom(3);
    for (let i = 0; i < 40; i++) {
      const count = 1 + random.int(24);
      const lba = random.int(4096 - count);
      const data = pattern(i, count * 512);
      await runUntilSettled(clock, client.write(lba, data));
      model.set(data, lba * 512);
      const at = random.int(4096 - 32);
      const back = await runUntilSettled(clock, client.read(at, 32));
      expect(Buffer.compare(back, model.subarray(at * 512, (at + 32) * 512)), `read ${i}`).toBe(0);
    }
    // What landed on the board's own disk, read there: every write arrived whole, once, in order.
    expect(Buffer.compare(await disk.read(0, 4096), model)).toBe(0);
    expect(host.spoiled.flipped + far.spoiled.flipped).toBeGreaterThan(0);
    expect(host.spoiled.dropped + far.spoiled.dropped).toBeGreaterThan(0);
    expect(client.counters.retransmissions).toBeGreaterThan(0);
  });
});
