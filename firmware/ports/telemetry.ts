import type { TelemetryEvent } from '../telemetry/events.ts';

/**
 * The Telemetry port (docs/design.md 2.1): the one way the firmware shows what it does. The CLI, the
 * consistency checker, the trace writer and the visualizer subscribe to it; logging hangs off it
 * in `host/` and `hil/`. Checkers never reach into firmware internals (docs/conventions.md 8).
 *
 * `enabled` lets the data path skip building event objects when nobody listens (the wall-clock
 * benchmark), so telemetry costs nothing when off.
 */
export interface Telemetry {
  readonly enabled: boolean;
  emit(event: TelemetryEvent): void;
}

/** Telemetry that goes nowhere. */
export const silentTelemetry: Telemetry = { enabled: false, emit() {} };
