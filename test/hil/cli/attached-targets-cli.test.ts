import { spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { openSerialLine } from '../../../host/disks/serial-disk/line.ts';
import { SerialDisk } from '../../../host/disks/serial-disk/serial-disk.ts';
import { pattern, runUntilSettled } from '../../host/disks/helpers.ts';
import { ptyPair, type PtyPair } from '../../../host/disks/serial-disk/socat-pty.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { mirrorlab } from '../../support/run-cli.ts';

const root = new URL('../../../', import.meta.url).pathname;

/** `mirrorlab ARGS` in this process: its exit status and what it wrote (the serial-disk server test runs the real command). */
afterEach(() => vi.restoreAllMocks());

const oneLine = (stderr: string): void => expect(stderr.trim().split('\n').filter((l) => !l.startsWith('(run with --help')).length, stderr).toBe(1);

describe('mirrorlab devices', () => {
  it('lists the serial ports serialport finds (through udevadm) and, with no USB bus here, no USB devices, saying why; exit 0', async () => {
    const { SerialPort } = await import('serialport');
    const ports = (await SerialPort.list()).map((p) => p.path).sort();
    const table = await mirrorlab(['devices']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^serial ports\n/);
    for (const path of ports) expect(table.stdout).toContain(path);
    expect(table.stdout).toMatch(/\nUSB devices\n {2}\(none\)\n/);
    const json = await mirrorlab(['devices', '--json']);
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout) as { serial: { path: string; spec: string }[]; usb: unknown[]; notes: string[] };
    expect(doc.serial.map((p) => p.path).sort()).toEqual(ports);
    for (const p of doc.serial) expect(p.spec).toBe(`serial-disk:${p.path}`);
    expect(doc.usb).toEqual([]);
    expect(doc.notes).toContain('no USB devices (no USB bus here, or none attached: /sys/bus/usb lists nothing)');
  });
});

describe('mirrorlab with attached targets: bad input is one line and exit 2', () => {
  it('serial-disk without --port, with a bad volume, baud or transfer size', async () => {
    for (const [args, message] of [
      [['serial-disk', '--volume', 'mem:1MiB'], /required option '--port <path>' not specified/],
      [['serial-disk', '--port', '/dev/null', '--volume', 'usb-emu:1MiB:faults=gremlins'], /unknown USB fault "gremlins"/],
      [['serial-disk', '--port', '/dev/null', '--volume', 'mem:1MiB', '--baud', '50'], /--baud takes an integer from 1200 to 4000000, got "50"/],
      [['serial-disk', '--port', '/dev/null', '--volume', 'mem:1MiB:sector=4096', '--transfer-bytes', '6000'], /--transfer-bytes 6000 is not a multiple of the volume's 4096-byte sector/],
    ] as const) {
      const r = await mirrorlab([...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      oneLine(r.stderr);
    }
  });

  it('serial-disk on a port that does not exist', async () => {
    const r = await mirrorlab(['serial-disk', '--port', '/nonexistent/ttyX', '--volume', 'mem:1MiB']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: ML_ERR_SERIAL_DISK_PORT: no serial port at /nonexistent/ttyX; expected a tty such as /dev/ttyUSB0 (see mirrorlab devices)\n');
  });

  it('emulate with a USB device that is not connected, or a real device on a bidirectional run', async () => {
    const absent = await mirrorlab(['emulate', '--writes', '10', '--target-volume', 'usb:1234:5678']);
    expect(absent.code).toBe(2);
    expect(absent.stderr).toBe('error: ML_ERR_USB_NOT_FOUND: USB device 1234:5678 is not connected (no USB devices are present here); see mirrorlab devices\n');
    const bidi = await mirrorlab(['emulate', '--writes', '10', '--bidirectional', '--target-volume', 'serial-disk:/dev/ttyS9']);
    expect(bidi.code).toBe(2);
    expect(bidi.stderr).toMatch(/^error: --target-volume serial-disk:\/dev\/ttyS9 is one device, but --bidirectional needs a second volume/);
    oneLine(bidi.stderr);
  });
});

describe('mirrorlab serial-disk serving a volume on a PTY', () => {
  const scratch = scratchDir('serial-cli');
  let pair: PtyPair;
  beforeAll(async () => {
    pair = await ptyPair(scratch.dir(), 'cli');
  });
  afterAll(async () => {
    await pair.stop();
  });

  it('answers a serial-disk client, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, ['bin/mirrorlab.mjs', 'serial-disk', '--port', pair.b, '--volume', 'mem:4MiB', '--baud', '921600'], { cwd: root, env: { ...process.env, MIRRORLAB_LOG: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const line = await openSerialLine(pair.a, 921_600);
    try {
      const clock = new VirtualClock();
      // The server may still be starting (tsx compiles on load): IDENTIFY is retried until it answers.
      const disk = await SerialDisk.open({ name: 'client', clock, line, baud: 921_600, identifyTimeoutMs: 20_000 });
      expect([disk.sectorSize, disk.sectorCount, disk.geometry.name]).toEqual([512, 8192, 'mem:4MiB']);
      await runUntilSettled(clock, disk.write(77, pattern(5, 8192)));
      expect(Buffer.compare(await runUntilSettled(clock, disk.read(77, 16)), pattern(5, 8192))).toBe(0);
      await disk.close();
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/"msg":"serving"/);
    expect(stderr).toMatch(/"why":"SIGTERM"/);
  });
});
