import { describe, expect, it } from 'vitest';
import { encodeRecord, type MetadataOp } from '../../../firmware/metadata/format.ts';
import type { MetadataStore, MetadataStoreOptions } from '../../../firmware/metadata/metadata-store.ts';
import { crc32cRange } from '../../../firmware/protocol/crc.ts';
import type { VirtualClock } from '../../../host/clock/virtual.ts';
import type { MemoryDisk } from '../../../host/disks/memory.ts';
import { SeededRandom } from '../../../host/random.ts';
import { withPlantedBugs } from '../../support/planted-bugs.ts';
import { BLANK, MetadataModel, Workload, memoryDisk, openStore, recoveredState, runUntilSettled } from './helpers.ts';

const SRC = { peer: 'B', lun: 0, role: 'source' } as const;
const SMALL: MetadataStoreOptions = { areaSectors: 128, ringSectors: 8 };

/** Re-seals a header (and the body CRC) after a test changed bytes: valid CRCs over whatever it holds now. */
function reseal(bytes: Uint8Array, kind: 'record' | 'checkpoint'): Uint8Array {
  const v = new DataView(bytes.buffer, bytes.byteOffset);
  const lengthAt = kind === 'record' ? 24 : 32;
  const bodyBytes = v.getUint32(lengthAt);
  if (64 + bodyBytes <= bytes.length) v.setUint32(lengthAt + 4, crc32cRange(bytes, 64, 64 + bodyBytes));
  v.setUint32(60, crc32cRange(bytes, 0, 60));
  return bytes;
}

/** The sector of the ring that the log's absolute position `pos` falls in. */
function ringLba(store: MetadataStore, pos: number): number {
  const l = store.layout;
  return l.ringLba + (pos % l.ringBytes) / l.sectorSize;
}

/** Overwrites sectors behind the store's back (what a stray writer or bit rot would do). */
async function put(clock: VirtualClock, disk: MemoryDisk, lba: number, bytes: Uint8Array): Promise<void> {
  await runUntilSettled(clock, disk.write(lba, bytes));
}

/** A store with some committed state on a small area, and the model of it. */
async function committed(seed: number, commits: number, options: MetadataStoreOptions = SMALL) {
  const { clock, disk } = memoryDisk({ sectorCount: options.areaSectors ?? 128 });
  const { store } = await openStore(clock, disk, options);
  const model = new MetadataModel();
  const w = new Workload(seed, store, model);
  const states = [model.snapshot()];
  for (let i = 0; i < commits; i++) {
    w.step(1 + (i % 4));
    await runUntilSettled(clock, store.commit());
    states.push(model.snapshot());
  }
  return { clock, disk, store, model, states };
}

describe('recovery over a lapped ring (docs/tag-tables.md, "Metadata format")', () => {
  it('hundreds of commits through an 8-sector ring: many checkpoints, and every reopen recovers exactly the last commit', async () => {
    const { clock, disk, store, model } = await committed(1, 0);
    const w = new Workload(2, store, model);
    for (let i = 0; i < 300; i++) {
      w.step(1 + (i % 3));
      await runUntilSettled(clock, store.commit());
      if (i % 37 === 36) {
        const { recovered } = await openStore(clock, disk, SMALL);
        expect(recoveredState(recovered)).toBe(model.snapshot());
        expect(recovered.discarded).toBe(0);
      }
    }
    expect(store.stats().checkpoints).toBeGreaterThan(20);
  });

  it('with recovery trusting any sealed record past the log\'s end (planted bug), stale laps are replayed and some reopen is wrong', async () => {
    const wrong = await withPlantedBugs(['metadata-replays-stale-records'], async () => {
      const { clock, disk, store, model } = await committed(1, 0);
      const w = new Workload(2, store, model);
      let n = 0;
      for (let i = 0; i < 300; i++) {
        w.step(1 + (i % 3));
        await runUntilSettled(clock, store.commit());
        if (i % 37 === 36 && recoveredState((await openStore(clock, disk, SMALL)).recovered) !== model.snapshot()) n++;
      }
      return n;
    });
    expect(wrong).toBeGreaterThan(0);
  });
});

