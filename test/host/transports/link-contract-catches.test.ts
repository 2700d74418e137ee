import { describe, expect, it } from 'vitest';
import type { LinkEndpoint, LinkHandler } from '../../../firmware/ports/link.ts';
import type { VirtualClock } from '../../../host/clock/virtual.ts';
import type { SimLinkOptions } from '../../../host/transports/sim.ts';
import { linkContractCase, runLinkContractCase, type LinkContractOptions, type LinkPair } from './link-contract.ts';
import { simPair } from './sim-pair.ts';

/**
 * The link contract must be able to fail (docs/conventions.md 10): each case below runs against a
 * link broken in the one way the case is about, and must throw; and against the same link
 * unbroken, and must pass.
 */

/** An endpoint that forwards everything; a broken one overrides what it breaks. */
class Passthrough implements LinkEndpoint {
  protected handler: LinkHandler | null = null;
  constructor(protected readonly inner: LinkEndpoint, protected readonly clock: VirtualClock) {}
  get name(): string { return `broken ${this.inner.name}`; }
  get connections(): number { return this.inner.connections; }
  get heartbeats(): 'datagram' | 'inline' { return this.inner.heartbeats; }
  attach(handler: LinkHandler): void {
    this.handler = handler;
    this.inner.attach(this.wrap(handler));
  }
  open(conn: number): void { this.inner.open(conn); }
  close(conn: number): void { this.inner.close(conn); }
  send(conn: number, bytes: Uint8Array): boolean { return this.inner.send(conn, bytes); }
  sendDatagram(bytes: Uint8Array): void { this.inner.sendDatagram(bytes); }
  /** The handler the inner endpoint calls; by default the real one. */
  protected wrap(handler: LinkHandler): LinkHandler { return handler; }
}

/** Holds back every other send and sends it after the next one: two frames swap places. */
class Reorders extends Passthrough {
  private held = new Map<number, Uint8Array>();
  override send(conn: number, bytes: Uint8Array): boolean {
    const held = this.held.get(conn);
    if (held === undefined) {
      this.held.set(conn, bytes);
      return true;
    }
    this.held.delete(conn);
    return this.inner.send(conn, bytes) && this.inner.send(conn, held);
  }
}

/** Says opened as soon as this end asks, without waiting for the peer. */
class OpensAlone extends Passthrough {
  override open(conn: number): void {
    this.inner.open(conn);
    this.clock.setTimeout(() => this.handler?.opened(conn), 0);
  }
}

/** After this end closes a connection, delivers once more the last chunk it had received on it. */
class DeliversAfterClose extends Passthrough {
  private last = new Map<number, Uint8Array>();
  override close(conn: number): void {
    this.inner.close(conn);
    const chunk = this.last.get(conn);
    if (chunk !== undefined) this.clock.setTimeout(() => this.handler?.bytes(conn, chunk), 1);
  }
  protected override wrap(h: LinkHandler): LinkHandler {
    return { ...bind(h), bytes: (conn, chunk) => (this.last.set(conn, chunk), h.bytes(conn, chunk)) };
  }
}

/** Keeps what arrived on a connection and, when it opens again, delivers it again on the new one. */
class LeaksOldConversation extends Passthrough {
  private seen = new Map<number, Uint8Array[]>();
  protected override wrap(h: LinkHandler): LinkHandler {
    return {
      ...bind(h),
      bytes: (conn, chunk) => (this.seen.set(conn, [...(this.seen.get(conn) ?? []), chunk]), h.bytes(conn, chunk)),
      opened: (conn) => {
        h.opened(conn);
        for (const chunk of this.seen.get(conn) ?? []) h.bytes(conn, chunk);
      },
    };
  }
}

/** Closes without telling the peer (a datagram link behaving like a serial line). */
class ClosesSilently extends Passthrough {
  private dead = new Set<number>();
  override close(conn: number): void { this.dead.add(conn); }
  override send(conn: number, bytes: Uint8Array): boolean { return !this.dead.has(conn) && this.inner.send(conn, bytes); }
  protected override wrap(h: LinkHandler): LinkHandler {
    return { ...bind(h), bytes: (conn, chunk) => (this.dead.has(conn) ? undefined : h.bytes(conn, chunk)) };
  }
}

/** Closing one connection closes them all. */
class Entangled extends Passthrough {
  override close(conn: number): void {
    for (let k = 0; k < this.connections; k++) this.inner.close(k);
    void conn;
  }
}

/** Drops every heartbeat. */
class DropsHeartbeats extends Passthrough {
  override sendDatagram(): void {}
}

/** Never says writable. */
class NeverWritable extends Passthrough {
  protected override wrap(h: LinkHandler): LinkHandler {
    return { ...bind(h), writable: () => undefined };
  }
}

