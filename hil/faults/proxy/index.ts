/** The fault proxy for real links (docs/fault-proxy.md): TCP and UDP, or a relay between two PTY pairs. */
export { parseListenAddress, parseTargetAddress, formatHostPort, type HostPort } from './address.ts';
export { ProxyError, type ProxyErrorCode } from './errors.ts';
export { PROXY_LIMITS, type ProxyLimits } from './limits.ts';
export type { FaultProxyCommonOptions } from './proxy-core.ts';
export type { ProxyEvent, ProxyEventSink } from './proxy-events.ts';
export type { ChannelCounters, ProxyStats } from './proxy-stats.ts';
export { startTcpFaultProxy, type FaultProxy, type TcpFaultProxyOptions } from './tcp-proxy.ts';
export { startSerialFaultProxy, type SerialFaultProxyOptions } from './serial-relay.ts';