describe('hostile bytes in the log end it cleanly (counted in discarded), never a throw', () => {
  /** Writes `bytes` where the next record would go, reopens, and checks recovery stopped before it. */
  async function plantAtEnd(make: (seq: number, pos: number) => Uint8Array) {
    const { clock, disk, store, model } = await committed(3, 12, { areaSectors: 256 });
    const { pos, seq } = store.logEnd;
    await put(clock, disk, ringLba(store, pos), make(seq, pos));
    const reopened = await openStore(clock, disk, { areaSectors: 256 });
    expect(recoveredState(reopened.recovered)).toBe(model.snapshot());
    // The store goes on over the planted bytes, and its own records are found after it.
    const w = new Workload(4, reopened.store, model);
    w.step(5);
    await runUntilSettled(clock, reopened.store.commit());
    w.step(5);
    await runUntilSettled(clock, reopened.store.commit());
    const again = await openStore(clock, disk, { areaSectors: 256 });
    expect(recoveredState(again.recovered)).toBe(model.snapshot());
    return reopened.recovered;
  }
  const ops = (o: MetadataOp[]) => o;

  it('a record with valid CRCs naming a mirror never defined', async () => {
    const r = await plantAtEnd((seq, pos) => encodeRecord(seq, pos, ops([{ op: 'entry', id: 77, entry: { tag: 1, lun: 0, lba: 0, count: 1 } }]), 512));
    expect(r.discarded).toBe(512);
  });

  it('a record with valid CRCs lowering the tag reservation', async () => {
    const r = await plantAtEnd((seq, pos) => encodeRecord(seq, pos, ops([{ op: 'tags', upTo: 0 }, { op: 'session', session: 5 }]), 512));
    expect(r.discarded).toBe(512);
  });

  it('a record with valid CRCs whose mirror state byte is out of range', async () => {
    const r = await plantAtEnd((seq, pos) => {
      const b = encodeRecord(seq, pos, ops([{ op: 'meta', id: 0, meta: { state: 'in-sync', doneSectors: 1, overflowed: false } }]), 512);
      b[64 + 3] = 9; // code, id (2 bytes), then the state
      return reseal(b, 'record');
    });
    expect(r.discarded).toBe(512);
  });

  it('a sealed header claiming a body longer than the ring', async () => {
    const r = await plantAtEnd((seq, pos) => {
      const b = encodeRecord(seq, pos, ops([{ op: 'session', session: 5 }]), 512);
      new DataView(b.buffer).setUint32(24, 0x7fff_0000);
      return reseal(b, 'record');
    });
    expect(r.discarded).toBeGreaterThan(0);
  });

  it('a valid record from the future (a sequence number skipped) and one at the wrong position', async () => {
    expect((await plantAtEnd((seq, pos) => encodeRecord(seq + 1, pos, ops([{ op: 'session', session: 5 }]), 512))).discarded).toBe(512);
    expect((await plantAtEnd((seq, pos) => encodeRecord(seq, pos + 512, ops([{ op: 'session', session: 5 }]), 512))).discarded).toBe(512);
  });

  it('a record of an earlier lap ends the log cleanly: nothing discarded', async () => {
    const r = await plantAtEnd((seq, pos) => encodeRecord(seq - 5, pos, ops([{ op: 'session', session: 5 }]), 512));
    expect(r.discarded).toBe(0);
  });

  it('a torn record (the body CRC fails) with random bytes after its header', async () => {
    const r = await plantAtEnd((seq, pos) => {
      const b = encodeRecord(seq, pos, ops([{ op: 'session', session: 5 }, { op: 'tags', upTo: 2 ** 40 }]), 512);
      b[70]! ^= 0xff;
      return b;
    });
    expect(r.discarded).toBe(512);
  });
});

