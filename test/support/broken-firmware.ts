import type { StorageController } from '../../firmware/controller/storage-controller.ts';
import type { BlockDevice } from '../../firmware/ports/block-device.ts';
import type { TargetChannel } from '../../firmware/mirror/target-channel.ts';
import { FrameFlag, FrameType, type StreamFrame } from '../../firmware/protocol/frame.ts';
import type { Topology } from '../../hil/emulator/topology.ts';

/**
 * Deliberately broken firmware for the watchdog's tests, built here and only here (docs/conventions.md
 * 15): each patches one channel of a running controller, the way a bad firmware change would
 * behave, so that no flag or config file can ever reach it.
 */

/** The target channel that `controller` runs for `peer` (reaching past `private`: test code only). */
export function targetChannelOf(controller: StorageController, peer: string): TargetChannel {
  const peers = (controller as unknown as { peers: Map<string, { target: TargetChannel }> }).peers;
  const p = peers.get(peer);
  if (!p) throw new Error(`${controller.name} has no peer ${peer}`);
  return p.target;
}

/**
 * Livelock: the target takes every WRITE for a corrupt frame and NAKs it, so the source rolls
 * back and re-sends for ever. Frames fly, nothing is confirmed past the first LOCK.
 */
export function livelockTarget(topo: Topology): void {
  const t = targetChannelOf(topo.target, topo.source.name);
  const original = t.onStreamFrame.bind(t);
  t.onStreamFrame = (f: StreamFrame, bytes: number, conn: number): void => {
    if (f.type === FrameType.Write) t.onCorrupt(conn, undefined);
    else original(f, bytes, conn);
  };
}

/**
 * Deadlock: the target starts applying a WRITE and never finishes it (its completion is lost), so
 * its commit log never drains and the source waits for an acknowledgement that cannot come; only
 * the source's ack-timeout probes keep the clock ticking.
 */
export function deadlockTarget(topo: Topology): void {
  const t = targetChannelOf(topo.target, topo.source.name);
  (t as unknown as { issueWrite: () => void }).issueWrite = () => undefined;
}

/**
 * Runaway: every WRITE the target receives is handed back to itself on a zero-delay timer, for
 * ever. Virtual time stands still, so no stall can be measured: only the event budget ends it.
 */
export function runawayTarget(topo: Topology): void {
  const t = targetChannelOf(topo.target, topo.source.name);
  const original = t.onStreamFrame.bind(t);
  const spin = (): void => void topo.clock.setTimeout(spin, 0);
  t.onStreamFrame = (f: StreamFrame, bytes: number, conn: number): void => {
    if (f.type === FrameType.Write) spin();
    else original(f, bytes, conn);
  };
}

/**
 * Depends on completion order: the target applies WRITEs of its commit log concurrently, the
 * overlapping ones and an async stream's ordered ones included (it forgets its in-flight guards),
 * trusting the disk to finish them in the order it issued them. Fine on a disk that keeps issue
 * order; wrong on one that reorders.
 */
export function targetTrustsCompletionOrder(topo: Topology): void {
  const t = targetChannelOf(topo.target, topo.source.name) as unknown as {
    inflight: { lun: number; lba: number; end: number }[];
    processWrite(e: unknown, f: { flags: number }): boolean;
  };
  const processWrite = t.processWrite.bind(t);
  t.processWrite = (e, f) => processWrite(e, { ...f, flags: f.flags & ~FrameFlag.Ordered });
  const blind = new (class extends Array<{ lun: number; lba: number; end: number }> {
    override [Symbol.iterator](): ArrayIterator<{ lun: number; lba: number; end: number }> {
      return ([] as { lun: number; lba: number; end: number }[])[Symbol.iterator]();
    }
  })();
  Object.defineProperty(t, 'inflight', { value: blind });
}

/**
 * Not broken, but not the shipped firmware either: a target that makes every mirrored write
 * durable before it counts it applied (write, then flush), as the firmware must where it promises
 * durability. Used to show a power cut then loses nothing acknowledged.
 */
export function targetFlushesEveryWrite(topo: Topology): void {
  const t = targetChannelOf(topo.target, topo.source.name) as unknown as { deps: { device: (lun: number) => BlockDevice | undefined } };
  const original = t.deps.device;
  const wrapped = new Map<BlockDevice, BlockDevice>();
  t.deps.device = (lun) => {
    const dev = original(lun);
    if (!dev) return dev;
    let w = wrapped.get(dev);
    if (!w) {
      w = {
        name: dev.name, sectorSize: dev.sectorSize, sectorCount: dev.sectorCount,
        read: (lba, count) => dev.read(lba, count),
        write: async (lba, data) => {
          await dev.write(lba, data);
          await dev.flush();
        },
        flush: () => dev.flush(),
      };
      wrapped.set(dev, w);
    }
    return w;
  };
}
