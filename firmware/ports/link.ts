/**
 * The LinkEndpoint port: one controller's end of the link to one peer (docs/link-supervision.md).
 * The simulated link and the TCP/UDP, serial and USB transports in `host/transports/` implement it.
 *
 * A link is `connections` byte-stream **data connections** plus a **heartbeat channel**:
 * - On IP links the data connections are TCP connections and heartbeats are UDP datagrams.
 * - On a serial line or a USB bulk pipe there is one data connection, and heartbeats travel
 *   inline, as frames on that same byte stream (`heartbeats: 'inline'`).
 *
 * Transports move bytes and report connection errors; they never decide that the link is up or
 * down. The firmware's link supervisor decides that, from heartbeats and the clock: it asks for
 * connections with `open`, drops them with `close`, and treats silence as an interruption.
 *
 * Byte streams may split or coalesce frames anywhere; the firmware's streaming decoder
 * reassembles them. A datagram is one heartbeat frame; it may be lost, duplicated or reordered.
 */
export interface LinkEndpoint {
  readonly name: string;
  /** How many data connections this link carries: n on TCP, 1 on a serial line or USB. */
  readonly connections: number;
  /**
   * `datagram`: heartbeats go on a channel of their own (UDP), delivered through
   * `LinkHandler.datagram`, whether or not any data connection is open.
   * `inline`: heartbeats are frames on data connection 0's byte stream, which then delivers bytes
   * (`LinkHandler.bytes(0, …)`) whenever the line itself works, open or not: on a serial line
   * "open" and "closed" are the firmware's own bookkeeping, and the HELLO that opens the
   * connection marks where the new conversation starts.
   */
  readonly heartbeats: 'datagram' | 'inline';
  /** Install the receiver. A transport has exactly one handler; it is called only after this. */
  attach(handler: LinkHandler): void;
  /**
   * Ask for data connection `conn` (0 <= conn < connections) to be established. Idempotent while
   * it is opening or open. The transport connects, or accepts the peer's connection for that
   * slot, and calls `opened(conn)` once bytes can flow both ways; if it cannot, it calls
   * `closed(conn, reason)` and the firmware decides when to ask again. A connection is
   * established only while both ends want it.
   */
  open(conn: number): void;
  /**
   * Drop data connection `conn`: bytes queued or in flight on it may be lost, and nothing more is
   * delivered from it. `closed` is not called for a close the firmware asked for.
   */
  close(conn: number): void;
  /**
   * Queue `bytes` (whole frames) on open connection `conn`. Returns false, without taking the
   * bytes, when that connection's send queue is full (then `writable(conn)` follows) or when the
   * connection is not open. The transport may keep a reference to `bytes`: the caller must not
   * change them afterwards.
   */
  send(conn: number, bytes: Uint8Array): boolean;
  /**
   * Send one heartbeat frame on the heartbeat channel, best effort: never blocks, may be lost. On
   * an `inline` link it goes on connection 0's byte stream between whole frames.
   */
  sendDatagram(bytes: Uint8Array): void;
}

export interface LinkHandler {
  /** Data connection `conn` is established: bytes can flow both ways. */
  opened(conn: number): void;
  /**
   * Data connection `conn` failed, was refused or was reset by the transport or the peer (never
   * called for a `close` the firmware asked for). Whatever was in flight on it is lost.
   */
  closed(conn: number, reason: string): void;
  /** Bytes arrived on data connection `conn`. The chunk is the receiver's to keep. */
  bytes(conn: number, chunk: Uint8Array): void;
  /**
   * Part of a frame is arriving on `conn`, its bytes to follow whole: said by a transport that
   * hands frames over whole (the simulated link, docs/simulated-link.md 2), so that the receiver
   * hears a long frame's traffic as it would on a socket. Optional to implement.
   */
  traffic?(conn: number): void;
  /** A datagram (one heartbeat frame) arrived on the heartbeat channel. Its bytes are the receiver's. */
  datagram(bytes: Uint8Array): void;
  /** A `send` on `conn` that returned false may be retried now. */
  writable(conn: number): void;
}
