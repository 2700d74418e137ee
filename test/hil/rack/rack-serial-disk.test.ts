import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RealClock } from '../../../host/clock/real.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { BlockServer } from '../../../host/disks/serial-disk/block-server.ts';
import { openSerialLine, type SerialPortLine } from '../../../host/disks/serial-disk/line.ts';
import { ptyPair, type PtyPair } from '../../../host/disks/serial-disk/socat-pty.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { parseRackVolume } from '../../../hil/rack/options.ts';
import { runRack } from '../../../hil/rack/rack-run.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { attachedRack, expectConsistent } from './attached-copies.ts';

const scratch = scratchDir('rack-serial-disk');
const { short, leftovers } = attachedRack(scratch);

describe('mirrorlab rack run on serial-disk copies', () => {
  it('a serial-disk target on a board stand-in over a PTY pair the rack makes, under link faults, ends consistent; the board is stopped', async () => {
    const r = await runRack(short({ targetVolume: parseRackVolume('serial-disk'), faults: parseLinkFaults('drop=0.01,corrupt=0.01,duplicate=0.01,delay=0.02@5ms') }));
    expectConsistent(r);
    expect(r.images.find((i) => i.node === 'B')).toMatchObject({ volume: 'serial-disk', read: 'control socket' });
    expect(r.faultsInjected.framesDropped + r.faultsInjected.framesCorrupted + r.faultsInjected.framesDuplicated).toBeGreaterThan(0);
    expect(r.reproduce).toContain('--target-volume serial-disk --volume-mib 1');
    expect(await readdir(scratch.dir())).toEqual([]);
    expect(leftovers()).toEqual([]);
  });

});

describe('a rack given a serial port it uses as it is', () => {
  const boards = scratchDir('rack-serial-disk-board');
  let pair: PtyPair;
  let line: SerialPortLine;
  let server: BlockServer;
  beforeAll(async () => {
    pair = await ptyPair(boards.dir(), 'board');
    line = await openSerialLine(pair.b, 4_000_000);
    // A board that holds data from before the run: the rack must refuse to start a mirror from unequal copies.
    const disk = new MemoryDisk({ name: 'board', sectorCount: 2048, clock: new RealClock() });
    await disk.write(100, new Uint8Array(512).fill(7));
    server = new BlockServer({ line, device: disk, baud: 4_000_000 });
  });
  afterAll(async () => {
    await server.stop();
    await line.close();
    await pair.stop();
  });

  it('refuses, before any write, a board whose copy differs from the other side, naming the LBA (exit 2); nothing is left', async () => {
    const run = runRack(short({ targetVolume: parseRackVolume(`serial-disk:${pair.a}:4000000`), faults: parseLinkFaults('none') }));
    const error = await run.catch((e: Error & { code?: string }) => e);
    expect(error).toMatchObject({ code: 'ML_ERR_RACK_VOLUMES' });
    expect((error as Error).message).toMatch(/^the copies of LUN 0 differ at LBA 100 before the run \(A: file, B: serial-disk:.*board-a:4000000\); a mirror starts from two equal copies/);
    expect(server.counters.requests).toBeGreaterThan(0);
    expect(await readdir(scratch.dir())).toEqual([]);
    expect(leftovers()).toEqual([]);
  });
});
