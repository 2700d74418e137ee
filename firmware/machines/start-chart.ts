import { createActor, type AnyActorLogic, type Actor, type EventFromLogic, type InputFrom, type InspectionEvent } from 'xstate';
import type { Clock } from '../ports/clock.ts';
import type { Telemetry } from '../ports/telemetry.ts';

/** The state a snapshot is in, as a dotted path: `idle`, `rollback.backoff`. */
export function stateName(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    const [key, child] = Object.entries(value as Record<string, unknown>)[0] ?? ['?', undefined];
    const rest = stateName(child);
    return rest === '' ? key : `${key}.${rest}`;
  }
  return '';
}

export interface ChartHandle<L extends AnyActorLogic> {
  readonly actor: Actor<L>;
  /** Chart events processed so far, delayed ones included (docs/design.md 2.2 budgets about one per mirrored write). */
  readonly events: () => number;
  readonly state: () => string;
  send(event: EventFromLogic<L>): void;
  stop(): void;
}

/**
 * Start a statechart the way every firmware chart is started: on the injected clock (so its
 * delays run in virtual time in a simulation), with every state change published as telemetry,
 * and with an error observer, since an action that throws would otherwise take the whole
 * process down from inside a timer (docs/conventions.md 2). `onError` decides what a broken chart means.
 */
export function startChart<L extends AnyActorLogic>(
  logic: L,
  input: InputFrom<L>,
  opts: { clock: Clock; telemetry: Telemetry; node: string; machine: string; onError: (error: unknown) => void },
): ChartHandle<L> {
  let current = '';
  let events = 0;
  const { clock, telemetry, node, machine } = opts;
  const actor = createActor(logic, {
    input,
    clock,
    inspect: (ev: InspectionEvent) => {
      if (ev.type !== '@xstate.snapshot' || ev.actorRef !== actor) return;
      if (ev.event.type !== 'xstate.init') events++;
      const snapshot = ev.snapshot as { value?: unknown };
      const next = stateName(snapshot.value);
      if (next === current) return;
      const from = current;
      current = next;
      if (telemetry.enabled) telemetry.emit({ kind: 'state', t: clock.now(), node, machine, from, to: next, event: ev.event.type });
    },
  } as never) as Actor<L>;
  actor.subscribe({ error: (err) => opts.onError(err) });
  actor.start();
  return {
    actor,
    events: () => events,
    state: () => current,
    send: (event) => actor.send(event),
    stop: () => actor.stop(),
  };
}
