import type { Random } from '../../../../firmware/ports/random.ts';
import type { ByteLine } from '../../../../host/disks/serial-disk/line.ts';
import { SeededRandom } from '../../../../host/random.ts';

/** What the line does to bytes on their way: chances per byte, in parts per million. */
export interface LineNoise {
  flipPerMillion?: number;
  dropPerMillion?: number;
  seed?: number;
}

/**
 * One end of an in-memory serial line (a test double of ByteLine, docs/conventions.md 3): bytes
 * written at one end arrive at the other on a later macrotask, in order, each possibly flipped
 * or lost (seeded). Counts what it spoiled.
 */
export class MemoryLineEnd implements ByteLine {
  peer: MemoryLineEnd | null = null;
  readonly spoiled = { flipped: 0, dropped: 0, bytes: 0 };
  private receiver: (chunk: Uint8Array) => void = () => {};
  private closeReceiver: (error?: Error) => void = () => {};
  private closed = false;

  constructor(private readonly noise: LineNoise, private readonly random: Random) {}

  write(bytes: Uint8Array): void {
    if (this.closed) return;
    const out = this.spoil(bytes);
    const peer = this.peer!;
    setImmediate(() => {
      if (!peer.closed && out.length > 0) peer.receiver(out);
    });
  }

  onData(receiver: (chunk: Uint8Array) => void): void {
    this.receiver = receiver;
  }

  onClose(receiver: (error?: Error) => void): void {
    this.closeReceiver = receiver;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closeReceiver();
    const peer = this.peer!;
    if (!peer.closed) {
      peer.closed = true;
      setImmediate(() => peer.closeReceiver(new Error('the other end hung up')));
    }
  }

  private spoil(bytes: Uint8Array): Uint8Array {
    return spoil(bytes, this.noise, this.random, this.spoiled);
  }
}

/** Bytes after the noise: each lost or one bit of it flipped, with the chances given; counts what it did. */
export function spoil(bytes: Uint8Array, noise: LineNoise, random: Random, spoiled: { flipped: number; dropped: number; bytes: number }): Uint8Array {
  spoiled.bytes += bytes.length;
  const flip = noise.flipPerMillion ?? 0;
  const drop = noise.dropPerMillion ?? 0;
  if (flip === 0 && drop === 0) return bytes.slice();
  const out: number[] = [];
  for (const b of bytes) {
    if (drop > 0 && random.chance(drop, 1_000_000)) {
      spoiled.dropped++;
      continue;
    }
    if (flip > 0 && random.chance(flip, 1_000_000)) {
      spoiled.flipped++;
      out.push(b ^ (1 << random.int(8)));
      continue;
    }
    out.push(b);
  }
  return Uint8Array.from(out);
}

/** Two connected ends, the host's and the board's; noise applies both ways. */
export function memoryLine(noise: LineNoise = {}): [MemoryLineEnd, MemoryLineEnd] {
  const random = new SeededRandom(noise.seed ?? 1);
  const a = new MemoryLineEnd(noise, random.fork('a'));
  const b = new MemoryLineEnd(noise, random.fork('b'));
  a.peer = b;
  b.peer = a;
  return [a, b];
}
