import { encodeFrame, FrameType, LockMode, type Frame } from '../../../../firmware/protocol/index.ts';
import { VirtualClock } from '../../../../host/clock/virtual.ts';
import { parseLinkFaults } from '../../../../hil/faults/link-fault-plan.ts';
import { FaultPipe, type FaultPipeOptions } from '../../../../hil/faults/proxy/fault-pipe.ts';
import type { StreamPiece } from '../../../../hil/faults/proxy/frame-splitter.ts';
import type { ProxyLimits } from '../../../../hil/faults/proxy/limits.ts';
import { ProxyCore } from '../../../../hil/faults/proxy/proxy-core.ts';
import type { ProxyEvent } from '../../../../hil/faults/proxy/proxy-events.ts';

/** Stream frames numbered `seq`: a LOCK, WRITE (with `dataBytes` of data) or UNLOCK, as the firmware sends them. */
export function streamFrame(kind: 'LOCK' | 'WRITE' | 'UNLOCK', seq: number, dataBytes = 64): Uint8Array {
  const base = { lun: 0, seq, flags: 0, lockId: 1 };
  if (kind === 'LOCK') return encodeFrame({ ...base, type: FrameType.Lock, lba: 0, count: 8, mode: LockMode.Write });
  if (kind === 'UNLOCK') return encodeFrame({ ...base, type: FrameType.Unlock });
  return encodeFrame({ ...base, type: FrameType.Write, lba: 0, tag: seq, data: new Uint8Array(dataBytes).fill(seq & 0xff) });
}

export function ackFrame(seq: number): Uint8Array {
  return encodeFrame({ type: FrameType.Ack, lun: 0, seq, flags: 0 });
}

export function heartbeatFrame(seq: number): Uint8Array {
  return encodeFrame({ type: FrameType.Heartbeat, lun: 0, seq, flags: 0, controllerId: 1, sessionId: 1, confirmedSeq: 0, peerSession: 0 });
}

/** The piece a splitter would hand out for `bytes` (one whole frame). */
export function framePiece(bytes: Uint8Array): Extract<StreamPiece, { kind: 'frame' }> {
  const v = new DataView(bytes.buffer, bytes.byteOffset);
  return { kind: 'frame', bytes, type: bytes[3]!, seq: v.getUint32(8) * 2 ** 32 + v.getUint32(12), lun: v.getUint16(6) };
}

export function seqOf(bytes: Uint8Array): number {
  return framePiece(bytes).seq;
}

/** A proxy core on a virtual clock, recording its events. */
export function virtualCore(plan: string, opts: { seed?: number; limits?: Partial<ProxyLimits>; link?: 'tcp' | 'serial' } = {}) {
  const clock = new VirtualClock();
  const events: ProxyEvent[] = [];
  const core = new ProxyCore(opts.link ?? 'tcp', { plan: parseLinkFaults(plan), seed: opts.seed ?? 1, clock, limits: opts.limits, onEvent: (e) => void events.push(e) });
  core.start();
  return { clock, core, events };
}

/** A pipe on `core` writing into an array, with a switch to make its sink refuse more. */
export function recordingPipe(core: ProxyCore, opts: Partial<FaultPipeOptions> = {}) {
  const written: { atMs: number; bytes: Uint8Array }[] = [];
  const sink = { full: false };
  const counters = core.tallies[opts.dir ?? 'ab'].open(opts.channel ?? 'test');
  const pipe = new FaultPipe({
    core, dir: 'ab', channel: 'test', kind: 'tcp', counters, ordering: 'stream', overflow: 'pause',
    queueBytesMax: 1 << 20, queueItemsMax: Infinity,
    sink: {
      write: (bytes) => {
        written.push({ atMs: core.nowMs(), bytes });
        return !sink.full;
      },
    },
    ...opts,
  });
  return { pipe, written, sink, counters };
}

export type { Frame };
