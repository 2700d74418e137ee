import { FrameDecoder } from '../protocol/decoder.ts';
import { encodeFrame, encodedLength } from '../protocol/encode.ts';
import type { FrameError } from '../protocol/errors.ts';
import { OFF_LUN, OFF_SEQ, OFF_TYPE, readU16, readU64 } from '../protocol/layout.ts';
import {
  FrameFlag, FrameType, LockRejectPolicy, frameTypeName, isStreamFrame,
  type Frame, type HelloFrame, type ResponseFrame,
} from '../protocol/frame.ts';
import type { Clock } from '../ports/clock.ts';
import type { LinkEndpoint } from '../ports/link.ts';
import type { Telemetry } from '../ports/telemetry.ts';
import type { SourceChannel } from './source-channel.ts';
import type { TargetChannel } from './target-channel.ts';

export interface PeerConnectionConfig {
  controllerId: number;
  sessionId: number;
  payloadBytesMax: number;
  /** Most response frames (ACK, NAK, LOCK_GRANTED, LOCK_REJECTED) queued while the link is full. */
  controlQueueMax: number;
  /** HELLO is repeated this often until the peer's HELLO arrives (a lost HELLO must not wedge the link). */
  helloRetryMs: number;
  policy: 'halt-resume' | 'retransmit';
}

export function newLinkCounters() {
  return { framesIn: 0, bytesIn: 0, frameErrors: 0, hellosSent: 0, hellosReceived: 0, controlQueued: 0, controlDropped: 0, unexpected: 0 };
}
export type LinkCounters = ReturnType<typeof newLinkCounters>;

/**
 * One controller's end of the link to one peer. It owns the endpoint and the streaming decoder,
 * says HELLO when the link comes up, and routes what arrives: the peer's stream frames (LOCK,
 * WRITE, UNLOCK) to this controller's target side, responses to its source channel.
 *
 * Both sides share the link's send queue. Stream data never needs queueing here (it stays in the
 * rollback log until the link takes it); responses are small and are queued, boundedly, when the
 * link is full. Dropping the oldest queued response is safe: ACKs are cumulative and every other
 * response is repeated when the source asks again (ack timeout, halt probe).
 */
export class PeerConnection {
  readonly counters = newLinkCounters();
  private readonly decoder: FrameDecoder;
  private readonly pending: Uint8Array[] = [];
  private peerHello: HelloFrame | null = null;
  private helloTimer: unknown = null;

  constructor(
    private readonly cfg: PeerConnectionConfig,
    private readonly deps: { node: string; peer: string; clock: Clock; telemetry: Telemetry; endpoint: LinkEndpoint },
    private readonly source: SourceChannel | null,
    private readonly target: TargetChannel,
  ) {
    this.decoder = new FrameDecoder({
      payloadBytesMax: cfg.payloadBytesMax,
      onFrame: (f) => this.onFrame(f),
      onError: (e) => this.onFrameError(e),
    });
  }

  /** Attach to the endpoint; if the link is already up, say HELLO now. */
  start(): void {
    this.deps.endpoint.attach({
      bytes: (chunk) => this.decoder.push(chunk),
      up: () => this.onUp(),
      down: (reason) => this.onDown(reason),
      writable: () => this.onWritable(),
    });
    if (this.deps.endpoint.isUp) this.onUp();
  }

  /** What the peer said in its last HELLO, if it said anything yet. */
  get peer(): HelloFrame | null {
    return this.peerHello;
  }

  /**
   * Stream data: false if the link (or queued responses ahead of it) has no room now.
   * `retransmit`: the source sent this entry before (for telemetry; the bytes are the same).
   */
  sendStream(bytes: Uint8Array, retransmit: boolean): boolean {
    if (this.pending.length !== 0 || !this.deps.endpoint.send(bytes)) return false;
    if (this.deps.telemetry.enabled) this.emitSent(bytes, retransmit);
    return true;
  }

  /** Responses and HELLO: sent now, or queued (boundedly) until the link has room. */
  sendControl(bytes: Uint8Array): boolean {
    if (this.pending.length === 0 && this.deps.endpoint.send(bytes)) {
      if (this.deps.telemetry.enabled) this.emitSent(bytes, false);
      return true;
    }
    if (!this.deps.endpoint.isUp) return false;
    this.pending.push(bytes);
    this.counters.controlQueued++;
    if (this.pending.length > this.cfg.controlQueueMax) {
      this.pending.shift();
      this.counters.controlDropped++;
    }
    return true;
  }

  stop(): void {
    this.cancelHelloTimer();
  }

