import { describe, expect, it } from 'vitest';
import type { LinkEndpoint, LinkHandler } from '../../../firmware/ports/link.ts';
import { FrameDecoder } from '../../../firmware/protocol/decoder.ts';
import { encodeFrame } from '../../../firmware/protocol/encode.ts';
import { FrameType } from '../../../firmware/protocol/frame.ts';
import type { FrameError } from '../../../firmware/protocol/errors.ts';

/**
 * The link contract (docs/conventions.md 4, docs/simulated-link.md 6): what every LinkEndpoint
 * (firmware/ports/link.ts) must do, run against the simulated link in both heartbeat modes, TCP
 * with UDP heartbeats on loopback, serial over a socat PTY pair and over serialport's mock binding
 * (docs/live-links.md 9), and USB bulk pipes over the emulated device. A transport runs it with
 * `linkContract(name, factory, options)`.
 *
 * Time passes only through the pair's `wait`: the virtual clock's `run` for the simulator, real
 * sleeps for real transports; every wait is bounded (`settleMs` for what should happen promptly).
 */
export interface LinkPair {
  /** The two ends, connected to each other, with nothing attached and nothing opened. */
  a: LinkEndpoint;
  b: LinkEndpoint;
  /** Let `ms` of the link's time pass. */
  wait(ms: number): Promise<void>;
  /** Make a direction (or both) lose everything, telling nobody. Capability `blackhole`. */
  blackhole?: (dir: 'ab' | 'ba' | 'both', on: boolean) => void;
  /** A transport-level reset of one data connection. Capability `reset`. */
  reset?: (conn: number) => void;
  close?: () => Promise<void>;
}

export type LinkFactory = () => Promise<LinkPair>;

/**
 * What a transport can be made to do beyond the port; cases needing what it cannot are shown as
 * skipped, with the reason: `true` if it can, or a sentence saying why it cannot (a real TCP link
 * cannot black-hole its own path: the fault proxy between two links can).
 */
export interface LinkCapabilities {
  blackhole?: boolean | string;
  reset?: boolean | string;
  /** The factory's links have a send queue small enough to fill (within `fillBytesMax`). */
  backpressure?: boolean | string;
}

export interface LinkContractOptions {
  /** What the factory's endpoints say of themselves; checked against them. */
  connections: number;
  heartbeats: 'datagram' | 'inline';
  can?: LinkCapabilities;
  /** How long something the link does promptly (an open, a delivery, a close heard) may take. Default 500 ms. */
  settleMs?: number;
  /** Most bytes the backpressure case sends while trying to fill the queue. Default 64 MiB. */
  fillBytesMax?: number;
}

type Capability = keyof LinkCapabilities;

/** One check of the contract, runnable on its own (the suite's own tests feed it broken links). */
export interface LinkContractCase {
  name: string;
  needs?: Capability;
  /** Why the case does not apply to a link, or null if it does. */
  skipFor?: (o: LinkContractOptions) => string | null;
  run(t: ContractRun): Promise<void>;
}

const DATAGRAM_ONLY = (what: string) => (o: LinkContractOptions): string | null =>
  o.heartbeats === 'inline' ? `on a single byte stream (serial, USB) ${what}` : null;

/** What a case works with: the pair, both ends' recorders, and bounded waits. */
export class ContractRun {
  readonly a: EndRecorder;
  readonly b: EndRecorder;
  readonly settleMs: number;

  constructor(readonly pair: LinkPair, readonly options: LinkContractOptions) {
    this.settleMs = options.settleMs ?? 500;
    this.a = new EndRecorder('a', pair.a);
    this.b = new EndRecorder('b', pair.b);
  }

  get ends(): readonly EndRecorder[] {
    return [this.a, this.b];
  }

  get conns(): number[] {
    return Array.from({ length: this.options.connections }, (_, k) => k);
  }

  /** Wait until `cond` holds, at most `budgetMs` (default `settleMs`); fail naming `what` otherwise. */
  async until(cond: () => boolean, what: string, budgetMs = this.settleMs): Promise<void> {
    const step = Math.max(1, Math.min(10, budgetMs / 50));
    for (let waited = 0; !cond(); waited += step) {
      if (waited >= budgetMs) expect.fail(`${what}: did not happen within ${budgetMs} ms`);
      await this.pair.wait(step);
    }
  }

