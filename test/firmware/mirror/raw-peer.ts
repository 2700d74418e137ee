import { StorageController } from '../../../firmware/controller/storage-controller.ts';
import type { ControllerConfig, MirrorConfig } from '../../../firmware/controller/config.ts';
import type { LinkEndpoint, LinkHandler } from '../../../firmware/ports/link.ts';
import { FrameDecoder, decodeFrame } from '../../../firmware/protocol/decoder.ts';
import { encodeFrame } from '../../../firmware/protocol/encode.ts';
import { FrameType, LockMode, LockRejectPolicy, type Frame, type HelloFrame } from '../../../firmware/protocol/frame.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { SeededRandom } from '../../../host/random.ts';
import { RecordingTelemetry } from '../../support/harness.ts';

/**
 * One controller whose peer is the test itself: the test writes frames into the controller's
 * link endpoint (well-formed, but whatever it likes) and reads what the controller sends back.
 * For hostile-peer tests: nothing the peer sends may throw out of the link callback.
 *
 * The link has one data connection, opened at once when the controller asks; the test's HELLO
 * (session 1) brings it up, unless `helloLater` leaves that to the test (`hello()`); it offers
 * `features` (default none). Heartbeats the controller sends are kept in `heartbeats`.
 */
export class RawPeer {
  readonly clock = new VirtualClock();
  readonly tel = new RecordingTelemetry();
  readonly controller: StorageController;
  /** Frames the controller sent on the data connection, decoded. */
  readonly received: Frame[] = [];
  /** Heartbeats the controller sent. */
  readonly heartbeats: Frame[] = [];
  /** The controller's LUN 0. */
  readonly lun0: MemoryDisk;
  private handler: LinkHandler | null = null;
  private open = false;
  private readonly decoder = new FrameDecoder({ onFrame: (f) => this.received.push(f), onError: (e) => { throw e; } });

  private readonly features: number;

  constructor(opts: {
    mirrorLun0?: boolean; lun1?: boolean; onLockReject?: ControllerConfig['onLockReject']; limits?: ControllerConfig['limits'];
    /** How LUN 0 is mirrored, when `mirrorLun0` (default speculative, explicit locks, no batches). */
    mode?: MirrorConfig['mode']; locks?: MirrorConfig['locks']; batch?: boolean;
    features?: number; helloLater?: boolean;
  } = {}) {
    this.features = opts.features ?? 0;
    const mirror: MirrorConfig = { peer: 'A', mode: opts.mode ?? 'speculative', locks: opts.locks, batch: opts.batch };
    const disk = (name: string): MemoryDisk => new MemoryDisk({ name, sectorCount: 1024, clock: this.clock });
    this.lun0 = disk('B/lun0');
    this.controller = new StorageController({
      name: 'B', id: 2, onLockReject: opts.onLockReject ?? 'halt-resume', limits: opts.limits,
      luns: [
        { lun: 0, device: this.lun0, lockRegionSectors: 64, mirror: opts.mirrorLun0 ? mirror : undefined },
        // A LUN the peer mirrors here (this controller holds its copy), for a peer's stream beside a mirrored LUN 0.
        ...(opts.lun1 ? [{ lun: 1, device: disk('B/lun1'), lockRegionSectors: 64 }] : []),
      ],
    }, { clock: this.clock, telemetry: this.tel, random: new SeededRandom(7) });
    const endpoint: LinkEndpoint = {
      name: 'B->A',
      connections: 1,
      heartbeats: 'datagram',
      attach: (h) => {
        this.handler = h;
      },
      open: () => {
        this.open = true;
        this.handler!.opened(0);
      },
      close: () => {
        this.open = false;
      },
      send: (_conn, bytes) => {
        if (!this.open) return false;
        this.decoder.push(bytes.slice());
        return true;
      },
      sendDatagram: (bytes) => {
        this.heartbeats.push(decodeFrame(bytes));
      },
    };
    this.controller.connect('A', endpoint);
    this.controller.start();
    if (opts.helloLater !== true) this.hello();
  }

  /** The peer's HELLO (session 1), with `fields` changed. */
  hello(fields: Partial<HelloFrame> = {}): void {
    this.send({
      type: FrameType.Hello, lun: 0, seq: 0, flags: 0, controllerId: 1, sessionId: 1, windowBytes: 1 << 20, windowEntries: 1024,
      policy: LockRejectPolicy.HaltResume, locksWindow: 16, features: this.features, requiredFeatures: 0, connection: 0, connections: 1, peerSession: 0,
      ...fields,
    } as HelloFrame);
  }

  /** Deliver one frame to the controller, as its peer, on the data connection. */
  send(frame: Frame): void {
    this.handler!.bytes(0, encodeFrame(frame));
  }

  /** Deliver raw bytes to the controller, as its peer, on the data connection. */
  sendBytes(bytes: Uint8Array): void {
    this.handler!.bytes(0, bytes);
  }

  /** Deliver a heartbeat of session `sessionId` (default 1, the peer's) to the controller. */
  heartbeat(counter: number, sessionId = 1): void {
    this.handler!.datagram(encodeFrame({
      type: FrameType.Heartbeat, lun: 0, seq: counter, flags: 0, controllerId: 1, sessionId, confirmedSeq: 0, peerSession: this.controller.session,
    }));
  }

  lock(seq: number, lockId: number, lba: number, count: number, lun = 0): void {
    this.send({ type: FrameType.Lock, lun, seq, flags: 0, lockId, lba, count, mode: LockMode.Write });
  }

  write(seq: number, lockId: number, lba: number, sectors: number, lun = 0): void {
    this.send({ type: FrameType.Write, lun, seq, flags: 0, lockId, lba, tag: seq, data: new Uint8Array(sectors * 512).fill(seq) });
  }

  unlock(seq: number, lockId: number, lun = 0): void {
    this.send({ type: FrameType.Unlock, lun, seq, flags: 0, lockId });
  }

  /** The peer goes silent past the interruption timeout: the controller's supervisor takes the link down. */
  async silence(): Promise<void> {
    await this.clock.advance(this.controller.limits.interruptionMs + 1);
  }

  /** Frames of `type` the controller sent. */
  sent<T extends FrameType>(type: T): Extract<Frame, { type: T }>[] {
    return this.received.filter((f): f is Extract<Frame, { type: T }> => f.type === type);
  }

  target() {
    return this.controller.status()[0]!.target.counters;
  }
}