/** A handler whose methods keep their `this` when spread into a wrapper. */
function bind(h: LinkHandler): LinkHandler {
  return {
    opened: (c) => h.opened(c), closed: (c, r) => h.closed(c, r), bytes: (c, b) => h.bytes(c, b),
    datagram: (b) => h.datagram(b), writable: (c) => h.writable(c),
  };
}

type Breaker = (pair: ReturnType<typeof simPair>) => LinkPair;

/** A simulated pair whose end `a` (or both ends) is wrapped in `Broken`. */
function brokenEnd(Broken: new (inner: LinkEndpoint, clock: VirtualClock) => Passthrough, both = false): Breaker {
  return (p) => ({ ...p, a: new Broken(p.a, p.clock), b: both ? new Broken(p.b, p.clock) : p.b });
}

/** Transport-level faults done wrong: a reset of one connection resets every one; a black hole that tells. */
const resetsAll: Breaker = (p) => ({ ...p, reset: () => { for (let k = 0; k < p.link.connections; k++) p.link.reset(k); } });
const blackholeTells: Breaker = (p) => ({
  ...p,
  blackhole: (dir, on) => {
    p.link.blackhole(dir, on);
    if (on) for (let k = 0; k < p.link.connections; k++) p.link.reset(k);
  },
});

const asIs: Breaker = (p) => p;
const datagram2: Partial<SimLinkOptions> = { connections: 2 };
const inline: Partial<SimLinkOptions> = { connections: 1, heartbeats: 'inline' };

const CATCHES: { caughtBy: string; broken: string; breaker: Breaker; link: Partial<SimLinkOptions> }[] = [
  { caughtBy: 'bytes arrive in order', broken: 'reorders frames', breaker: brokenEnd(Reorders), link: datagram2 },
  { caughtBy: 'bytes arrive in order', broken: 'reorders frames (inline)', breaker: brokenEnd(Reorders), link: inline },
  { caughtBy: 'a connection opens only once both ends want it', broken: 'opens alone', breaker: brokenEnd(OpensAlone), link: datagram2 },
  { caughtBy: 'close: the peer hears closed', broken: 'delivers after close', breaker: brokenEnd(DeliversAfterClose), link: datagram2 },
  { caughtBy: 'close: the peer hears closed', broken: 'closes without telling the peer', breaker: brokenEnd(ClosesSilently), link: datagram2 },
  { caughtBy: 'reopening gives a fresh conversation', broken: 'leaks the old conversation into the new one', breaker: brokenEnd(LeaksOldConversation, true), link: datagram2 },
  { caughtBy: 'connections are independent', broken: 'closes every connection at once', breaker: brokenEnd(Entangled), link: datagram2 },
  { caughtBy: 'heartbeats are delivered', broken: 'drops heartbeats', breaker: brokenEnd(DropsHeartbeats), link: datagram2 },
  { caughtBy: 'heartbeats are delivered', broken: 'drops heartbeats (inline)', breaker: brokenEnd(DropsHeartbeats), link: inline },
  { caughtBy: 'backpressure', broken: 'never says writable', breaker: brokenEnd(NeverWritable), link: datagram2 },
  { caughtBy: 'a reset of one connection', broken: 'resets every connection', breaker: resetsAll, link: datagram2 },
  { caughtBy: 'a black hole tells nobody', broken: 'tells of a black hole', breaker: blackholeTells, link: datagram2 },
  { caughtBy: 'a black hole tells nobody', broken: 'tells of a black hole (inline)', breaker: blackholeTells, link: inline },
];

const settleMs = 50;
const optionsFor = (link: Partial<SimLinkOptions>): LinkContractOptions => ({
  connections: link.connections ?? 2, heartbeats: link.heartbeats ?? 'datagram', can: { blackhole: true, reset: true, backpressure: true }, settleMs,
});

describe('the link contract catches broken links', () => {
  for (const { caughtBy, broken, breaker, link } of CATCHES) {
    it(`"${caughtBy}" fails on a link that ${broken}, and passes on the same link unbroken`, async () => {
      const c = linkContractCase(caughtBy);
      const options = optionsFor(link);
      await expect(runLinkContractCase(c, async () => breaker(simPair(link)), options)).rejects.toThrow();
      await runLinkContractCase(c, async () => asIs(simPair(link)), options);
    });
  }

  it('refuses a pair that is not what the options say', async () => {
    const c = linkContractCase('both ends hear opened');
    await expect(runLinkContractCase(c, async () => simPair({ connections: 3 }), optionsFor(datagram2))).rejects.toThrow(/connections/);
  });
});
