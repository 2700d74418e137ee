import { lookup } from 'node:dns/promises';
import type { ControllerLimits } from '../../firmware/controller/config.ts';
import { isIP } from 'node:net';
import type { HostClock } from '../clock/clock.ts';
import { SERIAL_BAUD_DEFAULT, SERIAL_BAUD_MAX, SERIAL_BAUD_MIN } from '../disks/volume-spec.ts';
import type { LinkLogger } from './link-logger.ts';
import { LiveLinkError, errnoCode } from './live-link-errors.ts';
import type { LiveLink } from './live-link-types.ts';
import { SerialLink, type SerialPortOpener } from './serial-link.ts';
import { TCP_LINK_CONNECTIONS_MAX, TcpLink } from './tcp-link.ts';
import { hex4, type UsbEnvironment } from '../disks/usb/open-usb.ts';
import { parseUsbLinkSpec, UsbLink, type UsbLinkTarget } from './usb-link.ts';

export type { LiveConnectionStats, LiveLink, LiveLinkStats } from './live-link-types.ts';
export { LiveLinkError, type LiveLinkErrorCode } from './live-link-errors.ts';
export type { LinkLogger } from './link-logger.ts';

/** Where a live link goes (docs/live-links.md 1). */
export type LiveLinkSpec =
  | { kind: 'tcp'; role: 'listen' | 'connect'; host: string; port: number; connections: number }
  | { kind: 'serial'; path: string; baudRate: number }
  | ({ kind: 'usb-link' } & UsbLinkTarget);

/**
 * Controller limits for links on the real clock (docs/live-links.md 9). The defaults suit the
 * simulator, where nothing stalls unless a fault says so; a process on a real machine stalls for
 * its garbage collector and its neighbours, for tens of milliseconds at times, and frames on
 * different TCP connections overtake each other by as much as one connection's queue holds.
 * With a 5 ms minimum ack timeout and a 10 ms wait before a gap is NAKed, every such stall looked
 * like a loss: go-back-N re-sent what was not lost and the congestion window halved (the live
 * bench mirrored at a fifth of its rate). 200 ms is TCP's own floor for the same decision (Linux's
 * minimum RTO); a loss on a live link is a lost connection, which the supervisor handles anyway.
 */
export const LIVE_LINK_LIMITS: Readonly<Partial<ControllerLimits>> = {
  ackTimeoutMinMs: 200,
  nakRetryMs: 200,
};

/** Data connections of a TCP link when the caller does not say (the emulator's default). */
export const LIVE_LINK_CONNECTIONS_DEFAULT = 2;
/** Longest spec accepted (characters): it is public input. */
export const LIVE_LINK_SPEC_LENGTH_MAX = 4096;

export const LIVE_LINK_SPEC_HELP =
  'a link is tcp-listen:HOST:PORT (this end listens), tcp:HOST:PORT (this end connects to a listener) or serial:PATH[:BAUD]; ' +
  'HOST is an IPv4 address, a name, or an IPv6 address in brackets ([::1]); PORT is 1 to 65535 (0 on tcp-listen: any free port); ' +
  `BAUD is ${SERIAL_BAUD_MIN} to ${SERIAL_BAUD_MAX} (default ${SERIAL_BAUD_DEFAULT}); ` +
  'or usb-link:VID:PID[:SERIAL] (a USB device\'s vendor-specific bulk interface; VID and PID are 4 hex digits); ' +
  'e.g. tcp-listen:0.0.0.0:7700, tcp:192.168.1.20:7700, serial:/dev/ttyUSB0:921600, usb-link:1209:4d4d';

function specError(text: string, problem: string): LiveLinkError {
  return new LiveLinkError('ML_ERR_LINK_SPEC', `bad link spec ${JSON.stringify(text.slice(0, 200))}: ${problem}; ${LIVE_LINK_SPEC_HELP}`);
}

/**
 * Parses `tcp-listen:HOST:PORT`, `tcp:HOST:PORT` (connect), `serial:PATH[:BAUD]` or `usb-link:VID:PID[:SERIAL]`. A TCP link
 * carries `opts.connections` data connections (default 2; both ends must agree). Throws a
 * {@link LiveLinkError} (`ML_ERR_LINK_SPEC`) saying what was wrong and what is allowed.
 */
export function parseLiveLinkSpec(text: string, opts: { connections?: number } = {}): LiveLinkSpec {
  const fail = (problem: string): never => {
    throw specError(String(text), problem);
  };
  if (typeof text !== 'string' || text.length === 0) fail('it is empty');
  if (text.length > LIVE_LINK_SPEC_LENGTH_MAX) fail(`it is longer than ${LIVE_LINK_SPEC_LENGTH_MAX} characters`);
  const colon = text.indexOf(':');
  const kind = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? '' : text.slice(colon + 1);
  if (kind === 'serial') return parseSerial(rest, fail);
  if (kind === 'usb-link') return { kind: 'usb-link', ...parseUsbLinkSpec(rest, fail) };
  if (kind !== 'tcp' && kind !== 'tcp-listen') fail(`unknown kind ${JSON.stringify(kind)}`);
  const role = kind === 'tcp' ? 'connect' : 'listen';
  const connections = opts.connections ?? LIVE_LINK_CONNECTIONS_DEFAULT;
  if (!Number.isInteger(connections) || connections < 1 || connections > TCP_LINK_CONNECTIONS_MAX) {
    fail(`a TCP link carries 1 to ${TCP_LINK_CONNECTIONS_MAX} data connections, not ${connections}`);
  }
  const { host, port } = parseHostPort(rest, kind, fail);
  if (port === 0 && role === 'connect') fail('port 0 means "any free port", which only a listener can take; give the listener\'s port');
  return { kind: 'tcp', role, host, port, connections };
}

