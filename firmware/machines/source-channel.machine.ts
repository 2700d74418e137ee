import { setup } from 'xstate';

/**
 * The source mirror channel: control state of one controller's stream of mirrored writes to one
 * peer (docs/design.md 1.1, 2.2). The per-write data path (log append, encode, send, cumulative acks)
 * lives in `SourceChannel`; this chart owns the decisions that change what the data path may do:
 * halt, resume, roll back, queue while the link is down. The data path reports only edges (the
 * phase changed, a lock was rejected, a NAK, a timeout), so a steady stream of writes costs no
 * chart events at all.
 *
 * States:
 * - `linkDown`: no HELLO from the peer yet, or the link dropped. Writes queue in the rollback log.
 * - `idle`: nothing unconfirmed, no lock session open.
 * - `lockPending`: a LOCK was sent whose data waits for LOCK_GRANTED (sync mode, read locks).
 * - `speculativeSent`: entries are out and unconfirmed (or sessions are open), none waits for a
 *   grant. In speculative and async mode this is where LOCK and data race ahead together; in sync
 *   mode only data under an already granted lock gets here.
 * - `halted`: the target refused a lock and holds it with what followed (halt-resume policy).
 *   Nothing is sent; everything stays in the rollback log. Every `haltProbe` the LOCK is re-sent
 *   to ask its status, so a lost LOCK_GRANTED cannot leave the channel halted for ever.
 * - `resumed`: the lock was granted; the held-back entries drain. Leaves once the target has
 *   confirmed everything that was out when it resumed.
 * - `rollback`: go-back-N. After a NAK (corrupt frame, gap) or an ack timeout, the failed entry
 *   and every later one are re-sent (`resending`); after a lock the target discarded (retransmit
 *   policy) the channel first waits `lockRetry` (`backoff`). Leaves once the target has confirmed
 *   past the rollback point.
 */
export type SourcePhase = 'idle' | 'lockPending' | 'active';

/** What the chart asks of the data path. */
export interface SourceChannelControl {
  readonly haltProbeMs: number;
  readonly lockRetryDelayMs: number;
  phase(): SourcePhase;
  /** Entries went out before the link dropped and were not confirmed: they must be re-sent. */
  hasSentUnconfirmed(): boolean;
  setGate(open: boolean): void;
  halt(lockId: number, seq: number): void;
  isHaltedLock(lockId: number): boolean;
  probeHaltedLock(): void;
  resume(): void;
  endResume(): void;
  rollBackTo(seq: number, cause: 'nak' | 'timeout' | 'discarded' | 'reconnect'): void;
  rollBackToHead(cause: 'timeout' | 'reconnect'): void;
  endRollback(): void;
  /** A NAK while halted: remember where to re-send from when transmission resumes. */
  rewindWhileHalted(seq: number): void;
}

export type SourceChannelEvent =
  | { type: 'link.up' }
  | { type: 'link.down' }
  | { type: 'phase.idle' }
  | { type: 'phase.lockPending' }
  | { type: 'phase.active' }
  | { type: 'target.lock.rejected'; seq: number; lockId: number; discarded: boolean }
  | { type: 'target.lock.granted'; lockId: number }
  | { type: 'target.nak'; expected: number }
  | { type: 'ack.timeout' }
  | { type: 'rollback.done' }
  | { type: 'resume.done' };

const toPhase = [
  { guard: 'phaseLockPending', target: '#source.lockPending' },
  { guard: 'phaseActive', target: '#source.speculativeSent' },
  { target: '#source.idle' },
] as const;

