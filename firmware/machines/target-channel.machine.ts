import { assign, setup } from 'xstate';

/**
 * The target side of one peer's mirror stream (docs/design.md 1.1, 2.9): receive -> commit log ->
 * lock -> apply the writes in order while holding the lock -> confirm -> remove. The per-entry work
 * is plain code in `TargetChannel`; this chart owns what happens when a mirror lock is refused:
 * holding it and retrying it until granted, or discarding it and what followed, with the timers of
 * both. Its context names the refused lock.
 *
 * States, and what each decides:
 * - `streaming`: entries are taken in sequence order and processed in log order. A refused LOCK is
 *   held (halt-resume policy: `lockWaiting`) or discarded (retransmit policy: `discarding`).
 * - `lockWaiting`: the LOCK at the head of the commit log was refused. The target keeps it and
 *   everything behind it, tells the source (which halts), records the rejection so no new local
 *   lock is granted on the region, and retries it whenever a lock is released here and at least
 *   every `lockRetry`, until it is granted.
 * - `discarding`: the refused LOCK and everything after it were discarded and the source told to
 *   re-send; frames beyond the gap are dropped quietly until the LOCK comes again, and the refusal
 *   is repeated every `rejectRepeat` in case the source did not hear it.
 * - A new stream (the source restarted) ends any episode: the old stream's entries are gone.
 */
export interface TargetChannelControl {
  readonly retransmitPolicy: boolean;
  readonly lockRetryMs: number;
  readonly rejectRepeatMs: number;
  /** Keep the refused LOCK `seq` and what follows; tell the source to halt. */
  holdRefusedLock(seq: number): void;
  /** Try the held LOCK again (and, if granted, go on processing). */
  retryRefusedLock(): void;
  /** Drop the refused LOCK `seq` and everything after it; tell the source to re-send from there. */
  discardFromRefusedLock(seq: number): void;
  /** Tell the source again that the LOCK `seq` was discarded. */
  repeatDiscardNotice(seq: number): void;
}

export type TargetChannelEvent =
  | { type: 'lock.refused'; seq: number; lockId: number }
  | { type: 'lock.released' }
  | { type: 'lock.granted'; seq: number }
  | { type: 'stream.resumed' }
  | { type: 'stream.begin' };

export interface TargetChannelContext {
  ctl: TargetChannelControl;
  /** The refused LOCK of this episode: its sequence number and lock id. */
  refused: { seq: number; lockId: number } | null;
}

export const targetChannelMachine = setup({
  types: {
    context: {} as TargetChannelContext,
    input: {} as { ctl: TargetChannelControl },
    events: {} as TargetChannelEvent,
  },
  actions: {
    noteRefusedLock: assign({ refused: ({ event }) => (event.type === 'lock.refused' ? { seq: event.seq, lockId: event.lockId } : null) }),
    forgetRefusedLock: assign({ refused: null }),
    holdRefusedLock: ({ context }) => {
      if (context.refused) context.ctl.holdRefusedLock(context.refused.seq);
    },
    retryRefusedLock: ({ context }) => context.ctl.retryRefusedLock(),
    discardFromRefusedLock: ({ context }) => {
      if (context.refused) context.ctl.discardFromRefusedLock(context.refused.seq);
    },
    repeatDiscardNotice: ({ context }) => {
      if (context.refused) context.ctl.repeatDiscardNotice(context.refused.seq);
    },
  },
  guards: {
    retransmitPolicy: ({ context }) => context.ctl.retransmitPolicy,
    grantIsForTheRefusedLock: ({ context, event }) => event.type === 'lock.granted' && event.seq === context.refused?.seq,
  },
  delays: {
    lockRetry: ({ context }) => context.ctl.lockRetryMs,
    rejectRepeat: ({ context }) => context.ctl.rejectRepeatMs,
  },
}).createMachine({
  id: 'target',
  context: ({ input }) => ({ ctl: input.ctl, refused: null }),
  initial: 'streaming',
  on: {
    'stream.begin': { target: '.streaming', actions: 'forgetRefusedLock' },
  },
  states: {
    streaming: {
      on: {
        'lock.refused': [
          { guard: 'retransmitPolicy', target: 'discarding', actions: ['noteRefusedLock', 'discardFromRefusedLock'] },
          { target: 'lockWaiting', actions: ['noteRefusedLock', 'holdRefusedLock'] },
        ],
      },
    },
    lockWaiting: {
      after: { lockRetry: { target: 'lockWaiting', reenter: true, actions: 'retryRefusedLock' } },
      on: {
        'lock.released': { actions: 'retryRefusedLock' },
        'lock.granted': { guard: 'grantIsForTheRefusedLock', target: 'streaming', actions: 'forgetRefusedLock' },
      },
    },
    discarding: {
      after: { rejectRepeat: { target: 'discarding', reenter: true, actions: 'repeatDiscardNotice' } },
      on: { 'stream.resumed': { target: 'streaming', actions: 'forgetRefusedLock' } },
    },
  },
});
