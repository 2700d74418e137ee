/**
 * Telemetry events: everything the firmware shows the outside world (DESIGN 2.1, CONVENTIONS 8).
 * The consistency checker, the trace writer and the visualizer are built only on these.
 *
 * Every event carries `t` (the clock's time in ms) and `node` (the controller's name). `peer` names
 * the controller at the other end of the channel concerned. LBAs and counts are in the LUN's
 * sectors. `tag` is the source's number for one host write (unique per source controller); it
 * travels in the WRITE frame, so source-side and target-side events about one write can be joined.
 */
export type StreamEntryKind = 'lock' | 'write' | 'unlock';
export type ChannelRole = 'source' | 'target';

interface Base {
  t: number;
  node: string;
}

export type TelemetryEvent =
  | (Base & { kind: 'state'; machine: string; from: string; to: string; event: string })
  | (Base & { kind: 'frame.sent'; peer: string; type: string; seq: number; lun: number; bytes: number; retransmit: boolean })
  | (Base & { kind: 'frame.received'; peer: string; type: string; seq: number; lun: number; bytes: number })
  | (Base & { kind: 'frame.error'; peer: string; code: string; message: string })
  | (Base & { kind: 'host.write'; tag: number; lun: number; lba: number; count: number })
  | (Base & { kind: 'host.ack'; tag: number; lun: number; lba: number; count: number; mode: string })
  | (Base & { kind: 'host.error'; tag: number; lun: number; lba: number; count: number; code: string; message: string })
  | (Base & { kind: 'local.applied'; tag: number; lun: number; lba: number; count: number })
  | (Base & { kind: 'rollback.append'; peer: string; seq: number; entry: StreamEntryKind; lun: number; lba: number; count: number; lockId: number; tag: number; entries: number; bytes: number })
  | (Base & { kind: 'rollback.confirm'; peer: string; upTo: number; removed: number; entries: number; bytes: number })
  | (Base & { kind: 'commit.append'; peer: string; seq: number; entry: StreamEntryKind; lun: number; entries: number; bytes: number })
  | (Base & { kind: 'commit.confirm'; peer: string; upTo: number; entries: number; bytes: number })
  | (Base & { kind: 'commit.discard'; peer: string; from: number; removed: number })
  | (Base & { kind: 'target.lock'; peer: string; result: 'granted' | 'rejected' | 'released'; seq: number; lockId: number; lun: number; lba: number; count: number; mode: 'read' | 'write' })
  | (Base & { kind: 'target.apply'; peer: string; seq: number; lockId: number; tag: number; lun: number; lba: number; count: number })
  | (Base & { kind: 'local.lock'; result: 'granted' | 'queued' | 'released'; id: number; lun: number; lba: number; count: number; mode: 'read' | 'write' })
  | (Base & { kind: 'firmware.error'; message: string })
  | (Base & { kind: 'counters'; role: ChannelRole; peer: string; counters: Readonly<Record<string, number>> });

export type TelemetryKind = TelemetryEvent['kind'];
