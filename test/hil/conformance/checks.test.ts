import { describe, expect, it } from 'vitest';
import type { LinkEndpoint, LinkHandler } from '../../../firmware/ports/link.ts';
import {
  encodeFrame, FrameType, LockMode, LockRejectPolicy, NakReason,
  type Frame, type HelloFrame,
} from '../../../firmware/protocol/index.ts';
import type { HostClock } from '../../../host/clock/clock.ts';
import { writeData } from '../../../host/workload/data.ts';
import { checkAcks, checkHello, checkNoRefusals, checkReadBack, checkStream } from '../../../hil/conformance/checks.ts';
import { FaultStage, PASS, STAGE_QUEUE_BYTES_MAX } from '../../../hil/conformance/fault-stage.ts';

/** The live link under the stage: what reached it (each `send` separately) and the stage's handler. */
class FakeLink implements LinkEndpoint {
  readonly name = 'fake';
  readonly heartbeats: 'datagram' | 'inline';
  readonly writes: { conn: number; bytes: Uint8Array }[] = [];
  readonly datagrams: Uint8Array[] = [];
  handler!: LinkHandler;
  constructor(readonly connections: number, inline = false) {
    this.heartbeats = inline ? 'inline' : 'datagram';
  }
  attach(h: LinkHandler): void {
    this.handler = h;
  }
  open(conn: number): void {
    this.handler.opened(conn);
  }
  close(): void {}
  accepting = true;
  send(conn: number, bytes: Uint8Array): boolean {
    if (!this.accepting) return false;
    this.writes.push({ conn, bytes });
    return true;
  }
  sendDatagram(bytes: Uint8Array): void {
    this.datagrams.push(bytes);
  }
  /** All bytes written on `conn`, joined. */
  stream(conn: number): Uint8Array {
    return Buffer.concat(this.writes.filter((w) => w.conn === conn).map((w) => w.bytes));
  }
}

const SESSION = 77;

function setup(o: { connections?: number; inline?: boolean } = {}) {
  let now = 0;
  // The stage only reads the time; the test sets it.
  const clock = { now: () => now, advanceTo: (t: number) => (now = t) } as unknown as HostClock & { advanceTo(t: number): void };
  const link = new FakeLink(o.connections ?? 1, o.inline);
  const stage = new FaultStage({ inner: link, clock, payloadBytesMax: 1 << 20 });
  const heard: Uint8Array[] = [];
  const writable: number[] = [];
  stage.attach({ opened: () => {}, closed: () => {}, bytes: (_c, b) => heard.push(b), datagram: () => {}, writable: (c) => writable.push(c) });
  for (let k = 0; k < link.connections; k++) stage.open(k);
  /** The target says `frame` on connection 0, at virtual time `at`. */
  const reply = (frame: Frame, at?: number): void => {
    if (at !== undefined) clock.advanceTo(at);
    link.handler.bytes(0, encodeFrame(frame));
  };
  return { clock, link, stage, heard, reply, writable };
}

function write(seq: number, tag = seq): Uint8Array {
  return encodeFrame({ type: FrameType.Write, lun: 0, seq, flags: 0, lockId: 1, lba: seq * 8, tag, data: new Uint8Array(4096).fill(seq) });
}

