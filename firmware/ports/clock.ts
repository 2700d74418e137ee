/**
 * The Clock port (DESIGN 2.1). The firmware never reads the wall clock or sets a host timer
 * itself; it is handed a Clock. The shape is the one XState's `createActor(machine, { clock })`
 * accepts, plus `now()`.
 *
 * Times are milliseconds as numbers (fractions allowed). A virtual clock in `host/` drives
 * simulations; a real clock drives live runs.
 */
export type TimerHandle = unknown;

export interface Clock {
  /** Milliseconds since this clock's epoch; never decreases. */
  now(): number;
  /** Run `fn` once, `delayMs` (>= 0) from now. Timers due at the same instant fire in the order they were set. */
  setTimeout(fn: () => void, delayMs: number): TimerHandle;
  /** Cancel a pending timer; cancelling a fired or unknown timer does nothing. */
  clearTimeout(handle: TimerHandle): void;
}
