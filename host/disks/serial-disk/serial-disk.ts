import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DeviceFailedError, MediaError, OutOfRangeError, checkRange, checkWrite, type BlockDevice } from '../../../firmware/ports/block-device.ts';
import { CRC_BYTES, HEADER_BYTES } from '../../../firmware/protocol/frame.ts';
import type { HostClock } from '../../clock/clock.ts';
import { AttachedDeviceError } from '../attached-errors.ts';
import { rejectLater } from '../later.ts';
import { ServiceModel, type ServiceTimeConfig } from '../service-time.ts';
import {
  BlockFrameType,
  BlockStatus,
  decodeGeometry,
  encodeBlockFrame,
  type BlockFrame,
  type BlockFrameError,
  type BlockGeometry,
} from './block-frames.ts';
import type { ByteLine } from './line.ts';
import { FrameReceiver, WALL_TIMERS, type LineTimers } from './receiver.ts';

export { WALL_TIMERS, type LineTimers };

export interface SerialDiskOptions {
  name: string;
  /** Requests settle on this clock (virtual in a run), at a time the line model gives, however long the real exchange took. */
  clock: HostClock;
  line: ByteLine;
  /** The line's rate: the virtual time of each exchange, and part of the retransmission timeout. */
  baud: number;
  /** The board's own service time, added to the line's in virtual time. */
  service?: ServiceTimeConfig;
  timers?: LineTimers;
  /** Retransmission timeout before the line time of what is outstanding (ms, wall). Default 250. */
  retransmitBaseMs?: number;
  /** Retransmissions of one request before it fails. Default 12. */
  attemptsMax?: number;
  /** How long opening waits for the board's IDENTIFY reply, in all (ms, wall). Default 5000. */
  identifyTimeoutMs?: number;
  /** Requests the host keeps outstanding at most, whatever the board allows. Default 16. */
  requestsInFlightMax?: number;
}

/** Requests waiting to be sent at once; beyond, a request is refused (callers bound their queues well below). */
export const SERIAL_REQUESTS_QUEUED_MAX = 65_536;
/** Cap on the doubling retransmission timeout (ms, wall). */
const RETRANSMIT_MS_MAX = 10_000;

interface Request {
  type: typeof BlockFrameType.Read | typeof BlockFrameType.Write | typeof BlockFrameType.Flush;
  lba: number;
  count: number;
  payload: Uint8Array;
  resolve(data: Uint8Array): void;
  reject(error: unknown): void;
  seq: number;
  frame: Uint8Array | null;
  attempts: number;
  /** Sent more than once (after a NAK or a timeout): its round trip says nothing (Karn). */
  retransmitted: boolean;
  sentAtMs: number;
  /** Order of the latest send of this request among all sends (see resendOvertaken). */
  sendStamp: number;
}

/** Counters for tests and reports. */
export interface SerialDiskCounters {
  requests: number;
  retransmissions: number;
  naksReceived: number;
  frameErrors: number;
  silenceResets: number;
  identifies: number;
}

/** Line time of `bytes` at `baud`, 8N1 (10 bits a byte), in ms. */
export function lineMs(bytes: number, baud: number): number {
  return (bytes * 10 * 1000) / baud;
}

/**
 * A block device at the far end of a serial line (docs/usb-serial-targets.md), spoken to in the
 * serial block protocol (block-frames.ts): IDENTIFY once, then numbered READ, WRITE and FLUSH
 * requests, several outstanding, each answered by a REPLY in order.
 *
 * Line noise: a frame that fails its CRC is dropped by whichever side gets it. The board executes
 * requests strictly in sequence order, NAKs the first gap it sees, answers a repeated WRITE or
 * FLUSH from its reply cache rather than doing it again, and reads again for a repeated READ; the
 * host re-sends everything outstanding from the NAKed number, or from the oldest on a timeout
 * (go-back-N, the timeout doubling per attempt). So lost or flipped bytes cost time, never wrong
 * data: the worst a line can do is fail requests with DeviceFailedError once a request has gone
 * unanswered `attemptsMax` times (the host then re-IDENTIFYs before the next one).
 */
