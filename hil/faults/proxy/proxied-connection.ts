import net from 'node:net';
import type { TimerHandle } from '../../../firmware/ports/clock.ts';
import type { HostPort } from './address.ts';
import { FaultPipe } from './fault-pipe.ts';
import type { ProxyDirection } from './frame-decisions.ts';
import { FrameSplitter, type StreamPiece } from './frame-splitter.ts';
import { PREAMBLE_BYTES, acceptanceProblem, readPreamble } from '../../../host/transports/tcp-preamble.ts';
import type { ProxyCore } from './proxy-core.ts';

/** What a connection needs from the TCP proxy that accepted it. */
export interface ConnectionHost {
  core: ProxyCore;
  target: HostPort;
  /** The channel's name for a connection whose preamble names `slot` (null: unreadable): slot and incarnation. */
  channelFor(slot: number | null): string;
  done(connection: ProxiedConnection): void;
}

/** Side 0 is the connect side's socket (it sends `ab`), side 1 the socket to the real listener (it sends `ba`). */
type Side = 0 | 1;
const DIR_OF: readonly [ProxyDirection, ProxyDirection] = ['ab', 'ba'];

/**
 * One TCP connection through the proxy (docs/fault-proxy.md 2): the connect side's socket, the
 * socket the proxy dials to the real listener for it, and a splitter and a fault pipe per
 * direction.
 *
 * Life: accepted paused; dialled at once, or, while a black hole covers either direction, only
 * once it ends (a SYN into a hole is lost; the connect side's bytes wait in its own kernel, as they
 * would for a SYN retried later); the connection's handshake relayed untouched (the connect
 * side's 8-byte preamble, and the listener's 8-byte acceptance if the first bytes back are one:
 * host/transports/tcp-preamble.ts); then frames through the pipes.
 *
 * Closing follows the holes too: a FIN or RST whose turn to cross comes while its direction is
 * covered is lost, the far end is not told, and its socket is left open, orphaned; once the hole
 * is gone, the first bytes it sends are answered with a reset, as the vanished host's kernel would
 * (docs/fault-proxy.md 4).
 */
export class ProxiedConnection {
  private upstream: net.Socket | null = null;
  private state: 'waiting' | 'dialing' | 'preamble' | 'relaying' | 'closed' = 'waiting';
  private early: Uint8Array = new Uint8Array(0);
  /** The listener's first bytes, until it is known whether they are its acceptance (at most 8). */
  private answer: Uint8Array | null = new Uint8Array(0);
  private slot: number | null = null;
  private channel = '';
  private pipes: Record<ProxyDirection, FaultPipe> | null = null;
  private splitters: Record<ProxyDirection, FrameSplitter> | null = null;
  /** Side whose peer went away without it being told. */
  private readonly orphan: [boolean, boolean] = [false, false];
  private readonly ended: [boolean, boolean] = [false, false];
  private readonly closed: [boolean, boolean] = [false, false];
  private timer: TimerHandle | null = null;
  private stopWaiting: (() => void) | null = null;

  constructor(private readonly host: ConnectionHost, private readonly client: net.Socket) {
    client.setNoDelay(true);
    this.watch(client, 0);
  }

  private get core(): ProxyCore {
    return this.host.core;
  }

  start(): void {
    const holes = this.core.holes;
    if (!holes.blocked('ab') && !holes.blocked('ba')) {
      this.dial();
      return;
    }
    this.core.connections.heldDuringHole++;
    this.stopWaiting = this.core.onHolesChanged(() => {
      if (holes.blocked('ab') || holes.blocked('ba') || this.state !== 'waiting') return;
      this.stopWaiting?.();
      this.stopWaiting = null;
      this.dial();
    });
  }

  /** Close both sockets and forget everything (the proxy is stopping). */
  stop(): void {
    this.client.destroy();
    this.upstream?.destroy();
    this.dispose();
  }

  private dial(): void {
    const { core, target } = this.host;
    this.state = 'dialing';
    const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    this.upstream = upstream;
    upstream.pause();
    this.watch(upstream, 1);
    this.timer = core.later(() => this.failDial(`no answer within ${core.limits.upstreamConnectMsMax} ms`), core.limits.upstreamConnectMsMax);
    upstream.once('connect', () => {
      if (this.state !== 'dialing') return;
      this.cancelTimer();
      upstream.setNoDelay(true);
      this.state = 'preamble';
      this.timer = core.later(() => {
        core.connections.preambleTimeouts++;
        core.log.warn({ waitedMs: core.limits.preambleMsMax },
          'fault proxy: the connect side sent no 8-byte connection preamble; resetting its connection');
        this.resetBoth();
      }, core.limits.preambleMsMax);
      this.client.resume();
    });
  }

