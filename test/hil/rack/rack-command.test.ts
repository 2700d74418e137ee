import { readdir } from 'node:fs/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import { drawKillAtS, parseKill, RACK_DEFAULTS, rackReproduceCommand, resolveRack } from '../../../hil/rack/options.ts';
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
});
