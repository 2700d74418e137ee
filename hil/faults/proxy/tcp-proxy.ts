import net from 'node:net';
import { formatHostPort, type HostPort } from './address.ts';
import { ProxyError } from './errors.ts';
import { ProxiedConnection } from './proxied-connection.ts';
import { ProxyCore, type FaultProxyCommonOptions } from './proxy-core.ts';
import type { ProxyStats } from './proxy-stats.ts';
import { UdpRelay } from './udp-relay.ts';

/** A running fault proxy (docs/fault-proxy.md 6). */
export interface FaultProxy {
  readonly link: 'tcp' | 'serial';
  /** TCP: the address the connect side dials and sends its heartbeats to; null for a serial relay. */
  readonly address: HostPort | null;
  /** One line saying what it relays, for logs. */
  readonly description: string;
  stats(): ProxyStats;
  /** Close every socket, line and timer; idempotent; nothing is relayed or emitted after it resolves. */
  stop(): Promise<void>;
}

export interface TcpFaultProxyOptions extends FaultProxyCommonOptions {
  /** Where to listen: a loopback address (see parseListenAddress); port 0 picks a free one. */
  listen: HostPort;
  /** The real listener: its TCP port, and the same port number for its heartbeats. */
  to: HostPort;
}

/** When the kernel's free TCP port is taken for UDP, try another this many times. */
const PORT_TRIES_MAX = 8;

/**
 * Starts the TCP and UDP fault proxy (docs/fault-proxy.md 2): a TCP listener and a UDP socket on the
 * same loopback port; every accepted connection is relayed to a connection of its own to `to`, and
 * the heartbeat datagrams to `to`'s UDP port. Refuses a non-loopback `listen` (ML_ERR_PROXY_ADDRESS)
 * and a port in use (ML_ERR_PROXY_LISTEN); a `oneway=` naming neither end is ML_ERR_PROXY_PLAN.
 */
export async function startTcpFaultProxy(opts: TcpFaultProxyOptions): Promise<FaultProxy> {
  if (!opts.listen.host.startsWith('127.')) {
    throw new ProxyError('ML_ERR_PROXY_ADDRESS', `the fault proxy listens on loopback only (127.0.0.1); refused ${opts.listen.host}`);
  }
  const core = new ProxyCore('tcp', opts);
  for (let attempt = 1; ; attempt++) {
    const server = await listenTcp(opts.listen);
    const port = (server.address() as net.AddressInfo).port;
    try {
      const udp = await UdpRelay.open(core, { host: opts.listen.host, port }, opts.to);
      return new TcpFaultProxy({ core, server, udp, address: { host: opts.listen.host, port }, to: opts.to });
    } catch (error) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      const taken = error instanceof ProxyError && error.code === 'ML_ERR_PROXY_LISTEN' && /is in use/.test(error.message);
      if (!(taken && opts.listen.port === 0 && attempt < PORT_TRIES_MAX)) throw error;
    }
  }
}

function listenTcp(at: HostPort): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(new ProxyError('ML_ERR_PROXY_LISTEN', error.code === 'EADDRINUSE'
        ? `TCP port ${at.port} on ${at.host} is in use; choose another --listen port (0 picks a free one)`
        : `cannot listen on ${formatHostPort(at)}: ${error.message}`));
    });
    server.listen({ host: at.host, port: at.port, exclusive: true }, () => resolve(server));
  });
}

class TcpFaultProxy implements FaultProxy {
  readonly link = 'tcp' as const;
  readonly description: string;
  private readonly connections = new Set<ProxiedConnection>();
  private readonly incarnations = new Map<string, number>();
  private stopping: Promise<void> | null = null;

  readonly address: HostPort;
  private readonly core: ProxyCore;
  private readonly server: net.Server;
  private readonly udp: UdpRelay;
  private readonly to: HostPort;

  constructor(o: { core: ProxyCore; server: net.Server; udp: UdpRelay; address: HostPort; to: HostPort }) {
    ({ core: this.core, server: this.server, udp: this.udp, address: this.address, to: this.to } = o);
    this.description = `fault proxy ${formatHostPort(o.address)} (tcp+udp) -> ${formatHostPort(o.to)}`;
    o.server.on('connection', (socket) => this.accept(socket));
    o.server.on('error', (error) => o.core.log.warn({ error: error.message }, 'fault proxy: listener error'));
    o.core.start();
    o.core.log.info({ listen: formatHostPort(o.address), to: formatHostPort(o.to) }, 'fault proxy listening');
  }

  stats(): ProxyStats {
    return this.core.stats();
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.core.stop();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of [...this.connections]) c.stop();
    this.udp.close();
    await closed;
  }

  private accept(socket: net.Socket): void {
    const core = this.core;
    if (core.stopped) {
      socket.destroy();
      return;
    }
    core.connections.accepted++;
    if (this.connections.size >= core.limits.connectionsMax) {
      core.connections.refused++;
      core.warnOnce('connections', { limit: core.limits.connectionsMax },
        'fault proxy: too many connections at once; resetting the new one (counted refused)');
      socket.on('error', () => {});
      socket.resetAndDestroy();
      return;
    }
    const c = new ProxiedConnection({
      core, target: this.to,
      channelFor: (slot) => this.channelFor(slot),
      done: (conn) => {
        if (this.connections.delete(conn)) core.connections.open--;
      },
    }, socket);
    this.connections.add(c);
    core.connections.open++;
    c.start();
  }

  /** `conn<slot>#<incarnation>`: the k-th connection the proxy relayed for that slot, from 0 (`conn?` for a preamble it cannot read). */
  private channelFor(slot: number | null): string {
    const key = slot === null ? 'conn?' : `conn${slot}`;
    const n = this.incarnations.get(key) ?? 0;
    this.incarnations.set(key, n + 1);
    return `${key}#${n}`;
  }
}
