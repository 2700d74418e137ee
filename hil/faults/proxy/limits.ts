import { DEFAULT_PAYLOAD_BYTES_MAX } from '../../../firmware/protocol/frame.ts';

/**
 * The fault proxy's bounds (docs/conventions.md 6, docs/fault-proxy.md 5). Every buffer, queue and
 * wait of the proxy has one; reaching it is counted in the stats and logged, never an unbounded
 * queue:
 * - `connectionsMax`: TCP connections relayed at once; one more is reset at once (counted `refused`);
 * - `pipeQueueBytesMax`: bytes one direction of one connection may hold back (delayed, paced or
 *   held for reordering). A TCP source above it is paused until the queue is half empty, so the
 *   sender's own backpressure takes over; a serial line cannot be paused, so a frame arriving
 *   above it is dropped (counted `framesDroppedQueueFull`), as a UART overrun loses bytes;
 * - `pipeQueueItemsMax`: pieces (frames, and runs of noise between them) one direction of one
 *   connection may hold; reaching it does what reaching `pipeQueueBytesMax` does (bytes alone would
 *   let a stream of tiny pieces cost far more memory than its bytes);
 * - `heldFramesMax`: frames one direction of one channel holds back for reordering; a reorder drawn
 *   beyond it is not done (counted `reorderLimitHits`);
 * - `reorderHoldMsMax`: a held frame leaves at the latest this long after it arrived, even if no
 *   later frame overtook it (traffic may have stopped);
 * - `datagramsQueuedMax`: heartbeat datagrams one direction may hold (delayed, paced, held);
 *   one more is dropped (counted `framesDroppedQueueFull`);
 * - `preambleMsMax`: a connect side that has not sent its 8-byte connection preamble by then is reset;
 * - `upstreamConnectMsMax`: dialling the real listener gives up after this (the client is reset);
 * - `payloadBytesMax`: the largest WRITE payload the proxy's decoders accept; a larger declared
 *   frame streams past as noise, so the decoders' buffers never exceed one frame of this size;
 * - `channelStatsMax`: closed connections whose per-channel stats are kept (the direction totals
 *   keep everything);
 * - `eventsQueueBytesMax`: fault events waiting to be written to the events file; beyond, events
 *   are dropped and counted (`eventsDropped`).
 */
export interface ProxyLimits {
  connectionsMax: number;
  pipeQueueBytesMax: number;
  pipeQueueItemsMax: number;
  heldFramesMax: number;
  reorderHoldMsMax: number;
  datagramsQueuedMax: number;
  preambleMsMax: number;
  upstreamConnectMsMax: number;
  payloadBytesMax: number;
  channelStatsMax: number;
  eventsQueueBytesMax: number;
}

export const PROXY_LIMITS: Readonly<ProxyLimits> = {
  connectionsMax: 32,
  pipeQueueBytesMax: 4 * 1024 * 1024,
  pipeQueueItemsMax: 65_536,
  heldFramesMax: 64,
  reorderHoldMsMax: 50,
  datagramsQueuedMax: 256,
  preambleMsMax: 5_000,
  upstreamConnectMsMax: 5_000,
  payloadBytesMax: DEFAULT_PAYLOAD_BYTES_MAX,
  channelStatsMax: 64,
  eventsQueueBytesMax: 8 * 1024 * 1024,
};

/** A reordered frame waits for 1 to this many later frames to overtake it. */
export const REORDER_OVERTAKERS_MAX = 3;

/**
 * The pacer lets a frame leave up to this much ahead of its exact slot, so that a rate needing
 * sub-millisecond gaps is not capped by timer resolution; the long-run rate is exact.
 */
export const PACER_BURST_MS = 2;
