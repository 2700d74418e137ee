/**
 * The LinkEndpoint port (docs/design.md 2.1): one controller's end of a link to one peer. The simulated
 * link, TCP, UDP and serial transports in `host/transports/` implement it.
 *
 * A link carries bytes. Stream transports (TCP, serial) may split or coalesce frames anywhere;
 * datagram transports deliver one frame per chunk; either way the firmware's streaming decoder
 * reassembles frames, so the firmware never assumes a chunk boundary means anything.
 */
export interface LinkEndpoint {
  readonly name: string;
  /** True while the transport believes the peer is reachable. */
  readonly isUp: boolean;
  /**
   * Queue `bytes` for transmission. Returns false, without taking the bytes, when the transport's
   * send queue is full; the handler's `writable()` is called when there is room again.
   * The transport may keep a reference to `bytes`: the caller must not change them afterwards.
   */
  send(bytes: Uint8Array): boolean;
  /** Install the receiver. A transport has exactly one handler. */
  attach(handler: LinkHandler): void;
}

export interface LinkHandler {
  /** Bytes arrived. The chunk is the receiver's to keep. */
  bytes(chunk: Uint8Array): void;
  /** The link came up (or back up). */
  up(): void;
  /** The link went down; nothing sent from now on is delivered until `up()`. */
  down(reason: string): void;
  /** A send that returned false may be retried now. */
  writable(): void;
}