describe('checkpoints: a damaged one falls back to the other slot', () => {
  /** Two checkpoints on the device (a ring small enough to need a second), and the states committed. */
  async function twoCheckpoints() {
    const c = await committed(5, 40);
    expect(c.store.stats().checkpoints).toBeGreaterThanOrEqual(2);
    return c;
  }

  async function newestSlot(c: Awaited<ReturnType<typeof twoCheckpoints>>): Promise<number> {
    const gen = (slot: number) => new DataView(c.disk.peek(c.store.layout.slotLba[slot]!, 1).buffer).getUint32(12);
    return gen(1) > gen(0) ? 1 : 0;
  }

  it('a flipped bit in the newest checkpoint: recovery takes the older one and the log after it, a state that was committed', async () => {
    const c = await twoCheckpoints();
    const slot = await newestSlot(c);
    const lba = c.store.layout.slotLba[slot]!;
    const b = c.disk.peek(lba, 1);
    b[80]! ^= 0x10;
    await put(c.clock, c.disk, lba, b);
    const { recovered } = await openStore(c.clock, c.disk, SMALL);
    expect(recovered.blank).toBe(false);
    expect(recovered.discarded).toBeGreaterThan(0);
    expect(c.states).toContain(recoveredState(recovered));
  });

  it('the newest checkpoint sealed with valid CRCs but laid out for another area: not trusted either', async () => {
    const c = await twoCheckpoints();
    const slot = await newestSlot(c);
    const lba = c.store.layout.slotLba[slot]!;
    const sectors = c.store.layout.slotSectors;
    const b = c.disk.peek(lba, sectors);
    new DataView(b.buffer).setUint32(40, sectors + 1);
    await put(c.clock, c.disk, lba, reseal(b, 'checkpoint'));
    const { recovered } = await openStore(c.clock, c.disk, SMALL);
    expect(recovered.blank).toBe(false);
    expect(c.states).toContain(recoveredState(recovered));
  });

  it('the checkpoint written after a reopen damaged later: the fallback stops where the older log ended, never running on into the newer log', async () => {
    // A big ring: the older checkpoint's log is still intact when the newer one's records follow it.
    const area = { areaSectors: 512, ringSectors: 256 };
    const c = await committed(6, 10, area);
    const { store } = await openStore(c.clock, c.disk, area);
    const model = c.model;
    store.setSession(424_242); // only the checkpoint after the reopen carries this change
    model.setSession(424_242);
    await runUntilSettled(c.clock, store.commit());
    c.states.push(model.snapshot());
    const w = new Workload(60, store, model, { firstTag: 5000 });
    for (let i = 0; i < 5; i++) {
      w.step(3);
      await runUntilSettled(c.clock, store.commit());
      c.states.push(model.snapshot());
    }
    const lba = store.layout.slotLba[1]!; // the reopen's checkpoint went to the slot the first one was not in
    const b = c.disk.peek(lba, 1);
    b[70]! ^= 1;
    await put(c.clock, c.disk, lba, b);
    const { recovered } = await openStore(c.clock, c.disk, area);
    expect(recovered.session).not.toBe(424_242);
    expect(c.states).toContain(recoveredState(recovered));
    expect(recoveredState(recovered)).toBe(c.states[10]); // exactly the state before the reopen
  });

  it('both checkpoints destroyed: blank, and the bytes counted', async () => {
    const c = await twoCheckpoints();
    for (const lba of c.store.layout.slotLba) await put(c.clock, c.disk, lba, new Uint8Array(512).fill(0xa5));
    const { recovered } = await openStore(c.clock, c.disk, SMALL);
    expect(recovered).toMatchObject({ blank: true, discarded: 1024 });
    expect(recoveredState(recovered)).toBe(BLANK);
  });
});

