import { readdir } from 'node:fs/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { drawKillAtS, parseKill, parseRackVolume, RACK_DEFAULTS, rackReproduceCommand, resolveRack } from '../../../hil/rack/options.ts';
import { runRack } from '../../../hil/rack/rack-run.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { mirrorlab } from '../../support/run-cli.ts';

const scratch = scratchDir('rack-cli');

afterEach(() => vi.restoreAllMocks());

describe('mirrorlab rack run: bad input is one line and exit 2', () => {
  it('says what was wrong and what is allowed', async () => {
    for (const [args, message] of [
      [['--kill', 'sideways'], /--kill takes SIDE or SIDE@SECONDS, SIDE one of source, target \(e.g. target@2.5\), got "sideways"/],
      [['--kill', 'target@9', '--duration-s', '5'], /--kill target@9: the kill must fall inside the run, after 0 s and before --duration-s 5/],
      [['--faults', 'drop=2'], /--faults drop: "2" is not a probability/],
      [['--faults', 'silent=8s+1s', '--duration-s', '5'], /--faults has timed faults until 9000 ms, after the run's 5 s; give --duration-s 10 or more/],
      [['--link', 'serial', '--faults', 'reset=0.01'], /reset=P resets a TCP connection, and a serial line has none/],
      [['--link', 'udp'], /--link must be one of tcp, serial, got "udp"/],
      [['--mode', 'eventual'], /--mode must be one of sync, speculative, async/],
      [['--write-bytes', '1000'], /--write-bytes must be a multiple of 512, got 1000/],
      [['--duration-s', '0'], /--duration-s takes a number above 0/],
      [['--link', 'serial', '--connections', '3'], /--connections is for --link tcp; a serial line carries one/],
      [['--bogus'], /unknown option '--bogus'/],
      [['--history', '/tmp/h.db'], /--history names where --record writes; add --record/],
      [['--junit', '/nonexistent-dir/r.xml'], /--junit/],
      [['--target-volume', 'tape:1'], /--target-volume: bad volume spec "tape:1": unknown kind "tape"; a rack volume is file \(an image file per LUN in the run directory\), usb-emu:SIZE/],
      [['--target-volume', 'usb-emu:1MiB:sector=4096'], /--target-volume usb-emu:1MiB:sector=4096: a rack's copies have 512-byte sectors/],
      [['--source-volume', 'file:/tmp/a.img:1MiB'], /--source-volume file:\/tmp\/a.img:1MiB: the rack makes its image files in its run directory; give file/],
      [['--source-volume', 'usb-emu:2MiB', '--target-volume', 'usb-emu:4MiB'], /--source-volume offers 2MiB and --target-volume 4MiB; a mirror's two copies are one size/],
      [['--target-volume', 'usb-emu:4MiB', '--volume-mib', '8'], /--target-volume usb-emu:4MiB offers 4MiB, but --volume-mib asks 8MiB; a mirror's two copies are one size/],
      [['--target-volume', 'serial-disk:/dev/ttyS9', '--bidirectional'], /--target-volume serial-disk:\/dev\/ttyS9 is one device, but --bidirectional needs a second copy on that side/],
      [['--source-volume', 'serial-disk:/dev/ttyS9', '--target-volume', 'serial-disk:/dev/ttyS9:9600'], /--source-volume and --target-volume both name serial-disk:\/dev\/ttyS9; a mirror needs two copies on two devices/],
      [['--source-volume', 'usb-emu:8MiB', '--kill', 'source'], /--kill source: its copies \(usb-emu:8MiB\) live in the controller process's memory and die with it/],
      [['--target-volume', 'mem:8MiB', '--kill', 'target', '--bidirectional'], /--kill target: its copies \(mem:8MiB\) live in the controller process's memory/],
    ] as [string[], RegExp][]) {
      const { code, stderr } = await mirrorlab(['rack', 'run', ...args]);
      expect(code, args.join(' ')).toBe(2);
      const first = stderr.split('\n')[0]!;
      expect(first, args.join(' ')).toMatch(message);
      expect(stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe('a rack that cannot run', () => {
  it('a controller that fails to start is ML_ERR_RACK_START in one line, and nothing is left', async () => {
    const run = runRack({ ...RACK_DEFAULTS, faults: parseLinkFaults('none'), durationS: 1, dir: scratch.dir() }, { entryModule: '/nonexistent/entry.mjs' });
    const error = await run.catch((e: Error & { code?: string }) => e);
    expect(error).toMatchObject({ code: 'ML_ERR_RACK_START' });
    expect((error as Error).message).toMatch(/the controller exited \(code 1\) before it was ready/);
    expect((error as Error).message).not.toContain('\n');
    expect(await readdir(scratch.dir())).toEqual([]);
  });

  it('a serial rack without socat is ML_ERR_RACK_SOCAT, saying what to install', async () => {
    const path = process.env.PATH;
    process.env.PATH = scratch.dir();
    try {
      await expect(runRack({ ...RACK_DEFAULTS, link: 'serial', faults: parseLinkFaults('none'), durationS: 1, dir: scratch.dir() }))
        .rejects.toMatchObject({ code: 'ML_ERR_RACK_SOCAT', message: expect.stringMatching(/needs socat \(apt-get install socat\)/) });
    } finally {
      process.env.PATH = path;
    }
    expect(await readdir(scratch.dir())).toEqual([]);
  });
});

describe('rack options', () => {
  it('draw the plan and the kill time from the seed, the same every time, and print them back as a command', () => {
    const o = resolveRack({ ...RACK_DEFAULTS, seed: 11, kill: parseKill('source') });
    expect(resolveRack({ ...RACK_DEFAULTS, seed: 11, kill: parseKill('source') })).toEqual(o);
    expect(o.planDrawn).toBe(true);
    expect(o.killAtS).toBe(drawKillAtS(11, RACK_DEFAULTS.durationS));
    expect(o.killAtS! / RACK_DEFAULTS.durationS).toBeGreaterThanOrEqual(0.25);
    expect(o.killAtS! / RACK_DEFAULTS.durationS).toBeLessThanOrEqual(0.6);
    expect(rackReproduceCommand(o)).toBe(`npx mirrorlab rack run --link tcp --seed 11 --mode speculative --kill source@${o.killAtS}`);
    const given = resolveRack({ ...RACK_DEFAULTS, faults: parseLinkFaults('drop=0.01,silent=1s+1s'), bidirectional: true, writes: 50 });
    expect(rackReproduceCommand(given)).toBe('npx mirrorlab rack run --link tcp --seed 1 --mode speculative --faults drop=0.01,silent=1000ms+1000ms --bidirectional --writes 50');
  });

  it('size the copies from an in-process spec, else --volume-mib, else 8 MiB, and name the volumes in the command', () => {
    const usb = resolveRack({ ...RACK_DEFAULTS, targetVolume: parseRackVolume('usb-emu:64MiB:faults=stall-in@0.01'), kill: parseKill('target@2') });
    expect(usb.volumeBytes).toBe(64 * 1024 * 1024);
    expect(rackReproduceCommand(usb)).toBe('npx mirrorlab rack run --link tcp --seed 1 --mode speculative --kill target@2 --target-volume usb-emu:64MiB:faults=stall-in@0.01');
    const board = resolveRack({ ...RACK_DEFAULTS, sourceVolume: parseRackVolume('serial-disk'), volumeBytes: 2 * 1024 * 1024, kill: parseKill('source@1') });
    expect(board.volumeBytes).toBe(2 * 1024 * 1024);
    expect(rackReproduceCommand(board)).toBe('npx mirrorlab rack run --link tcp --seed 1 --mode speculative --kill source@1 --source-volume serial-disk --volume-mib 2');
    expect(resolveRack({ ...RACK_DEFAULTS, targetVolume: parseRackVolume('serial-disk:/dev/ttyUSB0:921600') }).volumeBytes).toBe(8 * 1024 * 1024);
    expect(parseRackVolume('raid5:3x2MiB')).toEqual({ kind: 'in-process', spec: expect.objectContaining({ kind: 'raid5', members: 3 }) });
    expect(resolveRack({ ...RACK_DEFAULTS, sourceVolume: parseRackVolume('raid5:3x2MiB') }).volumeBytes).toBe(4 * 1024 * 1024);
    expect(parseRackVolume('usb:0781:5581')).toMatchObject({ kind: 'device', spec: { kind: 'usb', vendorId: 0x0781 } });
  });
});
