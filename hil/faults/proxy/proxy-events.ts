import type { LinkFaultEvent } from '../../trace/events.ts';

/**
 * A fault the proxy committed, in the simulator's trace vocabulary (hil/trace/events.ts): the same
 * `link.fault` events with the same keys in the same order, so one reader serves simulated and
 * real runs. `t` is wall milliseconds since the proxy started; `node` sent the frame and `peer`
 * was to receive it. Per-frame events and resets add `channel` last: which connection (slot and
 * incarnation, docs/fault-proxy.md 3), `datagram` or `serial`.
 */
export type ProxyEvent = LinkFaultEvent & { channel?: string };

/** Takes an event; returning false says it was dropped (a full events file), which the stats count. */
export type ProxyEventSink = (event: ProxyEvent) => boolean | void;
