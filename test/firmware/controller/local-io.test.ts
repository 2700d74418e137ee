import { describe, expect, it } from 'vitest';
import { RegionLockedError } from '../../../firmware/controller/storage-controller.ts';
import { RawPeer } from '../mirror/raw-peer.ts';

/** Wait for a promise on the virtual clock; returns its value or its error. */
async function settled<T>(p: RawPeer, promise: Promise<T>): Promise<{ value?: T; error?: { code: string; message: string } }> {
  const out: { value?: T; error?: { code: string; message: string } } = {};
  let done = false;
  promise.then((v) => (out.value = v), (e: { code: string; message: string }) => (out.error = e)).finally(() => (done = true));
  await p.clock.run({ until: () => done });
  return out;
}

function write(p: RawPeer, lun: number, lba: number, sectors: number): Promise<{ code: string; message: string } | undefined> {
  return new Promise((resolve) => p.controller.submitWrite(lun, lba, new Uint8Array(sectors * 512).fill(9), (err) => resolve(err)));
}

/**
 * Local I/O respects the lock table (StorageController's class doc): unlocked I/O is refused where
 * a lock forbids it; I/O on a locked region goes through the lock's handle.
 */
describe('local I/O and region locks', () => {
  it("an unlocked local write under a peer's mirror lock is refused; elsewhere, and after the UNLOCK, it goes through", async () => {
    const p = new RawPeer();
    p.lock(1, 1, 0, 64);
    await p.clock.advance(1);
    const refused = await settled(p, write(p, 0, 8, 8));
    expect(refused.value).toBeInstanceOf(RegionLockedError);
    expect(refused.value).toMatchObject({ code: 'ML_ERR_REGION_LOCKED', message: expect.stringMatching(/B: write to LUN 0 \[8, \+8\) is under a lock/) });
    expect((await settled(p, write(p, 0, 64, 8))).value).toBeUndefined();
    // A write lock lets others read.
    expect((await settled(p, p.controller.read(0, 0, 8))).value).toHaveLength(8 * 512);
    p.unlock(2, 1);
    await p.clock.advance(1);
    expect((await settled(p, write(p, 0, 8, 8))).value).toBeUndefined();
  });

  it('a local read lock: others may neither read nor write the region; the holder reads through its handle', async () => {
    const p = new RawPeer();
    const lock = await p.controller.localLock(0, 100, 20, 'read');
    const read = await settled(p, p.controller.read(0, 110, 2));
    expect(read.error).toMatchObject({ code: 'ML_ERR_REGION_LOCKED', message: expect.stringMatching(/read of LUN 0 \[110, \+2\) is under a read lock/) });
    expect((await settled(p, write(p, 0, 119, 1))).value).toMatchObject({ code: 'ML_ERR_REGION_LOCKED' });
    expect((await settled(p, lock.read(110, 2))).value).toHaveLength(1024);
    const written = await settled(p, lock.write(110, new Uint8Array(512)));
    expect(written.error).toMatchObject({ code: 'ML_ERR_REGION_LOCKED', message: expect.stringMatching(/a read lock allows only reads/) });
    lock.release();
    expect((await settled(p, p.controller.read(0, 110, 2))).value).toHaveLength(1024);
  });

  it('a local write lock: the holder writes inside it through its handle, not outside it, not after release', async () => {
    const p = new RawPeer();
    const lock = await p.controller.localLock(0, 200, 16, 'write');
    expect((await settled(p, lock.write(208, new Uint8Array(1024).fill(5)))).error).toBeUndefined();
    expect((await settled(p, p.controller.read(0, 208, 1))).value![0]).toBe(5); // others may read under a write lock
    expect((await settled(p, write(p, 0, 210, 1))).value).toMatchObject({ code: 'ML_ERR_REGION_LOCKED' });
    const outside = await settled(p, lock.write(215, new Uint8Array(1024)));
    expect(outside.error).toMatchObject({ code: 'ML_ERR_REGION_LOCKED', message: expect.stringMatching(/\[215, \+2\): outside the local lock \[200, \+16\)/) });
    lock.release();
    lock.release(); // twice does nothing
    const late = await settled(p, lock.read(200, 1));
    expect(late.error).toMatchObject({ code: 'ML_ERR_REGION_LOCKED', message: expect.stringMatching(/this local lock was released/) });
    expect((await settled(p, write(p, 0, 210, 1))).value).toBeUndefined();
  });

  it("a mirrored LUN is written through the controller, not through a local lock's handle", async () => {
    const p = new RawPeer({ mirrorLun0: true });
    const lock = await p.controller.localLock(0, 0, 8, 'write');
    const r = await settled(p, lock.write(0, new Uint8Array(512)));
    expect(r.error).toMatchObject({ code: 'ML_ERR_REGION_LOCKED', message: expect.stringMatching(/LUN 0 is mirrored from here/) });
  });
});