export class SerialDisk implements BlockDevice {
  readonly name: string;
  readonly sectorSize: number;
  readonly sectorCount: number;
  readonly geometry: BlockGeometry;
  readonly counters: SerialDiskCounters;
  private readonly clock: HostClock;
  private readonly line: ByteLine;
  private readonly baud: number;
  private readonly timers: LineTimers;
  private readonly service: ServiceModel;
  private readonly retransmitBaseMs: number;
  private readonly attemptsMax: number;
  private readonly window: number;
  private readonly link: Link;
  private session: number;
  private nextSeq = 1;
  private readonly waiting: Request[] = [];
  private readonly outstanding = new Map<number, Request>();
  private timer: unknown = null;
  private silenceTimer: unknown = null;
  private lastNakSeq = 0;
  private needsIdentify = false;
  private identifying: Promise<void> | null = null;
  private onIdentify: ((frame: BlockFrame) => void) | null = null;
  private busyUntilMs = 0;
  private sends = 0;
  private srttMs: number | null = null;
  private rttvarMs = 0;
  private closedBecause: string | null = null;

  private constructor(options: SerialDiskOptions, link: Link) {
    this.name = options.name;
    this.clock = options.clock;
    this.line = options.line;
    this.baud = options.baud;
    this.timers = options.timers ?? WALL_TIMERS;
    this.retransmitBaseMs = options.retransmitBaseMs ?? 250;
    this.attemptsMax = options.attemptsMax ?? 12;
    this.geometry = link.geometry;
    this.sectorSize = link.geometry.sectorSize;
    this.sectorCount = link.geometry.sectorCount;
    this.window = Math.min(options.requestsInFlightMax ?? 16, link.geometry.requestsInFlightMax);
    this.service = new ServiceModel(options.service ?? {}, link.geometry.sectorCount);
    this.session = link.session;
    this.counters = link.counters;
    this.link = link;
    link.route((frame) => this.receive(frame), (error) => this.frameError(error), () => this.replyDied());
    this.line.onClose((error) => this.lineClosed(error));
  }

  /**
   * Opens the device on `line`: IDENTIFY, re-sent until the board answers or the timeout passes
   * (then ML_ERR_SERIAL_DISK_SILENT: nothing, or nothing that speaks the protocol, is listening).
   */
  static async open(options: SerialDiskOptions): Promise<SerialDisk> {
    const link = new Link(options);
    try {
      link.geometry = await link.identify(options.identifyTimeoutMs ?? 5000);
    } catch (error) {
      link.detach();
      throw error;
    }
    return new SerialDisk(options, link);
  }

  read(lba: number, count: number): Promise<Uint8Array> {
    try {
      checkRange(this, lba, count);
    } catch (error) {
      return rejectLater(this.clock, error);
    }
    return this.split(lba, count, async (at, n) => this.request(BlockFrameType.Read, at, n, EMPTY)).then((parts) => concat(parts, count * this.sectorSize));
  }

  write(lba: number, data: Uint8Array): Promise<void> {
    const count = checkWrite(this, lba, data);
    if (typeof count !== 'number') return rejectLater(this.clock, count);
    const ss = this.sectorSize;
    const piece = (at: number, n: number): Promise<Uint8Array> => this.request(BlockFrameType.Write, at, n, data.slice((at - lba) * ss, (at - lba + n) * ss));
    return this.split(lba, count, piece).then(() => undefined);
  }

  flush(): Promise<void> {
    return this.request(BlockFrameType.Flush, 0, 0, EMPTY).then(() => undefined);
  }

  /** Fails what is outstanding, stops the timers and closes the line. */
  async close(): Promise<void> {
    this.shutDown('closed');
    await this.line.close();
  }

  /** Pieces of at most the board's transfer limit, all issued at once (they travel in order), joined in order. */
  private split(lba: number, count: number, piece: (lba: number, count: number) => Promise<Uint8Array>): Promise<Uint8Array[]> {
    const per = Math.max(1, Math.floor(this.geometry.transferBytesMax / this.sectorSize));
    const parts: Promise<Uint8Array>[] = [];
    for (let done = 0; done < count; done += per) parts.push(piece(lba + done, Math.min(per, count - done)));
    return Promise.all(parts);
  }

  /** One request, settling on the clock after its line and service time (one exchange at a time on the line). */
  private request(type: Request['type'], lba: number, count: number, payload: Uint8Array): Promise<Uint8Array> {
    if (this.closedBecause !== null) return rejectLater(this.clock, new DeviceFailedError(this.name, this.closedBecause));
    if (this.waiting.length >= SERIAL_REQUESTS_QUEUED_MAX) {
      return rejectLater(this.clock, new DeviceFailedError(this.name, `more than ${SERIAL_REQUESTS_QUEUED_MAX} requests queued`));
    }
    const op = new Promise<Uint8Array>((resolve, reject) => {
      this.waiting.push({ type, lba, count, payload, resolve, reject, seq: 0, frame: null, attempts: 0, retransmitted: false, sentAtMs: 0, sendStamp: 0 });
    });
    this.counters.requests++;
    this.pump();
    const bytes = FRAME_OVERHEAD * 2 + count * this.sectorSize;
    const serviceMs = type === BlockFrameType.Flush ? this.service.flushMs() : this.service.transferMs(lba, count, count * this.sectorSize);
    const start = Math.max(this.clock.now(), this.busyUntilMs);
    this.busyUntilMs = start + lineMs(bytes, this.baud) + serviceMs;
    return this.clock.settle(op, this.busyUntilMs - this.clock.now());
  }

