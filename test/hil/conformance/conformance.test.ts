import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ptyPair } from '../../../host/disks/serial-disk/socat-pty.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { freePort, freshDir, startController, writeConfig } from '../../host/runtime/processes.ts';
import { mirrorlab } from '../../support/run-cli.ts';

const scratch = scratchDir('conformance');
const XSD = new URL('../../fixtures/junit/junit.xsd', import.meta.url).pathname;
const BROKEN_ENTRY = new URL('../../support/conformance-target-entry.ts', import.meta.url).pathname;

/** Runs `mirrorlab ARGS` in this process: its exit status and what it printed. */
afterEach(() => vi.restoreAllMocks());

/**
 * A `mirrorlab controller` as the target: its LUN 0 the replica of peer A (the battery's source),
 * its peer link listening on `link`, supervision fast enough that a new session every case costs
 * little. `entry` plants bugs (test/support/conformance-target-entry.ts).
 */
async function startTarget(o: { link: string; policy: 'halt-resume' | 'retransmit'; plant?: string }) {
  const dir = await freshDir(scratch);
  const control = join(dir, 't.sock');
  const config = await writeConfig(dir, 'target', {
    name: 'B', id: 2, onLockReject: o.policy,
    luns: [{ lun: 0, volume: 'mem:16MiB', replicaOf: 'A' }],
    peers: [{ name: 'A', link: o.link, connections: 2 }],
    supervision: { heartbeatMs: 50, interruptionMs: 400, probationMs: 100, connectRetryMs: 50 },
    // What controllers on live links take (host/transports/live-link.ts LIVE_LINK_LIMITS): on a busy
    // machine frames overtake each other across connections by more than the simulator's 10 ms.
    limits: { nakRetryMs: 200, ackTimeoutMinMs: 200 },
    control: { path: control },
  });
  const entry = o.plant === undefined ? {} : { entryModule: BROKEN_ENTRY, entryArgs: ['--plant', o.plant] };
  const p = await startController({ configPath: config, env: { MIRRORLAB_LOG: 'warn' }, ...entry });
  return { p, control, dir };
}

/** Per-case lines, as `NAME -> VERDICT`. */
function verdicts(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of stdout.matchAll(/^(PASS|FAIL|SKIP)\s+(\S+)/gm)) out[m[2]!] = m[1]!;
  return out;
}