  /** Let `ms` pass (default `settleMs`), for checks that something did not happen. */
  async idle(ms = this.settleMs): Promise<void> {
    await this.pair.wait(ms);
  }

  /** Both ends open every connection and hear it opened. */
  async openAll(): Promise<void> {
    for (const e of this.ends) for (const k of this.conns) e.endpoint.open(k);
    await this.until(() => this.ends.every((e) => this.conns.every((k) => e.isOpen(k))), 'every connection opened at both ends');
  }

  /** Every breach of the port's promises either end saw (bytes outside an open connection, a second opened, ...). */
  breaches(): string[] {
    return [...this.a.breaches, ...this.b.breaches];
  }
}

/** A frame that names its connection and its place in a sequence (an ACK: 52 bytes, seq = conn * 10^6 + i). */
export function marker(conn: number, i: number): Uint8Array {
  return encodeFrame({ type: FrameType.Ack, lun: conn, seq: conn * 1_000_000 + i, flags: 0 });
}

/**
 * A heartbeat frame numbered `i` (its counter): what `sendDatagram` carries. A real heartbeat
 * channel passes up only well-formed HEARTBEAT frames, so the contract sends nothing else on it.
 */
export function heartbeat(i: number): Uint8Array {
  return encodeFrame({ type: FrameType.Heartbeat, lun: 0, seq: i, flags: 0, controllerId: 1, sessionId: 1, confirmedSeq: 0, peerSession: 0 });
}

/** A bulky frame (a WRITE of `bytes` of data), for filling queues. */
export function bulk(conn: number, i: number, bytes: number): Uint8Array {
  return encodeFrame({ type: FrameType.Write, lun: conn, seq: i + 1, flags: 0, lockId: 1, lba: 0, tag: 0, data: new Uint8Array(bytes).fill(i & 0xff) });
}

type Event =
  | { kind: 'opened' | 'writable'; conn: number }
  | { kind: 'closed'; conn: number; reason: string }
  | { kind: 'bytes'; conn: number; length: number }
  | { kind: 'datagram'; bytes: Uint8Array };

/**
 * One end's handler: keeps what it heard, decodes each connection's byte stream with the
 * firmware's FrameDecoder (so split and coalesced chunks are exercised as the firmware sees
 * them), and notes every breach of the port's promises as it happens.
 */
export class EndRecorder implements LinkHandler {
  readonly events: Event[] = [];
  readonly breaches: string[] = [];
  /** Frames decoded per connection (their seq), since that connection last opened. */
  readonly frames: number[][];
  readonly decodeErrors: FrameError[] = [];
  private readonly open: boolean[];
  private readonly decoders: FrameDecoder[];

  constructor(readonly label: string, readonly endpoint: LinkEndpoint) {
    const n = endpoint.connections;
    this.open = new Array<boolean>(n).fill(false);
    this.frames = Array.from({ length: n }, () => []);
    this.decoders = Array.from({ length: n }, (_, k) => this.decoder(k));
    endpoint.attach(this);
  }

  isOpen(conn: number): boolean {
    return this.open[conn]!;
  }

  /** Close `conn` from this end: from now on it must deliver nothing on it (on a datagram link). */
  close(conn: number): void {
    this.endpoint.close(conn);
    this.open[conn] = false;
  }

  count(kind: Event['kind'], conn?: number): number {
    return this.events.filter((e) => e.kind === kind && (conn === undefined || ('conn' in e && e.conn === conn))).length;
  }

  closedReasons(conn: number): string[] {
    return this.events.flatMap((e) => (e.kind === 'closed' && e.conn === conn ? [e.reason] : []));
  }

  datagrams(): Uint8Array[] {
    return this.events.flatMap((e) => (e.kind === 'datagram' ? [e.bytes] : []));
  }

  opened(conn: number): void {
    this.events.push({ kind: 'opened', conn });
    if (this.open[conn]) this.breaches.push(`${this.label}: opened(${conn}) while it was open`);
    this.open[conn] = true;
    this.decoders[conn]!.reset();
    this.frames[conn] = [];
  }

