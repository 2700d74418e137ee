import type { ActorOptions, AnyActorLogic } from 'xstate';

/**
 * The Clock port (docs/design.md 2.1). The firmware never reads the wall clock or sets a host timer
 * itself; it is handed a Clock. The timer half is XState's own clock interface (taken from
 * `createActor`'s options, so the two can never drift apart): set a timer, `delayMs` (>= 0) from
 * now, that fires once, timers due at the same instant firing in the order they were set; clear
 * it (clearing a fired or unknown timer does nothing). To that the firmware adds `now()`.
 *
 * Times are milliseconds as numbers (fractions allowed). A virtual clock in `host/` drives
 * simulations; a real clock drives live runs.
 */
type XStateClock = NonNullable<ActorOptions<AnyActorLogic>['clock']>;

/** What a timer is, for whoever keeps one to clear it later. */
export type TimerHandle = unknown;

export interface Clock extends XStateClock {
  /** Milliseconds since this clock's epoch; never decreases. */
  now(): number;
}
