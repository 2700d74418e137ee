import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RealClock } from '../../../host/clock/real.ts';
import { ptyPair, type PtyPair } from '../../../host/disks/serial-disk/socat-pty.ts';
import { silentLinkLogger } from '../../../host/transports/link-logger.ts';
import { formatLiveLinkSpec, openLiveLink, parseLiveLinkSpec, type LiveLinkSpec } from '../../../host/transports/live-link.ts';
import { scratchDir } from '../../support/scratch-dir.ts';

describe('parseLiveLinkSpec', () => {
  const good: [string, { connections?: number } | undefined, LiveLinkSpec][] = [
    ['tcp-listen:0.0.0.0:7700', undefined, { kind: 'tcp', role: 'listen', host: '0.0.0.0', port: 7700, connections: 2 }],
    ['tcp-listen:127.0.0.1:0', { connections: 3 }, { kind: 'tcp', role: 'listen', host: '127.0.0.1', port: 0, connections: 3 }],
    ['tcp:192.168.1.20:7700', { connections: 1 }, { kind: 'tcp', role: 'connect', host: '192.168.1.20', port: 7700, connections: 1 }],
    ['tcp:board-7.lab:65535', undefined, { kind: 'tcp', role: 'connect', host: 'board-7.lab', port: 65535, connections: 2 }],
    ['tcp:[::1]:7700', undefined, { kind: 'tcp', role: 'connect', host: '::1', port: 7700, connections: 2 }],
    ['serial:/dev/ttyUSB0', undefined, { kind: 'serial', path: '/dev/ttyUSB0', baudRate: 115_200 }],
    ['serial:/dev/ttyUSB0:921600', undefined, { kind: 'serial', path: '/dev/ttyUSB0', baudRate: 921_600 }],
    ['serial:/dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0', undefined,
      { kind: 'serial', path: '/dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0', baudRate: 115_200 }],
  ];
  for (const [text, opts, spec] of good) {
    it(`reads ${text}, and writes it back the same`, () => {
      expect(parseLiveLinkSpec(text, opts)).toEqual(spec);
      expect(parseLiveLinkSpec(formatLiveLinkSpec(spec), opts)).toEqual(spec);
    });
  }

  const bad: [string, { connections?: number } | undefined, RegExp][] = [
    ['', undefined, /it is empty/],
    ['udp:1.2.3.4:5', undefined, /unknown kind "udp"/],
    ['tcp:1.2.3.4', undefined, /tcp takes a host and a port: tcp:HOST:PORT/],
    ['tcp:1.2.3.4:http', undefined, /port "http" is not an integer from 0 to 65535/],
    ['tcp:1.2.3.4:70000', undefined, /port "70000" is not an integer/],
    ['tcp:1.2.3.4:0', undefined, /port 0 means "any free port", which only a listener can take/],
    ['tcp:::1:7700', undefined, /an IPv6 address goes in brackets/],
    ['tcp:[1.2.3.4]:7700', undefined, /in brackets is not an IPv6 address/],
    ['tcp:a b:7700', undefined, /host "a b" is not an IPv4 address or a host name/],
    ['tcp-listen:0.0.0.0:7700', { connections: 0 }, /a TCP link carries 1 to 64 data connections, not 0/],
    ['tcp-listen:0.0.0.0:7700', { connections: 65 }, /not 65/],
    ['serial:', undefined, /serial takes the path of a serial port/],
    ['serial:/dev/ttyS0:300', undefined, /baud rate 300 is not 1200 to 4000000/],
    [`serial:/dev/${'x'.repeat(5000)}`, undefined, /longer than 4096 characters/],
  ];
  for (const [text, opts, problem] of bad) {
    it(`refuses ${JSON.stringify(text.slice(0, 40))}${opts ? ` with ${JSON.stringify(opts)}` : ''}, saying why and what is allowed`, () => {
      let error: unknown;
      try {
        parseLiveLinkSpec(text, opts);
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ code: 'ML_ERR_LINK_SPEC', message: expect.stringMatching(problem) });
      expect((error as Error).message).toMatch(/a link is tcp-listen:HOST:PORT .*, tcp:HOST:PORT .* or serial:PATH\[:BAUD\]/);
      expect((error as Error).message).not.toMatch(/\n/);
    });
  }
});

describe('opening a serial link', () => {
  const scratch = scratchDir('live-serial-open');
  const opts = { clock: new RealClock(), logger: silentLinkLogger, localName: 'A', peerName: 'B' };
  let pair: PtyPair;
  beforeAll(async () => {
    pair = await ptyPair(scratch.dir(), 'open');
  });
  afterAll(async () => {
    await pair.stop();
  });

  it('says what is wrong, in one line, for a missing port, a port in use and a file that is no tty', async () => {
    await expect(openLiveLink({ kind: 'serial', path: `${scratch.dir()}/no-such-tty`, baudRate: 115_200 }, opts))
      .rejects.toMatchObject({ code: 'ML_ERR_LINK_SERIAL_PORT', message: expect.stringMatching(/^no serial port at .*no-such-tty \(ENOENT\); expected a tty/) });
    const first = await openLiveLink({ kind: 'serial', path: pair.a, baudRate: 115_200 }, opts);
    try {
      await expect(openLiveLink({ kind: 'serial', path: pair.a, baudRate: 115_200 }, opts))
        .rejects.toMatchObject({ code: 'ML_ERR_LINK_SERIAL_IN_USE', message: expect.stringMatching(/is in use by another program/) });
    } finally {
      await first.shutdown();
    }
    await expect(openLiveLink({ kind: 'serial', path: '/etc/hostname', baudRate: 115_200 }, opts))
      .rejects.toMatchObject({ code: 'ML_ERR_LINK_SERIAL_PORT', message: expect.stringMatching(/is not a serial port/) });
  });
});