  closed(conn: number, reason: string): void {
    this.events.push({ kind: 'closed', conn, reason });
    if (typeof reason !== 'string' || reason === '') this.breaches.push(`${this.label}: closed(${conn}) without a reason`);
    this.open[conn] = false;
  }

  bytes(conn: number, chunk: Uint8Array): void {
    this.events.push({ kind: 'bytes', conn, length: chunk.length });
    if (!(chunk instanceof Uint8Array) || chunk.length === 0) this.breaches.push(`${this.label}: bytes(${conn}) with an empty chunk`);
    if (!this.open[conn] && this.endpoint.heartbeats === 'datagram') this.breaches.push(`${this.label}: bytes(${conn}) while connection ${conn} was not open`);
    this.decoders[conn]!.push(chunk);
  }

  datagram(bytes: Uint8Array): void {
    this.events.push({ kind: 'datagram', bytes: bytes.slice() });
    if (this.endpoint.heartbeats === 'inline') this.breaches.push(`${this.label}: datagram() on an inline link (heartbeats belong on connection 0)`);
  }

  writable(conn: number): void {
    this.events.push({ kind: 'writable', conn });
  }

  private decoder(conn: number): FrameDecoder {
    return new FrameDecoder({
      onFrame: (f) => this.frames[conn]!.push(f.seq),
      onError: (e) => this.decodeErrors.push(e),
    });
  }
}

