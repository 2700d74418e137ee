import { setup } from 'xstate';

/**
 * The target side of one peer's mirror stream (docs/design.md 1.1): receive -> commit log -> lock ->
 * apply the writes in order while holding the lock -> confirm -> remove. The per-entry work is in
 * `TargetChannel`; this chart owns what happens when a mirror lock is refused.
 *
 * States:
 * - `idle`: the commit log is empty and this peer holds no lock here.
 * - `applying`: entries are being processed, or this peer's lock sessions are open.
 * - `lockWaiting` (halt-resume policy): the LOCK at the head of the commit log was refused. The
 *   target keeps it and everything behind it, tells the source (which halts), records the
 *   rejection so no new local lock is granted on the region, and retries whenever a lock is
 *   released, until granted.
 * - `discarding` (retransmit policy): the refused LOCK and everything after it were discarded and
 *   the source told to re-send; frames beyond the gap are dropped quietly until the LOCK comes
 *   again.
 */
export type TargetPhase = 'idle' | 'applying';

export interface TargetChannelControl {
  readonly retransmitPolicy: boolean;
  phase(): TargetPhase;
  holdRejectedLock(): void;
  discardFromRejectedLock(): void;
}

export type TargetChannelEvent =
  | { type: 'phase.idle' }
  | { type: 'phase.applying' }
  | { type: 'lock.refused'; seq: number; lockId: number }
  | { type: 'lock.granted'; seq: number }
  | { type: 'stream.resumed' };

const toPhase = [{ guard: 'phaseApplying', target: '#target.applying' }, { target: '#target.idle' }] as const;

export const targetChannelMachine = setup({
  types: {
    context: {} as { ctl: TargetChannelControl },
    input: {} as { ctl: TargetChannelControl },
    events: {} as TargetChannelEvent,
  },
  actions: {
    holdRejectedLock: ({ context }) => context.ctl.holdRejectedLock(),
    discardFromRejectedLock: ({ context }) => context.ctl.discardFromRejectedLock(),
  },
  guards: {
    phaseApplying: ({ context }) => context.ctl.phase() === 'applying',
    retransmitPolicy: ({ context }) => context.ctl.retransmitPolicy,
  },
}).createMachine({
  id: 'target',
  context: ({ input }) => ({ ctl: input.ctl }),
  initial: 'idle',
  on: {
    'lock.refused': [
      { guard: 'retransmitPolicy', target: '.discarding', actions: 'discardFromRejectedLock' },
      { target: '.lockWaiting', actions: 'holdRejectedLock' },
    ],
  },
  states: {
    idle: { on: { 'phase.applying': 'applying' } },
    applying: { on: { 'phase.idle': 'idle' } },
    lockWaiting: { on: { 'lock.granted': [...toPhase] } },
    discarding: { on: { 'stream.resumed': 'applying' } },
  },
});