export const sourceChannelMachine = setup({
  types: {
    context: {} as { ctl: SourceChannelControl },
    input: {} as { ctl: SourceChannelControl },
    events: {} as SourceChannelEvent,
  },
  actions: {
    openGate: ({ context }) => context.ctl.setGate(true),
    closeGate: ({ context }) => context.ctl.setGate(false),
    haltAtRejectedLock: ({ context, event }) => {
      if (event.type === 'target.lock.rejected') context.ctl.halt(event.lockId, event.seq);
    },
    probeHaltedLock: ({ context }) => context.ctl.probeHaltedLock(),
    resumeTransmission: ({ context }) => context.ctl.resume(),
    endResume: ({ context }) => context.ctl.endResume(),
    rollBackToRejectedLock: ({ context, event }) => {
      if (event.type === 'target.lock.rejected') context.ctl.rollBackTo(event.seq, 'discarded');
    },
    rollBackToNak: ({ context, event }) => {
      if (event.type === 'target.nak') context.ctl.rollBackTo(event.expected, 'nak');
    },
    rollBackOnTimeout: ({ context }) => context.ctl.rollBackToHead('timeout'),
    rollBackOnReconnect: ({ context }) => context.ctl.rollBackToHead('reconnect'),
    rewindWhileHalted: ({ context, event }) => {
      if (event.type === 'target.nak') context.ctl.rewindWhileHalted(event.expected);
    },
    endRollback: ({ context }) => context.ctl.endRollback(),
  },
  guards: {
    phaseLockPending: ({ context }) => context.ctl.phase() === 'lockPending',
    phaseActive: ({ context }) => context.ctl.phase() === 'active',
    hasSentUnconfirmed: ({ context }) => context.ctl.hasSentUnconfirmed(),
    lockWasDiscarded: ({ event }) => event.type === 'target.lock.rejected' && event.discarded,
    isHaltedLock: ({ context, event }) => event.type === 'target.lock.granted' && context.ctl.isHaltedLock(event.lockId),
  },
  delays: {
    haltProbe: ({ context }) => context.ctl.haltProbeMs,
    lockRetry: ({ context }) => context.ctl.lockRetryDelayMs,
  },
}).createMachine({
  id: 'source',
  context: ({ input }) => ({ ctl: input.ctl }),
  initial: 'linkDown',
  on: {
    'link.down': { target: '.linkDown' },
    'target.lock.rejected': [
      { guard: 'lockWasDiscarded', target: '.rollback.backoff', actions: 'rollBackToRejectedLock' },
      { target: '.halted', actions: 'haltAtRejectedLock' },
    ],
    'target.nak': { target: '.rollback.resending', actions: 'rollBackToNak' },
    'ack.timeout': { target: '.rollback.resending', actions: 'rollBackOnTimeout' },
  },
  states: {
    linkDown: {
      entry: 'closeGate',
      on: {
        'link.up': [{ guard: 'hasSentUnconfirmed', target: 'rollback.resending', actions: 'rollBackOnReconnect' }, ...toPhase],
        'link.down': {},
        'target.lock.rejected': {},
        'target.nak': {},
        'ack.timeout': {},
      },
    },
    idle: {
      entry: 'openGate',
      on: { 'phase.lockPending': 'lockPending', 'phase.active': 'speculativeSent' },
    },
    lockPending: {
      entry: 'openGate',
      on: { 'phase.idle': 'idle', 'phase.active': 'speculativeSent' },
    },
    speculativeSent: {
      entry: 'openGate',
      on: { 'phase.idle': 'idle', 'phase.lockPending': 'lockPending' },
    },
    halted: {
      entry: 'closeGate',
      after: { haltProbe: { target: 'halted', reenter: true, actions: 'probeHaltedLock' } },
      on: {
        'target.lock.granted': { guard: 'isHaltedLock', target: 'resumed' },
        'target.nak': { actions: 'rewindWhileHalted' },
        'ack.timeout': {},
      },
    },
    resumed: {
      entry: 'resumeTransmission',
      exit: 'endResume',
      on: { 'resume.done': [...toPhase] },
    },
    rollback: {
      initial: 'resending',
      exit: 'endRollback',
      on: { 'rollback.done': [...toPhase] },
      states: {
        backoff: {
          entry: 'closeGate',
          after: { lockRetry: 'resending' },
        },
        resending: { entry: 'openGate' },
      },
    },
  },
});
