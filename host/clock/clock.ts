import type { Clock } from '../../firmware/ports/clock.ts';

/**
 * What host-side components (disks, transports, workloads) need from a clock beyond the
 * firmware's {@link Clock} port: promise-shaped waits that stay exact in virtual time.
 *
 * Why not just `new Promise(r => clock.setTimeout(r, ms))`? In virtual time the scheduler runs
 * timer after timer synchronously; a promise continuation would otherwise run only after the
 * scheduler had moved the clock on, and see the wrong time. `sleep` and `settle` tell the
 * scheduler to let continuations run before time advances.
 */
export interface HostClock extends Clock {
  /** Resolves `ms` from now. */
  sleep(ms: number): Promise<void>;
  /**
   * Settles as `op` settles, but at a definite time: in virtual time exactly `delayMs` after this
   * call (if `op` is still running then, virtual time stands still until it finishes), so that a
   * simulation with real I/O inside (a file-backed disk) stays a pure function of its seed. On a
   * real clock it settles when `op` does.
   */
  settle<T>(op: Promise<T>, delayMs: number): Promise<T>;
}
