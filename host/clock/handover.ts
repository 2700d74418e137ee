import type { TimerHandle } from '../../firmware/ports/clock.ts';
import type { HostClock } from './clock.ts';

/**
 * The clock a run's volumes are built on when they need an initial synchronisation: it forwards
 * to the synchronisation's own virtual clock first, then, once {@link handOver} is called, to the
 * run's. So the synchronisation goes through the real device stack (arrays compute parity, image
 * files are written, service times are paid) without moving the run's clock: the fault plan's
 * times stay relative to the start of the fault phase.
 *
 * Only hand over when the first clock is idle (nothing of it in flight): a timer set on it would
 * never fire. One extra call per clock use; runs without a synchronisation do not use it. An
 * emulated USB device's setup clock is one too (it opens the device on a private clock first).
 */
export class HandoverClock implements HostClock {
  constructor(private current: HostClock) {}

  handOver(to: HostClock): void {
    this.current = to;
  }

  now(): number {
    return this.current.now();
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    return this.current.setTimeout(fn, delayMs);
  }

  clearTimeout(handle: TimerHandle): void {
    this.current.clearTimeout(handle);
  }

  sleep(ms: number): Promise<void> {
    return this.current.sleep(ms);
  }

  settle<T>(op: Promise<T>, delayMs: number): Promise<T> {
    return this.current.settle(op, delayMs);
  }
}
