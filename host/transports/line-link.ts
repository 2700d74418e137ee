import { assert } from '../../firmware/errors.ts';
import type { LinkHandler } from '../../firmware/ports/link.ts';
import type { HostClock } from '../clock/clock.ts';
import type { LinkLogger } from './link-logger.ts';
import type { LiveConnectionStats, LiveLink, LiveLinkStats } from './live-link-types.ts';

/** Heartbeats may queue this far past the send bound: a full queue of data must not silence them. */
export const HEARTBEAT_SLACK_BYTES = 4096;

/** What every single-stream link is told at construction. */
export interface LineLinkSettings {
  localName: string;
  clock: HostClock;
  logger: LinkLogger;
  /** A `send` is refused once this many bytes wait to go out. */
  sendQueueBytesMax: number;
  /** A device that disappeared: an `open(0)` tries this many times to find it again... */
  reopenAttemptsMax: number;
  /** ...this long apart; and heartbeats sent while it is gone try once at most this often. */
  reopenIntervalMs: number;
}

/**
 * A link of one byte stream with heartbeats inline (docs/live-links.md 7): a serial line, a USB
 * bulk pipe pair. The device (`D`: a port, a claimed interface) may disappear and come back; this
 * class keeps what the firmware sees the same for every such device: one connection (slot 0)
 * that is open once the firmware asked for it and a device is there, `closed(0, reason)` when the
 * device goes, a bounded send queue with `writable` at half of it, heartbeats dropped (and a look
 * for the device made) while it is gone, and a shutdown after which nothing fires. A subclass
 * says how to write, how much is queued, how to find, adopt and let go of a device.
 */
export abstract class LineLink<D> implements LiveLink {
  readonly connections = 1;
  readonly heartbeats = 'inline' as const;
  readonly name: string;
  abstract readonly description: string;
  protected handler: LinkHandler | null = null;
  protected device: D | null = null;
  /** The firmware asked for the connection (and has not closed it or heard it closed)... */
  protected want = false;
  /** ...and heard `opened`. */
  protected held = false;
  /** A send was refused: `writable` is owed once the queue is down to half. */
  protected refused = false;
  protected stopping: Promise<void> | null = null;
  protected reopens = 0;
  protected readonly conn: Omit<LiveConnectionStats, 'conn' | 'state' | 'queuedBytes'> = {
    opens: 0, closedHeard: 0, framesSent: 0, bytesSent: 0, chunksReceived: 0, bytesReceived: 0, sendsRefused: 0, sendsNotOpen: 0,
  };
  protected readonly beats = { sent: 0, received: 0, rejected: 0, dropped: 0, sendErrors: 0 };
  private grantImmediate: ReturnType<typeof setImmediate> | null = null;
  protected reopening: Promise<void> | null = null;
  private lastAttemptMs = Number.NEGATIVE_INFINITY;

  /** `what` names the link in errors (`a serial line`); `notAgain` says how finding the device failed (`did not open again`). */
  protected constructor(protected readonly line: LineLinkSettings, private readonly words: { what: string; notAgain: string }) {
    this.name = line.localName;
  }

  /** Bytes waiting to go out. */
  protected abstract queuedBytes(): number;
  /** Hands `bytes` (whole frames) to the device, which is there. */
  protected abstract write(bytes: Uint8Array): void;
  /** Finds and opens the device again; throws what is wrong. */
  protected abstract findDevice(): Promise<D>;
  /** Starts using `device` (reading from it). */
  protected abstract adopt(device: D): void;
  /** Lets go of a device found after the link began to stop, or at shutdown. */
  protected abstract letGo(device: D): Promise<void>;
  /** The words for the device in messages: `serial port /dev/ttyUSB0`. */
  protected abstract deviceLabel(): string;
  abstract stats(): LiveLinkStats;

  attach(handler: LinkHandler): void {
    assert(this.handler === null, `${this.name}: a link endpoint takes one handler`);
    this.handler = handler;
  }

  open(conn: number): void {
    this.check(conn);
    if (this.stopping !== null || this.want) return;
    this.want = true;
    if (this.device === null) return this.reopen(this.line.reopenAttemptsMax);
    this.grantImmediate ??= setImmediate(() => {
      this.grantImmediate = null;
      this.grant();
    });
  }

  close(conn: number): void {
    this.check(conn);
    this.want = false;
    this.held = false;
    this.refused = false;
  }

  send(conn: number, bytes: Uint8Array): boolean {
    this.check(conn);
    if (!this.held || this.device === null) {
      this.conn.sendsNotOpen++;
      return false;
    }
    if (this.queuedBytes() >= this.line.sendQueueBytesMax) {
      this.refused = true;
      this.conn.sendsRefused++;
      return false;
    }
    this.write(bytes);
    this.conn.framesSent++;
    this.conn.bytesSent += bytes.length;
    return true;
  }