  /** Sends waiting requests while the window has room (after re-IDENTIFYing if a failure asked for it). */
  private pump(): void {
    if (this.needsIdentify) {
      this.reidentify();
      return;
    }
    if (this.identifying !== null) return;
    while (this.outstanding.size < this.window && this.waiting.length > 0) {
      const r = this.waiting.shift()!;
      r.seq = this.nextSeq++;
      r.frame = encodeBlockFrame({ type: r.type, seq: r.seq, session: this.session, lba: r.lba, count: r.count, code: 0, payload: r.payload });
      this.outstanding.set(r.seq, r);
      r.sentAtMs = performance.now();
      r.sendStamp = ++this.sends;
      this.line.write(r.frame);
    }
    if (this.outstanding.size > 0 && this.timer === null) this.arm();
  }

  private receive(frame: BlockFrame): void {
    if (frame.session !== this.session) return;
    if (frame.type === BlockFrameType.Reply && frame.seq === 0) {
      this.onIdentify?.(frame);
      return;
    }
    if (frame.type === BlockFrameType.Nak) {
      this.counters.naksReceived++;
      // One go-back per NAKed number: a second NAK of it means our resend was lost too, which the timeout covers.
      if (frame.seq > this.lastNakSeq && this.outstanding.has(frame.seq)) {
        this.lastNakSeq = frame.seq;
        this.resendFrom(frame.seq);
      }
      return;
    }
    if (frame.type !== BlockFrameType.Reply) return;
    const r = this.outstanding.get(frame.seq);
    if (r === undefined) return; // a late or repeated reply
    this.outstanding.delete(frame.seq);
    if (frame.code === BlockStatus.Session) {
      // The board restarted and forgot us: say who we are again, then resend everything outstanding.
      this.outstanding.set(frame.seq, r);
      this.needsIdentify = true;
      this.pump();
      return;
    }
    this.sample(r);
    this.settle(r, frame);
    this.resendOvertaken(r);
    this.disarm();
    this.pump();
  }

  private settle(r: Request, frame: BlockFrame): void {
    const bytes = r.type === BlockFrameType.Read ? r.count * this.sectorSize : 0;
    switch (frame.code) {
      case BlockStatus.Ok:
        if (frame.payload.length !== bytes) r.reject(new DeviceFailedError(this.name, `the board answered a ${bytes}-byte request with ${frame.payload.length} bytes`));
        else r.resolve(frame.payload);
        return;
      case BlockStatus.Media: {
        const inside = frame.lba >= r.lba && frame.lba < r.lba + Math.max(1, r.count);
        r.reject(new MediaError(this.name, inside ? frame.lba : r.lba));
        return;
      }
      case BlockStatus.Range:
        r.reject(new OutOfRangeError(`${this.name}: the board says [${r.lba}, +${r.count}) is outside its device`));
        return;
      default:
        r.reject(new DeviceFailedError(this.name,
          frame.code === BlockStatus.Failed ? 'the board reports its device failed' : `the board refused the request (status ${frame.code})`));
    }
  }

  /** Go-back-N: send again every outstanding request from `seq` on, in order. */
  private resendFrom(seq: number): void {
    for (const r of this.outstanding.values()) if (r.seq >= seq) this.resend(r);
  }

  private resend(r: Request): void {
    this.counters.retransmissions++;
    r.retransmitted = true;
    r.sendStamp = ++this.sends;
    this.line.write(r.frame!);
  }

  /**
   * The board executes requests in the order it accepted them and answers each as it is done, so
   * a reply to `answered` means every request sent before it has been executed too: those still
   * unanswered lost their replies on the line. Ask again now (the board answers a repeat from its
   * cache, or reads again) rather than wait for the timeout.
   */
  private resendOvertaken(answered: Request): void {
    for (const r of this.outstanding.values()) {
      if (r.seq < answered.seq && r.sendStamp < answered.sendStamp) this.resend(r);
    }
  }