function hello(o: Partial<HelloFrame> = {}): HelloFrame {
  return {
    type: FrameType.Hello, lun: 0, seq: 0, flags: 0, controllerId: 2, sessionId: 9, windowBytes: 1 << 20, windowEntries: 64,
    policy: LockRejectPolicy.HaltResume, locksWindow: 16, features: 0, requiredFeatures: 0, connection: 0, connections: 1, peerSession: SESSION, ...o,
  };
}

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('the fault stage', () => {
  it('passes frames as sent by default, and strikes the ones a case picks: a copy flipped, a frame dropped', () => {
    const { link, stage } = setup();
    stage.setFate((f) => (f.seq === 2 && f.copy === 0 ? { kind: 'flip', at: 60, mask: 0x01 } : f.seq === 3 ? { kind: 'drop' } : PASS));
    const frames = [write(1), write(2), write(3)];
    for (const f of frames) expect(stage.send(0, f)).toBe(true);
    expect(link.writes).toHaveLength(2);
    expect(link.writes[0]!.bytes).toEqual(frames[0]);
    expect(link.writes[1]!.bytes[60]).toBe(frames[1]![60]! ^ 0x01);
    expect(frames[1]![60]).toBe(2); // the firmware's own bytes are never changed
    expect(stage.intactSentAt(1)).toBe(0);
    expect(stage.intactSentAt(2)).toBeUndefined();
    expect(stage.sent.map((s) => [s.seq, s.copy, s.fate])).toEqual([[1, 0, 'pass'], [2, 0, 'flip'], [3, 0, 'drop']]);
    stage.send(0, frames[1]!);
    expect(stage.sent.at(-1)).toMatchObject({ seq: 2, copy: 1, fate: 'pass' });
  });

  it('splits and coalesces: several frames leave in pieces of odd sizes, byte for byte, an inline heartbeat only between them', async () => {
    const { link, stage } = setup({ inline: true });
    stage.setShape('split-coalesce');
    const frames = [write(1), write(2), write(3)];
    for (const f of frames) stage.send(0, f);
    stage.sendDatagram(encodeFrame({ type: FrameType.Heartbeat, lun: 0, seq: 1, flags: 0, controllerId: 1, sessionId: 1, confirmedSeq: 0, peerSession: 0 }));
    expect(link.writes).toHaveLength(0);
    for (let i = 0; i < 100 && link.datagrams.length === 0; i++) await nextTurn();
    expect(link.stream(0)).toEqual(Buffer.concat(frames));
    expect(link.writes.slice(0, 4).map((w) => w.bytes.length)).toEqual([1, 5, 47, 3]);
    expect(link.writes.some((w) => w.bytes.length > frames[0]!.length)).toBe(false);
    expect(link.datagrams).toHaveLength(1); // held until the frames were out whole
  });

  it('refuses a send on a connection that is not open, and one beyond its queue bound until the transport takes bytes again', () => {
    const { link, stage, writable } = setup({ connections: 2 });
    stage.close(1);
    expect(stage.send(1, write(1))).toBe(false);
    link.accepting = false;
    let taken = 0;
    while (taken < 10_000 && stage.send(0, write(taken + 1))) taken++;
    expect(taken * write(1).length).toBeLessThanOrEqual(STAGE_QUEUE_BYTES_MAX);
    expect(taken * write(1).length).toBeGreaterThan(STAGE_QUEUE_BYTES_MAX - write(1).length);
    link.accepting = true;
    link.handler.writable(0);
    expect(link.writes).toHaveLength(taken);
    expect(writable).toEqual([0]);
  });
});

