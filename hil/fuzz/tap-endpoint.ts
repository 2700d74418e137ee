import type { LinkEndpoint, LinkHandler } from '../../firmware/ports/link.ts';

/** What the tap hears: every chunk and datagram the wrapped end receives from its peer and sends to it. */
export interface TrafficObserver {
  received(conn: number, chunk: Uint8Array): void;
  receivedDatagram(bytes: Uint8Array): void;
  sent(conn: number, bytes: Uint8Array): void;
  sentDatagram(bytes: Uint8Array): void;
}

/**
 * One end of a link with the fuzzer between it and the controller (docs/fuzzing.md 3): everything
 * passes through untouched and is shown to an observer, and `inject` hands the controller bytes
 * or datagrams as if its peer had sent them, at any moment, on any connection. Every call into the
 * controller's handler is guarded: an exception escaping frame handling is a crash, recorded with
 * where it happened, and not thrown on into the simulated link (whose timer would end the run
 * without saying which input did it).
 */
export class TapEndpoint implements LinkEndpoint {
  private handler: LinkHandler | null = null;

  constructor(
    private readonly inner: LinkEndpoint,
    private readonly observer: TrafficObserver,
    private readonly onThrow: (where: string, error: unknown) => void,
  ) {}

  get name(): string {
    return this.inner.name;
  }

  get connections(): number {
    return this.inner.connections;
  }

  get heartbeats(): 'datagram' | 'inline' {
    return this.inner.heartbeats;
  }

  attach(handler: LinkHandler): void {
    this.handler = handler;
    this.inner.attach({
      opened: (conn) => this.guard('opened', () => handler.opened(conn)),
      closed: (conn, reason) => this.guard('closed', () => handler.closed(conn, reason)),
      bytes: (conn, chunk) => {
        this.observer.received(conn, chunk);
        this.guard(`bytes from the peer on connection ${conn}`, () => handler.bytes(conn, chunk));
      },
      datagram: (bytes) => {
        this.observer.receivedDatagram(bytes);
        this.guard('a datagram from the peer', () => handler.datagram(bytes));
      },
      writable: (conn) => this.guard('writable', () => handler.writable(conn)),
    });
  }

  open(conn: number): void {
    this.inner.open(conn);
  }

  close(conn: number): void {
    this.inner.close(conn);
  }

  send(conn: number, bytes: Uint8Array): boolean {
    const ok = this.inner.send(conn, bytes);
    if (ok) this.observer.sent(conn, bytes);
    return ok;
  }

  sendDatagram(bytes: Uint8Array): void {
    this.inner.sendDatagram(bytes);
    this.observer.sentDatagram(bytes);
  }

  /** Fuzzed bytes on data connection `conn`, as if from the peer. */
  inject(conn: number, chunk: Uint8Array): void {
    if (this.handler) this.guard(`fuzzed bytes on connection ${conn}`, () => this.handler!.bytes(conn, chunk));
  }

  /** A fuzzed datagram, as if from the peer. */
  injectDatagram(bytes: Uint8Array): void {
    if (this.handler) this.guard('a fuzzed datagram', () => this.handler!.datagram(bytes));
  }

  private guard(where: string, fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.onThrow(where, error);
    }
  }
}
