import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MirrorlabError } from '../../../firmware/errors.ts';
import { failure, main } from '../../../hil/cli/main.ts';
import { TraceFileError } from '../../../hil/trace/trace.ts';

const root = new URL('../../../', import.meta.url).pathname;

function mirrorlab(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['bin/mirrorlab.mjs', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, MIRRORLAB_LOG: 'warn', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** What `failure()` or `main()` wrote to stderr, and what it returned. */
async function captured(f: () => number | Promise<number>) {
  const writes: string[] = [];
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    writes.push(String(s));
    return true;
  });
  try {
    return { code: await f(), stderr: writes.join('') };
  } finally {
    spy.mockRestore();
  }
}

const oneLine = (stderr: string) => expect(stderr.trim().split('\n').filter((l) => !l.startsWith('(run with --help')).length, stderr).toBe(1);

describe('mirrorlab exit status', () => {
  afterEach(() => vi.restoreAllMocks());

  it('1 for a run carried out and found inconsistent (bad sectors on a RAID-0 member of the target, which nothing can rewrite)', () => {
    const r = mirrorlab(['emulate', '--json', '--writes', '300', '--target-volume', 'raid0:2x32MiB', '--disk-faults', 'bad=target:1:8']);
    expect(r.code, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.verdict).toBe('inconsistent');
    expect(doc.violations.map((v: { invariant: string }) => v.invariant)).toContain('volume-redundancy');
  });

  it('2, with the allowed levels, for an unknown MIRRORLAB_LOG', () => {
    const r = mirrorlab(['emulate', '--writes', '10'], { MIRRORLAB_LOG: 'bogus' });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: MIRRORLAB_LOG: "bogus" is not a log level; use one of fatal, error, warn, info, debug, trace, silent\n');
  });

  it('2, before the run, for a trace file in a directory that does not exist', () => {
    const missing = join(mkdtempSync(join(tmpdir(), 'mirrorlab-')), 'no', 'dir', 'x.jsonl');
    const r = mirrorlab(['emulate', '--writes', '10', '--trace', missing]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error: ML_ERR_TRACE_FILE: trace file ${missing} could not be opened: ENOENT: no such file or directory\n`);
    expect(r.stdout).toBe('');
  });

  it('2, in one line, for a disk image in a directory that does not exist', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'mirrorlab-')), 'missing');
    const r = mirrorlab(['emulate', '--writes', '10', '--source-volume', `file:${dir}/a.img:1MiB`, '--target-volume', 'mem:1MiB']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^error: .*(ENOENT|no such file|does not exist)/);
    oneLine(r.stderr);
    expect(existsSync(dir)).toBe(false);
  });

  it.each([
    [['--faults', 'partition=999999999'], /drawn partitions must be 1 to 10000/],
    [['--faults', ''], /the plan is empty; write none/],
    [['--faults', 'drop=0.1,,corrupt=0.1'], /item 2 .* is empty/],
    [['--faults', 'drop=0.1,drop=0.9'], /drop is given twice/],
    [['--faults', 'partition=1ms+3600001ms'], /allowed above 0 to 3600000 ms/],
    [['--disk-faults', 'bad=target:0:3,bad=target:0:5'], /bad is given twice for target member 0/],
  ])('2 for emulate %j, in one line, without running anything', async (args, message) => {
    const r = await captured(() => main(['emulate', ...args]));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    oneLine(r.stderr);
  });
});

describe('failure(): what reaches the CLI boundary', () => {
  it('maps an operating error (a MirrorlabError) to 2 with its code, not to 1, which means "inconsistent"', async () => {
    const r = await captured(() => failure(new MirrorlabError('ML_ERR_IMAGE_IN_USE', 'disk image /x.img is in use by process 42')));
    expect(r).toEqual({ code: 2, stderr: 'error: ML_ERR_IMAGE_IN_USE: disk image /x.img is in use by process 42\n' });
    expect((await captured(() => failure(new TraceFileError('/t', 'written', new Error('boom'))))).code).toBe(2);
  });

  it('maps a system error from a file the user named to 2 in one line, and anything else to 70 with its stack', async () => {
    for (const code of ['ENOENT', 'EACCES', 'EISDIR', 'ENOTDIR', 'EEXIST']) {
      const err = Object.assign(new Error(`${code}: something, open '/u/x.img'`), { code, syscall: 'open', path: '/u/x.img' });
      const r = await captured(() => failure(err));
      expect(r).toEqual({ code: 2, stderr: `error: ${code}: something, open '/u/x.img'\n` });
    }
    const bug = await captured(() => failure(new TypeError('x is not a function')));
    expect(bug.code).toBe(70);
    expect(bug.stderr).toMatch(/^internal error [^]*TypeError: x is not a function\n\s+at /);
    const noSyscall = await captured(() => failure(Object.assign(new Error('odd'), { code: 'ENOENT' })));
    expect(noSyscall.code).toBe(70);
  });
});