  /**
   * Arms the retransmission timer: after this long without a reply, something was lost. The
   * timeout follows RFC 6298 on the round trips measured (Karn's rule: never from a request sent
   * twice), at least `retransmitBaseMs`; until there is a measurement, the base plus twice the
   * line time of everything outstanding both ways at the configured rate (a PTY, which ignores
   * the rate, is then merely cautious). Doubled per timeout of the same request.
   */
  private arm(): void {
    let ms: number;
    if (this.srttMs === null) {
      let bytes = 0;
      for (const r of this.outstanding.values()) bytes += 2 * FRAME_OVERHEAD + r.count * this.sectorSize;
      ms = this.retransmitBaseMs + 2 * lineMs(bytes, this.baud);
    } else {
      ms = Math.max(this.retransmitBaseMs, this.srttMs + 4 * this.rttvarMs);
    }
    const oldest = this.outstanding.values().next().value;
    this.timer = this.timers.setTimeout(() => this.timedOut(), Math.min(RETRANSMIT_MS_MAX, ms * 2 ** Math.min(oldest?.attempts ?? 0, 6)));
  }

  /** A round trip measured on a request sent once (RFC 6298 2.2, 2.3). */
  private sample(r: Request): void {
    if (r.attempts > 0 || r.retransmitted) return;
    const rtt = performance.now() - r.sentAtMs;
    if (this.srttMs === null) {
      this.srttMs = rtt;
      this.rttvarMs = rtt / 2;
    } else {
      this.rttvarMs = 0.75 * this.rttvarMs + 0.25 * Math.abs(this.srttMs - rtt);
      this.srttMs = 0.875 * this.srttMs + 0.125 * rtt;
    }
  }

