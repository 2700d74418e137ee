import { SerialPortMock } from 'serialport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSerialLine, SerialPortLine, type ByteLine } from '../../../../host/disks/serial-disk/line.ts';
import { SeededRandom } from '../../../../host/random.ts';
import { scratchDir } from '../../../support/scratch-dir.ts';
import { blockDeviceContract } from '../contract.ts';
import { spoil, type LineNoise } from './memory-line.ts';
import { serialFactory } from './serial-fixtures.ts';
import { ptyPair, type PtyPair } from '../../../../host/disks/serial-disk/socat-pty.ts';

const ALL = { mediaErrors: true, deviceFailure: true, powerCycle: true };

/** Two mock serial ports (serialport's own mock binding) wired to each other: the SerialPortLine adapter, without a tty. */
let mockSerial = 0;
async function mockPair(): Promise<[ByteLine, ByteLine, () => Promise<void>]> {
  const n = mockSerial++;
  const paths = [`/dev/mock-host-${n}`, `/dev/mock-board-${n}`] as const;
  for (const path of paths) SerialPortMock.binding.createPort(path, { echo: false, record: false });
  const ports = paths.map((path) => new SerialPortMock({ path, baudRate: 115_200, autoOpen: false }));
  await Promise.all(ports.map((p) => new Promise<void>((resolve, reject) => p.open((e) => (e ? reject(e) : resolve())))));
  const [host, board] = ports as [SerialPortMock, SerialPortMock];
  for (const [from, to] of [[host, board], [board, host]] as const) {
    const binding = from.port!;
    const write = binding.write.bind(binding);
    binding.write = async (buffer: Buffer) => {
      await write(buffer);
      if (to.isOpen) to.port!.emitData(Buffer.from(buffer));
    };
  }
  return [new SerialPortLine(host), new SerialPortLine(board), async () => {}];
}

blockDeviceContract('serial-disk over serialport\'s mock binding', serialFactory(mockPair), { can: ALL, sectorSizes: [512] });

const scratch = scratchDir('serial-pty');
let pty = 0;

/** The host's and the board's ends of a socat PTY pair, opened through serialport like any tty. */
async function ptyLines(): Promise<[ByteLine, ByteLine, () => Promise<void>]> {
  const pair = await ptyPair(scratch.dir(), `pty${pty++}`);
  const host = await openSerialLine(pair.a, 115_200);
  const board = await openSerialLine(pair.b, 115_200);
  return [host, board, () => pair.stop()];
}

blockDeviceContract('serial-disk over a socat PTY pair', serialFactory(ptyLines), { can: ALL });

/**
 * Noise on a real tty path: host <-> PTY pair <-> a proxy that flips and drops bytes <-> PTY pair
 * <-> board. Everything the contract checks must still hold.
 */
async function noisyPtyLines(noise: LineNoise): Promise<[ByteLine, ByteLine, () => Promise<void>]> {
  const near = await ptyPair(scratch.dir(), `near${pty}`);
  const far = await ptyPair(scratch.dir(), `far${pty++}`);
  const [host, proxyNear, proxyFar, board] = await Promise.all([openSerialLine(near.a, 115_200), openSerialLine(near.b, 115_200), openSerialLine(far.a, 115_200), openSerialLine(far.b, 115_200)]);
  const random = new SeededRandom(noise.seed ?? 1);
  const spoiled = { flipped: 0, dropped: 0, bytes: 0 };
  proxyNear.onData((chunk) => proxyFar.write(spoil(chunk, noise, random, spoiled)));
  proxyFar.onData((chunk) => proxyNear.write(spoil(chunk, noise, random, spoiled)));
  noisyTally.push(spoiled);
  return [host, board, async () => {
    await Promise.all([proxyNear.close(), proxyFar.close()]);
    await Promise.all([near.stop(), far.stop()]);
  }];
}
const noisyTally: { flipped: number; dropped: number; bytes: number }[] = [];

blockDeviceContract('serial-disk over PTYs with a noisy line between them',
  serialFactory(() => noisyPtyLines({ flipPerMillion: 40, dropPerMillion: 40, seed: 5 })), { can: ALL, sectorSizes: [512] });

describe('the noisy PTY line', () => {
  it('did flip and drop bytes during the runs above', () => {
    expect(noisyTally.reduce((n, s) => n + s.flipped, 0)).toBeGreaterThan(0);
    expect(noisyTally.reduce((n, s) => n + s.dropped, 0)).toBeGreaterThan(0);
  });
});

describe('opening a serial port', () => {
  let pair: PtyPair;
  beforeAll(async () => {
    pair = await ptyPair(scratch.dir(), 'open');
  });
  afterAll(async () => {
    await pair.stop();
  });

  it('says what is wrong, in one line, for a missing port, a port in use and a file that is no tty', async () => {
    await expect(openSerialLine(`${scratch.dir()}/no-such-tty`, 115_200)).rejects.toMatchObject({ code: 'ML_ERR_SERIAL_DISK_PORT', message: expect.stringMatching(/^no serial port at .*no-such-tty; expected a tty/) });
    const first = await openSerialLine(pair.a, 115_200);
    try {
      await expect(openSerialLine(pair.a, 115_200)).rejects.toMatchObject({ code: 'ML_ERR_SERIAL_DISK_IN_USE', message: expect.stringMatching(/is in use by another program/) });
    } finally {
      await first.close();
    }
    await expect(openSerialLine('/etc/hostname', 115_200)).rejects.toMatchObject({ code: 'ML_ERR_SERIAL_DISK_PORT', message: expect.stringMatching(/is not a serial port/) });
  });
});
