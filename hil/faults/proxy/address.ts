import { isIPv4 } from 'node:net';
import { ProxyError } from './errors.ts';

export interface HostPort {
  host: string;
  port: number;
}

const PORT = /^\d{1,5}$/;
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/;

/**
 * `--listen HOST:PORT`: where the proxy listens, on loopback only (docs/fault-proxy.md 1). A fault
 * proxy exposed beyond the machine would let anyone on the network inject bytes into a mirror, so
 * another address is refused rather than quietly narrowed. `localhost` means 127.0.0.1; port 0
 * picks a free one (TCP and UDP then share the number the kernel gave TCP).
 */
export function parseListenAddress(text: string, what = '--listen'): HostPort {
  const { host, port } = splitHostPort(text, what, 0);
  const ip = host === 'localhost' ? '127.0.0.1' : host;
  if (!isIPv4(ip) || !ip.startsWith('127.')) {
    throw new ProxyError('ML_ERR_PROXY_ADDRESS',
      `${what}: ${host} is not a loopback address; the fault proxy listens on loopback only (127.0.0.1, or another 127.x.y.z)`);
  }
  return { host: ip, port };
}

/** `--to HOST:PORT`: the real listener the proxy dials (any host name or IPv4 address, port 1-65535). */
export function parseTargetAddress(text: string, what = '--to'): HostPort {
  const { host, port } = splitHostPort(text, what, 1);
  if (!isIPv4(host) && !HOSTNAME.test(host)) {
    throw new ProxyError('ML_ERR_PROXY_ADDRESS', `${what}: "${host}" is not a host name or an IPv4 address; write e.g. 127.0.0.1:7400`);
  }
  return { host, port };
}

function splitHostPort(text: string, what: string, portMin: number): HostPort {
  const at = text.lastIndexOf(':');
  const host = at < 0 ? '' : text.slice(0, at).trim();
  const portText = at < 0 ? '' : text.slice(at + 1).trim();
  if (host === '' || !PORT.test(portText)) {
    throw new ProxyError('ML_ERR_PROXY_ADDRESS', `${what}: "${text}" is not HOST:PORT; write e.g. 127.0.0.1:7400`);
  }
  const port = Number(portText);
  if (port < portMin || port > 65535) {
    throw new ProxyError('ML_ERR_PROXY_ADDRESS', `${what}: port ${port} is out of range; allowed ${portMin} to 65535`);
  }
  return { host, port };
}

export function formatHostPort(a: HostPort): string {
  return `${a.host}:${a.port}`;
}
