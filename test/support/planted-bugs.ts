/**
 * Deliberate firmware bugs, planted by tests to prove that the consistency checker can fail
 * (docs/conventions.md 10, 15). A checker that has never caught broken firmware proves nothing
 * about working firmware. They live here, in test code, and nowhere else: the firmware has no
 * switch for them, and no flag, config file or option object can reach them. Each bug replaces
 * one method of a firmware class for as long as it is planted (the whole process: a campaign's
 * worker thread imports `planted-bugs-module.ts`), and `plant` returns the function that removes it.
 */
import { MirrorResync } from '../../firmware/controller/mirror-resync.ts';
import { TableResponder } from '../../firmware/controller/table-responder.ts';
import { WriteFence } from '../../firmware/controller/write-fence.ts';
import { RegionLockTable } from '../../firmware/locks/region-lock-table.ts';
import { MetadataStore } from '../../firmware/metadata/metadata-store.ts';
import { AreaReader } from '../../firmware/metadata/recovery.ts';
import { RollbackSpill } from '../../firmware/logs/rollback-spill.ts';
import { PeerLink } from '../../firmware/link/peer-link.ts';
import { FrameFlag, FrameType, NakReason } from '../../firmware/protocol/frame.ts';
import { reassembledFrames } from '../../firmware/protocol/frame-pool.ts';
import { SourceChannel } from '../../firmware/mirror/source-channel.ts';
import { TargetChannel } from '../../firmware/mirror/target-channel.ts';
import { Transmitter } from '../../firmware/mirror/transmitter.ts';
import { GroupFlush } from '../../firmware/controller/group-flush.ts';
import { StorageController } from '../../firmware/controller/storage-controller.ts';

export type PlantedBug =
  /** The target treats a refused mirror lock as granted and applies the writes behind it. */
  | 'target-applies-without-lock'
  /** The source removes a WRITE (or a BATCH's entries) from its rollback log as soon as it is sent, not when confirmed. */
  | 'source-drops-entry-before-ack'
  /** The target confirms a WRITE when it starts the disk write, before the data is on the disk. */
  | 'target-acks-before-write'
  /** The target holds back every other WRITE for a while, so later writes land first. */
  | 'target-reorders-writes'
  /** The source ignores NAKs, ack timeouts and lost connections: a lost frame is never re-sent. */
  | 'source-ignores-naks-and-timeouts'
  /** The link supervisor never hears silence: a black-holed link is never declared down. */
  | 'supervisor-never-declares-down'
  /** The link supervisor reconnects on the first heartbeat that comes back, without probation. */
  | 'supervisor-skips-probation'
  /** A target whose source restarted keeps the old stream's commit log and locks, as if nothing happened. */
  | 'target-keeps-old-stream'
  /** The target applies a WRITE that carries an implied lock without taking the lock at all. */
  | 'target-skips-implied-lock'
  /** The target grants an implied lock without asking the lock table, so the write lands under the server's local lock. */
  | 'target-forces-implied-lock'
  /** The target releases a write's implied lock as the write goes to the disk, before it is applied. */
  | 'target-releases-implied-lock-early'
  /** Every group flush says "durable" without flushing: hosts are acknowledged, and tokens given, on data still in a volatile cache. */
  | 'flush-skipped'
  /** The target gives tokens without flushing its volume first (the source still flushes its own). */
  | 'target-never-flushes'
  /** The metadata store acknowledges a commit once written, without flushing the device's cache. */
  | 'metadata-acks-before-flush'
  /** The metadata store writes every checkpoint into slot 0, over the one recovery would fall back to. */
  | 'metadata-checkpoint-one-slot'
  /** Metadata recovery trusts any sealed record after the log's end, whatever its sequence number and position (stale laps of the ring included). */
  | 'metadata-replays-stale-records'
  /** The source channel sends a new write straight to the rollback log when it has room, ahead of older writes still in the spill. */
  | 'spill-lets-writes-overtake'
  /**
   * The target puts every eighth mirrored WRITE on its disk with one byte flipped, and reports it
   * applied as usual: its telemetry is that of a correct target, so only reading its copy shows it.
   */
  | 'target-corrupts-applied-data'
  /**
   * The target gives a WRITE's reassembled buffer back to the frame pool as the frame arrives, not
   * once its disk write is done: a later frame can be gathered in it while this one still waits.
   */
  | 'target-gives-frame-buffer-back-early'
  /** A tag-table resync leaves out the last range its comparison found (docs/tag-tables.md, "Resync"). */
  | 'resync-skips-a-range'
  /** The target of a resync says its table holds one entry more with every chunk it sends. */
  | 'responder-lies-about-table-size'
  /** A resync reads and queues its chunks without fencing them against host writes. */
  | 'resync-skips-fence';

