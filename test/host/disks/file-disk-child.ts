/**
 * A separate process for the FileDisk tests (file.test.ts runs it with `node --import tsx/esm`,
 * as bin/mirrorlab.mjs loads tsx): a restart, a crash and racing openers are only real across
 * processes. One JSON line on stdout per result.
 *
 *   hold PATH          wait for "go" on stdin, open, print {"result":"won"} or the refusal,
 *                      hold the disk until stdin ends, close
 *   write PATH SEED    open, write pattern(SEED) at LBA 7 (3 sectors), flush, close, print
 *   crash PATH SEED    the same, but exit without closing (the lock file stays: a dead owner)
 *   read PATH          open an existing image, print the 3 sectors at LBA 7 as hex
 */
import { createInterface } from 'node:readline';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { FileDisk } from '../../../host/disks/file.ts';
import { pattern, runUntilSettled } from './helpers.ts';

const CHILD_SECTORS = 128;
const [mode, path, seed] = process.argv.slice(2);
const clock = new VirtualClock();
const print = (doc: object): void => void process.stdout.write(`${JSON.stringify(doc)}\n`);

async function hold(): Promise<void> {
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  await lines.next(); // "go"
  let disk: FileDisk;
  try {
    disk = await FileDisk.open({ path: path!, sectorCount: CHILD_SECTORS, clock });
  } catch (error) {
    const e = error as { code?: string; message?: string };
    print({ result: 'refused', code: e.code, message: e.message });
    return;
  }
  print({ result: 'won' });
  while (!(await lines.next()).done) { /* hold until stdin ends */ }
  await disk.close();
}

async function write(close: boolean): Promise<void> {
  const disk = await FileDisk.open({ path: path!, sectorCount: CHILD_SECTORS, clock });
  await runUntilSettled(clock, disk.write(7, pattern(Number(seed), 3 * 512)));
  await runUntilSettled(clock, disk.flush());
  print({ result: 'written', pid: process.pid });
  if (close) await disk.close();
  else process.exit(0); // a crash, as far as the lock file can tell
}

async function read(): Promise<void> {
  const disk = await FileDisk.open({ path: path!, sectorCount: CHILD_SECTORS, clock, create: false });
  const data = await runUntilSettled(clock, disk.read(7, 3));
  print({ result: 'read', hex: Buffer.from(data).toString('hex') });
  await disk.close();
}

const modes: Record<string, () => Promise<void>> = { hold, write: () => write(true), crash: () => write(false), read };
const run = modes[mode ?? ''];
if (run === undefined || path === undefined) {
  process.stderr.write(`usage: file-disk-child.ts hold|write|crash|read PATH [SEED]\n`);
  process.exitCode = 2;
} else {
  await run();
}
