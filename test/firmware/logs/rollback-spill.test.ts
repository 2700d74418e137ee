import { describe, expect, it } from 'vitest';
import type { MirrorlabError } from '../../../firmware/errors.ts';
import { RollbackSpill, SpillAreaError, type SpillSink } from '../../../firmware/logs/rollback-spill.ts';
import type { ChannelWrite, MirrorMode } from '../../../firmware/mirror/types.ts';
import type { BlockDevice } from '../../../firmware/ports/block-device.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { runUntilSettled } from '../../host/disks/helpers.ts';

/** A host write as a source channel sees it; records when its host was acknowledged (async) and any refusal. */
class Write implements ChannelWrite {
  admittedAt = -1;
  refusal: MirrorlabError | null = null;
  readonly data: Uint8Array;
  constructor(readonly tag: number, readonly mode: MirrorMode, sectors: number, private readonly clock: VirtualClock, readonly lun = 0) {
    this.data = new Uint8Array(sectors * 512).fill(tag & 0xff);
    this.data[0] = tag >> 8;
  }
  get lba() { return this.tag * 8; }
  get count() { return this.data.length / 512; }
  admitted() {
    expect(this.admittedAt).toBe(-1); // exactly once
    this.admittedAt = this.clock.now();
  }
  confirmed(error?: MirrorlabError) {
    if (error) this.refusal = error;
  }
  suspended() {}
  refusalReporter() {
    return (error: MirrorlabError) => (this.refusal = error);
  }
}

/** The rollback log as the spill sees it: room for `room` writes, FIFO; `confirm` frees the oldest. */
class Log implements SpillSink {
  readonly taken: ChannelWrite[] = [];
  readonly lostWrites: { w: ChannelWrite; error: MirrorlabError }[] = [];
  private held = 0;
  private readonly queue: { w: ChannelWrite; granted: () => void }[] = [];
  constructor(private readonly room: number) {}
  admit(w: ChannelWrite, granted: () => void) {
    this.queue.push({ w, granted });
    this.grant();
  }
  lost(w: ChannelWrite, error: MirrorlabError) {
    this.lostWrites.push({ w, error });
    w.confirmed(error);
  }
  confirm(n: number) {
    this.held -= Math.min(n, this.held);
    this.grant();
  }
  private grant() {
    while (this.held < this.room && this.queue.length > 0) {
      const { w, granted } = this.queue.shift()!;
      this.held++;
      w.admitted();
      this.taken.push(w);
      granted();
    }
  }
}

function setup(opts: { ringSectors: number; entriesMax?: number; room: number; device?: (d: MemoryDisk) => BlockDevice }) {
  const clock = new VirtualClock();
  const disk = new MemoryDisk({ name: 'spill', sectorCount: 1024, clock, service: { fixedMs: 0.1, perByteMs: 0.00001 } });
  const spill = new RollbackSpill(opts.device ? opts.device(disk) : disk, { firstLba: 100, sectors: opts.ringSectors, entriesMax: opts.entriesMax ?? 1000 });
  const log = new Log(opts.room);
  spill.attach(log);
  return { clock, disk, spill, log };
}

/** Lets the device work without moving far in virtual time. */
const idle = (clock: VirtualClock) => runUntilSettled(clock, new Promise<void>((r) => clock.setTimeout(r, 50)));

