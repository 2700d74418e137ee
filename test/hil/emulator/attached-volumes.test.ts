import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RealClock } from '../../../host/clock/real.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { BlockServer } from '../../../host/disks/serial-disk/block-server.ts';
import { openSerialLine, type SerialPortLine } from '../../../host/disks/serial-disk/line.ts';
import { parseVolumeSpec } from '../../../host/disks/volume-spec.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { ptyPair, type PtyPair } from '../../../host/disks/serial-disk/socat-pty.ts';
import { scratchDir } from '../../support/scratch-dir.ts';

const run = (o: Partial<EmulateOptions>) => runEmulation({ ...DEFAULT_EMULATE, writes: 400, faults: parseLinkFaults('drop=0.01,corrupt=0.01,duplicate=0.01,partition=1'), ...o });
const USB_FAULTS = 'faults=stall-in@0.03,stall-out@0.03,short@0.03,zlp@0.03,csw-signature@0.02,csw-tag@0.02,phase@0.02,unit-attention@0.02,disconnect@0.002';

describe('emulate over an emulated USB mass-storage target', () => {
  it('ends consistent under link faults, and the same seed gives the same run', async () => {
    const a = await run({ targetVolume: parseVolumeSpec('usb-emu:16MiB'), sourceVolume: parseVolumeSpec('mem:16MiB'), seed: 3 });
    expect(a.violations, a.reproduce).toEqual([]);
    expect(a.writes.acknowledged).toBe(400);
    expect(a.volumes.find((v) => v.name === 'B/lun0')).toMatchObject({ layout: 'usb-emu:16MiB', state: 'optimal', checked: true });
    expect(a.notes).toEqual([]);
    const b = await run({ targetVolume: parseVolumeSpec('usb-emu:16MiB'), sourceVolume: parseVolumeSpec('mem:16MiB'), seed: 3 });
    expect(b.traceHash).toBe(a.traceHash);
  });

  it('ends consistent with the device committing every recoverable fault as well, on both sides', async () => {
    const spec = parseVolumeSpec(`usb-emu:16MiB:${USB_FAULTS}`);
    const r = await run({ sourceVolume: spec, targetVolume: spec, seed: 5 });
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.reproduce).toContain(`usb-emu:16MiB:${USB_FAULTS}`);
  });
});

describe('emulate over a serial-disk target on a PTY', () => {
  const scratch = scratchDir('emulate-serial');
  let pair: PtyPair;
  let line: SerialPortLine;
  let server: BlockServer;
  beforeAll(async () => {
    pair = await ptyPair(scratch.dir(), 'board');
    line = await openSerialLine(pair.b, 4_000_000);
    server = new BlockServer({ line, device: new MemoryDisk({ name: 'board', sectorCount: 8192, clock: new RealClock() }), baud: 4_000_000 });
  });
  afterAll(async () => {
    await server.stop();
    await line.close();
    await pair.stop();
  });

  it('ends consistent under link faults, after an initial synchronisation, and says the run is not byte-reproducible', async () => {
    const r = await run({ sourceVolume: parseVolumeSpec('mem:4MiB'), targetVolume: parseVolumeSpec(`serial-disk:${pair.a}:4000000`), writes: 300 });
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.writes.acknowledged).toBe(300);
    expect(r.initialSync.bytesCompared).toBe(4 * 1024 * 1024);
    expect(r.notes.join('\n')).toMatch(/B\/lun0 \(serial-disk:.*\); their I\/O is real, so this run is not byte-reproducible/);
    expect(server.counters.requests).toBeGreaterThan(300);
  });
});
