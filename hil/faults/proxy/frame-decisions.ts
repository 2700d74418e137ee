import type { Random } from '../../../firmware/ports/random.ts';
import { SeededRandom } from '../../../host/random.ts';
import { HEARTBEAT_FRAME_TYPE, frameFaultTables, type FrameFaultTables, type LinkFaultPlan } from '../link-fault-plan.ts';
import { REORDER_OVERTAKERS_MAX } from './limits.ts';

/** A direction of the proxied link: `ab` from the connect side (A) to the listen side (B), `ba` back. */
export type ProxyDirection = 'ab' | 'ba';

/** What kind of channel a frame travels on decides which faults can strike it. */
export type ChannelKind = 'tcp' | 'datagram' | 'serial';

/** The channel a frame travels on: its direction, its name (the key of its decisions) and its kind. */
export interface ChannelKey {
  dir: ProxyDirection;
  channel: string;
  kind: ChannelKind;
}

/** Which frame: its index on the channel (from 0), its type byte and its length in bytes. */
export interface FrameKey {
  index: number;
  type: number;
  length: number;
}

/** One bit to flip: byte `at`, bit mask `mask`. */
export interface BitFlip {
  at: number;
  mask: number;
}

/**
 * What the proxy does to one frame. At most one of `lost`'s causes applies; a frame that is not
 * lost may be corrupted, held back for reordering, delayed and duplicated all at once.
 */
export interface FrameDecision {
  /** `reset`: the connection is reset and the frame lost with it (TCP only). */
  reset: boolean;
  /** `hbloss`: a heartbeat lost (datagrams, and inline heartbeats on a serial line). */
  heartbeatLost: boolean;
  drop: boolean;
  /** Bits to flip in a copy of the frame (none: not corrupted). */
  flips: readonly BitFlip[];
  /** Reorder: how many later frames overtake this one (0: not reordered). */
  overtakers: number;
  /** Delay: true if struck, with the extra delay in ms (which may be 0). */
  delayed: boolean;
  delayMs: number;
  duplicate: boolean;
}

const NO_FLIPS: readonly BitFlip[] = [];
export const PASS: Readonly<FrameDecision> = Object.freeze({
  reset: false, heartbeatLost: false, drop: false, flips: NO_FLIPS, overtakers: 0, delayed: false, delayMs: 0, duplicate: false,
});

/** Bytes 0-1 are the magic: a flip there would make the frame noise, not a frame the CRC rejects. */
const FLIP_FROM_BYTE = 2;


/**
 * Decides the per-frame faults of a plan (docs/fault-proxy.md 3), the same way whenever it is
 * asked: the decision for a frame is drawn from a generator of its own, keyed by (seed,
 * direction, channel, frame index), so it depends on which frame it is and never on timing, on
 * how many frames other channels carried, or on what was decided for earlier frames. Rates are
 * tables by type byte, as in the simulator's injector; a frame no rule can strike costs a few
 * array reads and draws nothing.
 *
 * Draws, in this order, each only when its rate for the frame's type is not zero: heartbeat loss
 * (HEARTBEATs on datagram and serial channels), reset (TCP), drop, corrupt (1-3 bits, never in
 * the magic, so the header or frame CRC catches it), reorder (1-3 overtakers), delay (0 to MAX
 * in thousandths of MAX), duplicate.
 */
export class FrameDecider {
  private readonly rates: FrameFaultTables;
  private readonly root: SeededRandom;
  /** Generators per (direction, channel): a bounded cache, since channels come and go. */
  private readonly channels = new Map<string, SeededRandom>();

  constructor(plan: LinkFaultPlan, seed: number) {
    this.rates = frameFaultTables(plan);
    this.root = new SeededRandom(seed).fork('fault-proxy');
  }

  /** The decision for frame number `index` (from 0) of `channel` in direction `dir`. */
  decide(on: ChannelKey, frame: FrameKey): FrameDecision {
    const { kind } = on;
    const { type, length } = frame;
    const hbloss = this.rates.hblossPerMillion !== 0 && kind !== 'tcp' && type === HEARTBEAT_FRAME_TYPE ? this.rates.hblossPerMillion : 0;
    const reset = kind === 'tcp' ? this.rates.resetPerMillion : 0;
    const p = { drop: this.rates.drop.perMillion[type]!, corrupt: this.rates.corrupt.perMillion[type]!, reorder: this.rates.reorder.perMillion[type]!,
      delay: this.rates.delay.perMillion[type]!, duplicate: this.rates.duplicate.perMillion[type]! };
    if (hbloss === 0 && reset === 0 && p.drop === 0 && p.corrupt === 0 && p.reorder === 0 && p.delay === 0 && p.duplicate === 0) return PASS;
    const r = this.frameRandom(on, frame.index);
    const struck = (ppm: number): boolean => ppm !== 0 && r.chance(ppm, 1_000_000);
    if (struck(hbloss)) return { ...PASS, heartbeatLost: true };
    if (struck(reset)) return { ...PASS, reset: true };
    if (struck(p.drop)) return { ...PASS, drop: true };
    const flips = struck(p.corrupt) ? drawFlips(r, length) : NO_FLIPS;
    const overtakers = struck(p.reorder) ? 1 + r.int(REORDER_OVERTAKERS_MAX) : 0;
    const delayed = struck(p.delay);
    const delayMs = delayed ? (this.rates.delay.maxMs[type]! * r.int(1001)) / 1000 : 0;
    const duplicate = struck(p.duplicate);
    return { reset: false, heartbeatLost: false, drop: false, flips, overtakers, delayed, delayMs, duplicate };
  }

  private frameRandom({ dir, channel }: ChannelKey, index: number): Random {
    const key = `${dir}/${channel}`;
    let c = this.channels.get(key);
    if (c === undefined) {
      if (this.channels.size >= CHANNEL_CACHE_MAX) this.channels.clear();
      c = this.root.fork(key);
      this.channels.set(key, c);
    }
    return c.fork(String(index));
  }
}

/** Forks are cheap to remake; the cache only saves hashing the channel's name per frame. */
const CHANNEL_CACHE_MAX = 256;

/**
 * 1-3 distinct bits from byte FLIP_FROM_BYTE on. Distinct, because flipping one bit twice would
 * leave the frame intact; a drawn bit already taken moves to the next one (still a fixed number of
 * draws). CRC32C catches every error of up to three bits in frames far larger than any we carry.
 */
function drawFlips(r: Random, length: number): BitFlip[] {
  const bits = (length - FLIP_FROM_BYTE) * 8;
  const n = Math.min(bits, 1 + r.int(3));
  const taken: number[] = [];
  for (let i = 0; i < n; i++) {
    let bit = r.int(bits);
    while (taken.includes(bit)) bit = (bit + 1) % bits;
    taken.push(bit);
  }
  return taken.map((bit) => ({ at: FLIP_FROM_BYTE + Math.floor(bit / 8), mask: 1 << (bit % 8) }));
}

/** A copy of `bytes` with `flips` applied (the sender's bytes stay as they were). */
export function applyFlips(bytes: Uint8Array, flips: readonly BitFlip[]): Uint8Array {
  const copy = bytes.slice();
  for (const f of flips) copy[f.at]! ^= f.mask;
  return copy;
}
