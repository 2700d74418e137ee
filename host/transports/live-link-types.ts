import type { LinkEndpoint } from '../../firmware/ports/link.ts';

/** One data connection's counters and state (docs/live-links.md 8). */
export interface LiveConnectionStats {
  conn: number;
  /** `opening`: the firmware asked for it and it is not open yet. */
  state: 'closed' | 'opening' | 'open';
  /** Times it opened (the first open and every reconnection). */
  opens: number;
  /** Times it was lost without the firmware asking (`closed` called). */
  closedHeard: number;
  /** Sends taken (each is one or more whole frames) and their bytes. */
  framesSent: number;
  bytesSent: number;
  /** Reads delivered to the firmware and their bytes (a read holds any part of any number of frames). */
  chunksReceived: number;
  bytesReceived: number;
  /** Bytes waiting in this end's send queue now (the kernel's socket buffer not included). */
  queuedBytes: number;
  /** Sends refused for a full queue (a `writable` followed) and for a connection not open. */
  sendsRefused: number;
  sendsNotOpen: number;
}

export interface LiveLinkStats {
  kind: 'tcp' | 'serial' | 'usb';
  role: 'listen' | 'connect' | 'line';
  description: string;
  connections: LiveConnectionStats[];
  /** Connections opened in all, and how many of those were reconnections. */
  connects: number;
  reconnects: number;
  /**
   * The heartbeat channel: UDP datagrams on TCP links; on a serial line the heartbeat frames sent
   * inline (those that arrive are bytes on the line, decoded by the firmware, so `received` and
   * `rejected` stay 0 there).
   */
  datagrams: { sent: number; received: number; rejected: number; dropped: number; sendErrors: number };
  /** TCP listen side: connections refused for a bad preamble, slots taken over by a new connection, connections dropped for too many waiting. */
  preamblesRejected?: number;
  replaced?: number;
  refusedBusy?: number;
  /** Serial: times the port was opened again after it disappeared; USB: times the device was found and claimed again. */
  reopens?: number;
  /** USB: bulk transfers and what the link recovered from (docs/usb-link.md 4). */
  usb?: UsbTransferStats;
}

/** A USB link's transfer counters. */
export interface UsbTransferStats {
  transfersOut: number;
  transfersIn: number;
  /** IN transfers that ended with no bytes: a zero-length packet, or a timeout on a quiet pipe. */
  emptyIns: number;
  /** STALLs cleared with CLEAR_FEATURE(ENDPOINT_HALT), by pipe. */
  stallsClearedIn: number;
  stallsClearedOut: number;
  /** IN transfers that overflowed (babble: the device sent more than asked; those bytes are lost). */
  babbles: number;
  /** Transfers that failed otherwise and were retried. */
  transferErrors: number;
}

/**
 * A live link (docs/live-links.md): the LinkEndpoint port on a real transport, TCP with UDP
 * heartbeats, a serial line or a USB bulk pipe, with counters and a shutdown.
 */
export interface LiveLink extends LinkEndpoint {
  readonly description: string;
  stats(): LiveLinkStats;
  /** Closes every socket or port; idempotent; nothing reaches the handler after it resolves. */
  shutdown(): Promise<void>;
}
