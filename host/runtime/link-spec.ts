import { MirrorlabError } from '../../firmware/errors.ts';

/**
 * A peer's link as a controller config names it (docs/controller-process.md 2), in the grammar the
 * live transports share: `tcp-listen:HOST:PORT` (accept the peer's connections), `tcp:HOST:PORT`
 * (dial them), `serial:PATH[:BAUD]`. The shape is the live links' `LiveLinkSpec`.
 */
export type LinkSpec =
  | { kind: 'tcp'; role: 'listen' | 'connect'; host: string; port: number; connections: number }
  | { kind: 'serial'; path: string; baudRate: number };

export const LINK_SPEC_SYNTAX = 'tcp-listen:HOST:PORT, tcp:HOST:PORT or serial:PATH[:BAUD]';
export const LINK_CONNECTIONS_DEFAULT = 2;
export const LINK_CONNECTIONS_MAX = 16;
export const LINK_BAUD_DEFAULT = 115_200;
export const LINK_BAUD_MIN = 1200;
export const LINK_BAUD_MAX = 4_000_000;

export class LinkSpecError extends MirrorlabError {
  constructor(text: string, problem: string) {
    super('ML_ERR_LINK_SPEC', `bad link ${JSON.stringify(text.slice(0, 200))}: ${problem}; a link is ${LINK_SPEC_SYNTAX}`);
  }
}

/** Parses a link spec; throws {@link LinkSpecError} naming what was wrong and what is allowed. */
export function parseLinkSpec(text: string, opts: { connections?: number } = {}): LinkSpec {
  const fail = (problem: string): never => {
    throw new LinkSpecError(text, problem);
  };
  const colon = text.indexOf(':');
  const kind = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? '' : text.slice(colon + 1);
  if (kind === 'serial') {
    const m = /^(.+?)(?::(\d+))?$/.exec(rest);
    if (!m || m[1] === '') fail('serial takes the path of a serial port: serial:PATH[:BAUD]');
    const baudRate = m![2] === undefined ? LINK_BAUD_DEFAULT : Number(m![2]);
    if (!(baudRate >= LINK_BAUD_MIN && baudRate <= LINK_BAUD_MAX)) fail(`baud rate ${m![2]} is not ${LINK_BAUD_MIN} to ${LINK_BAUD_MAX}`);
    if (opts.connections !== undefined && opts.connections !== 1) fail(`a serial line is one connection, not ${opts.connections}`);
    return { kind: 'serial', path: m![1]!, baudRate };
  }
  if (kind !== 'tcp' && kind !== 'tcp-listen') fail(`unknown kind ${JSON.stringify(kind)}`);
  const at = rest.lastIndexOf(':');
  if (at <= 0) fail(`${kind} takes a host and a port: ${kind}:HOST:PORT`);
  let host = rest.slice(0, at);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const portText = rest.slice(at + 1);
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) fail(`port ${JSON.stringify(portText)} is not 1 to 65535`);
  if (host === '' || /\s/.test(host)) fail(`host ${JSON.stringify(host)} is not a host name or address`);
  const connections = opts.connections ?? LINK_CONNECTIONS_DEFAULT;
  if (!Number.isInteger(connections) || connections < 1 || connections > LINK_CONNECTIONS_MAX) fail(`connections must be 1 to ${LINK_CONNECTIONS_MAX}, got ${connections}`);
  return { kind: 'tcp', role: kind === 'tcp-listen' ? 'listen' : 'connect', host, port, connections };
}

/** The spec as text (what {@link parseLinkSpec} reads back to the same spec, connections aside). */
export function formatLinkSpec(spec: LinkSpec): string {
  if (spec.kind === 'serial') return `serial:${spec.path}${spec.baudRate === LINK_BAUD_DEFAULT ? '' : `:${spec.baudRate}`}`;
  const host = spec.host.includes(':') ? `[${spec.host}]` : spec.host;
  return `${spec.role === 'listen' ? 'tcp-listen' : 'tcp'}:${host}:${spec.port}`;
}