/** Send `frames` on `conn` from `end`; every third send carries two frames coalesced. Fails if a send is refused. */
function sendMarkers(end: EndRecorder, conn: number, from: number, count: number): void {
  for (let i = from; i < from + count; i++) {
    const pair = (i - from) % 3 === 2 && i + 1 < from + count;
    const bytes = pair ? concat(marker(conn, i), marker(conn, i + 1)) : marker(conn, i);
    expect(end.endpoint.send(conn, bytes), `${end.label}.send(${conn}) of frame ${i}`).toBe(true);
    if (pair) i++;
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const range = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);
const seqs = (conn: number, from: number, count: number): number[] => range(from, count).map((i) => conn * 1_000_000 + i);

export const LINK_CONTRACT_CASES: readonly LinkContractCase[] = [
  {
    name: 'both ends hear opened for every connection they open, once, and nothing else',
    async run(t) {
      await t.openAll();
      await t.idle();
      for (const e of t.ends) for (const k of t.conns) expect([e.label, k, e.count('opened', k), e.count('closed', k)]).toEqual([e.label, k, 1, 0]);
      expect(t.breaches()).toEqual([]);
    },
  },
  {
    name: 'a connection opens only once both ends want it, and nothing is delivered before opened',
    skipFor: DATAGRAM_ONLY('open and close are each end\'s own bookkeeping'),
    async run(t) {
      for (const k of t.conns) t.a.endpoint.open(k);
      await t.idle();
      for (const k of t.conns) {
        expect(t.a.count('opened', k), `a heard opened(${k}) before b wanted it`).toBe(0);
        expect(t.a.endpoint.send(k, marker(k, 0)), `a.send(${k}) before opened`).toBe(false);
      }
      for (const k of t.conns) t.b.endpoint.open(k);
      await t.until(() => t.conns.every((k) => t.a.isOpen(k) && t.b.isOpen(k)), 'opened at both ends once both wanted');
      for (const k of t.conns) sendMarkers(t.a, k, 0, 3);
      await t.until(() => t.conns.every((k) => t.b.frames[k]!.length === 3), 'frames sent right after opened');
      expect(t.breaches()).toEqual([]);
    },
  },
  {
    name: 'bytes arrive in order per connection, as whole frames however they are split or coalesced',
    async run(t) {
      await t.openAll();
      const n = 40;
      for (let i = 0; i < n; i += 10) {
        for (const k of t.conns) {
          sendMarkers(t.a, k, i, 10);
          sendMarkers(t.b, k, i, 10);
        }
      }
      const done = (): boolean => t.conns.every((k) => t.a.frames[k]!.length >= n && t.b.frames[k]!.length >= n);
      await t.until(done, `${n} frames on each connection both ways`);
      for (const e of t.ends) for (const k of t.conns) expect([e.label, k, e.frames[k]]).toEqual([e.label, k, seqs(k, 0, n)]);
      expect([...t.a.decodeErrors, ...t.b.decodeErrors]).toEqual([]);
      expect(t.breaches()).toEqual([]);
    },
  },
  {
    name: 'connections are independent: closing one leaves the others delivering',
    skipFor: (o) => (o.connections < 2 ? 'the link has one connection' : null),
    async run(t) {
      await t.openAll();
      t.a.close(0);
      await t.until(() => t.b.count('closed', 0) === 1, 'b hears that a closed connection 0');
      for (const k of t.conns.slice(1)) {
        expect([k, t.a.isOpen(k), t.b.isOpen(k)]).toEqual([k, true, true]);
        sendMarkers(t.a, k, 0, 4);
        sendMarkers(t.b, k, 0, 4);
      }
      await t.until(() => t.conns.slice(1).every((k) => t.a.frames[k]!.length === 4 && t.b.frames[k]!.length === 4), 'the other connections deliver');
      for (const k of t.conns.slice(1)) expect([t.a.count('closed', k), t.b.count('closed', k)]).toEqual([0, 0]);
      expect(t.breaches()).toEqual([]);
    },
  },
  {
    name: 'heartbeats are delivered whether or not any connection is open',
    async run(t) {
      const beats = (from: number) => range(from, 5).map((i) => heartbeat(900 + i));
      for (const hb of beats(0)) t.a.endpoint.sendDatagram(hb);
      for (const hb of beats(10)) t.b.endpoint.sendDatagram(hb);
      if (t.options.heartbeats === 'datagram') {
        await t.until(() => t.a.datagrams().length >= 5 && t.b.datagrams().length >= 5, 'five heartbeats each way');
        // A datagram may be reordered or duplicated on a real network, never altered: compare as sets.
        const key = (b: Uint8Array): string => Buffer.from(b).toString('hex');
        expect(new Set(t.b.datagrams().map(key))).toEqual(new Set(beats(0).map(key)));
        expect(new Set(t.a.datagrams().map(key))).toEqual(new Set(beats(10).map(key)));
      } else {
        await t.until(() => t.a.frames[0]!.length >= 5 && t.b.frames[0]!.length >= 5, 'five inline heartbeats each way on connection 0');
        expect(t.b.frames[0]).toEqual(range(900, 5));
        expect(t.a.frames[0]).toEqual(range(910, 5));
      }
      for (const e of t.ends) expect([e.label, e.count('bytes') + e.count('datagram') > 0, e.count('opened')]).toEqual([e.label, true, 0]);
      expect(t.breaches()).toEqual([]);
    },
  },
  {
    name: 'close: the peer hears closed, sends on it are refused, and nothing more is delivered on it',
    skipFor: DATAGRAM_ONLY('there is no FIN: close is the closer\'s own bookkeeping (see the inline close case)'),
    async run(t) {
      await t.openAll();
      sendMarkers(t.a, 0, 0, 2);
      sendMarkers(t.b, 0, 0, 2);
      await t.until(() => t.b.frames[0]!.length === 2 && t.a.frames[0]!.length === 2, 'frames both ways before the close');
      sendMarkers(t.a, 0, 2, 3);
      t.a.close(0);
      expect(t.a.endpoint.send(0, marker(0, 9)), 'a.send(0) after a closed it').toBe(false);
      // b has not heard yet: what it sends now may be taken, but must not reach a.
      t.b.endpoint.send(0, marker(0, 7));
      await t.until(() => t.b.count('closed', 0) === 1, 'b hears closed(0)');
      expect(t.b.endpoint.send(0, marker(0, 8)), 'b.send(0) after it heard closed').toBe(false);
      await t.idle();
      expect(t.a.frames[0], 'what a received on connection 0').toEqual(seqs(0, 0, 2));
      expect(t.b.frames[0]!.every((s) => s < 5), 'b received only what a sent before its close').toBe(true);
      expect(t.a.count('closed', 0), 'the closing end hears no closed() for its own close').toBe(0);
      expect(t.breaches()).toEqual([]);
    },
  },
  {
    name: 'close on a serial line is the closer\'s own: its sends are refused until it opens again, and the line still delivers',
    skipFor: (o) => (o.heartbeats === 'datagram' ? 'a close on a datagram link is heard by the peer (see the close case)' : null),
    async run(t) {
      await t.openAll();
      t.a.close(0);
      expect(t.a.endpoint.send(0, marker(0, 1)), 'a.send(0) after a closed it').toBe(false);
      sendMarkers(t.b, 0, 0, 3);
      await t.until(() => t.a.frames[0]!.length === 3, 'the line delivers to a, open or not');
      t.a.endpoint.open(0);
      await t.until(() => t.a.isOpen(0), 'a hears opened(0) again');
      sendMarkers(t.a, 0, 10, 2);
      await t.until(() => t.b.frames[0]!.length === 2, 'a sends again after reopening');
      expect([t.b.count('closed', 0), t.a.count('closed', 0)]).toEqual([0, 0]);
      expect(t.breaches()).toEqual([]);
    },
  },
  {
    name: 'reopening gives a fresh conversation: nothing sent before the close arrives after',
    skipFor: DATAGRAM_ONLY('all its bytes are one conversation, and the firmware\'s HELLO marks where a new one starts'),
    async run(t) {
      await t.openAll();
      sendMarkers(t.a, 0, 0, 3);
      sendMarkers(t.b, 0, 0, 3);
      await t.until(() => t.b.frames[0]!.length === 3 && t.a.frames[0]!.length === 3, 'the first conversation');
      sendMarkers(t.a, 0, 3, 3);
      t.a.close(0);
      await t.until(() => t.b.count('closed', 0) === 1, 'b hears closed(0)');
      t.a.endpoint.open(0);
      t.b.endpoint.open(0);
      await t.until(() => t.a.isOpen(0) && t.b.isOpen(0), 'connection 0 opens again');
      sendMarkers(t.a, 0, 100, 3);
      sendMarkers(t.b, 0, 200, 3);
      await t.until(() => t.b.frames[0]!.length >= 3 && t.a.frames[0]!.length >= 3, 'the new conversation');
      await t.idle();
      expect(t.b.frames[0]).toEqual(seqs(0, 100, 3));
      expect(t.a.frames[0]).toEqual(seqs(0, 200, 3));
      expect(t.breaches()).toEqual([]);
    },
  },
  {
    name: 'backpressure: send refuses when the queue is full, and writable says when to try again',
    needs: 'backpressure',
    async run(t) {
      await t.openAll();
      const fillBytesMax = t.options.fillBytesMax ?? 64 * 1024 * 1024;
      const refused = new Set<number>();
      let accepted = 0;
      for (let sent = 0, i = 0; refused.size < t.conns.length; i++) {
        const k = t.conns[i % t.conns.length]!;
        if (refused.has(k)) continue;
        if (sent > fillBytesMax) expect.fail(`send never refused within ${fillBytesMax} bytes`);
        const frame = bulk(k, i, 16 * 1024);
        if (t.a.endpoint.send(k, frame)) {
          sent += frame.length;
          accepted++;
        } else {
          refused.add(k);
        }
      }
      await t.until(() => t.conns.every((k) => t.a.count('writable', k) >= 1), 'writable for every refused connection', 10 * t.settleMs);
      for (const k of t.conns) expect(t.a.endpoint.send(k, bulk(k, 1, 16)), `a.send(${k}) after writable`).toBe(true);
      const arrived = (): number => t.conns.reduce((n, k) => n + t.b.frames[k]!.length, 0);
      await t.until(() => arrived() === accepted + t.conns.length, 'every accepted frame arrives', 20 * t.settleMs);
      expect(t.breaches()).toEqual([]);
    },
  },
  {
    name: 'a reset of one connection: both ends hear closed, the others stay up',
    needs: 'reset',
    async run(t) {
      await t.openAll();
      t.pair.reset!(0);
      await t.until(() => t.a.count('closed', 0) === 1 && t.b.count('closed', 0) === 1, 'both ends hear closed(0)');
      expect([t.a.endpoint.send(0, marker(0, 1)), t.b.endpoint.send(0, marker(0, 1))]).toEqual([false, false]);
      for (const k of t.conns.slice(1)) sendMarkers(t.a, k, 0, 3);
      await t.until(() => t.conns.slice(1).every((k) => t.b.frames[k]!.length === 3), 'the other connections deliver');
      for (const k of t.conns.slice(1)) expect([k, t.a.count('closed', k), t.b.count('closed', k)]).toEqual([k, 0, 0]);
      expect(t.breaches()).toEqual([]);
    },
  },
  {
    name: 'a black hole tells nobody, both ways or one way, not even of a close',
    needs: 'blackhole',
    async run(t) {
      await t.openAll();
      const last = t.conns.at(-1)!;
      const quiet = async (what: string, during: () => void): Promise<void> => {
        const before = [t.a.events.length, t.b.events.length];
        during();
        await t.idle(4 * t.settleMs);
        t.pair.blackhole!('both', false);
        await t.idle();
        expect([t.a.events.slice(before[0]), t.b.events.slice(before[1])], `events during and after ${what}`).toEqual([[], []]);
      };
      await quiet('a black hole both ways', () => {
        t.pair.blackhole!('both', true);
        for (const k of t.conns) {
          sendMarkers(t.a, k, 0, 3);
          sendMarkers(t.b, k, 0, 3);
        }
        t.a.endpoint.sendDatagram(heartbeat(900));
        t.b.endpoint.sendDatagram(heartbeat(901));
      });
      t.pair.blackhole!('ab', true);
      sendMarkers(t.a, last, 10, 2);
      sendMarkers(t.b, last, 20, 2);
      await t.until(() => t.a.frames[last]!.length === 2, 'b -> a still delivers while a -> b is a black hole');
      await t.idle();
      expect(t.b.frames[last], 'nothing from a reaches b while a -> b is a black hole').toEqual([]);
      t.pair.blackhole!('ab', false);
      await t.idle();
      if (t.options.heartbeats === 'datagram') {
        await quiet('a close sent into a black hole', () => {
          t.pair.blackhole!('both', true);
          t.a.close(last);
        });
      }
      expect([t.a.count('closed'), t.b.count('closed')]).toEqual([0, 0]);
      expect(t.breaches()).toEqual([]);
    },
  },
];

/** Makes a fresh pair, runs one case on it, closes the pair. Throws what the case throws. */
export async function runLinkContractCase(c: LinkContractCase, factory: LinkFactory, options: LinkContractOptions): Promise<void> {
  const pair = await factory();
  try {
    expect({ connections: pair.a.connections, heartbeats: pair.a.heartbeats }).toEqual({ connections: options.connections, heartbeats: options.heartbeats });
    if (c.needs === 'blackhole' && pair.blackhole === undefined) throw new Error(`the pair has no blackhole(), which '${c.name}' needs`);
    if (c.needs === 'reset' && pair.reset === undefined) throw new Error(`the pair has no reset(), which '${c.name}' needs`);
    await c.run(new ContractRun(pair, options));
  } finally {
    await pair.close?.();
  }
}

/** Why `c` is skipped for a link with `options`, or null if it runs. */
export function skipReason(c: LinkContractCase, options: LinkContractOptions): string | null {
  const can = c.needs === undefined ? true : options.can?.[c.needs];
  if (typeof can === 'string') return can;
  if (can !== true) return `the transport cannot be made to ${c.needs === 'backpressure' ? 'fill its queue' : c.needs === 'reset' ? 'reset a connection' : 'black-hole its path'}`;
  return c.skipFor?.(options) ?? null;
}

/**
 * Registers the contract for one transport as a `describe` block. A case that does not apply is
 * registered as skipped, its reason in its name, so a report shows what was not checked and why.
 */
export function linkContract(name: string, factory: LinkFactory, options: LinkContractOptions): void {
  describe(`LinkEndpoint contract: ${name}`, () => {
    for (const c of LINK_CONTRACT_CASES) {
      const reason = skipReason(c, options);
      it.skipIf(reason !== null)(reason === null ? c.name : `${c.name} (skipped: ${reason})`, () => runLinkContractCase(c, factory, options));
    }
  });
}

/** The contract case named `name` (for tests that run one case against a broken link). */
export function linkContractCase(name: string): LinkContractCase {
  const c = LINK_CONTRACT_CASES.find((x) => x.name.startsWith(name));
  if (c === undefined) throw new Error(`no link contract case starts with "${name}"`);
  return c;
}
