import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { drawRun } from '../../../hil/campaign/draw-run.ts';
import { addEmulateFlags, emulateOptionsFrom, type EmulateFlags } from '../../../hil/cli/emulate-command.ts';
import { DEFAULT_EMULATE } from '../../../hil/emulator/options.ts';
import { reproduceCommand } from '../../../hil/emulator/reproduce.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';

const root = new URL('../../../', import.meta.url).pathname;

function mirrorlab(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/mirrorlab.mjs', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, MIRRORLAB_LOG: 'warn' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Parse a command line the way `mirrorlab emulate` does, without running anything. */
function parseEmulate(words: string[]) {
  const cmd = addEmulateFlags(new Command('emulate')).exitOverride();
  cmd.parse(words, { from: 'user' });
  return emulateOptionsFrom(cmd.opts() as EmulateFlags);
}

/** Split a reproduce command into words (it only single-quotes). */
function words(command: string): string[] {
  return [...command.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

describe('mirrorlab CLI', () => {
  it('emulate --json prints exactly one JSON document with the promised fields, and exits 0 when consistent', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mirrorlab-'));
    const trace = join(dir, 'trace.jsonl');
    const r = mirrorlab('emulate', '--json', '--writes', '200', '--faults', 'drop=0.02,corrupt=0.02', '--lock-contention', '0.05', '--trace', trace);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ seed: 1, mode: 'speculative', verdict: 'consistent', violations: [], writes: { issued: 200, acknowledged: 200 } });
    for (const k of ['locksSent', 'locksGranted', 'locksRejected', 'halts', 'resumes', 'rollbacks', 'entriesRetransmitted', 'framesDropped', 'framesCorrupted', 'framesDuplicated']) {
      expect(typeof doc.counters[k], k).toBe('number');
    }
    expect(doc.virtualTimeMs).toBeGreaterThan(0);
    expect(doc.throughputMBps).toBeGreaterThan(0);
    expect(doc.traceHash).toMatch(/^[0-9a-f]{64}$/);
    const lines = readFileSync(trace, 'utf8').trim().split('\n');
    expect(lines.length).toBe(doc.traceEvents);
    expect(JSON.parse(lines[0]!)).toHaveProperty('kind');
  });

  it('bad usage exits 2 with a message that says what is allowed, never a stack trace', () => {
    const cases: [string[], RegExp][] = [
      [['emulate', '--mode', 'fast'], /--mode must be one of sync, speculative, async/],
      [['emulate', '--faults', 'drop=2'], /not a probability/],
      [['emulate', '--faults', 'explode=0.1'], /unknown fault "explode"/],
      [['emulate', '--faults', 'drop=0.1:LOKC'], /unknown frame kind "LOKC"/],
      [['emulate', '--write-bytes', '1000'], /multiple of the 512-byte sector/],
      [['emulate', '--queue-depth', '0'], /integer from 1 to 4096/],
      [['emulate', '--on-lock-reject', 'ignore'], /halt-resume, retransmit/],
      [['emulate', '--write-bytes', '1048576', '--source-volume', 'mem:512KiB'], /larger than the smaller volume/],
      [['emulate', '--source-volume', 'raid7:2x1MiB'], /unknown kind "raid7"/],
      [['campaign'], /--seeds/],
      [['frobnicate'], /unknown command/],
    ];
    for (const [args, message] of cases) {
      const r = mirrorlab(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('statecharts --json prints the machine definitions', () => {
    const r = mirrorlab('statecharts', '--json');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc.sourceChannel.states)).toEqual(expect.arrayContaining(['idle', 'lockPending', 'speculativeSent', 'halted', 'resumed', 'rollback', 'linkDown']));
    expect(Object.keys(doc.targetChannel.states)).toEqual(expect.arrayContaining(['streaming', 'lockWaiting', 'discarding']));
    expect(Object.keys(doc.linkSupervisor.states)).toEqual(expect.arrayContaining(['connecting', 'up', 'suspect', 'down', 'probation']));
  });

  it('the printed reproduce command parses back to the very same run options', () => {
    const custom = { ...DEFAULT_EMULATE, seed: 42, mode: 'async' as const, bidirectional: true, writes: 77, queueDepth: 3, rttMs: 0.2, lockRegionSectors: 8, lockContentionPerMillion: 25_000, faults: parseLinkFaults('drop=0.01:LOCK|ACK,delay=0.1@2ms,partition=100ms+5ms,bandwidth=10@3ms') };
    for (const opts of [DEFAULT_EMULATE, custom, drawRun(79, { writes: 1000, faults: null }), drawRun(123, { writes: 500, faults: null })]) {
      const cmd = reproduceCommand(opts);
      const w = words(cmd);
      expect(w.slice(0, 3)).toEqual(['npx', 'mirrorlab', 'emulate']);
      expect(parseEmulate(w.slice(3))).toEqual(opts);
    }
  });
});
