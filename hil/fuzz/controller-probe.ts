import type { ControllerLimits } from '../../firmware/controller/config.ts';
import type { StorageController } from '../../firmware/controller/storage-controller.ts';
import { FRAME_OVERHEAD_BYTES, HELLO_PAYLOAD_BYTES_MAX } from '../../firmware/protocol/frame.ts';
import type { Maxima } from './outcome.ts';

/**
 * The bounded structures of a controller under fuzz, measured against their declared bounds
 * (docs/fuzzing.md 3): what `status()` and `lockTable` publish, and the few things the firmware
 * keeps private (each data connection's decoder, the queue of responses waiting for room, the
 * peer sessions it remembers). Those are read through the objects' own field names, because the
 * firmware has no reason to publish them; every read goes through `field()`, which fails loudly if
 * a name has changed, and a test runs the probe on a live controller, so a rename breaks the test
 * instead of quietly measuring nothing.
 */
export class ProbeError extends Error {}

function field(obj: unknown, name: string, what: string): unknown {
  if (obj === null || typeof obj !== 'object' || !(name in obj)) throw new ProbeError(`controller probe: ${what} has no field "${name}" (was it renamed?)`);
  return (obj as Record<string, unknown>)[name];
}

interface DecoderLike {
  bufferedBytes: number;
  reassemblyCapacity: number;
}

/** How many peer sessions a controller remembers as retired (firmware/link/peer-sessions.ts). */
export const RETIRED_SESSIONS_BOUND = 8;
/** Detection latencies a link keeps for its report (firmware/link/peer-link.ts). */
export const DETECT_SAMPLES_BOUND = 1024;

export interface ProbeReading {
  /** Quantities over their bound: what, measured, bound. */
  readonly over: { name: string; value: number; bound: number }[];
}

/**
 * Measures every bounded structure of `c` (one peer link per peer), records the maxima, and returns
 * those past their bound.
 */
export function probeController(c: StorageController, limits: ControllerLimits, maxima: Maxima): ProbeReading {
  const over: ProbeReading['over'] = [];
  const observe = (name: string, value: number, bound: number, unit = 'entries'): void => {
    if (!maxima.observe(name, value, bound, unit)) over.push({ name, value, bound });
  };
  const frameBound = Math.max(limits.payloadBytesMax, HELLO_PAYLOAD_BYTES_MAX) + FRAME_OVERHEAD_BYTES;
  for (const s of c.status()) {
    observe('commit log entries', s.target.commitLog.entries, limits.commitLogEntriesMax);
    observe('frames held early', s.target.heldEarly, limits.commitLogEntriesMax);
    observe('commit log bytes', s.target.commitLog.bytes, limits.commitLogBytesMax, 'bytes');
    if (s.source) {
      observe('rollback log entries', s.source.rollbackLog.entries, limits.rollbackLogEntriesMax);
      observe('rollback log bytes', s.source.rollbackLog.bytes, limits.rollbackLogBytesMax, 'bytes');
    }
    observe('detection samples kept', s.link.supervision.detectMs.length, DETECT_SAMPLES_BOUND);
  }
  const table = c.lockTable;
  observe('lock table: locks held', table.locks, limits.locksMax);
  observe('lock table: rejection records', table.rejections, Math.max(1, c.status().length));
  observe('lock table: local requests waiting', table.localWaiting, limits.localLockWaitersMax);
  for (const link of peerLinks(c)) {
    const conns = field(field(link, 'conns', 'PeerLink'), 'all', 'ConnectionArray') as { decoder: DecoderLike }[];
    for (const conn of conns) {
      const d = field(conn, 'decoder', 'a connection') as DecoderLike;
      observe('connection decoder: bytes held', d.bufferedBytes, frameBound, 'bytes');
      observe('connection decoder: reassembly buffer', d.reassemblyCapacity, frameBound, 'bytes');
    }
    observe('responses queued for room', (field(link, 'pending', 'PeerLink') as unknown[]).length, limits.controlQueueMax);
    observe('retired peer sessions remembered', (field(field(link, 'sessions', 'PeerLink'), 'retired', 'PeerSessions') as unknown[]).length, RETIRED_SESSIONS_BOUND);
    const reassembly = field(peerTarget(c, link), 'reassembly', 'TargetChannel') as { bytes: number };
    observe('frames held early: bytes', reassembly.bytes, limits.commitLogBytesMax, 'bytes');
  }
  return { over };
}

function peerLinks(c: StorageController): unknown[] {
  const peers = field(c, 'peers', 'StorageController') as Map<string, unknown>;
  return [...peers.values()].map((p) => field(p, 'link', 'a peer'));
}

function peerTarget(_c: StorageController, link: unknown): unknown {
  return field(link, 'target', 'PeerLink');
}

/** Frames the controller's connection decoders have taken off its links (all peers), for the summary. */
export function framesDecodedBy(c: StorageController): number {
  let n = 0;
  for (const link of peerLinks(c)) {
    const conns = field(field(link, 'conns', 'PeerLink'), 'all', 'ConnectionArray') as { decoder: { framesDecoded: number } }[];
    for (const conn of conns) n += conn.decoder.framesDecoded;
  }
  return n;
}