  private onUp(): void {
    this.pending.length = 0;
    this.peerHello = null;
    this.sayHello();
  }

  /**
   * HELLO carries the Retransmit flag while we have not heard the peer's HELLO, which asks the
   * peer to answer with its own; answers go without the flag, so the exchange always ends.
   */
  private sayHello(): void {
    const window = this.target.window;
    const policy = this.cfg.policy === 'retransmit' ? LockRejectPolicy.Retransmit : LockRejectPolicy.HaltResume;
    const flags = this.peerHello ? 0 : FrameFlag.Retransmit;
    this.counters.hellosSent++;
    this.sendControl(encodeFrame({
      type: FrameType.Hello, lun: 0, seq: this.target.confirmedSeq, flags, controllerId: this.cfg.controllerId,
      sessionId: this.cfg.sessionId, windowBytes: window.bytes, windowEntries: window.entries, policy, locksWindow: window.locks,
    }));
    if (!this.peerHello && this.helloTimer === null) {
      this.helloTimer = this.deps.clock.setTimeout(() => {
        this.helloTimer = null;
        if (!this.peerHello && this.deps.endpoint.isUp) this.sayHello();
      }, this.cfg.helloRetryMs);
    }
  }

  private cancelHelloTimer(): void {
    if (this.helloTimer !== null) this.deps.clock.clearTimeout(this.helloTimer);
    this.helloTimer = null;
  }

  private onDown(_reason: string): void {
    this.cancelHelloTimer();
    this.pending.length = 0;
    this.decoder.reset();
    this.peerHello = null;
    this.target.linkDown();
    this.source?.linkDown();
  }

  private onWritable(): void {
    while (this.pending.length > 0) {
      const bytes = this.pending[0]!;
      if (!this.deps.endpoint.send(bytes)) return;
      this.pending.shift();
      if (this.deps.telemetry.enabled) this.emitSent(bytes, false);
    }
    this.source?.writable();
  }

  /**
   * `frame.sent` for every frame either side of this controller puts on the link, at the moment
   * the link takes it (a response queued while the link is full counts when it leaves the queue;
   * one dropped from the queue was never sent). The one place all sends pass, so no frame type is
   * missed; the fields come from the encoded header, read only when someone listens.
   */
  private emitSent(bytes: Uint8Array, retransmit: boolean): void {
    this.deps.telemetry.emit({
      kind: 'frame.sent', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, type: frameTypeName(bytes[OFF_TYPE]!),
      seq: readU64(bytes, OFF_SEQ), lun: readU16(bytes, OFF_LUN), bytes: bytes.length, retransmit,
    });
  }

  private onFrame(f: Frame): void {
    this.counters.framesIn++;
    const bytes = encodedLength(f);
    this.counters.bytesIn += bytes;
    const t = this.deps.telemetry;
    if (t.enabled) {
      t.emit({ kind: 'frame.received', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, type: frameTypeName(f.type), seq: f.seq, lun: f.lun, bytes });
    }
    if (isStreamFrame(f)) {
      this.target.onStreamFrame(f, bytes);
    } else if (f.type === FrameType.Hello) {
      this.onHello(f);
    } else if (this.source && this.peerHello) {
      this.source.onResponse(f as ResponseFrame);
    } else {
      this.counters.unexpected++; // a response with no stream of ours to answer, or before HELLO
    }
  }

  private onHello(f: HelloFrame): void {
    this.counters.hellosReceived++;
    const firstHello = this.peerHello === null;
    this.peerHello = f;
    this.cancelHelloTimer();
    if ((f.flags & FrameFlag.Retransmit) !== 0) this.sayHello();
    if (firstHello) this.source?.linkUp({ confirmedSeq: f.seq, windowBytes: f.windowBytes, windowEntries: f.windowEntries, locksWindow: f.locksWindow });
  }

  /**
   * A frame failed its checks. If its header was intact and says it was a response, it is lost
   * (a later ACK or a timeout covers it); anything else may have been part of the peer's stream,
   * so the target side asks for it again.
   */
  private onFrameError(e: FrameError): void {
    this.counters.frameErrors++;
    const t = this.deps.telemetry;
    if (t.enabled) t.emit({ kind: 'frame.error', t: this.deps.clock.now(), node: this.deps.node, peer: this.deps.peer, code: e.code, message: e.message });
    const type = e.type;
    const response = type === FrameType.Ack || type === FrameType.Nak || type === FrameType.LockGranted || type === FrameType.LockRejected || type === FrameType.Hello;
    if (!response) this.target.onCorrupt();
  }
}