describe('the protocol checks fail on a target that breaks the protocol', () => {
  it('an ACK covering a frame whose only copy was corrupt', () => {
    const { stage, reply } = setup();
    reply(hello(), 1);
    stage.setFate((f) => (f.seq === 2 && f.copy === 0 ? { kind: 'flip', at: 60, mask: 0x01 } : PASS));
    stage.send(0, write(1));
    stage.send(0, write(2));
    reply({ type: FrameType.Ack, lun: 0, seq: 2, flags: 0 }, 2);
    expect(checkAcks(stage, SESSION)).toMatch(/acknowledged through seq 2 before an intact copy of seq 2 was sent/);
    expect(checkStream(stage, SESSION)).not.toBeNull();
  });

  it('an ACK beyond what this stream sent (another session\'s stream)', () => {
    const { stage, reply } = setup();
    reply(hello(), 1);
    stage.send(0, write(1));
    reply({ type: FrameType.Ack, lun: 0, seq: 9, flags: 0 }, 2);
    expect(checkAcks(stage, SESSION)).toMatch(/acknowledged through seq 9 when this stream had sent only 1 entries/);
  });

  it('passes a target that confirms what it received whole, and ignores responses from before it named our session', () => {
    const { stage, reply } = setup();
    reply({ type: FrameType.Ack, lun: 0, seq: 40, flags: 0 }, 1); // the previous session's, still on the line
    reply(hello(), 2);
    stage.setFate((f) => (f.seq === 2 && f.copy === 0 ? { kind: 'drop' } : PASS));
    stage.send(0, write(1));
    stage.send(0, write(2));
    reply({ type: FrameType.Nak, lun: 0, seq: 2, flags: 0, reason: NakReason.Gap }, 3);
    stage.send(0, write(2));
    reply({ type: FrameType.Ack, lun: 0, seq: 2, flags: 0 }, 4);
    expect(checkStream(stage, SESSION)).toBeNull();
  });

  it('a NAK refusing a valid entry', () => {
    const { stage, reply } = setup();
    reply(hello(), 1);
    stage.send(0, encodeFrame({ type: FrameType.Lock, lun: 0, seq: 1, flags: 0, lockId: 1, lba: 0, count: 64, mode: LockMode.Write }));
    reply({ type: FrameType.Nak, lun: 0, seq: 1, flags: 0, reason: NakReason.OutOfRange }, 2);
    expect(checkNoRefusals(stage, SESSION)).toMatch(/refused seq 1 \(NAK out of range\) though it was a valid entry \(is the target's LUN at least --sectors long\?\)/);
  });

  it('a HELLO of the wrong connection, count, features or confirmed sequence number', () => {
    const o = { conn: 0, connections: 2, session: SESSION, highestSent: 3 };
    expect(checkHello(hello({ connections: 2 }), o)).toBeNull();
    expect(checkHello(hello({ connections: 2, connection: 1 }), o)).toMatch(/HELLO on data connection 0 says it opens connection 1/);
    expect(checkHello(hello({ connections: 1 }), o)).toMatch(/its link has 1 data connections; ours has 2/);
    expect(checkHello(hello({ connections: 2, features: 0x4000_0000, requiredFeatures: 0x4000_0000 }), o)).toMatch(/requires features this source lacks: bit 30/);
    expect(checkHello(hello({ connections: 2, seq: 8 }), o)).toMatch(/confirms seq 8 of our session 77, which has sent only 3 entries/);
    expect(checkHello(hello({ connections: 2, seq: 8, peerSession: 5 }), o)).toBeNull(); // about an older session of ours
  });

  it('a copy that does not hold the last write, named by the tag it does hold', async () => {
    const a = writeData(1, 0, 100, 8, 4, 512);
    const b = writeData(1, 0, 101, 8, 4, 512);
    const disk = new Uint8Array(16 * 512);
    disk.set(b, 8 * 512);
    const read = async (lba: number, count: number): Promise<Uint8Array> => disk.slice(lba * 512, (lba + count) * 512);
    const written = [{ lba: 8, data: a, tag: 100 }, { lba: 8, data: b, tag: 101 }];
    expect(await checkReadBack(read, written)).toBeNull();
    disk.set(a.subarray(512, 1024), 9 * 512);
    expect(await checkReadBack(read, written)).toBe('sector 9 of the target\'s copy holds write tag 100, not write tag 101 (the last written there)');
    disk.fill(0, 10 * 512, 11 * 512);
    disk.set(a.subarray(512, 1024), 9 * 512);
    disk.set(b.subarray(512, 1024), 9 * 512);
    expect(await checkReadBack(read, written)).toBe('sector 10 of the target\'s copy holds zeros (never written), not write tag 101 (the last written there)');
    disk[11 * 512 + 100] = disk[11 * 512 + 100]! ^ 1;
    disk.set(b.subarray(1024, 1536), 10 * 512);
    expect(await checkReadBack(read, written)).toMatch(/^sector 11 of the target's copy holds bytes no write of this battery wrote/);
  });
});
