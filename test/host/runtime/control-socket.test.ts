import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../../host/random.ts';
import { ControlClient } from '../../../host/runtime/control-client.ts';
import { CONTROL_MAGIC, ControlFrameReader, encodeControlFrame } from '../../../host/runtime/control-protocol.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { freshDir, rawExchange, startController, writeConfig } from './processes.ts';

const scratch = scratchDir('control');

function prefix(headerBytes: number, dataBytes: number, magic = CONTROL_MAGIC): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(magic, 0);
  b.writeUInt32BE(headerBytes, 4);
  b.writeUInt32BE(dataBytes, 8);
  return b;
}

const header = (replies: { header: unknown }[]) => replies.map((r) => r.header);

describe('the control socket protocol', () => {
  it('reassembles frames split and coalesced anywhere, and refuses a bad magic or a length out of bounds', () => {
    const frames = [encodeControlFrame({ id: 1, op: 'status' }), encodeControlFrame({ id: 2, op: 'write', lun: 0, lba: 0 }, new Uint8Array(512).fill(7))];
    const all = Buffer.concat(frames);
    for (let cut = 1; cut < all.length; cut += 37) {
      const r = new ControlFrameReader();
      const got = [...r.push(all.subarray(0, cut)), ...r.push(all.subarray(cut))];
      expect(got.map((f) => f.header)).toEqual([{ id: 1, op: 'status' }, { id: 2, op: 'write', lun: 0, lba: 0 }]);
      expect(got[1]!.data).toEqual(Buffer.alloc(512, 7));
      expect(r.buffered).toBe(0);
    }
    expect(() => new ControlFrameReader().push(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toThrow(/starts with "MLC1", these bytes start with 47455420/);
    expect(() => new ControlFrameReader().push(prefix(0xffffffff, 0))).toThrow(/header has 2 to 65536 bytes, this frame declares 4294967295/);
    expect(() => new ControlFrameReader(1024).push(prefix(10, 1025))).toThrow(/at most 1024 bytes of data, this one declares 1025/);
    const notObject = Buffer.from('[1]');
    expect(() => new ControlFrameReader().push(Buffer.concat([prefix(notObject.length, 0), notObject]))).toThrow(/one JSON object/);
  });
});

describe('a controller under a hostile control client', () => {
  it('answers garbage, oversized lengths, bad JSON, bad requests, half frames and too many connections with one error each, and keeps serving', async () => {
    const dir = await freshDir(scratch);
    const control = join(dir, 'h.sock');
    const config = await writeConfig(dir, 'h', {
      name: 'H', id: 9, luns: [{ lun: 0, volume: 'mem:4MiB' }],
      control: { path: control, connectionsMax: 3, requestsInFlightMax: 4, frameTimeoutMs: 300 },
    });
    const p = await startController({ configPath: config });

    // Unreadable streams: one reply with id null, then the connection is closed.
    for (const [bytes, message] of [
      [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /starts with "MLC1"/],
      [prefix(0xffffffff, 0), /declares 4294967295/],
      [prefix(16, 0xfffffff0), /carries at most \d+ bytes of data, this one declares 4294967280/],
      [Buffer.concat([prefix(5, 0), Buffer.from('{oops')]), /one JSON object/],
    ] as const) {
      const r = await rawExchange(control, [bytes]);
      expect(r.closed).toBe(true);
      expect(header(r.replies)).toEqual([{ id: null, ok: false, code: 'ML_ERR_CONTROL_FRAME', message: expect.stringMatching(message) }]);
    }

    // Readable frames with bad requests: an error reply each, and the same connection goes on to a good request.
    const bad = [
      encodeControlFrame({ id: 1, op: 'format' }),
      encodeControlFrame({ id: 2, op: 'read', lun: 0, lba: -1, count: 1 }),
      encodeControlFrame({ id: 3, op: 'write', lun: 0, lba: 0 }),
      encodeControlFrame({ id: 4, op: 'status' }, new Uint8Array(3)),
      encodeControlFrame({ op: 'status' }),
      encodeControlFrame({ id: 6, op: 'status', extra: true }),
      encodeControlFrame({ id: 7, op: 'status' }),
    ];
    const r = await rawExchange(control, [Buffer.concat(bad)], 500);
    expect(r.closed).toBe(false);
    const replies = header(r.replies) as { id: number | null; ok: boolean; code?: string; message?: string }[];
    expect(replies.map((x) => [x.id, x.ok, x.code])).toEqual([
      [1, false, 'ML_ERR_CONTROL_REQUEST'], [2, false, 'ML_ERR_CONTROL_REQUEST'], [3, false, 'ML_ERR_CONTROL_REQUEST'],
      [4, false, 'ML_ERR_CONTROL_REQUEST'], [null, false, 'ML_ERR_CONTROL_REQUEST'], [6, false, 'ML_ERR_CONTROL_REQUEST'], [7, true, undefined],
    ]);
    expect(replies[0]!.message).toBe('"op" must be one of write, read, flush, status, stop, lock');
    expect(replies[2]!.message).toBe('a write carries its data (a whole number of sectors)');
    expect(replies[3]!.message).toBe('status carries no data');
    expect(replies[5]!.message).toBe('request: unknown field extra');

    // A frame begun and never finished: closed after the frame timeout.
    const half = await rawExchange(control, [prefix(100, 0), Buffer.from('{"id":')], 3_000);
    expect(half.closed).toBe(true);
    expect(header(half.replies)).toEqual([{ id: null, ok: false, code: 'ML_ERR_CONTROL_TIMEOUT', message: 'a frame was begun and not finished within 300 ms' }]);

    // More connections than allowed: the extra one is told so and closed; the others are served.
    const held = await Promise.all([ControlClient.connect(control), ControlClient.connect(control), ControlClient.connect(control)]);
    const extra = await rawExchange(control, [], 1_000);
    expect(header(extra.replies)).toEqual([{ id: null, ok: false, code: 'ML_ERR_CONTROL_BUSY', message: 'too many control connections (at most 3)' }]);
    expect((await held[0]!.status()).frontEnds[0]!.connections).toBe(3);
    await Promise.all(held.map((c) => c.close()));

    // Seeded random bytes, with and without a valid prefix, on fresh connections.
    const random = new SeededRandom(4711);
    for (let i = 0; i < 60; i++) {
      const junk = Buffer.alloc(1 + random.int(3000));
      for (let j = 0; j < junk.length; j++) junk[j] = random.int(256);
      const pieces = i % 2 === 0 ? [junk] : [prefix(random.int(200) + 2, random.int(5000)), junk];
      await rawExchange(control, pieces, 20);
    }

    // Still serving, still whole.
    const client = await ControlClient.connect(control);
    const data = new Uint8Array(4096).fill(0xc3);
    await client.write(0, 64, data);
    expect(await client.read(0, 64, 8)).toEqual(data);
    expect((await client.status()).state).toBe('running');
    await client.close();
    expect(p.child.exitCode).toBe(null);
    p.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(p.stderr()).not.toMatch(/internal error|uncaught|TypeError/i);
  });

  it('keeps a client that writes faster than it reads within its request bound: requests past it wait in the socket', async () => {
    const dir = await freshDir(scratch);
    const control = join(dir, 'f.sock');
    const config = await writeConfig(dir, 'f', { name: 'F', id: 3, luns: [{ lun: 0, volume: 'mem:16MiB' }], control: { path: control, requestsInFlightMax: 2 } });
    const p = await startController({ configPath: config });
    const client = await ControlClient.connect(control);
    const writes = Array.from({ length: 200 }, (_, i) => client.write(0, i * 8, new Uint8Array(4096).fill(i & 0xff)));
    let peak = 0;
    const watcher = await ControlClient.connect(control);
    const watching = (async () => {
      for (let k = 0; k < 20; k++) peak = Math.max(peak, (await watcher.status()).frontEnds[0]!.inFlight);
    })();
    await Promise.all(writes);
    await watching;
    // The watcher's own status request counts as one in flight on its connection.
    expect(peak).toBeLessThanOrEqual(3);
    expect(await client.read(0, 199 * 8, 1)).toEqual(new Uint8Array(512).fill(199));
    await Promise.all([client.close(), watcher.close()]);
    p.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
  });
});
