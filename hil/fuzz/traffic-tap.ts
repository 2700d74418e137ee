import { decodeFrame, FrameDecoder } from '../../firmware/protocol/decoder.ts';
import { encodeFrame } from '../../firmware/protocol/encode.ts';
import { FrameType, U64_FIELD_MAX, type Frame } from '../../firmware/protocol/frame.ts';
import type { TrafficObserver } from './tap-endpoint.ts';
import type { Hints } from './values.ts';

/** Most values of each kind remembered, and most real frames kept for replay: the tap is bounded too. */
const REMEMBERED_MAX = 16;
const REPLAY_FRAMES_MAX = 64;

/** A short list of recent distinct values, newest last. */
class Recent {
  readonly values: number[] = [];

  add(v: number): void {
    const i = this.values.indexOf(v);
    if (i >= 0) this.values.splice(i, 1);
    this.values.push(v);
    if (this.values.length > REMEMBERED_MAX) this.values.shift();
  }
}

/**
 * Reads the real traffic of the link under test, both ways, with decoders of its own (docs/fuzzing.md
 * 3), to learn what a frame must look like to get past the controller's first checks: the peer's
 * sessions (and the controller's own), where each stream's sequence numbers stand, the lock ids and
 * regions in use. It keeps the last frames the peer sent for replaying (duplicates, reordering,
 * frames of an old session) and those the controller sent for reflecting back at it.
 */
export class TrafficTap implements TrafficObserver {
  readonly peerSessions = new Recent();
  private readonly peerLockIds = new Recent();
  private readonly ownLockIds = new Recent();
  private readonly lbas = new Recent();
  private readonly counts = new Recent();
  private peerSeqMax = 0;
  private ownSeqMax = 0;
  private peerCounter = 0;
  readonly fromPeer: Uint8Array[] = [];
  readonly fromSelf: Uint8Array[] = [];
  private readonly inbound: FrameDecoder[];
  private readonly outbound: FrameDecoder[];

  constructor(connections: number, payloadBytesMax: number, private readonly ownSession: number) {
    const decoders = (inbound: boolean): FrameDecoder[] =>
      Array.from({ length: connections }, () => new FrameDecoder({ payloadBytesMax, onFrame: (f) => this.saw(f, inbound), onError: () => {} }));
    this.inbound = decoders(true);
    this.outbound = decoders(false);
  }

  received(conn: number, chunk: Uint8Array): void {
    this.inbound[conn]?.push(chunk);
  }

  receivedDatagram(bytes: Uint8Array): void {
    this.datagram(bytes, true);
  }

  sent(conn: number, bytes: Uint8Array): void {
    this.outbound[conn]?.push(bytes);
  }

  sentDatagram(bytes: Uint8Array): void {
    this.datagram(bytes, false);
  }

  /** The next number of the peer's stream, as far as the tap has seen it go. */
  get peerNextSeq(): number {
    return this.peerSeqMax + 1;
  }

  /** The controller's own stream: the highest number it has sent. */
  get ownSeqSent(): number {
    return this.ownSeqMax;
  }

  get ownLocks(): readonly number[] {
    return this.ownLockIds.values;
  }

  get peerLocks(): readonly number[] {
    return this.peerLockIds.values;
  }

  get regions(): readonly number[] {
    return this.lbas.values;
  }

  hints(): Hints {
    const near = (v: number, below: number, above: number): number[] => {
      const out: number[] = [];
      for (let d = -below; d <= above; d++) if (v + d >= 0 && v + d <= U64_FIELD_MAX) out.push(v + d);
      return out;
    };
    return {
      session: [...this.peerSessions.values, this.ownSession],
      streamSeq: [...near(this.peerNextSeq, 3, 4), 1, this.peerNextSeq + 1000],
      responseSeq: [...near(this.ownSeqMax, 3, 3), 0, this.ownSeqMax + 1000],
      counter: [...near(this.peerCounter, 1, 2), 1, U64_FIELD_MAX],
      lockId: [...this.peerLockIds.values, ...this.ownLockIds.values, 1],
      lba: this.lbas.values,
      count: this.counts.values,
      lun: [0, 0, 0, 1],
    };
  }

  private datagram(bytes: Uint8Array, inbound: boolean): void {
    try {
      this.saw(decodeFrame(bytes, { payloadBytesMax: 0 }), inbound);
    } catch {
      // Not a frame: the tap learns nothing from it.
    }
  }

  private saw(f: Frame, inbound: boolean): void {
    const ring = inbound ? this.fromPeer : this.fromSelf;
    ring.push(encodeFrame(f));
    if (ring.length > REPLAY_FRAMES_MAX) ring.shift();
    if (f.type === FrameType.Hello || f.type === FrameType.Heartbeat) {
      if (inbound) this.peerSessions.add(f.sessionId);
      if (inbound && f.type === FrameType.Heartbeat) this.peerCounter = f.seq;
      return;
    }
    if (f.type !== FrameType.Lock && f.type !== FrameType.Write && f.type !== FrameType.Unlock) return;
    if (inbound) this.peerSeqMax = Math.max(this.peerSeqMax, f.seq);
    else this.ownSeqMax = Math.max(this.ownSeqMax, f.seq);
    if (f.type === FrameType.Lock) {
      (inbound ? this.peerLockIds : this.ownLockIds).add(f.lockId);
      this.lbas.add(f.lba);
      this.counts.add(f.count);
    }
  }
}
