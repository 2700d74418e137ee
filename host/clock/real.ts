import { performance } from 'node:perf_hooks';
import { setTimeout as sleepMs } from 'node:timers/promises';
import type { TimerHandle } from '../../firmware/ports/clock.ts';
import type { HostClock } from './clock.ts';

/** The wall clock, for live runs against real transports and disks. Time 0 is when it was made. */
export class RealClock implements HostClock {
  private readonly epoch = performance.now();

  now(): number {
    return performance.now() - this.epoch;
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    return setTimeout(fn, Math.max(0, delayMs));
  }

  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  }

  sleep(ms: number): Promise<void> {
    return sleepMs(Math.max(0, ms));
  }

  settle<T>(op: Promise<T>, _delayMs: number): Promise<T> {
    return op;
  }
}