describe('RollbackSpill (docs/tag-tables.md, "Rollback-log spill")', () => {
  it('async writes past the log\'s room are acknowledged once on the device, and come back in order, byte for byte, as the log frees room', async () => {
    const { clock, spill, log } = setup({ ringSectors: 256, room: 4 });
    const writes = Array.from({ length: 40 }, (_, i) => new Write(i + 1, 'async', 1 + (i % 3), clock));
    for (const w of writes) spill.push(w);
    const copies = writes.map((w) => w.data.slice());
    await idle(clock);
    // Every host has its ack; the log holds the first four; the rest wait in the spill, not in memory.
    expect(writes.every((w) => w.admittedAt >= 0)).toBe(true);
    expect(log.taken).toHaveLength(4);
    expect(spill.stats()).toMatchObject({ entries: 36, spilled: 40, hostWaits: 0 });
    for (const w of writes) w.data.fill(0xee); // the hosts reuse their buffers: what comes back must be what was spilled
    for (let k = 0; k < 40; k++) {
      log.confirm(1);
      await idle(clock);
    }
    expect(log.taken.map((w) => w.tag)).toEqual(writes.map((w) => w.tag));
    log.taken.forEach((w, i) => {
      expect([w.lun, w.lba, w.count]).toEqual([writes[i]!.lun, writes[i]!.lba, writes[i]!.count]);
      expect(w.data).toEqual(copies[i]);
    });
    expect(spill.stats()).toMatchObject({ entries: 0, bytes: 0, readBack: 40, lost: 0 });
    expect(spill.active).toBe(false);
  });

  it('a full ring makes hosts wait, in order, until the log takes what is spilled; the descriptor bound does the same', async () => {
    for (const bound of [{ ringSectors: 20, entriesMax: 1000 }, { ringSectors: 256, entriesMax: 2 }]) {
      const { clock, spill, log } = setup({ ...bound, room: 1 });
      // 8-sector writes take 9 sectors with their header: two fit a 20-sector ring.
      const writes = Array.from({ length: 6 }, (_, i) => new Write(i + 1, 'async', 8, clock));
      for (const w of writes) spill.push(w);
      await idle(clock);
      // One in the log, two spilled; the third and later waited at push (the third got in once the first left).
      expect(writes.map((w) => w.admittedAt >= 0)).toEqual([true, true, true, false, false, false]);
      expect(spill.stats()).toMatchObject({ entries: 2, waiting: 3, hostWaits: 4 });
      for (let k = 0; k < 6; k++) {
        log.confirm(1);
        await idle(clock);
      }
      expect(log.taken.map((w) => w.tag)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(writes.every((w) => w.admittedAt >= 0)).toBe(true);
    }
  });

  it('writes of other modes, and one too large for the ring, keep their place in memory; only async data goes to the device', async () => {
    const { clock, spill, log } = setup({ ringSectors: 16, room: 1 });
    const writes = [new Write(1, 'async', 1, clock), new Write(2, 'speculative', 1, clock), new Write(3, 'async', 32, clock), new Write(4, 'async', 2, clock), new Write(5, 'sync', 1, clock)];
    for (const w of writes) spill.push(w);
    await idle(clock);
    expect(writes.map((w) => w.admittedAt >= 0)).toEqual([true, false, false, true, false]);
    for (let k = 0; k < 5; k++) {
      log.confirm(1);
      await idle(clock);
    }
    expect(log.taken.map((w) => w.tag)).toEqual([1, 2, 3, 4, 5]);
    expect(log.taken[1]).toBe(writes[1]); // the speculative write itself: its host waits for the target
    expect(spill.stats()).toMatchObject({ spilled: 2, readBack: 2 }); // writes 1 and 4
  });

  it('a record damaged on the device is not sent: the write is reported lost (its refusal reported), and the writes after it go on in order', async () => {
    const { clock, disk, spill, log } = setup({ ringSectors: 64, room: 1 });
    const writes = Array.from({ length: 5 }, (_, i) => new Write(i + 1, 'async', 1, clock));
    for (const w of writes) spill.push(w);
    await idle(clock);
    // Write 1 is in the log and 2 and 3 are read ahead; write 4 (two sectors each, from sector 100) is still only on the device.
    const sector = disk.peek(106, 1);
    sector[60]! ^= 1;
    await runUntilSettled(clock, disk.write(106, sector));
    for (let k = 0; k < 5; k++) {
      log.confirm(1);
      await idle(clock);
    }
    expect(log.taken.map((w) => w.tag)).toEqual([1, 2, 3, 5]);
    expect(log.lostWrites.map((l) => [l.w.tag, l.error.code])).toEqual([[4, 'ML_ERR_SPILL_READ']]);
    expect(log.lostWrites[0]!.error.message).toMatch(/tag 4 .*CRC does not match/);
    expect(writes[3]!.refusal?.code).toBe('ML_ERR_SPILL_READ');
    expect(spill.stats().lost).toBe(1);
  });

  it('a device that refuses the spill write keeps the write in memory, unacknowledged until the log takes it', async () => {
    let fail = true;
    const { clock, spill, log } = setup({
      ringSectors: 64, room: 1,
      device: (d) => ({ name: d.name, sectorSize: d.sectorSize, sectorCount: d.sectorCount, read: (l, c) => d.read(l, c), flush: () => d.flush(),
        write: (l, b) => (fail ? Promise.reject(new Error('media')) : d.write(l, b)) }),
    });
    const writes = [1, 2, 3].map((t) => new Write(t, 'async', 1, clock));
    for (const w of writes) spill.push(w);
    await idle(clock);
    expect(writes.map((w) => w.admittedAt >= 0)).toEqual([true, false, false]);
    fail = false;
    for (let k = 0; k < 3; k++) {
      log.confirm(1);
      await idle(clock);
    }
    expect(log.taken.map((w) => w.tag)).toEqual([1, 2, 3]);
  });

  it('after stop, completions still due do nothing', async () => {
    const { clock, spill, log } = setup({ ringSectors: 64, room: 0 });
    const w = new Write(1, 'async', 1, clock);
    spill.push(w);
    spill.stop();
    await idle(clock);
    expect(w.admittedAt).toBe(-1);
    expect(log.taken).toEqual([]);
  });

  it('refuses a ring outside its device, naming both', () => {
    const clock = new VirtualClock();
    const disk = new MemoryDisk({ name: 'd', sectorCount: 64, clock });
    expect(() => new RollbackSpill(disk, { firstLba: 60, sectors: 8, entriesMax: 4 })).toThrow(SpillAreaError);
    expect(() => new RollbackSpill(disk, { firstLba: 60, sectors: 8, entriesMax: 4 })).toThrow(/\[60, \+8\) does not lie within the device's 64 sectors/);
  });
});
