import { PeerLink } from '../../firmware/link/peer-link.ts';
import { KNOWN_FLAGS, type Frame } from '../../firmware/protocol/frame.ts';

/**
 * A deliberately broken controller for the fuzzer to catch (docs/fuzzing.md 5): its link throws on
 * any frame carrying the newest flag bit the protocol defines (the highest bit of KNOWN_FLAGS), as a
 * handler written before that flag existed might. Planted by replacing one method for as long as a
 * test needs it; `plantFlagThrow` returns the undo. Test code only: the firmware has no switch for it.
 */
export const NEWEST_FLAG = 2 ** Math.floor(Math.log2(KNOWN_FLAGS));

export function plantFlagThrow(): () => void {
  const proto = PeerLink.prototype as unknown as Record<string, (this: unknown, conn: number, f: Frame) => void>;
  const original = proto.onFrame!;
  proto.onFrame = function (conn, f) {
    if ((f.flags & NEWEST_FLAG) !== 0) throw new Error(`planted bug: a frame with flag 0x${NEWEST_FLAG.toString(16)}`);
    original.call(this, conn, f);
  };
  return () => {
    proto.onFrame = original;
  };
}