function xmllint(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('xmllint', args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('mirrorlab conformance against mirrorlab controller', () => {
  it('passes the whole battery over loopback TCP (halt-resume), and writes valid JUnit', async () => {
    const port = await freePort();
    const t = await startTarget({ link: `tcp-listen:127.0.0.1:${port}`, policy: 'halt-resume' });
    const junit = join(t.dir, 'conformance.xml');
    const r = await mirrorlab(['conformance', '--tcp', `127.0.0.1:${port}`, '--target-control', t.control, '--junit', junit]);
    expect(r.stderr).toBe('');
    expect(r.code, r.stdout).toBe(0);
    const v = verdicts(r.stdout);
    expect(v).toEqual({
      hello: 'PASS', 'split-coalesced': 'PASS', 'corrupt-header': 'PASS', 'corrupt-payload': 'PASS', duplicate: 'PASS', gap: 'PASS',
      'refused-lock-halt-resume': 'PASS', 'refused-lock-retransmit': 'SKIP', reconnect: 'PASS', restart: 'PASS', version: 'PASS',
    });
    expect(r.stdout).toMatch(/conformance against tcp:127\.0\.0\.1:\d+: 10 passed, 0 failed, 1 skipped in/);
    expect(r.stdout).toMatch(/PASS {2}duplicate .* the duplicate of seq \d+ was re-acknowledged; data read back identical/);
    expect(xmllint(['--noout', '--schema', XSD, junit]).status).toBe(0);
    const xml = await readFile(junit, 'utf8');
    expect(xml).toMatch(/<testsuites name="mirrorlab conformance" tests="11" failures="0" errors="0" skipped="1"/);
    await t.p.stop();
  }, 60_000);

  it('runs the retransmit policy\'s refused lock, and a case without the control socket passes on the protocol alone (--json)', async () => {
    const port = await freePort();
    const t = await startTarget({ link: `tcp-listen:127.0.0.1:${port}`, policy: 'retransmit' });
    const r = await mirrorlab(['conformance', '--tcp', `127.0.0.1:${port}`, '--target-control', t.control, '--case', 'refused-lock-retransmit,refused-lock-halt-resume']);
    expect(r.code, r.stdout).toBe(0);
    expect(verdicts(r.stdout), r.stdout).toEqual({ 'refused-lock-halt-resume': 'SKIP', 'refused-lock-retransmit': 'PASS' });
    expect(r.stdout).toMatch(/PASS {2}refused-lock-retransmit .* refused \(discarded\), then re-sent and granted; data read back identical/);
    const bare = await mirrorlab(['conformance', '--tcp', `127.0.0.1:${port}`, '--case', 'gap', '--case', 'refused-lock-retransmit', '--json']);
    expect(bare.code).toBe(0);
    const doc = JSON.parse(bare.stdout) as { passed: number; skipped: number; cases: { name: string; verdict: string; reason: string }[] };
    expect(doc.cases.map((c) => [c.name, c.verdict])).toEqual([['gap', 'pass'], ['refused-lock-retransmit', 'skip']]);
    expect(doc.cases[0]!.reason).toMatch(/data not read back \(no --target-control\)/);
    expect(doc.cases[1]!.reason).toMatch(/needs --target-control/);
    await t.p.stop();
  }, 60_000);

  it('passes a subset over a socat PTY pair (a serial line)', async () => {
    const pty = await ptyPair(scratch.dir(), 'line');
    try {
      const t = await startTarget({ link: `serial:${pty.b}`, policy: 'halt-resume' });
      const r = await mirrorlab(['conformance', '--serial', pty.a, '--target-control', t.control, '--case', 'hello,split-coalesced,corrupt-payload,duplicate,gap,reconnect']);
      expect(r.stderr).toBe('');
      expect(verdicts(r.stdout), r.stdout).toEqual({ hello: 'PASS', 'split-coalesced': 'PASS', 'corrupt-payload': 'PASS', duplicate: 'PASS', gap: 'PASS', reconnect: 'PASS' });
      expect(r.code, r.stdout).toBe(0);
      await t.p.stop();
    } finally {
      await pty.stop();
    }
  }, 60_000);
});

describe('mirrorlab conformance against a broken target', () => {
  it('fails the duplicate and gap cases when the target applies duplicates twice and never NAKs a gap; the JUnit file records them', async () => {
    const port = await freePort();
    const t = await startTarget({ link: `tcp-listen:127.0.0.1:${port}`, policy: 'halt-resume', plant: 'target-applies-duplicates,target-never-naks-gaps' });
    const junit = join(t.dir, 'broken.xml');
    const r = await mirrorlab(['conformance', '--tcp', `127.0.0.1:${port}`, '--target-control', t.control, '--junit', junit, '--case', 'duplicate,gap']);
    expect(r.code, r.stdout).toBe(1);
    expect(verdicts(r.stdout), r.stdout).toEqual({ duplicate: 'FAIL', gap: 'FAIL' });
    const reason = /FAIL {2}duplicate .* s {2}(.*)$/m.exec(r.stdout)![1]!;
    expect(reason).toMatch(/^sector \d+ of the target's copy holds write tag (\d+), not write tag \d+ \(the last written there\)$/);
    expect(r.stdout).toMatch(/FAIL {2}gap .* the target never NAKed the gap at seq \d+ \(the source's ack timeout re-sent it; last ACK \d+/);
    expect(r.stdout).toMatch(/0 passed, 2 failed, 0 skipped/);
    expect(xmllint(['--noout', '--schema', XSD, junit]).status).toBe(0);
    const failure = xmllint(['--xpath', 'string(//testcase[@name="duplicate"]/failure/@message)', junit]);
    expect(failure.out.trim()).toBe(reason);
    expect(xmllint(['--xpath', 'string(/testsuites/@failures)', junit]).out.trim()).toBe('2');
    await t.p.stop();
  }, 60_000);

  it('fails the restart case when the target takes a restarted source for its old session', async () => {
    const port = await freePort();
    const t = await startTarget({ link: `tcp-listen:127.0.0.1:${port}`, policy: 'halt-resume', plant: 'target-keeps-old-stream' });
    const r = await mirrorlab(['conformance', '--tcp', `127.0.0.1:${port}`, '--case', 'restart']);
    expect(r.code, r.stdout).toBe(1);
    expect(r.stdout).toMatch(/FAIL {2}restart .* the target acknowledged through seq \d+ when this stream had sent only \d+ entries \(it confirmed entries of another stream or session\)/);
    await t.p.stop();
  }, 60_000);
});

describe('mirrorlab conformance: what it cannot run is one line and exit 2', () => {
  it('says what was wrong and what is allowed', async () => {
    const port = await freePort();
    for (const [args, message] of [
      [['conformance'], /give the target as --tcp HOST:PORT or --serial PATH\[:BAUD\] \(one of them\)/],
      [['conformance', '--tcp', '127.0.0.1:1', '--serial', '/dev/null'], /\(one of them\)/],
      [['conformance', '--tcp', 'nowhere'], /--tcp: bad link spec "tcp:nowhere": tcp takes a host and a port/],
      [['conformance', '--tcp', '127.0.0.1:1', '--case', 'nosuch'], /--case.*unknown case nosuch; the cases are hello, split-coalesced/],
      [['conformance', '--tcp', '127.0.0.1:1', '--connections', '0'], /--connections takes an integer from 1 to/],
      [['conformance', '--tcp', `127.0.0.1:${port}`], /ML_ERR_CONFORMANCE_UNREACHABLE: nothing listens at 127\.0\.0\.1:\d+ \(ECONNREFUSED\); start the target first/],
      [['conformance', '--tcp', '127.0.0.1:1', '--junit', '/nonexistent-dir/x.xml'], /ML_ERR_REPORT_FILE: report file \/nonexistent-dir\/x\.xml: its directory \/nonexistent-dir does not exist \(--junit\)/],
      [['conformance', '--tcp', '127.0.0.1:1', '--target-control', join(scratch.dir(), 'none.sock')], /ML_ERR_CONTROL_UNREACHABLE: no controller at .*none\.sock: no such socket/],
      [['conformance', '--serial', join(scratch.dir(), 'no-such-tty')], /ML_ERR_LINK_SERIAL_PORT/],
    ] as const) {
      const r = await mirrorlab([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(r.stderr.includes('(run with --help for usage)') ? 2 : 1);
      expect(r.stdout).toBe('');
    }
  }, 30_000);
});