  /** A heartbeat frame, inline between whole frames; dropped while the device is gone (which prompts a look for it). */
  sendDatagram(bytes: Uint8Array): void {
    if (this.stopping !== null) return;
    if (this.device === null) {
      this.beats.dropped++;
      if (this.line.clock.now() - this.lastAttemptMs >= this.line.reopenIntervalMs) this.reopen(1);
      return;
    }
    if (this.queuedBytes() >= this.line.sendQueueBytesMax + HEARTBEAT_SLACK_BYTES) {
      this.beats.dropped++;
      return;
    }
    this.write(bytes);
    this.beats.sent++;
  }

  shutdown(): Promise<void> {
    this.stopping ??= this.stop();
    return this.stopping;
  }

  /** The connection's figures and the link's, for a subclass's {@link stats}. */
  protected lineStats(): Omit<LiveLinkStats, 'kind'> {
    const state = this.held ? 'open' : this.want ? 'opening' : 'closed';
    const connection: LiveConnectionStats = { conn: 0, state, queuedBytes: this.queuedBytes(), ...this.conn };
    return {
      role: 'line', description: this.description, connections: [connection], connects: connection.opens,
      reconnects: Math.max(0, connection.opens - 1), datagrams: { ...this.beats }, reopens: this.reopens,
    };
  }

  /** Bytes went out: if a send was refused and the queue is down to half, the firmware may send again. */
  protected drained(): void {
    if (!this.refused || !this.held || this.device === null || this.queuedBytes() > this.line.sendQueueBytesMax / 2) return;
    this.refused = false;
    this.handler?.writable(0);
  }

  /** Bytes came in from the device. */
  protected received(bytes: Uint8Array): void {
    this.conn.chunksReceived++;
    this.conn.bytesReceived += bytes.length;
    this.handler?.bytes(0, bytes);
  }

  /**
   * `device` is gone (if it is still the current one and the link is not stopping): `cleanup`
   * lets go of it, and a connection the firmware held or asked for hears `closed(0, reason)`.
   */
  protected lose(device: D, reason: string, cleanup: () => void): void {
    if (this.device !== device || this.stopping !== null) return;
    this.device = null;
    cleanup();
    if (!this.want && !this.held) return;
    this.want = false;
    this.held = false;
    this.refused = false;
    this.conn.closedHeard++;
    this.handler?.closed(0, reason);
  }

  /** The common half of a shutdown; returns the device there was, for the subclass to let go of. */
  protected async stopLine(): Promise<D | null> {
    this.handler = null;
    this.want = false;
    this.held = false;
    if (this.grantImmediate !== null) clearImmediate(this.grantImmediate);
    this.grantImmediate = null;
    await this.reopening;
    const d = this.device;
    this.device = null;
    return d;
  }

  protected abstract stop(): Promise<void>;

  private grant(): void {
    if (!this.want || this.held || this.device === null || this.stopping !== null) return;
    this.held = true;
    this.refused = false;
    this.conn.opens++;
    this.handler?.opened(0);
  }

  /**
   * Looks for the device again, up to `attempts` times, one sequence at a time. If it stays gone
   * and the firmware is waiting for `opened`, it hears `closed` instead and asks again when it decides to.
   */
  private reopen(attempts: number): void {
    if (this.reopening !== null || this.stopping !== null) return;
    this.reopening = (async () => {
      let lastError: unknown = null;
      for (let attempt = 1; attempt <= attempts && this.stopping === null; attempt++) {
        this.lastAttemptMs = this.line.clock.now();
        try {
          const device = await this.findDevice();
          if (this.stopping !== null) return void (await this.letGo(device));
          this.reopens++;
          this.line.logger.info({ device: this.deviceLabel(), attempt }, 'link device open again');
          this.device = device;
          this.adopt(device);
          this.grant();
          return;
        } catch (error) {
          lastError = error;
        }
        if (attempt < attempts) await this.line.clock.sleep(this.line.reopenIntervalMs);
      }
      if (this.stopping !== null || !this.want || this.held) return;
      this.want = false;
      this.conn.closedHeard++;
      const why = lastError instanceof Error ? lastError.message : String(lastError);
      this.handler?.closed(0, `${this.deviceLabel()} is gone and ${this.words.notAgain} (${attempts} attempt${attempts === 1 ? '' : 's'}): ${why}`);
    })().finally(() => {
      this.reopening = null;
    });
  }

  private check(conn: number): void {
    assert(conn === 0, `connection ${String(conn)} does not exist: ${this.words.what} has one (0)`);
  }
}