  private failDial(why: string): void {
    if (this.state !== 'dialing') return;
    const { core, target } = this.host;
    core.connections.upstreamFailures++;
    core.log.warn({ target: `${target.host}:${target.port}`, why },
      'fault proxy: cannot reach the real listener; resetting the connect side\'s connection');
    this.resetBoth();
  }

  private watch(socket: net.Socket, side: Side): void {
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (side === 1 && this.state === 'dialing') this.failDial(error.code ?? error.message);
      else this.core.log.debug({ side: side === 0 ? 'connect side' : 'listen side', code: error.code }, 'fault proxy: socket error');
    });
    socket.on('data', (chunk: Buffer) => this.data(side, new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)));
    socket.on('end', () => this.end(side));
    socket.on('close', (hadError) => this.close(side, hadError));
    socket.on('drain', () => this.pipes?.[DIR_OF[1 - side]!].drained());
  }

  private data(side: Side, chunk: Uint8Array): void {
    if (this.state === 'preamble' && side === 0) {
      this.takePreamble(chunk);
      return;
    }
    if (this.state !== 'relaying') return;
    const dir = DIR_OF[side];
    if (this.orphan[side]) {
      this.orphanSpoke(side, chunk.length);
      return;
    }
    if (side === 1 && this.answer !== null) {
      this.takeAnswer(chunk);
      return;
    }
    // What one chunk brings leaves in one write (writev), not a syscall per frame.
    const dst = this.socketOf(side === 0 ? 1 : 0);
    dst?.cork();
    try {
      this.splitters![dir].push(chunk);
    } finally {
      dst?.uncork();
    }
  }

  /** The listener's first 8 bytes: its acceptance goes back untouched, like the preamble; anything else is stream. */
  private takeAnswer(chunk: Uint8Array): void {
    const all = concat(this.answer!, chunk);
    if (all.length < PREAMBLE_BYTES) {
      this.answer = all;
      return;
    }
    this.answer = null;
    const head = all.subarray(0, PREAMBLE_BYTES);
    const accepted = this.slot !== null && acceptanceProblem(head, this.slot, head[6]!) === null;
    if (accepted) this.write(0, head);
    this.splitters!.ba.push(accepted ? all.subarray(PREAMBLE_BYTES) : all);
  }

  private takePreamble(chunk: Uint8Array): void {
    const all = concat(this.early, chunk);
    if (all.length < PREAMBLE_BYTES) {
      this.early = all;
      return;
    }
    this.cancelTimer();
    const preamble = all.subarray(0, PREAMBLE_BYTES);
    const read = readPreamble(preamble, preamble[6]!);
    const p = 'slot' in read ? read : null;
    if (p === null) {
      this.core.connections.badPreambles++;
      this.core.log.warn({ preamble: Buffer.from(preamble).toString('hex') },
        'fault proxy: a connection began without a valid MLLK preamble; relayed as it is (the listener judges it)');
    }
    this.slot = p?.slot ?? null;
    this.channel = this.host.channelFor(this.slot);
    this.upstream!.write(preamble);
    this.startRelaying();
    if (all.length > PREAMBLE_BYTES) this.splitters!.ab.push(all.subarray(PREAMBLE_BYTES));
  }

  private startRelaying(): void {
    const core = this.core;
    const pipe = (dir: ProxyDirection): FaultPipe => {
      const [src, dstSide]: [net.Socket, Side] = dir === 'ab' ? [this.client, 1] : [this.upstream!, 0];
      return new FaultPipe({
        core, dir, channel: this.channel, kind: 'tcp', counters: core.tallies[dir].open(this.channel),
        sink: {
          write: (bytes) => this.write(dstSide, bytes),
          cork: () => this.socketOf(dstSide)?.cork(),
          uncork: () => this.socketOf(dstSide)?.uncork(),
        },
        ordering: 'stream', overflow: 'pause', queueBytesMax: core.limits.pipeQueueBytesMax, queueItemsMax: core.limits.pipeQueueItemsMax,
        onPressure: (over) => (over ? src.pause() : src.resume()),
        onReset: (piece) => this.resetByFault(dir, piece),
      });
    };
    const pipes = { ab: pipe('ab'), ba: pipe('ba') };
    const splitter = (dir: ProxyDirection): FrameSplitter =>
      new FrameSplitter({ payloadBytesMax: core.limits.payloadBytesMax, onPiece: (piece) => pipes[dir].accept(piece) });
    this.pipes = pipes;
    this.splitters = { ab: splitter('ab'), ba: splitter('ba') };
    this.state = 'relaying';
    this.upstream!.resume();
  }

  private write(side: Side, bytes: Uint8Array): boolean {
    const socket = side === 0 ? this.client : this.upstream;
    if (socket === null || socket.destroyed || this.closed[side]) return true;
    return socket.write(bytes);
  }

  /** The peer of `side` went away unannounced; `side` now speaks: swallowed while its direction is covered, else answered with a reset. */
  private orphanSpoke(side: Side, bytes: number): void {
    const dir = DIR_OF[side];
    if (this.core.holes.blocked(dir)) {
      const c = this.core.tallies[dir].open(this.channel);
      c.bytesIn += bytes;
      c.bytesSwallowed += bytes;
      return;
    }
    this.core.connections.orphansReset++;
    this.socketOf(side)?.resetAndDestroy();
  }

  private end(side: Side): void {
    this.ended[side] = true;
    if (this.state !== 'relaying') {
      this.stop();
      return;
    }
    if (this.orphan[side]) {
      this.socketOf(side)?.destroy();
      return;
    }
    const dir = DIR_OF[side];
    if (side === 1 && this.answer !== null) {
      this.splitters!.ba.push(this.answer);
      this.answer = null;
    }
    this.splitters![dir].end();
    this.pipes![dir].finish(() => {
      const dst: Side = side === 0 ? 1 : 0;
      if (this.closed[dst]) return;
      if (this.core.holes.blocked(dir)) {
        this.core.connections.closesSwallowed++;
        this.orphan[dst] = true;
      } else {
        this.core.connections.closesPropagated++;
        this.socketOf(dst)?.end();
      }
    });
  }

  private close(side: Side, hadError: boolean): void {
    this.closed[side] = true;
    if (this.state === 'closed') return;
    if (this.state !== 'relaying') {
      this.stop();
      return;
    }
    const dst: Side = side === 0 ? 1 : 0;
    if (!this.closed[dst] && !this.orphan[side] && (hadError || !this.ended[side])) {
      // An abort (a reset, or a close without FIN): the far end gets a reset, unless a hole eats it.
      const dir = DIR_OF[side];
      if (this.core.holes.blocked(dir)) {
        this.core.connections.closesSwallowed++;
        this.orphan[dst] = true;
      } else {
        this.core.connections.closesPropagated++;
        this.pipes![dir].close();
        this.socketOf(dst)?.resetAndDestroy();
      }
    }
    // Both ends are done, one of them without being told (a close lost in a hole): the other has
    // sent its FIN and nothing will ever be sent to it, so its half-open socket goes too.
    if (!this.closed[dst] && this.ended[dst] && (this.orphan[side] || this.orphan[dst])) this.socketOf(dst)?.destroy();
    if (this.closed[0] && this.closed[1]) this.dispose();
  }

  private resetByFault(dir: ProxyDirection, piece: Extract<StreamPiece, { kind: 'frame' }>): void {
    const core = this.core;
    core.connections.resets++;
    const { node, peer } = core.ends(dir);
    core.emit({
      kind: 'link.fault', t: core.nowMs(), node, fault: 'reset', peer, conn: this.slot ?? -1, type: core.typeName(piece.type),
      seq: piece.seq, lun: piece.lun, channel: this.channel,
    });
    this.resetBoth();
  }

  private resetBoth(): void {
    this.pipes?.ab.close();
    this.pipes?.ba.close();
    if (!this.client.destroyed) this.client.resetAndDestroy();
    const up = this.upstream;
    // A socket still connecting cannot be reset; destroying it abandons the attempt.
    if (up !== null && !up.destroyed) {
      if (up.connecting) up.destroy();
      else up.resetAndDestroy();
    }
    this.dispose();
  }

  private socketOf(side: Side): net.Socket | null {
    return side === 0 ? this.client : this.upstream;
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.core.cancel(this.timer);
    this.timer = null;
  }

  private dispose(): void {
    if (this.state === 'closed') return;
    const wasRelaying = this.pipes !== null;
    this.state = 'closed';
    this.cancelTimer();
    this.stopWaiting?.();
    this.stopWaiting = null;
    this.pipes?.ab.close();
    this.pipes?.ba.close();
    if (wasRelaying) {
      this.core.tallies.ab.close(this.channel);
      this.core.tallies.ba.close(this.channel);
    }
    this.host.done(this);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const all = new Uint8Array(a.length + b.length);
  all.set(a);
  all.set(b, a.length);
  return all;
}
