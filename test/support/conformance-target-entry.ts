/**
 * An entry module for target controllers that the conformance tests start (host/runtime/spawn.ts
 * `entryModule`): it plants target-side protocol bugs named by `--plant a,b`, then runs the
 * `mirrorlab` command on the rest of its arguments. The bugs are the firmware's own
 * (test/support/planted-bugs.ts) or the ones below, which break what the conformance battery
 * checks; they reach the child through test code only, never a flag or config file of mirrorlab
 * (docs/conventions.md 15).
 */
import { TargetChannel } from '../../firmware/mirror/target-channel.ts';
import { submitWrite } from '../../firmware/ports/block-device.ts';
import { FrameType, NakReason, type StreamFrame } from '../../firmware/protocol/index.ts';
import { main } from '../../hil/cli/main.ts';
import { PLANTED_BUGS, plantAll, type PlantedBug } from './planted-bugs.ts';

/** Bugs only a conformance battery is there to catch. */
export const CONFORMANCE_TARGET_BUGS = [
  /** A WRITE that arrives again after it was applied (a retransmission, a stale copy) is written to the disk again. */
  'target-applies-duplicates',
  /** A gap in the stream is never NAKed: the target waits silently until the source's ack timeout re-sends. */
  'target-never-naks-gaps',
] as const;
type ConformanceBug = (typeof CONFORMANCE_TARGET_BUGS)[number];

type Channel = { log: { nextSeq: number }; deps: { device(lun: number): Parameters<typeof submitWrite>[0] | undefined } };

function plantConformanceBug(bug: ConformanceBug): void {
  switch (bug) {
    case 'target-applies-duplicates': {
      const proto = TargetChannel.prototype as unknown as { onStreamFrame(this: Channel, f: StreamFrame, bytes: number, conn: number): void };
      const original = proto.onStreamFrame;
      proto.onStreamFrame = function (this: Channel, f, bytes, conn) {
        if (f.type === FrameType.Write && f.seq < this.log.nextSeq) {
          const dev = this.deps.device(f.lun);
          if (dev) submitWrite(dev, f.lba, f.data.slice(), () => {});
        }
        original.call(this, f, bytes, conn);
      };
      return;
    }
    case 'target-never-naks-gaps': {
      const proto = TargetChannel.prototype as unknown as { nak(this: unknown, reason: NakReason, expected: number): void };
      const original = proto.nak;
      proto.nak = function (this: unknown, reason, expected) {
        if (reason !== NakReason.Gap) original.call(this, reason, expected);
      };
      return;
    }
  }
}

const argv = process.argv.slice(2);
const bugs = argv[0] === '--plant' ? (argv.splice(0, 2)[1] ?? '').split(',').filter((b) => b !== '') : [];
const known = [...PLANTED_BUGS, ...CONFORMANCE_TARGET_BUGS] as readonly string[];
const unknown = bugs.filter((b) => !known.includes(b));
if (unknown.length > 0) throw new Error(`conformance-target-entry: unknown bugs ${unknown.join(', ')}`);
plantAll(bugs.filter((b): b is PlantedBug => (PLANTED_BUGS as readonly string[]).includes(b)));
for (const b of bugs) if ((CONFORMANCE_TARGET_BUGS as readonly string[]).includes(b)) plantConformanceBug(b as ConformanceBug);
process.exitCode = await main(argv);