export const PLANTED_BUGS: readonly PlantedBug[] = [
  'target-applies-without-lock', 'source-drops-entry-before-ack', 'target-acks-before-write', 'target-reorders-writes',
  'source-ignores-naks-and-timeouts', 'supervisor-never-declares-down', 'supervisor-skips-probation', 'target-keeps-old-stream',
  'target-skips-implied-lock', 'target-forces-implied-lock', 'target-releases-implied-lock-early', 'flush-skipped', 'target-never-flushes',
  'target-corrupts-applied-data', 'target-gives-frame-buffer-back-early',
  'metadata-acks-before-flush', 'metadata-checkpoint-one-slot', 'metadata-replays-stale-records', 'spill-lets-writes-overtake',
  'resync-skips-a-range', 'responder-lies-about-table-size', 'resync-skips-fence',
];

/** How long `target-reorders-writes` holds a write back (ms). */
export const REORDER_BUG_DELAY_MS = 5;

type AnyMethod = (this: any, ...args: any[]) => any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Replace `name` on `proto` with `make(original)`; returns the undo. */
function patch(proto: object, name: string, make: (original: AnyMethod) => AnyMethod): () => void {
  const target = proto as Record<string, AnyMethod>;
  const original = target[name]!;
  if (typeof original !== 'function') throw new Error(`planted bug: ${name} is not a method to replace`);
  target[name] = make(original);
  return () => {
    target[name] = original;
  };
}

const DONE = 2;