describe('garbage anywhere (seeded property, bounded)', () => {
  it('a device of random bytes opens blank without a throw, and a new history on it recovers exactly', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const { clock, disk } = memoryDisk({ sectorCount: 128 });
      const rnd = new SeededRandom(seed);
      const junk = new Uint8Array(128 * 512).map(() => rnd.int(256));
      await put(clock, disk, 0, junk);
      const { store, recovered } = await openStore(clock, disk, SMALL);
      expect(recovered.blank).toBe(true);
      expect(recovered.discarded).toBe(1024);
      const model = new MetadataModel();
      const w = new Workload(seed, store, model);
      for (let i = 0; i < 30; i++) {
        w.step(2);
        await runUntilSettled(clock, store.commit());
      }
      expect(recoveredState((await openStore(clock, disk, SMALL)).recovered)).toBe(model.snapshot());
    }
  });

  it('random sectors of a used area overwritten with random bytes: recovery never throws and gives a committed state (or blank)', async () => {
    for (let seed = 1; seed <= 30; seed++) {
      const c = await committed(seed, 50);
      const rnd = new SeededRandom(seed, 99);
      for (let k = 0; k < 1 + rnd.int(4); k++) {
        const lba = rnd.int(128);
        await put(c.clock, c.disk, lba, new Uint8Array(512).map(() => rnd.int(256)));
      }
      const { recovered } = await openStore(c.clock, c.disk, SMALL);
      expect([BLANK, ...c.states]).toContain(recoveredState(recovered));
    }
  });

  it('sealed records and checkpoints of random ops, some impossible, some with a byte changed (valid CRCs): never a throw, each refused or taken', async () => {
    const c = await committed(11, 8, { areaSectors: 256 });
    const { pos, seq } = c.store.logEnd;
    const rnd = new SeededRandom(12);
    const slot = c.store.layout.slotLba[0]!;
    const slotBefore = c.disk.peek(slot, 4);
    const before = (await openStore(c.clock, c.disk, { areaSectors: 256 })).recovered;
    const randomOp = (): MetadataOp => {
      const id = rnd.int(8); // the workload defined 4 mirrors: ids 4-7 are impossible
      switch (rnd.int(6)) {
        case 0: return { op: 'entry', id, entry: { tag: rnd.int(1000), lun: rnd.int(3), lba: rnd.int(1 << 20), count: 1 + rnd.int(8) } };
        case 1: return { op: 'drop', id, tag: rnd.int(100) };
        case 2: return { op: 'meta', id, meta: { state: 'resyncing', doneSectors: rnd.int(1000), overflowed: rnd.chance(1, 2) } };
        case 3: return { op: 'session', session: rnd.uint32() };
        case 4: return { op: 'tags', upTo: rnd.int(2) === 0 ? 0 : 2 ** 40 };
        default: return { op: 'mirror', id: 4 + rnd.int(3), key: { peer: 'Z', lun: rnd.int(3), role: 'source' } };
      }
    };
    const outcomes = { taken: 0, refused: 0 };
    for (let i = 0; i < 120; i++) {
      const record = encodeRecord(seq, pos, Array.from({ length: 1 + rnd.int(4) }, randomOp), 512);
      const bodyBytes = new DataView(record.buffer).getUint32(24);
      if (rnd.chance(1, 2)) record[64 + rnd.int(bodyBytes)] = rnd.int(256);
      await put(c.clock, c.disk, ringLba(c.store, pos), reseal(record, 'record'));
      if (i % 3 === 2) {
        // The only checkpoint's body changed and resealed: refused (blank) or rebuilding something, never a throw.
        const cp = slotBefore.slice();
        cp[64 + rnd.int(new DataView(cp.buffer).getUint32(32))] = rnd.int(256);
        await put(c.clock, c.disk, slot, reseal(cp, 'checkpoint'));
        await openStore(c.clock, c.disk, { areaSectors: 256 });
        await put(c.clock, c.disk, slot, slotBefore);
        continue;
      }
      const { recovered } = await openStore(c.clock, c.disk, { areaSectors: 256 });
      if (recovered.records === before.records) {
        outcomes.refused++;
        expect(recoveredState(recovered)).toBe(c.model.snapshot()); // refused whole
        expect(recovered.discarded).toBe(512);
      } else {
        outcomes.taken++;
        expect(recovered.records).toBe(before.records + 1);
      }
    }
    expect(outcomes.taken).toBeGreaterThan(10);
    expect(outcomes.refused).toBeGreaterThan(10);
  });

  it('an old history whose checkpoints were wiped: a new history on the same area never replays the old records', async () => {
    const old = await committed(7, 30, { areaSectors: 256 });
    for (const lba of old.store.layout.slotLba) await put(old.clock, old.disk, lba, new Uint8Array(512));
    const { store, recovered } = await openStore(old.clock, old.disk, { areaSectors: 256 });
    expect(recovered.blank).toBe(true);
    const model = new MetadataModel();
    store.addEntry(SRC, { tag: 1, lun: 0, lba: 0, count: 1 });
    model.addEntry(SRC, { tag: 1, lun: 0, lba: 0, count: 1 });
    await runUntilSettled(old.clock, store.commit());
    expect(recoveredState((await openStore(old.clock, old.disk, { areaSectors: 256 })).recovered)).toBe(model.snapshot());
  });
});
