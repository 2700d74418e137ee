import { spawnSync } from 'node:child_process';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { parseVolumeSpec } from '../../../host/disks/volume-spec.ts';
import { addEmulateFlags, emulateOptionsFrom, type EmulateFlags } from '../../../hil/cli/emulate-command.ts';
import { DEFAULT_EMULATE, READ_PERCENT_MAX, validateEmulateOptions, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { reproduceCommand } from '../../../hil/emulator/reproduce.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { UsageError } from '../../../hil/plan-error.ts';

const root = new URL('../../../', import.meta.url).pathname;
const mem = parseVolumeSpec('mem:8MiB');
const base: EmulateOptions = { ...DEFAULT_EMULATE, writes: 100, sourceVolume: mem, targetVolume: mem };
const failure = (o: Partial<EmulateOptions>) => runEmulation({ ...base, ...o }).then(() => null, (e: unknown) => e as Error);

function mirrorlab(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/mirrorlab.mjs', 'emulate', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, MIRRORLAB_LOG: 'warn' } });
  return { code: r.status, stderr: r.stderr };
}

describe('impossible combinations are usage errors, not failed runs', () => {
  it.each([
    [{ lockRegionSectors: 4_294_967_295 }, /--lock-region-sectors is 4294967295; allowed a power of two from 1 to 2\^30 sectors/],
    [{ lockRegionSectors: 100 }, /allowed a power of two/],
    [{ lockRegionSectors: 32_768 }, /--lock-region-sectors \(32768\) is larger than the smaller volume \(16384 sectors\); allowed a power of two up to 16384/],
    [{ readPercent: 100 }, new RegExp(`--read-percent is 100; allowed 0 to ${READ_PERCENT_MAX}`)],
    [{ faultPhaseMsMax: 0 }, /--fault-phase-max-ms is 0/],
    [{ mode: 'sync', locks: 'implied' }, /--locks implied applies to speculative and async mirroring; a sync write waits for its grant/],
  ] as const)('%o', async (o, message) => {
    const err = await failure(o);
    expect(err).toBeInstanceOf(UsageError);
    expect(err!.message).toMatch(message);
  });

  it('the largest sane values are accepted and run', async () => {
    const r = await runEmulation({ ...base, lockRegionSectors: 16_384, readPercent: READ_PERCENT_MAX, writes: 20 });
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.writes).toMatchObject({ issued: 20, acknowledged: 20 });
    expect(r.writes.reads).toBeGreaterThan(100);
  });

  it('a default lock region larger than a small volume is shrunk to fit (writes do not fail)', async () => {
    const tiny = parseVolumeSpec('mem:256KiB');
    const r = await runEmulation({ ...base, sourceVolume: tiny, targetVolume: tiny });
    expect(r.violations, r.reproduce).toEqual([]);
    expect(r.writes).toMatchObject({ issued: 100, acknowledged: 100, errors: 0 });
  });

  it('validation needs no volumes built: a static check of the options', () => {
    expect(() => validateEmulateOptions({ ...base, readPercent: 100 })).toThrow(UsageError);
    expect(() => validateEmulateOptions(base)).not.toThrow();
  });

  it('the CLI: exit 2 with one line saying what is allowed', () => {
    const cases: [string[], RegExp][] = [
      [['--lock-region-sectors', '4294967295'], /--lock-region-sectors is 4294967295; allowed a power of two/],
      [['--read-percent', '100'], /--read-percent takes an integer from 0 to 99, got "100"/],
      [['--fault-phase-max-ms', '0'], /--fault-phase-max-ms takes a number above 0/],
      [['--disk-faults', 'fail=source:0@700s'], /fail=source:0@700000ms is at 700000 ms, after the fault phase's maximum of 600000 ms/],
      [['--fault-phase-max-ms', '50', '--faults', 'partition=40ms+20ms'], /partition=40ms\+20ms ends at 60 ms/],
      [['--locks', 'shared'], /--locks.*"shared".*explicit, implied|--locks.*explicit, implied.*"shared"/],
    ];
    for (const [args, message] of cases) {
      const r = mirrorlab(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('--fault-phase-max-ms reaches the options and the reproduce command round-trips it', () => {
    const cmd = addEmulateFlags(new Command('emulate')).exitOverride();
    cmd.parse(['--fault-phase-max-ms', '1234', '--writes', '7'], { from: 'user' });
    const o = emulateOptionsFrom(cmd.opts() as EmulateFlags);
    expect(o.faultPhaseMsMax).toBe(1234);
    expect(reproduceCommand(o)).toBe('npx mirrorlab emulate --seed 1 --mode speculative --writes 7 --fault-phase-max-ms 1234');
  });

  it('--locks and --batch reach the options and the reproduce command round-trips them (the defaults are left out)', () => {
    const parse = (...args: string[]) => {
      const cmd = addEmulateFlags(new Command('emulate')).exitOverride();
      cmd.parse([...args, '--writes', '7'], { from: 'user' });
      return emulateOptionsFrom(cmd.opts() as EmulateFlags);
    };
    const o = parse('--locks', 'implied', '--batch');
    expect(o).toMatchObject({ locks: 'implied', batch: true });
    expect(reproduceCommand(o)).toBe('npx mirrorlab emulate --seed 1 --mode speculative --writes 7 --locks implied --batch');
    expect(reproduceCommand(parse('--locks', 'explicit'))).toBe('npx mirrorlab emulate --seed 1 --mode speculative --writes 7');
  });
});