/** Plant `bug`; returns the function that removes it. */
export function plant(bug: PlantedBug): () => void {
  switch (bug) {
    case 'target-applies-without-lock': {
      const undo = [
        patch(TargetChannel.prototype, 'lockRefused', () => function (this: unknown, e: { status: number }) {
          e.status = DONE;
          return true;
        }),
        patch(RegionLockTable.prototype, 'covers', () => () => true),
      ];
      return () => undo.forEach((u) => u());
    }
    case 'source-drops-entry-before-ack':
      return patch(SourceChannel.prototype, 'sendEntry', (original) => function (this: any, bytes: Uint8Array, retransmit: boolean) { // eslint-disable-line @typescript-eslint/no-explicit-any
        const conn = original.call(this, bytes, retransmit) as number;
        if (conn >= 0 && (bytes[3] === 3 || bytes[3] === 14)) {
          // A BATCH (type 14) counts its entries at bytes 36-39: the last of them goes too.
          const seq = readSeq(bytes) + (bytes[3] === 14 ? new DataView(bytes.buffer, bytes.byteOffset).getUint32(36) - 1 : 0);
          this.deps.clock.setTimeout(() => this.confirmThrough(seq), 0);
        }
        return conn;
      });
    case 'target-gives-frame-buffer-back-early':
      return patch(TargetChannel.prototype, 'onStreamFrame', (original) => function (this: unknown, f: { type: number; data?: Uint8Array }, ...rest: unknown[]) {
        if (f.type === FrameType.Write) reassembledFrames.giveBack(f.data!);
        return original.call(this, f, ...rest);
      });
    case 'target-corrupts-applied-data':
      return patch(TargetChannel.prototype, 'issueWrite', (original) => function (this: unknown, dev: unknown, e: { seq: number }, f: { data: Uint8Array }, ...rest: unknown[]) {
        if (e.seq % 8 !== 3 || f.data.length === 0) return original.call(this, dev, e, f, ...rest);
        const data = f.data.slice();
        data[data.length >> 1]! ^= 0x5a;
        return original.call(this, dev, e, { ...f, data }, ...rest);
      });
    case 'target-acks-before-write':
      return patch(TargetChannel.prototype, 'issueWrite', (original) => function (this: unknown, dev: unknown, e: { status: number }, ...rest: unknown[]) {
        e.status = DONE;
        return original.call(this, dev, e, ...rest);
      });
    case 'target-reorders-writes': {
      const undo = [
        // It ignores the Ordered flag (async streams are otherwise applied one write at a time)...
        patch(TargetChannel.prototype, 'processWrite', (original) => function (this: unknown, e: unknown, f: { flags: number }) {
          return original.call(this, e, { ...f, flags: f.flags & ~FrameFlag.Ordered });
        }),
        // ...and holds back every other write, so later ones land first.
        patch(TargetChannel.prototype, 'issueWrite', (original) => function (this: any, ...args: any[]) { // eslint-disable-line @typescript-eslint/no-explicit-any
          const e = args[1] as { seq: number };
          if (e.seq % 2 === 0) this.deps.clock.setTimeout(() => original.apply(this, args), REORDER_BUG_DELAY_MS);
          else original.apply(this, args);
        }),
      ];
      return () => undo.forEach((u) => u());
    }
    case 'source-ignores-naks-and-timeouts': {
      const undo = [
        patch(SourceChannel.prototype, 'onNak', (original) => function (this: unknown, seq: number, reason: NakReason) {
          if (reason === NakReason.Corrupt || reason === NakReason.Gap || reason === NakReason.Overflow) return;
          original.call(this, seq, reason);
        }),
        patch(Transmitter.prototype, 'onAckTimer', () => function (this: { ackTimer: unknown }) {
          this.ackTimer = null;
        }),
        patch(SourceChannel.prototype, 'connectionLost', () => () => {}),
        patch(SourceChannel.prototype, 'hasSentUnconfirmed', () => () => false),
      ];
      return () => undo.forEach((u) => u());
    }
    case 'supervisor-never-declares-down':
      return patch(PeerLink.prototype, 'silentForMs', () => () => 0);
    case 'supervisor-skips-probation':
      return patch(PeerLink.prototype, 'start', (original) => function (this: { probationMs: number }) {
        this.probationMs = 0;
        original.call(this);
      });
    case 'target-skips-implied-lock':
      return patch(TargetChannel.prototype, 'takeImpliedLock', () => function (this: unknown, e: { granted: boolean }) {
        e.granted = true;
        return 'granted';
      });
    case 'target-forces-implied-lock':
      // Says it granted (telemetry, LOCK_GRANTED after a refusal) without the table's say: no conflict is ever seen.
      return patch(TargetChannel.prototype, 'takeImpliedLock', () => function (this: any, e: { seq: number }, f: { lun: number; lba: number; lockId: number }, count: number) { // eslint-disable-line @typescript-eslint/no-explicit-any
        this.lockTaken(e, f.lockId, false);
        this.lockEvent('granted', e.seq, { lun: f.lun, lba: f.lba, count, lockId: f.lockId, mode: 'write', implied: true });
        return 'granted';
      });
    case 'target-releases-implied-lock-early':
      return patch(TargetChannel.prototype, 'issueWrite', (original) => function (this: any, dev: unknown, e: { seq: number }, f: { flags: number; lockId: number }, ...rest: unknown[]) { // eslint-disable-line @typescript-eslint/no-explicit-any
        if ((f.flags & FrameFlag.ImpliedLock) !== 0) this.releaseImplied(e.seq, f.lockId);
        return original.call(this, dev, e, f, ...rest);
      });
    case 'flush-skipped':
      return patch(GroupFlush.prototype, 'after', () => (done: (error?: unknown) => void) => done());
    case 'target-never-flushes':
      return patch(StorageController.prototype, 'makeDurable', () => (_luns: unknown, done: (error?: unknown) => void) => done());
    case 'metadata-acks-before-flush':
      return patch(MetadataStore.prototype, 'flushDevice', () => async function () {});
    case 'metadata-checkpoint-one-slot':
      return patch(MetadataStore.prototype, 'checkpointSlot', () => () => 0);
    case 'metadata-replays-stale-records':
      return patch(AreaReader.prototype, 'recordVerdict', () => () => 'next');
    case 'spill-lets-writes-overtake': {
      const held = Object.getOwnPropertyDescriptor(RollbackSpill.prototype, 'active')!;
      Object.defineProperty(RollbackSpill.prototype, 'active', { ...held, get: () => false });
      return () => Object.defineProperty(RollbackSpill.prototype, 'active', held);
    }
    case 'resync-skips-a-range':
      return patch(MirrorResync.prototype, 'exactPlan', (original) => function (this: unknown, ...args: unknown[]) {
        const plan = original.apply(this, args) as { ranges: unknown[] };
        return { ...plan, ranges: plan.ranges.slice(0, -1) };
      });
    case 'responder-lies-about-table-size': {
      let lies = 0;
      return patch(TableResponder.prototype, 'sendData', (original) => function (this: unknown, f: unknown, snap: unknown, total: number) {
        return original.call(this, f, snap, total + ++lies);
      });
    }
    case 'resync-skips-fence':
      // Only a resync closes a fence: host writes still wait behind overlapping ones.
      return patch(WriteFence.prototype, 'close', () => (_lba: number, _count: number, quiet: () => void) => quiet());
    case 'target-keeps-old-stream':
      return patch(TargetChannel.prototype, 'beginStream', (original) => function (this: { sourceSession: number; streamSource: number; ownerPeer: string; deps: { peer: string } }, session: number) {
        if (this.sourceSession === 0) return original.call(this, session);
        // Adopt the new session's name for everything held, and go on where the old stream was.
        this.streamSource = session;
      });
  }
}

/** Plant every bug in `bugs`; returns one undo for all of them. */
export function plantAll(bugs: readonly PlantedBug[]): () => void {
  const undo = bugs.map(plant);
  return () => undo.reverse().forEach((u) => u());
}

function readSeq(bytes: Uint8Array): number {
  let v = 0;
  for (let i = 8; i < 16; i++) v = v * 256 + bytes[i]!;
  return v;
}

/** What a campaign needs to plant `bugs` in its worker threads (CampaignTestingAids.plant). */
export function plantInWorkers(bugs: readonly PlantedBug[]): { module: string; label: string } {
  const url = new URL('./planted-bugs-module.ts', import.meta.url);
  url.searchParams.set('bugs', bugs.join(','));
  return { module: url.href, label: bugs.join(',') };
}

/** Run `fn` with `bugs` planted in this process's firmware, removing them afterwards whatever happens. */
export async function withPlantedBugs<T>(bugs: readonly PlantedBug[], fn: () => Promise<T>): Promise<T> {
  const undo = plantAll(bugs);
  try {
    return await fn();
  } finally {
    undo();
  }
}