  private disarm(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private timedOut(): void {
    this.timer = null;
    const oldest = this.outstanding.values().next().value;
    if (oldest === undefined) return;
    oldest.attempts++;
    if (oldest.attempts > this.attemptsMax) {
      const error = new DeviceFailedError(this.name, `no reply from the board after ${this.attemptsMax} retransmissions`);
      for (const r of this.outstanding.values()) r.reject(error);
      this.outstanding.clear();
      this.needsIdentify = true;
      this.pump();
      return;
    }
    this.lastNakSeq = 0;
    this.link.dropPartial();
    this.resendFrom(oldest.seq);
    this.arm();
  }

  /** IDENTIFY again (a new session, numbers from 1), then resend what is outstanding under new numbers. */
  private reidentify(): void {
    if (this.identifying !== null) return;
    this.needsIdentify = false;
    this.disarm();
    this.session = newSession();
    const resend = [...this.outstanding.values()];
    this.outstanding.clear();
    this.waiting.unshift(...resend);
    this.identifying = this.identifyOnce().then(
      () => {
        this.identifying = null;
        this.nextSeq = 1;
        this.lastNakSeq = 0;
        this.pump();
      },
      (error: unknown) => {
        this.identifying = null;
        const failure = new DeviceFailedError(this.name, `the board did not answer IDENTIFY again: ${(error as Error).message}`);
        for (const r of this.waiting.splice(0)) r.reject(failure);
        this.needsIdentify = true;
      },
    );
  }

  private identifyOnce(): Promise<void> {
    return runIdentify(this.line, this.session, this.timers, this.retransmitBaseMs, this.attemptsMax * this.retransmitBaseMs * 4, (fn) => (this.onIdentify = fn)).then((frame) => {
      this.counters.identifies++;
      const g = decodeGeometry(frame.payload);
      if (typeof g === 'string' || g.sectorSize !== this.sectorSize || g.sectorCount !== this.sectorCount) {
        const now = typeof g === 'string' ? g : `${g.sectorCount} sectors of ${g.sectorSize} bytes`;
        this.shutDown(`the board now serves something else (${now}), not the ${this.sectorCount} sectors of ${this.sectorSize} bytes it was opened with`);
        throw new Error('the device changed');
      }
    });
  }

  /** A reply died half-way on the line: most likely the oldest request's (replies come in order). Ask for it again. */
  private replyDied(): void {
    const oldest = this.outstanding.values().next().value;
    if (oldest !== undefined) this.resend(oldest);
  }

  /** A reply spoiled on the line whose header still names a request of ours: ask again now, not at the timeout. */
  private frameError(error: BlockFrameError): void {
    this.counters.frameErrors++;
    const h = error.header;
    if (h === undefined || h.session !== this.session || h.type !== BlockFrameType.Reply) return;
    const r = this.outstanding.get(h.seq);
    if (r !== undefined) this.resend(r);
  }

  private lineClosed(error?: Error): void {
    this.shutDown(`the serial line closed${error ? `: ${error.message}` : ''}`);
  }

  private shutDown(why: string): void {
    if (this.closedBecause !== null) return;
    this.closedBecause = why;
    this.disarm();
    this.link.detach();
    const error = new DeviceFailedError(this.name, why);
    for (const r of [...this.outstanding.values(), ...this.waiting.splice(0)]) r.reject(error);
    this.outstanding.clear();
  }
}

const EMPTY = new Uint8Array(0);
const FRAME_OVERHEAD = HEADER_BYTES + CRC_BYTES;

function newSession(): number {
  return 1 + randomInt(2 ** 47);
}

function concat(parts: Uint8Array[], bytes: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(bytes);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Sends IDENTIFY every `everyMs` until the board answers for `session` or `timeoutMs` passes.
 * `listen` installs the receiver of IDENTIFY replies.
 */
function runIdentify(
  line: ByteLine, session: number, timers: LineTimers, everyMs: number, timeoutMs: number,
  listen: (fn: ((f: BlockFrame) => void) | null) => void,
): Promise<BlockFrame> {
  return new Promise((resolve, reject) => {
    const frame = encodeBlockFrame({ type: BlockFrameType.Identify, seq: 0, session, lba: 0, count: 0, code: 0, payload: EMPTY });
    let waited = 0;
    let timer: unknown = null;
    const send = (): void => {
      if (waited >= timeoutMs) {
        listen(null);
        reject(new AttachedDeviceError('ML_ERR_SERIAL_DISK_SILENT', `no answer to IDENTIFY within ${timeoutMs} ms`));
        return;
      }
      line.write(frame);
      waited += everyMs;
      timer = timers.setTimeout(send, everyMs);
    };
    listen((reply) => {
      if (reply.type !== BlockFrameType.Reply || reply.seq !== 0) return;
      timers.clearTimeout(timer);
      listen(null);
      if (reply.code !== BlockStatus.Ok) reject(new AttachedDeviceError('ML_ERR_SERIAL_DISK_PROTOCOL', `the board refused IDENTIFY (status ${reply.code})`));
      else resolve(reply);
    });
    send();
  });
}

/**
 * The line while a disk is being opened, and its receiver afterwards: frames go to whoever is
 * routed to, the IDENTIFY handshake first, then the disk.
 */
class Link {
  geometry!: BlockGeometry;
  readonly session = newSession();
  readonly counters: SerialDiskCounters = { requests: 0, retransmissions: 0, naksReceived: 0, frameErrors: 0, silenceResets: 0, identifies: 0 };
  private readonly receiver: FrameReceiver;
  private frames: (frame: BlockFrame) => void = () => {};
  private errors: (error: BlockFrameError) => void = () => {};
  private silences: () => void = () => {};
  private identifyListener: ((frame: BlockFrame) => void) | null = null;

  constructor(private readonly options: SerialDiskOptions) {
    this.receiver = new FrameReceiver({
      line: options.line, baud: options.baud, timers: options.timers,
      onFrame: (f) => this.frames(f),
      onError: (error) => {
        this.counters.silenceResets = this.receiver.silenceResets;
        this.errors(error);
      },
      onSilenceReset: () => {
        this.counters.silenceResets = this.receiver.silenceResets;
        this.silences();
      },
    });
    this.frames = (f) => this.identifyListener?.(f);
  }

  async identify(timeoutMs: number): Promise<BlockGeometry> {
    const timers = this.options.timers ?? WALL_TIMERS;
    const base = this.options.retransmitBaseMs ?? 250;
    const reply = await runIdentify(this.options.line, this.session, timers, base, timeoutMs, (fn) => (this.identifyListener = fn));
    this.counters.identifies++;
    const g = decodeGeometry(reply.payload);
    if (typeof g === 'string') throw new AttachedDeviceError('ML_ERR_SERIAL_DISK_PROTOCOL', `${this.options.name}: ${g}`);
    return g;
  }

  /** From now on frames and errors go to the disk. */
  route(frames: (frame: BlockFrame) => void, errors: (error: BlockFrameError) => void, silences: () => void): void {
    this.frames = frames;
    this.errors = errors;
    this.silences = silences;
  }

  dropPartial(): void {
    this.receiver.dropPartial();
    this.counters.silenceResets = this.receiver.silenceResets;
  }

  detach(): void {
    this.receiver.stop();
  }
}