function parseHostPort(rest: string, kind: string, fail: (problem: string) => never): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\]:([^:]*)$/.exec(rest);
  const plain = /^([^:[\]]+):([^:]*)$/.exec(rest);
  const m = bracketed ?? plain;
  if (m === null) {
    if (/^[^[]*:.*:/.test(rest)) fail('an IPv6 address goes in brackets: [::1]:PORT');
    return fail(`${kind} takes a host and a port: ${kind}:HOST:PORT`);
  }
  const host = m[1]!;
  if (bracketed !== null && isIP(host) !== 6) fail(`${JSON.stringify(host)} in brackets is not an IPv6 address`);
  if (bracketed === null && !/^[A-Za-z0-9.-]{1,253}$/.test(host)) fail(`host ${JSON.stringify(host)} is not an IPv4 address or a host name`);
  const portText = m[2]!;
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) fail(`port ${JSON.stringify(portText)} is not an integer from 0 to 65535`);
  return { host, port: Number(portText) };
}

/** `serial:PATH[:BAUD]`: PATH may contain ':' (by-path names do), so a last all-digit field is the baud rate. */
function parseSerial(rest: string, fail: (problem: string) => never): LiveLinkSpec {
  const fields = rest.split(':');
  const last = fields[fields.length - 1]!;
  const hasBaud = fields.length >= 2 && /^\d+$/.test(last);
  const path = (hasBaud ? fields.slice(0, -1) : fields).join(':');
  if (path === '') fail('serial takes the path of a serial port: serial:PATH[:BAUD]');
  const baudRate = hasBaud ? Number(last) : SERIAL_BAUD_DEFAULT;
  if (!(baudRate >= SERIAL_BAUD_MIN && baudRate <= SERIAL_BAUD_MAX)) fail(`baud rate ${last} is not ${SERIAL_BAUD_MIN} to ${SERIAL_BAUD_MAX}`);
  return { kind: 'serial', path, baudRate };
}

/** The text that {@link parseLiveLinkSpec} reads back to the same spec (connections aside: they are not in the text). */
export function formatLiveLinkSpec(spec: LiveLinkSpec): string {
  if (spec.kind === 'usb-link') return `usb-link:${hex4(spec.vendorId)}:${hex4(spec.productId)}${spec.serial === null ? '' : `:${spec.serial}`}`;
  if (spec.kind === 'serial') return `serial:${spec.path}${spec.baudRate === SERIAL_BAUD_DEFAULT ? '' : `:${spec.baudRate}`}`;
  const host = isIP(spec.host) === 6 ? `[${spec.host}]` : spec.host;
  return `${spec.role === 'listen' ? 'tcp-listen' : 'tcp'}:${host}:${spec.port}`;
}

export interface OpenLiveLinkOptions {
  clock: HostClock;
  logger: LinkLogger;
  /** This controller's name (the endpoint's `name`) and its peer's, for logs and the description. */
  localName: string;
  peerName: string;
  /** Bytes a connection's send queue may hold before `send` refuses (default: the transport's). */
  sendQueueBytesMax?: number;
  /** TCP: how long the connect side waits for a connection to be dialled and accepted. */
  connectTimeoutMs?: number;
  /** Serial: how the port is opened (tests pass serialport's mock binding). */
  openSerialPort?: SerialPortOpener;
  /** USB: where devices are found (default: the `usb` package; tests pass emulated devices). */
  usbEnvironment?: UsbEnvironment;
}

/**
 * Opens a live link (docs/live-links.md): binds the listener (TCP and UDP on the same port) or
 * prepares the connect side's heartbeat socket, or opens the serial port. Data connections are
 * made only when the firmware asks (`open`). Errors here are {@link LiveLinkError}s: an address in
 * use or not on this machine, an unknown host, a port below 1024, a serial port absent, busy or
 * forbidden, a USB link device absent, ambiguous, without the interface or held.
 */
export async function openLiveLink(spec: LiveLinkSpec, opts: OpenLiveLinkOptions): Promise<LiveLink> {
  const { clock, logger, localName, peerName, sendQueueBytesMax } = opts;
  const common = { clock, logger, localName, peerName, sendQueueBytesMax };
  if (spec.kind === 'serial') return SerialLink.open({ ...common, path: spec.path, baudRate: spec.baudRate, openPort: opts.openSerialPort });
  if (spec.kind === 'usb-link') return UsbLink.open({ ...common, ...spec, env: opts.usbEnvironment });
  const { address, family } = await resolve(spec.host);
  const { role, host, port, connections } = spec;
  return TcpLink.open({ ...common, role, host, address, family, port, connections, connectTimeoutMs: opts.connectTimeoutMs });
}

async function resolve(host: string): Promise<{ address: string; family: 4 | 6 }> {
  const literal = isIP(host);
  if (literal !== 0) return { address: host, family: literal as 4 | 6 };
  try {
    const r = await lookup(host);
    return { address: r.address, family: r.family === 6 ? 6 : 4 };
  } catch (error) {
    const why = errnoCode(error) || String(error);
    throw new LiveLinkError('ML_ERR_LINK_ADDRESS',
      `cannot resolve host ${JSON.stringify(host)} (${why}); use an IP address, or a name this machine resolves`, error);
  }
}
