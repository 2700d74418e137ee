import type { HostClock } from '../clock/clock.ts';

/**
 * Rejects `ms` from now through the clock. Every disk request settles through `clock.sleep` or
 * `clock.settle`, errors included: the virtual clock lets promise continuations run only after
 * those, so a request that rejected on the spot would be seen by its caller at a later virtual
 * instant than the one it failed at.
 */
export function rejectLater<T = never>(clock: HostClock, error: unknown, ms = 0): Promise<T> {
  return clock.sleep(ms).then(() => {
    throw error;
  });
}
