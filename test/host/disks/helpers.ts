import { setImmediate as nextMacrotask } from 'node:timers/promises';
import type { VirtualClock } from '../../../host/clock/virtual.ts';

/**
 * Runs the virtual clock until `promise` settles, and returns (or throws) its outcome. The clock
 * stops as soon as the promise has settled, so later timers (a disk failure due later, say) stay
 * pending. A file disk's real I/O may need a few event-loop turns, hence the rounds.
 */
export async function runUntilSettled<T>(clock: VirtualClock, promise: Promise<T>, roundsMax = 1000): Promise<T> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let round = 0; !settled; round++) {
    if (round >= roundsMax) throw new Error(`runUntilSettled: promise still pending after ${roundsMax} idle rounds (deadlock?)`);
    const outcome = await clock.run({ until: () => settled });
    if (outcome === 'idle' && !settled) await nextMacrotask();
  }
  return promise;
}

/** The error `promise` rejects with, after running the clock; fails the test if it resolves. */
export async function rejectionOf(clock: VirtualClock, promise: Promise<unknown>): Promise<unknown> {
  try {
    await runUntilSettled(clock, promise);
  } catch (error) {
    return error;
  }
  throw new Error('expected the request to reject, but it resolved');
}

/** Deterministic bytes: a cheap xorshift stream from `seed`. */
export function pattern(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed * 2654435761 + 1) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Lets pending I/O and promise continuations run without advancing virtual time. */
export async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await nextMacrotask();
}
